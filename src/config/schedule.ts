// Schedule expressions as users write them: EventBridge's rate(5 minutes) and cron(0 12 * * ? *) (six fields,
// day-of-week 1-7 from Sunday, a year field), or a standard five-field cron line. Parsing and "when next" are
// croner's; this module only translates AWS's dialect and checks what croner would accept silently.
import { Cron } from 'croner';

export type Schedule =
  | { kind: 'rate'; periodMs: number; expression: string }
  | { kind: 'cron'; expression: string; timezone: string; next(afterMs: number): number | undefined };

export class ScheduleError extends Error {
  override name = 'ScheduleError';
}

const RATE = /^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$/;
const UNIT_MS: Record<string, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };
const AWS_CRON = /^cron\((.*)\)$/;
const DOW_NAMES = /^(SUN|MON|TUE|WED|THU|FRI|SAT)$/i;

/** Parses an expression, or throws a ScheduleError saying what is wrong and what is accepted. */
/** A deploy asks that the schedule fires again (mustFireAgain); a schedule already stored is read without
 *  that check, so one whose years have run out stops firing instead of failing everything around it. */
export function parseSchedule(
  expression: string,
  timezone = 'UTC',
  opts: { mustFireAgain: boolean } = { mustFireAgain: true },
): Schedule {
  const expr = expression.trim();
  checkTimezone(timezone);
  const rate = RATE.exec(expr);
  if (rate) {
    const n = Number(rate[1]);
    if (n < 1) throw new ScheduleError(`"${expr}": a rate must be at least 1`);
    const unit = rate[2]!.replace(/s$/, '');
    // As EventBridge: rate(1 minute), rate(5 minutes).
    if ((n === 1) !== (rate[2] === unit)) {
      throw new ScheduleError(`"${expr}": write rate(1 ${unit}) or rate(${n === 1 ? 2 : n} ${unit}s)`);
    }
    return { kind: 'rate', periodMs: n * UNIT_MS[unit]!, expression: expr };
  }
  if (expr.startsWith('rate(')) {
    throw new ScheduleError(
      `"${expr}" is not a rate; write rate(<n> minutes|hours|days), e.g. rate(5 minutes)`,
    );
  }
  const aws = AWS_CRON.exec(expr);
  const { pattern, year } = aws ? fromAwsCron(expr, aws[1]!.trim()) : fromCron(expr);
  let cron: Cron;
  try {
    cron = new Cron(pattern, { timezone, paused: true });
  } catch (err) {
    throw new ScheduleError(`"${expr}" is not a valid cron expression: ${(err as Error).message}`);
  }
  const next = (afterMs: number): number | undefined => {
    let from = new Date(afterMs);
    // The year field is AWS's alone, read in the schedule's zone: a run in another year moves the search to
    // that year's end (200 years at most; 15 h before midnight UTC is before the new year anywhere).
    for (let i = 0; i < 200; i++) {
      const run = cron.nextRun(from);
      if (!run) return undefined;
      const y = yearIn(run, timezone);
      if (!year || year(y)) return run.getTime();
      from = new Date(Math.max(run.getTime(), Date.UTC(y + 1, 0, 1) - 15 * 3_600_000));
    }
    return undefined;
  };
  if (opts.mustFireAgain && next(Date.now()) === undefined) {
    throw new ScheduleError(`"${expr}" never fires from now on`);
  }
  return { kind: 'cron', expression: expr, timezone, next };
}

/** The next fire time after `afterMs` of a rate schedule anchored at `anchorMs`. */
export function nextRate(periodMs: number, anchorMs: number, afterMs: number): number {
  if (afterMs < anchorMs) return anchorMs;
  return anchorMs + (Math.floor((afterMs - anchorMs) / periodMs) + 1) * periodMs;
}

function fromCron(expr: string): { pattern: string; year?: undefined } {
  const fields = expr.split(/\s+/);
  if (fields.length !== 5) {
    throw new ScheduleError(
      `"${expr}" is not a schedule: use rate(5 minutes), cron(0 12 * * ? *) (AWS, six fields) or a five-field cron line such as "*/5 * * * *"`,
    );
  }
  return { pattern: fields.map(openSteps).join(' ') };
}

/** Highest value of each of the five cron fields, for "start/step" (croner wants "start-max/step"). */
const FIELD_MAX = [59, 23, 31, 12, 6];

/** "0/15" (from 0, every 15) as "0-59/15", which croner reads; "*" and ranges with a step stay as they are. */
function openSteps(field: string, index: number): string {
  return field
    .split(',')
    .map((part) =>
      part.replace(
        /^(\d+)\/(\d+)$/,
        (_m, from: string, step: string) => `${from}-${FIELD_MAX[index]}/${step}`,
      ),
    )
    .join(',');
}

function yearIn(d: Date, tz: string): number {
  if (tz === 'UTC') return d.getUTCFullYear();
  return Number(new Intl.DateTimeFormat('en', { timeZone: tz, year: 'numeric' }).format(d));
}

/** AWS: minutes hours day-of-month month day-of-week year, with day-of-week 1 = Sunday, and exactly one of
 *  the day fields "?". */
function fromAwsCron(expr: string, inner: string): { pattern: string; year?: (y: number) => boolean } {
  const fields = inner.split(/\s+/);
  if (fields.length !== 6) {
    throw new ScheduleError(
      `"${expr}" must have six fields (minutes hours day-of-month month day-of-week year), e.g. cron(0 12 * * ? *)`,
    );
  }
  const [min, hour, dom, month, dow, year] = fields as [string, string, string, string, string, string];
  if ((dom === '?') === (dow === '?')) {
    throw new ScheduleError(`"${expr}": exactly one of day-of-month and day-of-week must be "?"`);
  }
  const pattern = [min, hour, dom, month, awsDayOfWeek(expr, dow)].map(openSteps).join(' ');
  return { pattern, year: yearMatcher(expr, year) };
}

/** AWS numbers days 1-7 from Sunday; cron numbers them 0-6. Names and the L and # forms carry over. */
function awsDayOfWeek(expr: string, dow: string): string {
  if (dow === '?' || dow === '*') return dow;
  // "L" alone is the last day of the week: Saturday.
  if (dow === 'L') return '6';
  return dow.replace(/[A-Za-z]+|\d+/g, (token, offset: number, whole: string) => {
    if (DOW_NAMES.test(token) || token === 'L') return token.toUpperCase();
    // After "#" comes the week of the month (1-5), after "/" a step: neither is a day.
    if (whole[offset - 1] === '#' || whole[offset - 1] === '/') return token;
    const n = Number(token);
    if (!Number.isInteger(n) || n < 1 || n > 7) {
      throw new ScheduleError(`"${expr}": day-of-week ${token} is not 1-7 (1 is Sunday) or SUN-SAT`);
    }
    return String(n - 1);
  });
}

function yearMatcher(expr: string, field: string): ((y: number) => boolean) | undefined {
  if (field === '*' || field === '?') return undefined;
  const parts = field.split(',').map((p) => {
    const m = /^(\d{4})(?:-(\d{4}))?(?:\/(\d+))?$/.exec(p);
    if (!m) throw new ScheduleError(`"${expr}": year "${p}" is not a year, a range (2026-2030) or *`);
    const from = Number(m[1]);
    const to = m[2] ? Number(m[2]) : m[3] ? 9999 : from;
    const step = m[3] ? Number(m[3]) : 1;
    return (y: number) => y >= from && y <= to && (y - from) % step === 0;
  });
  return (y) => parts.some((p) => p(y));
}

function checkTimezone(tz: string): void {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
  } catch {
    throw new ScheduleError(
      `time zone "${tz}" is not known; use an IANA name such as "Europe/Berlin" or "UTC"`,
    );
  }
}
