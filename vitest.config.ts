import { defineConfig } from 'vitest/config';

// Three groups, one after the other (sequence.groupOrder):
// 1. "parallel", two files at a time: the unit tests and the integration tests, each of which boots
//    a systemd of its own (its own namespaces and state dir under /var/lib/systemdunits-tests), so
//    two never see each other. Most of an integration file's time is spent waiting on systemd.
// 2. "e2e-pairs", two at a time: end-to-end files whose agents are wholly their own (a sandbox
//    systemd, an agent in its own directory on a free port, found by that directory, never by name).
// 3. "serial", one file at a time: the end-to-end tests that touch what is shared (the host's
//    Netdata layout and port 19999, the installer's default paths, the release build, a browser),
//    and the two integration files that load both cores on purpose and assert that samples stay on
//    time meanwhile (a neighbour would make them measure the neighbour).
const CPU_BOUND = ['test/integration/churn.test.ts', 'test/integration/function-burst.test.ts'];
const E2E_OWN_AGENT = ['activity', 'agent', 'faults', 'new-failure', 'privilege', 'reasons', 'restarts', 'streaming'].map((f) => `test/e2e/${f}.test.ts`);

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'parallel',
          include: ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts'],
          exclude: CPU_BOUND,
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e-pairs',
          include: E2E_OWN_AGENT,
          maxWorkers: 2,
          sequence: { groupOrder: 1 },
        },
      },
      {
        extends: true,
        test: {
          name: 'serial',
          include: [...CPU_BOUND, 'test/e2e/**/*.test.ts'],
          exclude: E2E_OWN_AGENT,
          maxWorkers: 1,
          sequence: { groupOrder: 2 },
        },
      },
    ],
  },
});
