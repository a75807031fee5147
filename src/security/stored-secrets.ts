// Users' secrets (`nimbus secret`): values encrypted under the master key before the store sees them, each
// bound to its project and name (the AAD), so a row copied to another name or project does not decrypt. Values
// are decrypted in one place only: resolve(), for the environment of an instance being started.
import { secretNameProblem, secretRefs } from '../config/secret-refs.js';
import type { SecretStore, StoredSecret } from '../store/types.js';
import { SecretDecryptError, type SecretBox } from './secrets.js';

/** A secret an instance needs cannot be had. Its message names the secret and the variable, never a value. */
export class SecretUnavailableError extends Error {
  override name = 'SecretUnavailableError';
  constructor(
    readonly secret: string,
    readonly variable: string,
    readonly reason: 'missing' | 'undecryptable',
  ) {
    super(
      reason === 'missing'
        ? `secret "${secret}" (environment variable ${variable}) does not exist in this project; set it with \`nimbus secret set ${secret}\``
        : `secret "${secret}" (environment variable ${variable}) does not decrypt with this node's master key; set it again with \`nimbus secret set ${secret}\`, or start with the master key it was set under`,
    );
  }
}

/** The AAD of a secret's ciphertext. NUL cannot occur in a project or secret name, so no two pairs collide,
 *  and the prefix keeps it apart from access keys' contexts (their ids). */
export function secretContext(project: string, name: string): string {
  return `nimbus secret\u0000${project}\u0000${name}`;
}

export class ProjectSecrets {
  constructor(
    private readonly o: {
      store: SecretStore;
      box: SecretBox;
    },
  ) {}

  /** Creates or replaces a secret. The name must be valid (callers check it first to answer a 400). */
  async set(
    project: string,
    name: string,
    value: string,
  ): Promise<{ secret: StoredSecret; created: boolean }> {
    const problem = secretNameProblem(name);
    if (problem) throw new Error(problem);
    return this.o.store.put(project, name, this.o.box.encrypt(value, secretContext(project, name)));
  }

  list(project: string): Promise<StoredSecret[]> {
    return this.o.store.list(project);
  }

  async exists(project: string, name: string): Promise<boolean> {
    return (await this.o.store.get(project, name)) !== undefined;
  }

  remove(project: string, name: string): Promise<boolean> {
    return this.o.store.remove(project, name);
  }

  /**
   * The environment with each ${secret:NAME} value replaced by the secret's value, for one instance start.
   * Throws SecretUnavailableError for the first reference that is missing or does not decrypt.
   */
  async resolve(project: string, environment: Record<string, string>): Promise<Record<string, string>> {
    const refs = secretRefs(environment);
    if (refs.length === 0) return environment;
    const env = { ...environment };
    for (const { variable, secret } of refs) {
      const row = await this.o.store.get(project, secret);
      if (!row) throw new SecretUnavailableError(secret, variable, 'missing');
      try {
        env[variable] = this.o.box.decrypt(row.ciphertext, secretContext(project, secret));
      } catch (err) {
        if (!(err instanceof SecretDecryptError)) throw err;
        throw new SecretUnavailableError(secret, variable, 'undecryptable');
      }
    }
    return env;
  }
}
