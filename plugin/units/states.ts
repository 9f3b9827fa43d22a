// systemd ActiveState → the chart value 1..5.
//
// The chart and the alarm know five values. systemd has more states; each extra one is mapped to
// the nearest of the five by what it means for the operator:
//   reloading   → 1 active        (the unit keeps running while it reloads)
//   refreshing  → 1 active        (a running unit whose mount namespace is being refreshed)
//   maintenance → 2 inactive      (not running; `systemctl clean` is removing its resources)
//   anything unknown (a newer systemd) → 2 inactive, so that it can never raise the failed alarm
// Only `failed` is 5, so `value == 5` is exactly "systemd says this unit failed".

export const enum StateValue {
  Active = 1,
  Inactive = 2,
  Activating = 3,
  Deactivating = 4,
  Failed = 5,
}

const VALUES: Readonly<Record<string, StateValue>> = {
  active: StateValue.Active,
  reloading: StateValue.Active,
  refreshing: StateValue.Active,
  inactive: StateValue.Inactive,
  maintenance: StateValue.Inactive,
  activating: StateValue.Activating,
  deactivating: StateValue.Deactivating,
  failed: StateValue.Failed,
};

export function stateValue(activeState: string): StateValue {
  return VALUES[activeState] ?? StateValue.Inactive;
}

export function isKnownState(activeState: string): boolean {
  return activeState in VALUES;
}

export const STATE_LEGEND = '1: active, 2: inactive, 3: activating, 4: deactivating, 5: failed';
