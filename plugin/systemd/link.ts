// The connection to systemd as everything but the sync sees it: whether the unit model is in step
// with systemd, and the typed API while it is. The socket-counter and failure-detail readers, the
// Functions and the sample loop depend on this, never on UnitSync itself.

import type { SystemdManager } from './manager.js';

export interface SystemdLink {
  /** The unit model matches systemd: listed at least once, connected, answering. */
  readonly inStep: boolean;
  /**
   * Bumped when systemd reloaded its unit files, was replaced (daemon-reexec) or reconnected to:
   * properties that are constant until a reload (a socket's Accept) must then be read again, and
   * what systemd rebuilt from its serialized state or may have said unheard (socket counters).
   */
  readonly generation: number;
  /** systemd's API while in step; undefined while it is out of reach. */
  readonly systemd: SystemdManager | undefined;
  /**
   * systemd's API once in step: at once, or when the listing under way has been applied;
   * undefined if that has not happened by `deadline` (monotonic ms).
   */
  whenInStep(deadline: number): Promise<SystemdManager | undefined>;
}
