// The `nimbus` executable (bin/nimbus.js imports the built copy of this file).
import { commands } from './commands/index.js';
import { runCli } from './dispatch.js';
import { packageVersion } from './format.js';

// `nimbus ls | head` closes the pipe early; that is not an error worth a stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

const code = await runCli(
  process.argv.slice(2),
  { version: packageVersion(), commands },
  {
    stdout: (text) => process.stdout.write(`${text}\n`),
    stderr: (text) => process.stderr.write(`${text}\n`),
    stderrRaw: (text) => process.stderr.write(text),
    isTTY: process.stdout.isTTY === true,
    env: process.env,
    cwd: process.cwd(),
  },
);
process.exitCode = code;
// The command is over; a handle some library left open (a keep-alive socket, a half-started server after a
// failed `up`) must not keep the process alive. The delay lets asynchronous stdout pipes drain first.
setTimeout(() => process.exit(code), 100).unref();
