// Stage names (`--stage`), without the manifest's schema: commands that only need the check load this alone.

/** Lower-case letters, digits and "-", starting with a letter, at most 32 characters. */
export const STAGE_NAME = /^[a-z][a-z0-9-]{0,31}$/;

/** Why a stage name is refused, or undefined when it is a good one. */
export function stageNameProblem(stage: string): string | undefined {
  if (STAGE_NAME.test(stage) && !stage.endsWith('-')) return undefined;
  const shown = stage.length > 40 ? `${stage.slice(0, 40)}…` : stage;
  return `--stage "${shown}" is not a stage name: use 1 to 32 lower-case letters, digits or "-", starting with a letter (e.g. --stage prod)`;
}

/** The service's name in a stage: todo in stage prod is todo-prod. */
export function stagedService(service: string, stage: string | undefined): string {
  return stage === undefined ? service : `${service}-${stage}`;
}
