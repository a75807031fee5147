// dynalite (npm `dynalite`, DynamoDB on LevelDB) as the DynamoDB benchmark's peer: its own process, on a free
// port, printing one JSON line when it listens. argv[2], when given, is a folder for a LevelDB store on disk
// (classic-level, a prebuilt native addon); without it dynalite keeps everything in memory (its default).
import { createRequire } from 'node:module';

const dynalite = createRequire(import.meta.url)('dynalite');
const path = process.argv[2];
const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0, ...(path ? { path } : {}) });
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
