// Tests run the built platform (the sandbox runtime and the CLI are separate processes), so build once first.
import { execFileSync } from 'node:child_process';

export default function setup(): void {
  execFileSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
}
