import { defineConfig } from 'vitest/config';

// Two groups, one after the other (sequence.groupOrder):
// 1. "parallel", two files at a time: the unit tests and the integration tests, each of which boots
//    a systemd of its own (its own namespaces and state dir under /var/lib/systemdunits-tests), so
//    two never see each other. Most of an integration file's time is spent waiting on systemd.
// 2. "serial", one file at a time: the end-to-end tests (their agents look at the host's process
//    table, the host's Netdata layout and port 19999), and the two integration files that load
//    both cores on purpose and assert that samples stay on time meanwhile (a neighbour would make
//    them measure the neighbour).
const CPU_BOUND = ['test/integration/churn.test.ts', 'test/integration/function-burst.test.ts'];

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
          name: 'serial',
          include: [...CPU_BOUND, 'test/e2e/**/*.test.ts'],
          maxWorkers: 1,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
