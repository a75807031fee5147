// Tests run the built platform (the sandbox runtime and the CLI are separate processes), so build once first.
// Every `nimbus up` and CLI process of the suite records and looks for servers in a state folder of the
// run's own, never the user's ~/.local/state (test workers and their children inherit this environment).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  execFileSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
  const state = mkdtempSync(join(tmpdir(), 'nimbus-test-state-'));
  process.env['XDG_STATE_HOME'] = state;
  return () => rmSync(state, { recursive: true, force: true });
}
