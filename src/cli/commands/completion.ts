import type { Command, OptionSpec } from '../command.js';
import { UsageError, defineCommand } from '../command.js';
import { globalOptionsOf } from '../dispatch.js';

const SHELLS = ['bash', 'zsh', 'fish'] as const;
type Shell = (typeof SHELLS)[number];

export default defineCommand({
  name: 'completion',
  summary: 'Print a shell completion script (bash, zsh or fish) for commands and flags',
  description:
    "Prints a script that completes command names and each command's flags. Load it from your shell's startup file:\n  bash: source <(nimbus completion bash)     (in ~/.bashrc)\n  zsh:  source <(nimbus completion zsh)      (in ~/.zshrc, after compinit)\n  fish: nimbus completion fish | source      (in ~/.config/fish/config.fish)",
  args: [{ name: 'shell', description: 'bash, zsh or fish', required: true }],
  options: {},
  noJson: 'the script it prints is its output: drop --json',
  examples: [
    'source <(nimbus completion bash)',
    'nimbus completion fish > ~/.config/fish/completions/nimbus.fish',
  ],
  async run(ctx) {
    const shell = ctx.args['shell']!;
    if (!(SHELLS as readonly string[]).includes(shell)) {
      throw new UsageError(`unknown shell "${shell}"`, `choose one of ${SHELLS.join(', ')}`);
    }
    // The list is read here rather than imported at the top: index.ts imports this module.
    const { commands } = await import('./index.js');
    const all = [...commands, helpCommand(commands)];
    ctx.out(SCRIPTS[shell as Shell](all));
  },
});

/** `help` is handled by the dispatcher; it completes like a command taking another command's name. */
function helpCommand(commands: Command[]): Command {
  return {
    name: 'help',
    summary: 'Show help for a command',
    args: [{ name: 'command', description: commands.map((c) => c.name).join(' ') }],
    options: {},
    run: async () => {},
  };
}

function flags(c: Command): [string, OptionSpec][] {
  return [...Object.entries(c.options), ...globalOptionsOf(c)];
}

/** Descriptions as the shells can quote them: no quotes, brackets or colons. */
function plain(text: string): string {
  return text
    .replace(/['"`[\]:\\$]/g, '')
    .replace(/\s+/g, ' ')
    .slice(0, 70);
}

const SCRIPTS: Record<Shell, (commands: Command[]) => string> = {
  bash: (commands) => {
    const names = commands.flatMap((c) => [c.name, ...(c.aliases ?? [])]);
    const cases = commands.map((c) => {
      const opts = flags(c).flatMap(([n, o]) => [`--${n}`, ...(o.short ? [`-${o.short}`] : [])]);
      const words = c.name === 'help' ? commands.map((x) => x.name).filter((n) => n !== 'help') : [];
      return `    ${[c.name, ...(c.aliases ?? [])].join('|')}) opts="${opts.join(' ')}"; words="${words.join(' ')}" ;;`;
    });
    return [
      '# nimbus completion for bash. Load it with: source <(nimbus completion bash)',
      '_nimbus() {',
      '  local cur="${COMP_WORDS[COMP_CWORD]}" opts="" words=""',
      '  if [ "$COMP_CWORD" -eq 1 ]; then',
      `    COMPREPLY=($(compgen -W "${names.join(' ')}" -- "$cur"))`,
      '    return',
      '  fi',
      '  case "${COMP_WORDS[1]}" in',
      ...cases,
      '  esac',
      '  if [[ "$cur" == -* ]]; then',
      '    COMPREPLY=($(compgen -W "$opts" -- "$cur"))',
      '  elif [ -n "$words" ]; then',
      '    COMPREPLY=($(compgen -W "$words" -- "$cur"))',
      '  else',
      '    COMPREPLY=($(compgen -f -- "$cur"))',
      '  fi',
      '}',
      'complete -o default -F _nimbus nimbus',
    ].join('\n');
  },
  zsh: (commands) => {
    const described = commands.map((c) => `    '${c.name}:${plain(c.summary)}'`);
    const cases = commands.map((c) => {
      const specs = flags(c).map(([n, o]) => {
        const value = o.type === 'boolean' ? '' : `:${o.placeholder ?? 'value'}:`;
        return `'--${n}[${plain(o.description)}]${value}'`;
      });
      const rest =
        c.name === 'help' ? `'1:command:(${commands.map((x) => x.name).join(' ')})'` : "'*:file:_files'";
      return `    ${[c.name, ...(c.aliases ?? [])].join('|')}) _arguments ${[...specs, rest].join(' ')} ;;`;
    });
    return [
      '#compdef nimbus',
      '# nimbus completion for zsh. Load it with: source <(nimbus completion zsh) (after compinit)',
      '_nimbus() {',
      '  local -a commands',
      '  commands=(',
      ...described,
      '  )',
      '  if (( CURRENT == 2 )); then',
      "    _describe 'command' commands",
      '    return',
      '  fi',
      '  shift words',
      '  (( CURRENT-- ))',
      '  case "$words[1]" in',
      ...cases,
      '  esac',
      '}',
      'compdef _nimbus nimbus',
    ].join('\n');
  },
  fish: (commands) => {
    const lines = [
      '# nimbus completion for fish. Load it with: nimbus completion fish | source',
      'complete -c nimbus -f',
    ];
    for (const c of commands) {
      lines.push(`complete -c nimbus -n __fish_use_subcommand -a ${c.name} -d '${plain(c.summary)}'`);
    }
    for (const c of commands) {
      const when = `'__fish_seen_subcommand_from ${[c.name, ...(c.aliases ?? [])].join(' ')}'`;
      for (const [n, o] of flags(c)) {
        const short = o.short ? ` -s ${o.short}` : '';
        const value = o.type === 'boolean' ? '' : ' -r';
        lines.push(`complete -c nimbus -n ${when} -l ${n}${short}${value} -d '${plain(o.description)}'`);
      }
      if (c.name === 'help') {
        const names = commands.map((x) => x.name).filter((n) => n !== 'help');
        lines.push(`complete -c nimbus -n ${when} -a '${names.join(' ')}'`);
      } else if (c.args.length > 0) {
        lines.push(`complete -c nimbus -n ${when} -F`);
      }
    }
    return lines.join('\n');
  },
};
