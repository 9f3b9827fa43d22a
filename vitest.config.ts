import { defineConfig } from 'vitest/config';

// Two groups, one after the other (sequence.groupOrder):
// 1. "unit" and "parallel", two files at a time: the unit tests; the integration tests, each of
//    which boots a systemd of its own (its own namespaces and state dir under
//    /var/lib/systemdunits-tests), so two never see each other; and the end-to-end files whose
//    agents are wholly their own (a sandbox systemd, an agent in its own directory on a free port,
//    found by that directory, never by name; install-layouts builds its release into dist/release,
//    which no other file reads, and installs into trees of its own). Most of a file's time is spent
//    waiting on systemd or an agent, so integration and end-to-end files share one group: no worker
//    waits idle at a barrier between them. Two at a time, not three: three were faster on this
//    2-core machine (246 s against 347 s for the integration files, with other work loading it)
//    but broke timing checks (a Function answer by its deadline, a failure charted within 3 s).
// 2. "serial", one file at a time: the end-to-end tests that touch what is shared (the host's
//    Netdata layout and port 19999, the installer's default paths, a browser), and the two
//    integration files that load both cores on purpose and assert that samples stay on time
//    meanwhile (a neighbour would make them measure the neighbour).
const CPU_BOUND = ['test/integration/churn.test.ts', 'test/integration/function-burst.test.ts'];
const E2E_OWN_AGENT = ['activity', 'agent', 'faults', 'install-layouts', 'new-failure', 'privilege', 'reasons', 'restarts', 'streaming', 'v2'].map((f) => `test/e2e/${f}.test.ts`);

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          // One worker process for many files instead of a new one per file: most unit files run in
          // well under the second a fresh worker takes to start (unit files alone: 30 s → 20 s).
          isolate: false,
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'parallel',
          include: ['test/integration/**/*.test.ts', ...E2E_OWN_AGENT],
          exclude: CPU_BOUND,
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'serial',
          include: [...CPU_BOUND, 'test/e2e/**/*.test.ts'],
          exclude: E2E_OWN_AGENT,
          maxWorkers: 1,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
