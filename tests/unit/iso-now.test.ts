import { isoNow } from '../../src/logger';

describe('isoNow (the timestamp of every log line)', () => {
  it('is what Date#toISOString gives, within a second, across seconds, and when the clock steps back', () => {
    const start = Date.parse('2026-11-27T23:59:58.990Z');
    // Forward a millisecond at a time across two second boundaries and a day boundary, then
    // back again, as a clock stepped back by NTP would go.
    const times = [...Array.from({ length: 2100 }, (_, i) => start + i), ...Array.from({ length: 2100 }, (_, i) => start + 2100 - i)];
    for (const time of times) expect(isoNow(time)).toBe(new Date(time).toISOString());
  });

  it('is what Date#toISOString gives before 1970 and for six-digit years', () => {
    for (const time of [-1, -999, -1000, -1001, -62167219200001, 253402300800000, 8.64e15 - 1, 1]) {
      expect(isoNow(time)).toBe(new Date(time).toISOString());
    }
  });

  it('reads the clock when given no time', () => {
    const before = Date.now();
    const stamp = Date.parse(isoNow());
    expect(stamp).toBeGreaterThanOrEqual(before);
    expect(stamp).toBeLessThanOrEqual(Date.now());
  });
});
