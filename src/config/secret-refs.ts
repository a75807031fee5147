// Secret names, and references to secrets in a function's environment. A reference is a whole value of the
// form ${secret:NAME}: the manifest and the stored function config keep this text, and only an instance's
// environment ever holds the value (decrypted at its start). Defined once here for the manifest, the API, the
// store and the host.

/** 1 to 128 letters, digits, "_", ".", "-" or "/". */
export const SECRET_NAME = /^[A-Za-z0-9_./-]{1,128}$/;

export const SECRET_NAME_RULE = '1 to 128 letters, digits, "_", ".", "-" or "/"';

const REF = /^\$\{secret:([^}]*)\}$/;
const MARKER = '${secret:';

/** Why a secret name is refused, or undefined when it is a good one. Never echoes more than 40 characters. */
export function secretNameProblem(name: string): string | undefined {
  if (SECRET_NAME.test(name)) return undefined;
  const shown = name.length > 40 ? `${name.slice(0, 40)}…` : name;
  return `secret name "${shown}" is not valid: use ${SECRET_NAME_RULE}`;
}

/**
 * What an environment value is: plain text, a reference to a secret (the whole value is ${secret:NAME}), or a
 * mistake (it contains "${secret:" but is not exactly one reference, or the name is not valid).
 */
export function parseEnvValue(
  value: string,
): { kind: 'plain' } | { kind: 'secret'; name: string } | { kind: 'invalid'; problem: string } {
  if (!value.includes(MARKER)) return { kind: 'plain' };
  const m = REF.exec(value);
  if (!m) {
    return {
      kind: 'invalid',
      problem:
        'a secret reference must be the whole value, exactly ${secret:NAME} (no text around it, one reference per variable)',
    };
  }
  const problem = secretNameProblem(m[1]!);
  return problem ? { kind: 'invalid', problem } : { kind: 'secret', name: m[1]! };
}

/** The secrets an environment references, keyed by variable. */
export function secretRefs(environment: Record<string, string>): { variable: string; secret: string }[] {
  const out: { variable: string; secret: string }[] = [];
  for (const [variable, value] of Object.entries(environment)) {
    const v = parseEnvValue(value);
    if (v.kind === 'secret') out.push({ variable, secret: v.name });
  }
  return out;
}
