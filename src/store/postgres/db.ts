// The pool every part of the PostgreSQL store shares, with the one "closed" switch they all obey.
import pg from 'pg';
import type { CustomTypesConfig, PoolClient, QueryResultRow } from 'pg';
import { storageQuotaError } from '../errors.js';

/**
 * Type parsers for this store's pools only (never the process-wide pg.types, which other code may rely on):
 * int8 columns (seq, sizes, epoch-ms times, counts) come back as numbers; all of them stay below 2^53.
 */
export const storeTypes: CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === pg.types.builtins.INT8 && format !== 'binary'
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format as 'text')) as CustomTypesConfig['getTypeParser'],
};

export class Db {
  private closed = false;

  constructor(readonly pool: pg.Pool) {}

  get isClosed(): boolean {
    return this.closed;
  }

  /** From now on every public call rejects; the store's own close() still drains through the pool. */
  markClosed(): void {
    this.closed = true;
  }

  assertOpen(): void {
    if (this.closed) throw new Error('store is closed');
  }

  async rows<R extends QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
    this.assertOpen();
    try {
      return (await this.pool.query<R>(sql, params)).rows;
    } catch (err) {
      throw typedError(err);
    }
  }

  /** Rows the statement touched. */
  async changed(sql: string, params: unknown[] = []): Promise<number> {
    this.assertOpen();
    try {
      return (await this.pool.query(sql, params)).rowCount ?? 0;
    } catch (err) {
      throw typedError(err);
    }
  }

  /** Runs fn in one transaction on one client: committed if it resolves, rolled back if it throws. */
  async tx<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
    this.assertOpen();
    const client = await this.pool.connect();
    // Checked out, a client has no pool listener: a dropped connection would otherwise crash the process
    // with an unhandled 'error' event; the failure reaches fn through its next query instead.
    client.on('error', ignore);
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      // A client whose rollback fails is in an unknown state: destroy it rather than hand it to the next caller.
      await client.query('ROLLBACK').catch((rollbackErr: unknown) => {
        broken = rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr));
      });
      throw typedError(err);
    } finally {
      client.off('error', ignore);
      client.release(broken);
    }
  }
}

/**
 * Group commit for PostgreSQL: the items of one turn of the event loop go to the database as one statement
 * (run() gets them all and answers one result per item, in order), so many concurrent small writes cost one
 * round trip and one commit instead of one each. A failed statement rejects every item of its batch.
 */
export class Batcher<I, O> {
  private items: { item: I; resolve: (o: O) => void; reject: (e: unknown) => void }[] = [];
  private timer: NodeJS.Immediate | undefined;

  constructor(private readonly run: (items: I[]) => Promise<O[]>) {}

  add(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.items.push({ item, resolve, reject });
      this.timer ??= setImmediate(this.flush);
    });
  }

  private readonly flush = (): void => {
    this.timer = undefined;
    const batch = this.items;
    this.items = [];
    this.run(batch.map((b) => b.item)).then(
      (out) => batch.forEach((b, i) => b.resolve(out[i]!)),
      (err: unknown) => batch.forEach((b) => b.reject(err)),
    );
  };
}

function ignore(): void {}

/** A quota trigger's error (migration 12) as the typed error callers handle; anything else as it came. */
function typedError(err: unknown): unknown {
  const detail = (err as { detail?: unknown } | null)?.detail;
  if (pgCode(err) === 'NQ001' && typeof detail === 'string') return storageQuotaError(detail) ?? err;
  return err;
}

/** Postgres error code of a failed query, if it has one. */
export function pgCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
