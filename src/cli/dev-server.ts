// The server `nimbus dev` starts when none is running: `nimbus up` as a child process, so it records itself
// like any `nimbus up` (other commands in other terminals find it) and its logs stay its own. The child runs
// in its own process group: a Ctrl+C at the terminal reaches `nimbus dev` alone, which then stops it once
// (a second signal would make `nimbus up` skip its drain).
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { CliError } from './command.js';
import { PACKAGE_ROOT } from './format.js';

export interface DevServer {
  apiUrl: string;
  gatewayUrl: string;
  keyFile: string;
  sandboxLevel: string;
  /** SIGTERM, then wait for the child to finish its drain. */
  stop(): Promise<void>;
  /** Resolves with the exit code if the child ends by itself. */
  exited: Promise<number | null>;
}

export interface DevServerOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Flags passed on to `nimbus up` (--port, --api-port, --data). */
  upArgs: string[];
  /** The server's own log lines (stderr) and function logs (stdout after its banner). */
  onOutput: (text: string) => void;
}

export function startDevServer(o: DevServerOptions): Promise<DevServer> {
  const bin = join(PACKAGE_ROOT, 'bin', 'nimbus.js');
  const child: ChildProcess = spawn(process.execPath, [bin, 'up', '--json', ...o.upArgs], {
    cwd: o.cwd,
    env: o.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  let errText = '';
  child.stderr!.on('data', (d: Buffer) => {
    const s = d.toString();
    if (errText.length < 64 * 1024) errText += s;
    o.onOutput(s);
  });
  return new Promise<DevServer>((resolve, reject) => {
    let out = '';
    let started = false;
    child.stdout!.on('data', (d: Buffer) => {
      if (started) return o.onOutput(d.toString());
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl === -1) return;
      started = true;
      const rest = out.slice(nl + 1);
      if (rest) o.onOutput(rest);
      let info: { apiUrl: string; gatewayUrl: string; keyFile: string; sandboxLevel: string };
      try {
        info = JSON.parse(out.slice(0, nl)) as typeof info;
      } catch {
        child.kill('SIGKILL');
        return reject(new CliError(`nimbus up printed something unexpected: ${out.slice(0, nl)}`));
      }
      resolve({
        ...info,
        exited,
        stop: async () => {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          await exited;
        },
      });
    });
    void exited.then((code) => {
      if (started) return;
      // `nimbus up` said why in its one line (a busy port, a data dir in use): pass that on.
      const line = errText.trim().split('\n').filter(Boolean).pop() ?? `exited with code ${code}`;
      reject(new CliError(`the server did not start: ${line.replace(/^nimbus up: /, '')}`));
    });
  });
}
