// What the user typed to run the CLI, so a hint names a command they can paste: `nimbus`, `npx nimbus`, or
// their npm script. npm tells its children through npm_lifecycle_event (the script's name, "npx" for npx
// and npm exec) and npm_lifecycle_script (the script's text, or the command npx runs).
export function invokedAs(env: NodeJS.ProcessEnv): string {
  const event = env['npm_lifecycle_event'];
  const script = (env['npm_lifecycle_script'] ?? '').replace(/['"]/g, '').trim();
  if (!event || !mentionsNimbus(script)) return 'nimbus';
  if (event === 'npx') return 'npx nimbus';
  // A script that is nimbus and nothing more takes any command after `--`.
  if (/^(npx\s+)?nimbus$|^node\s+\S*bin\/nimbus\.js$/.test(script)) {
    return event === 'start' || event === 'test' ? `npm ${event} --` : `npm run ${event} --`;
  }
  // A script that runs one command (`npm start` is `nimbus up --examples`): the rest are through npx.
  return 'npx nimbus';
}

function mentionsNimbus(script: string): boolean {
  const first = script.split(/\s+/).find((w) => !['npx', 'node', 'exec'].includes(w) && !w.startsWith('-'));
  return first !== undefined && /(^|\/)(nimbus|nimbus\.js)$/.test(first);
}

/** Rewrites `nimbus ...` in a message to what the user runs instead. */
export function withInvocation(text: string, prefix: string): string {
  if (prefix === 'nimbus') return text;
  return text.replace(/`(?:npx )?nimbus(?=[ `])/g, `\`${prefix}`);
}
