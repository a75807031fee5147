// s3rver (npm, pure JavaScript, objects as files under a folder) on a free port, for bench/s3.mjs: prints
// {"port": N} once it listens. The folder is the first argument; the bucket "bench" exists from the start.
import S3rver from 's3rver';

const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  silent: true,
  directory: process.argv[2],
  configureBuckets: [{ name: 'bench' }],
});
const address = await server.run();
console.log(JSON.stringify({ port: address.port }));
