// Who may send which signal (plugin/systemd/senders.ts), what a signal's Result may say, and the
// report of dropped signals: at most one line a window, naming a sender, whatever the flood.
import { describe, expect, it, vi } from 'vitest';
import { decodeSignal, isResultWord } from '../../plugin/systemd/manager.js';
import { DroppedSignals, fromRealSender } from '../../plugin/systemd/senders.js';
import { logErrorThrottled } from '../../plugin/log.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const PROPS = { interface: 'org.freedesktop.DBus.Properties', path: '/org/freedesktop/systemd1/unit/web_2esocket', member: 'PropertiesChanged' };
const OWNER = { interface: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', member: 'NameOwnerChanged' };

describe('fromRealSender', () => {
  it("takes systemd's signals from its current unique name only", () => {
    expect(fromRealSender({ ...PROPS, sender: ':1.1' }, ':1.1')).toBe(true);
    expect(fromRealSender({ ...PROPS, sender: ':1.66' }, ':1.1')).toBe(false);
    // a well-known name is never a sender on the wire; an empty one comes from no bus at all
    expect(fromRealSender({ ...PROPS, sender: 'org.freedesktop.systemd1' }, ':1.1')).toBe(false);
    expect(fromRealSender({ ...PROPS, sender: '' }, ':1.1')).toBe(false);
  });

  it('takes nothing as systemd’s while its owner is unknown or gone', () => {
    expect(fromRealSender({ ...PROPS, sender: ':1.1' }, undefined)).toBe(false);
    expect(fromRealSender({ ...PROPS, sender: '' }, '')).toBe(false);
  });

  it("takes the bus driver's signals from org.freedesktop.DBus only, on its own path", () => {
    expect(fromRealSender({ ...OWNER, sender: 'org.freedesktop.DBus' }, ':1.1')).toBe(true);
    expect(fromRealSender({ ...OWNER, sender: ':1.66' }, ':1.1')).toBe(false);
    // not even systemd may speak for the bus driver
    expect(fromRealSender({ ...OWNER, sender: ':1.1' }, ':1.1')).toBe(false);
    expect(fromRealSender({ ...OWNER, path: '/elsewhere', sender: 'org.freedesktop.DBus' }, ':1.1')).toBe(false);
    // and the bus driver never speaks for systemd
    expect(fromRealSender({ ...PROPS, sender: 'org.freedesktop.DBus' }, ':1.1')).toBe(false);
  });
});

describe('Result', () => {
  it("is taken only when it looks like one of systemd's words", () => {
    for (const ok of ['success', 'exit-code', 'start-limit-hit', 'service-start-limit-hit', 'core-dump']) expect(isResultWord(ok)).toBe(true);
    for (const bad of ['', 'x'.repeat(65), 'EVIL label', 'a=b', 'a\nb', "it's", 5, undefined]) expect(isResultWord(bad)).toBe(false);
  });

  it('a PropertiesChanged with another Result means nothing', () => {
    const signal = (value: string) => ({ ...PROPS, sender: ':1.1', seq: 1, body: ['org.freedesktop.systemd1.Socket', { Result: { value } }, []] });
    expect(decodeSignal(signal('resources'))).toMatchObject({ kind: 'state', result: 'resources' });
    expect(decodeSignal(signal('pwned by <b>nobody</b>'))).toBeUndefined();
  });
});

describe('DroppedSignals', () => {
  function reporter(windowMs: number) {
    const lines: string[] = [];
    const asked: string[] = [];
    const r = new DroppedSignals(
      async (sender) => {
        asked.push(sender);
        return `${sender} (uid 65534, pid 42)`;
      },
      (line) => lines.push(line),
      windowMs,
    );
    return { r, lines, asked };
  }

  it('says the first drop at once, with the sender, its uid and pid', async () => {
    const { r, lines, asked } = reporter(60_000);
    r.drop({ ...PROPS, sender: ':1.66' });
    await sleep(10);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('ignored 1 D-Bus signal ');
    expect(lines[0]).toContain(':1.66 (uid 65534, pid 42)');
    expect(lines[0]).toContain('PropertiesChanged on /org/freedesktop/systemd1/unit/web_2esocket');
    expect(asked).toEqual([':1.66']);
    r.stop();
  });

  it('a flood of 100,000 drops from 5,000 senders: one line per window, one question per line', async () => {
    vi.useFakeTimers();
    try {
      const lines: string[] = [];
      const asked: string[] = [];
      const r = new DroppedSignals(
        async (sender) => {
          asked.push(sender);
          return sender;
        },
        (line) => lines.push(line),
        60_000,
        () => Date.now(),
      );
      r.drop({ ...PROPS, sender: ':1.0' });
      await vi.advanceTimersByTimeAsync(1);
      for (let i = 0; i < 100_000; i++) r.drop({ ...PROPS, sender: `:1.${i % 5000}` });
      await vi.advanceTimersByTimeAsync(59_000);
      expect(lines).toHaveLength(1); // the rest waits for the window's end
      await vi.advanceTimersByTimeAsync(1_000);
      expect(lines).toHaveLength(2);
      expect(lines[1]).toContain('ignored 100000 D-Bus signals');
      expect(lines[1]).toContain('and 99+ other senders');
      expect(asked).toHaveLength(2);
      expect(r.total).toBe(100_001);
      await vi.advanceTimersByTimeAsync(300_000);
      expect(lines).toHaveLength(2); // nothing more dropped: nothing more said
      r.drop({ ...PROPS, sender: ':1.7' });
      await vi.advanceTimersByTimeAsync(1);
      expect(lines).toHaveLength(3); // a quiet window later, the next drop is said at once
      r.stop();
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('logErrorThrottled', () => {
  it('keeps a bounded number of keys', () => {
    const writes: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      writes.push(String(chunk));
      return true;
    });
    for (let i = 0; i < 1000; i++) logErrorThrottled(`k${i}`, `m${i}`);
    // The first keys were forgotten (bounded memory), so saying them again is allowed once more.
    logErrorThrottled('k0', 'again');
    logErrorThrottled('k999', 'not again');
    vi.restoreAllMocks();
    expect(writes.at(-1)).toContain('again');
    expect(writes.some((w) => w.includes('not again'))).toBe(false);
  });
});
