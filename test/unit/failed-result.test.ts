import { describe, expect, it } from 'vitest';
import { UnitTable } from '../../plugin/units/table.js';

// The failed run's Result, when what systemd says arrives out of step with the failure.
describe("a failure's Result", () => {
  it('is not the success a later start reset it to, read by a lookup that answered late', () => {
    const table = new UnitTable();
    const unit = table.upsert({ name: 'again.service', loadState: 'loaded', activeState: 'failed', subState: 'failed', result: 'success' });
    expect(unit.failedResult).toBeUndefined();
    // systemd's next Result that is not a reset fills it in.
    table.update(unit, { result: 'exit-code' });
    expect(unit.failedResult).toBe('exit-code');
  });

  it('is kept from just before the failure while the unit is started again', () => {
    const table = new UnitTable();
    const unit = table.upsert({ name: 'flap.service', loadState: 'loaded', activeState: 'active', subState: 'running' });
    table.update(unit, { result: 'exit-code' });
    table.update(unit, { activeState: 'failed' });
    table.update(unit, { result: 'success' });
    table.update(unit, { activeState: 'activating' });
    expect(unit.failedResult).toBe('exit-code');
    table.noteFailure(unit, 'success');
    expect(unit.failedResult, 'a stale success is no failure Result').toBeUndefined();
  });
});

describe('failure subscribers', () => {
  it('are each told of every entry into failed, until they unsubscribe (no one reader owns the slot)', () => {
    const table = new UnitTable();
    const a: string[] = [];
    const b: string[] = [];
    table.onFailure((u) => a.push(u.name));
    const stopB = table.onFailure((u) => b.push(u.name));
    table.upsert({ name: 'listed.service', loadState: 'loaded', activeState: 'failed', subState: 'failed' });
    const unit = table.upsert({ name: 'x.service', loadState: 'loaded', activeState: 'active', subState: 'running' });
    table.update(unit, { activeState: 'failed' });
    stopB();
    table.update(unit, { activeState: 'active' });
    table.update(unit, { activeState: 'failed' });
    expect(a).toEqual(['listed.service', 'x.service', 'x.service']);
    expect(b).toEqual(['listed.service', 'x.service']);
  });
});
