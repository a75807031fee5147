// The lifecycle seam: listeners, trigger sources, the pool and the store are Components that server.ts starts
// in order and stops in reverse. A start that fails part way stops what had started, so it leaves nothing
// running behind.

export interface Component {
  /** For errors and logs: "gateway", "store", "async events". */
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export class ComponentStartError extends Error {
  override name = 'ComponentStartError';
  constructor(
    readonly component: string,
    override readonly cause: unknown,
  ) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
  }
}

/** Starts components one after another; stop() stops the started ones in reverse order. */
export class Lifecycle {
  private started: Component[] = [];
  private stopping: Promise<void> | null = null;

  constructor(private readonly onStopError: (err: unknown, component: string) => void = () => {}) {}

  /** Starts c now and remembers it, so a later failure or stop() stops it too. On failure, everything
   *  started so far is stopped in reverse and the error is rethrown (as a ComponentStartError). */
  async start(c: Component): Promise<void> {
    try {
      await c.start();
    } catch (err) {
      await this.stop();
      throw new ComponentStartError(c.name, err);
    }
    this.started.push(c);
  }

  async startAll(components: readonly Component[]): Promise<void> {
    for (const c of components) await this.start(c);
  }

  /** Stops every started component in reverse order; an error in one does not keep the others running. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const c of this.started.reverse()) {
        try {
          await c.stop();
        } catch (err) {
          this.onStopError(err, c.name);
        }
      }
      this.started = [];
      this.stopping = null;
    })();
    return this.stopping;
  }

  get names(): string[] {
    return this.started.map((c) => c.name);
  }
}

/** A component from two functions, for things that are not classes of their own. */
export function component(name: string, start: () => unknown, stop: () => unknown): Component {
  return {
    name,
    start: async () => {
      await start();
    },
    stop: async () => {
      await stop();
    },
  };
}
