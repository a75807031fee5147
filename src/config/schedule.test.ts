import { describe, expect, it } from 'vitest';
import { nextRate, parseSchedule } from './schedule.js';

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

describe('schedule expressions', () => {
  it('reads rate expressions in minutes, hours and days', () => {
    expect(parseSchedule('rate(5 minutes)')).toMatchObject({ kind: 'rate', periodMs: 300_000 });
    expect(parseSchedule('rate(1 minute)')).toMatchObject({ periodMs: 60_000 });
    expect(parseSchedule('rate(2 hours)')).toMatchObject({ periodMs: 7_200_000 });
    expect(parseSchedule('rate(1 day)')).toMatchObject({ periodMs: 86_400_000 });
    expect(nextRate(60_000, 1000, 1000)).toBe(61_000);
    expect(nextRate(60_000, 1000, 60_999)).toBe(61_000);
    expect(nextRate(60_000, 1000, 61_000)).toBe(121_000);
    expect(nextRate(60_000, 5000, 0)).toBe(5000);
  });

  it('reads AWS six-field cron with day-of-week counted from Sunday = 1', () => {
    const noonDaily = parseSchedule('cron(0 12 * * ? *)');
    if (noonDaily.kind !== 'cron') throw new Error('not cron');
    expect(iso(noonDaily.next(at('2026-03-01T12:00:00Z')))).toBe('2026-03-02T12:00:00.000Z');
    // 2026-03-02 is a Monday; AWS 2 = Monday.
    const mondays = parseSchedule('cron(30 8 ? * 2 *)');
    if (mondays.kind !== 'cron') throw new Error('not cron');
    expect(iso(mondays.next(at('2026-03-01T00:00:00Z')))).toBe('2026-03-02T08:30:00.000Z');
    const weekdays = parseSchedule('cron(0 10 ? * MON-FRI *)');
    if (weekdays.kind !== 'cron') throw new Error('not cron');
    expect(iso(weekdays.next(at('2026-03-06T10:00:00Z')))).toBe('2026-03-09T10:00:00.000Z');
    // The second Friday (AWS 6#2) and the last day of the month.
    const secondFriday = parseSchedule('cron(0 0 ? * 6#2 *)');
    if (secondFriday.kind !== 'cron') throw new Error('not cron');
    expect(iso(secondFriday.next(at('2026-03-01T00:00:00Z')))).toBe('2026-03-13T00:00:00.000Z');
    const lastDay = parseSchedule('cron(0 0 L * ? *)');
    if (lastDay.kind !== 'cron') throw new Error('not cron');
    expect(iso(lastDay.next(at('2026-02-01T00:00:00Z')))).toBe('2026-02-28T00:00:00.000Z');
  });

  it('keeps to the AWS year field', () => {
    const s = parseSchedule('cron(0 0 1 1 ? 2030-2031)');
    if (s.kind !== 'cron') throw new Error('not cron');
    expect(iso(s.next(at('2026-06-01T00:00:00Z')))).toBe('2030-01-01T00:00:00.000Z');
    expect(iso(s.next(at('2030-01-01T00:00:00Z')))).toBe('2031-01-01T00:00:00.000Z');
    expect(s.next(at('2031-01-01T00:00:00Z'))).toBeUndefined();
  });

  it('reads five-field cron lines and applies a time zone', () => {
    const every15 = parseSchedule('*/15 * * * *');
    if (every15.kind !== 'cron') throw new Error('not cron');
    expect(iso(every15.next(at('2026-03-01T00:07:00Z')))).toBe('2026-03-01T00:15:00.000Z');
    const berlinNoon = parseSchedule('0 12 * * *', 'Europe/Berlin');
    if (berlinNoon.kind !== 'cron') throw new Error('not cron');
    // Winter: Berlin is UTC+1; summer: UTC+2.
    expect(iso(berlinNoon.next(at('2026-01-15T00:00:00Z')))).toBe('2026-01-15T11:00:00.000Z');
    expect(iso(berlinNoon.next(at('2026-07-15T00:00:00Z')))).toBe('2026-07-15T10:00:00.000Z');
  });

  it('reads AWS step forms: 0/15, */2 in day-of-week, and L alone as Saturday', () => {
    const next = (expr: string, from: string, tz = 'UTC') => {
      const s = parseSchedule(expr, tz);
      if (s.kind !== 'cron') throw new Error('not cron');
      return iso(s.next(at(from)));
    };
    expect(next('cron(0/15 * * * ? *)', '2026-03-02T09:01:00Z')).toBe('2026-03-02T09:15:00.000Z');
    expect(next('cron(0/5 8-17 ? * MON-FRI *)', '2026-03-06T17:56:00Z')).toBe('2026-03-09T08:00:00.000Z');
    // AWS */2 in day-of-week: every second day from Sunday: Sun, Tue, Thu, Sat; 2026-03-02 is a Monday.
    expect(next('cron(0 12 ? * */2 *)', '2026-03-02T12:00:00Z')).toBe('2026-03-03T12:00:00.000Z');
    expect(next('cron(0 6 ? * L *)', '2026-03-02T00:00:00Z')).toBe('2026-03-07T06:00:00.000Z');
    expect(next('5/20 * * * *', '2026-03-02T09:06:00Z')).toBe('2026-03-02T09:25:00.000Z');
  });

  it("reads the year in the schedule's own time zone", () => {
    const tokyo = parseSchedule('cron(0 5 1 1 ? 2027)', 'Asia/Tokyo');
    if (tokyo.kind !== 'cron') throw new Error('not cron');
    // 05:00 on 1 January 2027 in Tokyo is 20:00 UTC on 31 December 2026.
    expect(iso(tokyo.next(at('2026-06-01T00:00:00Z')))).toBe('2026-12-31T20:00:00.000Z');
    const la = parseSchedule('cron(0 20 31 12 ? 2027)', 'America/Los_Angeles');
    if (la.kind !== 'cron') throw new Error('not cron');
    expect(iso(la.next(at('2026-06-01T00:00:00Z')))).toBe('2028-01-01T04:00:00.000Z');
  });

  it('reads a stored schedule whose years are over as one that never fires, when asked to', () => {
    const over = parseSchedule('cron(0 0 1 1 ? 2001)', 'UTC', { mustFireAgain: false });
    if (over.kind !== 'cron') throw new Error('not cron');
    expect(over.next(Date.now())).toBeUndefined();
  });

  it('refuses what it cannot read, saying what it accepts', () => {
    expect(() => parseSchedule('rate(1 minutes)')).toThrow(/rate\(1 minute\)/);
    expect(() => parseSchedule('rate(5 minute)')).toThrow(/rate\(5 minutes\)/);
    expect(() => parseSchedule('every 5 minutes')).toThrow(/rate\(5 minutes\)/);
    expect(() => parseSchedule('rate(5 weeks)')).toThrow(/rate\(<n> minutes\|hours\|days\)/);
    expect(() => parseSchedule('rate(0 minutes)')).toThrow(/at least 1/);
    expect(() => parseSchedule('cron(0 12 * * *)')).toThrow(/six fields/);
    expect(() => parseSchedule('cron(0 12 * * * *)')).toThrow(/exactly one of day-of-month and day-of-week/);
    expect(() => parseSchedule('cron(0 12 ? * 8 *)')).toThrow(/day-of-week 8 is not 1-7/);
    expect(() => parseSchedule('cron(0 12 * * ? 20x6)')).toThrow(/year "20x6"/);
    expect(() => parseSchedule('61 * * * *')).toThrow(/not a valid cron expression/);
    expect(() => parseSchedule('0 0 30 2 *')).toThrow(/never fires/);
    expect(() => parseSchedule('0 12 * * *', 'Mars/Base')).toThrow(/time zone "Mars\/Base" is not known/);
    expect(() => parseSchedule('cron(0 0 1 1 ? 2001)')).toThrow(/never fires/);
  });
});
