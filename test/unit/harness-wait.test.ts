// The harness's one way to wait on a condition (harness/wait.ts), which every integration and e2e
// test leans on instead of fixed sleeps.
import { describe, expect, it } from 'vitest';
import { until } from '../../harness/wait.js';

describe('until', () => {
  it('polls until the probe gives a value, and returns it (0 and "" are values)', async () => {
    let n = 0;
    const seq: unknown[] = [undefined, null, false, 0];
    await expect(until('the fourth probe', () => seq[n++] as number | undefined, { everyMs: 1 })).resolves.toBe(0);
    expect(n).toBe(4);
    await expect(until('an async probe', async () => '', { everyMs: 1 })).resolves.toBe('');
  });

  it('fails after its timeout, saying what it waited for, what it saw last and the context', async () => {
    const err = await until('the moon', () => false, { timeoutMs: 30, everyMs: 5, context: () => 'sky: cloudy' }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toBe('timed out after 30 ms waiting for the moon (last: false)\nsky: cloudy');
  });

  it('gives up at once when abort says why, but not before the probe had its chance', async () => {
    await expect(until('x', () => 1, { abort: () => 'the plugin exited' })).resolves.toBe(1);
    // (not 'timed out': the abort came first)
    await expect(until('x', () => undefined, { timeoutMs: 5000, abort: () => 'the plugin exited' })).rejects.toThrow(/^the plugin exited while waiting for x$/);
  });

  it('fails on a probe that throws, unless told to retry (an API not answering yet)', async () => {
    await expect(until('x', () => { throw new Error('bug in the probe'); }, { timeoutMs: 5000 })).rejects.toThrow('bug in the probe');
    let n = 0;
    const v = await until('the API', () => {
      if (n++ < 2) throw new Error('ECONNREFUSED');
      return 'up';
    }, { everyMs: 1, retryOnError: true });
    expect(v).toBe('up');
    await expect(until('the API', () => { throw new Error('ECONNREFUSED'); }, { timeoutMs: 20, everyMs: 5, retryOnError: true })).rejects.toThrow('(last: ECONNREFUSED)');
  });
});
