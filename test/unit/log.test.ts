// The timestamp on stderr lines: added where the agent's log method does not add one.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { logError, timestamp, useTimestamps, wantsTimestamps } from '../../plugin/log.js';

describe('stderr timestamps', () => {
  afterEach(() => {
    useTimestamps(false);
    vi.restoreAllMocks();
  });

  it('are wanted unless the agent logs to the journal or syslog', () => {
    // 1.37.1 sets nothing and writes the plugin's stderr into error.log as it is.
    expect(wantsTimestamps({})).toBe(true);
    // v1.44+/v2: `stderr` when its collector log is a file (the lines are kept as written).
    expect(wantsTimestamps({ NETDATA_LOG_METHOD: 'stderr' })).toBe(true);
    expect(wantsTimestamps({ NETDATA_LOG_METHOD: 'journal' })).toBe(false);
    expect(wantsTimestamps({ NETDATA_LOG_METHOD: 'syslog' })).toBe(false);
  });

  it("prefix each line in the form of 1.37.1's error.log", () => {
    expect(timestamp(new Date(2026, 11, 7, 6, 5, 9))).toBe('2026-12-07 06:05:09: ');
    const out: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out.push(String(chunk));
      return true;
    });
    logError('one');
    useTimestamps(true);
    logError('two');
    expect(out[0]).toBe('systemdunits.plugin: one\n');
    expect(out[1]).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d: systemdunits\.plugin: two\n$/);
  });
});
