// Schedules: a TriggerSource that turns each due tick of a deployed function's schedule into an async event.
// The tick is claimed by moving the schedule's next fire time with a compare-and-set, and the event's id is
// derived from the schedule and the tick, so a tick fires once across restarts and across nodes: a node that
// enqueued and then crashed before moving the tick enqueues the same id again, which changes nothing. The
// event then runs on the async path, with its retries and destinations, as EventBridge's invocations do.
import { createHash } from 'node:crypto';
import { systemClock, type Clock, type Timer } from '../clock/clock.js';
import { parseSchedule, nextRate, type Schedule } from '../config/schedule.js';
import type {
  EventQueue,
  FunctionVersion,
  ScheduleDef,
  ScheduleStore,
  StoredSchedule,
} from '../store/types.js';
import { derivedId } from './ids.js';
import type { TriggerSource } from './types.js';

/** A tick more than this late was missed (Nimbus was down), not merely delayed. */
const MISSED_AFTER_MS = 60_000;
/** Stored for a cron schedule that will never fire again (its year range is over). */
const NEVER = Number.MAX_SAFE_INTEGER;

export interface ScheduleSourceOptions {
  schedules: ScheduleStore;
  queue: EventQueue;
  clock?: Clock;
  /** Missed ticks: "skip" them, or fire the latest one "once". */
  catchUp?: 'skip' | 'once';
  /** Longest wait between looks at the store, for schedules other nodes synced. Default 1 s. */
  pollMs?: number;
  /** Told after ticks were enqueued, so the async source runs them at once. */
  onEnqueued?: () => void;
  region?: string;
  accountId?: string;
  onError?: (err: unknown, context: string) => void;
}

export class ScheduleSource implements TriggerSource {
  readonly kind = 'schedule';
  readonly name = 'schedules';
  private readonly clock: Clock;
  private readonly pollMs: number;
  private readonly parsed = new Map<string, Schedule>();
  private syncing: Promise<void> = Promise.resolve();
  private ticking: Promise<void> | null = null;
  private timer: Timer | null = null;
  private started = false;
  private stopped = false;

  constructor(private readonly o: ScheduleSourceOptions) {
    this.clock = o.clock ?? systemClock;
    this.pollMs = o.pollMs ?? 1000;
  }

  /** The deployed functions' schedules become the stored ones (unchanged ones keep their next tick). */
  sync(functions: readonly FunctionVersion[]): void {
    const defs = scheduleDefs(functions);
    this.syncing = this.syncing
      .then(() => this.o.schedules.sync(defs.flatMap((d) => this.withFirstTick(d))))
      .then(() => this.wake())
      .catch((err: unknown) => this.o.onError?.(err, 'schedules: storing the deployed schedules'));
  }

  synced(): Promise<void> {
    return this.syncing;
  }

  async start(): Promise<void> {
    await this.syncing;
    this.started = true;
    this.stopped = false;
    this.wake();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    await this.ticking;
    await this.syncing;
  }

  /** Resolves when no tick is being fired and none is due (for tests and clean stops). */
  async settled(): Promise<void> {
    for (;;) {
      await this.syncing;
      if (this.ticking) {
        await this.ticking;
        continue;
      }
      const next = await this.o.schedules.nextFireAt();
      if (!this.started || this.stopped || next === undefined || next > this.clock.now()) return;
      this.wake();
    }
  }

  private wake = (): void => {
    if (!this.started || this.stopped || this.ticking) return;
    this.timer?.cancel();
    let dueNow = false;
    this.ticking = this.fireDue()
      .catch((err: unknown) => this.o.onError?.(err, 'schedules: firing due ticks'))
      .then(async () => {
        dueNow = await this.rearm();
      })
      .catch((err: unknown) => this.o.onError?.(err, 'schedules: reading the next tick'))
      .finally(() => {
        this.ticking = null;
        // Time moved on while the ticks were fired: what fell due meanwhile fires now, not at the next poll.
        if (dueNow) this.wake();
      });
  };

  private async fireDue(): Promise<void> {
    let fired = 0;
    for (const s of await this.o.schedules.due(100)) {
      if (this.stopped) break;
      if (await this.fire(s)) fired++;
    }
    if (fired > 0) this.o.onEnqueued?.();
  }

  /** Moves s on from the tick it is at and, in the same transaction, enqueues that tick's event (unless it
   *  was missed and missed ticks are skipped). Only the caller that moves it enqueues: one event per tick. */
  private async fire(s: StoredSchedule): Promise<boolean> {
    const now = this.clock.now();
    const tick = s.nextFireAt;
    const missed = now - tick > MISSED_AFTER_MS;
    const next = this.nextTick(s, now);
    if (missed && this.o.catchUp !== 'once') {
      await this.o.schedules.advance(s.id, tick, next);
      return false;
    }
    const id = derivedId(`schedule:${s.id}:${tick}`);
    return this.o.schedules.advance(s.id, tick, next, {
      id,
      project: s.project,
      functionName: s.functionName,
      source: 'schedule',
      payload: s.input ?? JSON.stringify(this.scheduledEvent(s, id, tick)),
    });
  }

  /** Sets the timer for the next look; true when a tick is due already. */
  private async rearm(): Promise<boolean> {
    if (this.stopped) return false;
    const next = await this.o.schedules.nextFireAt();
    const now = this.clock.now();
    if (next !== undefined && next <= now) return true;
    const delay = next === undefined ? this.pollMs : Math.min(this.pollMs, next - now);
    this.timer = this.clock.setTimeout(this.wake, delay);
    return false;
  }

  private schedule(s: Pick<ScheduleDef, 'id' | 'expression' | 'timezone'>): Schedule {
    let p = this.parsed.get(s.id);
    // Stored schedules were checked at deploy; one whose years ran out since just never fires again.
    if (!p) this.parsed.set(s.id, (p = parseSchedule(s.expression, s.timezone, { mustFireAgain: false })));
    return p;
  }

  /** One schedule that cannot be read is told about and left out; the others are stored all the same. */
  private withFirstTick(d: ScheduleDef): (ScheduleDef & { firstFireAt: number })[] {
    try {
      return [{ ...d, firstFireAt: this.firstTick(d) }];
    } catch (err) {
      this.o.onError?.(err, `schedules: ${d.functionName}: ${d.expression}`);
      return [];
    }
  }

  private firstTick(d: ScheduleDef): number {
    const sched = this.schedule(d);
    const now = this.clock.now();
    return sched.kind === 'rate' ? now + sched.periodMs : (sched.next(now) ?? NEVER);
  }

  /** The first tick after now: a rate keeps its grid, whatever ticks were skipped on the way. */
  private nextTick(s: StoredSchedule, now: number): number {
    const sched = this.schedule(s);
    if (sched.kind === 'rate') return nextRate(sched.periodMs, s.nextFireAt, now);
    return sched.next(now) ?? NEVER;
  }

  /** EventBridge's "Scheduled Event", as a scheduled rule delivers it. */
  private scheduledEvent(s: StoredSchedule, id: string, tick: number): Record<string, unknown> {
    return scheduledEvent({
      id,
      tick,
      rule: ruleName(s),
      region: this.o.region ?? 'us-east-1',
      account: this.o.accountId ?? '000000000000',
    });
  }
}

/** EventBridge's "Scheduled Event" for one tick; also what `nimbus event generate schedule` prints. */
export function scheduledEvent(o: {
  id: string;
  tick: number;
  rule: string;
  region: string;
  account: string;
}): Record<string, unknown> {
  return {
    version: '0',
    id: o.id,
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: o.account,
    time: new Date(o.tick).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    region: o.region,
    resources: [`arn:aws:events:${o.region}:${o.account}:rule/${o.rule}`],
    detail: {},
  };
}

/** The schedules the deployed functions declare, each with an id derived from all it is. */
export function scheduleDefs(functions: readonly FunctionVersion[]): ScheduleDef[] {
  return functions.flatMap((f) =>
    (f.config.schedules ?? []).map((c) => {
      const input = c.input ?? null;
      const id = createHash('sha256')
        .update(JSON.stringify([f.project, f.name, c.expression, c.timezone, input]))
        .digest('hex')
        .slice(0, 32);
      return {
        id,
        project: f.project,
        functionName: f.name,
        expression: c.expression,
        timezone: c.timezone,
        input,
      };
    }),
  );
}

function ruleName(s: Pick<ScheduleDef, 'functionName' | 'id'>): string {
  return `${s.functionName}-schedule-${s.id.slice(0, 8)}`;
}
