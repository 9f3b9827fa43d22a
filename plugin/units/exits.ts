// How a service's main process ended, in the words an operator reads in `systemctl status`:
// `exit-code, status=203/EXEC`, `signal, SIGSEGV`, `signal, SIGSEGV, core dumped`. Pure: the
// readers put ExecMainCode/ExecMainStatus into the model, the writers and the log say them.

import type { MainExit } from './table.js';

/** ExecMainCode: the CLD_* code of the main process's end (waitid(2)). */
const CLD_EXITED = 1;
const CLD_KILLED = 2;
const CLD_DUMPED = 3;

/**
 * systemd's names for exit statuses it uses itself (`systemctl status` shows them): libc's 0 and 1,
 * and 200-243, 245 (EXIT_CHDIR…, from systemd's exit-status.c), which say which step of starting
 * the process failed.
 */
const EXIT_NAMES: Readonly<Record<number, string>> = {
  0: 'SUCCESS', 1: 'FAILURE',
  200: 'CHDIR', 201: 'NICE', 202: 'FDS', 203: 'EXEC', 204: 'MEMORY', 205: 'LIMITS', 206: 'OOM_ADJUST',
  207: 'SIGNAL_MASK', 208: 'STDIN', 209: 'STDOUT', 210: 'CHROOT', 211: 'IOPRIO', 212: 'TIMERSLACK',
  213: 'SECUREBITS', 214: 'SETSCHEDULER', 215: 'CPUAFFINITY', 216: 'GROUP', 217: 'USER', 218: 'CAPABILITIES',
  219: 'CGROUP', 220: 'SETSID', 221: 'CONFIRM', 222: 'STDERR', 224: 'PAM', 225: 'NETWORK', 226: 'NAMESPACE',
  227: 'NO_NEW_PRIVILEGES', 228: 'SECCOMP', 229: 'SELINUX_CONTEXT', 230: 'PERSONALITY', 231: 'APPARMOR_PROFILE',
  232: 'ADDRESS_FAMILIES', 233: 'RUNTIME_DIRECTORY', 235: 'CHOWN', 236: 'SMACK_PROCESS_LABEL', 237: 'KEYRING',
  238: 'STATE_DIRECTORY', 239: 'CACHE_DIRECTORY', 240: 'LOGS_DIRECTORY', 241: 'CONFIGURATION_DIRECTORY',
  242: 'NUMA_POLICY', 243: 'CREDENTIALS', 245: 'BPF',
};

/**
 * Linux's signal numbers (x86, ARM, most others; what `kill -l` lists), as systemctl names them.
 * A table rather than node:os, which the plugin does not import (test/unit/least-privilege.test.ts).
 */
const SIGNAL_NAMES: readonly string[] = [
  '', 'SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGILL', 'SIGTRAP', 'SIGABRT', 'SIGBUS', 'SIGFPE', 'SIGKILL', 'SIGUSR1',
  'SIGSEGV', 'SIGUSR2', 'SIGPIPE', 'SIGALRM', 'SIGTERM', 'SIGSTKFLT', 'SIGCHLD', 'SIGCONT', 'SIGSTOP', 'SIGTSTP',
  'SIGTTIN', 'SIGTTOU', 'SIGURG', 'SIGXCPU', 'SIGXFSZ', 'SIGVTALRM', 'SIGPROF', 'SIGWINCH', 'SIGIO', 'SIGPWR', 'SIGSYS',
];

export function signalName(n: number): string {
  if (n >= 1 && n < SIGNAL_NAMES.length) return SIGNAL_NAMES[n]!;
  // real-time signals: systemctl says SIGRTMIN+n too
  return n >= 34 && n <= 64 ? `SIGRTMIN+${n - 34}` : `signal ${n}`;
}

/** `status=203/EXEC`, `SIGSEGV`, `SIGSEGV, core dumped`; undefined when the process did not end (code 0). */
export function exitText(exit: MainExit, sep = ', '): string | undefined {
  switch (exit.code) {
    case CLD_EXITED: {
      const name = EXIT_NAMES[exit.status];
      // `=` is not allowed in chart labels (the protocol's quoting): `status 1/FAILURE` there
      return `status${sep === ' ' ? ' ' : '='}${exit.status}${name ? `/${name}` : ''}`;
    }
    case CLD_KILLED:
      return signalName(exit.status);
    case CLD_DUMPED:
      return `${signalName(exit.status)}${sep}core dumped`;
    default:
      return undefined;
  }
}

/**
 * A failed run as the operator reads it: `exit-code, status=203/EXEC`, `signal, SIGSEGV`,
 * `signal, SIGSEGV, core dumped`; a Result that is not about the main process's end keeps its word
 * first (`timeout, signal, SIGTERM`, `start-limit-hit`). `unknown` when systemd said nothing. `sep` ' ' for chart labels, where the agent turns commas into dots.
 */
export function crashText(result: string | undefined, exit: MainExit | undefined, sep = ', '): string {
  const how = exit ? exitText(exit, sep) : undefined;
  if (how === undefined) return result ?? 'unknown';
  const word = exit!.code === CLD_EXITED ? 'exit-code' : 'signal';
  // core-dump and signal say what `signal, SIGSEGV, core dumped` says; exit-code is the word itself
  if (result === undefined || result === 'exit-code' || result === 'signal' || result === 'core-dump') return `${word}${sep}${how}`;
  return `${result}${sep}${word}${sep}${how}`;
}
