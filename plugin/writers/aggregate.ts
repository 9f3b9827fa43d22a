// The value of a dimension that aggregates the per-connection instances of one Accept=yes template
// (plugin/units/instances.ts says which units those are).

import { StateValue } from '../units/states.js';
import type { Unit } from '../units/table.js';

/**
 * The worst state among the instances: 5 if any entered failed since the previous sample (those
 * are added to `failed`, so the alarm's label names the real instance), else the highest value
 * (4 deactivating, 3 activating, 2 inactive, 1 active); 2 (inactive) when there is no instance.
 */
export function aggregateValue(members: readonly Unit[], failSeq: number, failed: Unit[]): StateValue {
  if (members.length === 0) return StateValue.Inactive;
  let worst = StateValue.Active;
  for (const unit of members) {
    const value = unit.failedSeq > failSeq ? StateValue.Failed : unit.value;
    if (value === StateValue.Failed) failed.push(unit);
    if (value > worst) worst = value;
  }
  return worst;
}
