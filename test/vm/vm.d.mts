// Types of vm.mjs for the TypeScript callers (benchmarks/cgroup.ts, the type check of test/).

/** Whether this machine can boot the test VM, and if not, why. */
export function vmAvailable(): { ok: true } | { ok: false; reason: string };

/** Boots the pure cgroup v2 VM, runs one command as root, resolves with its exit code and output. */
export function runInVm(options: {
  command: string[];
  cwd?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
  onOutput?: (text: string) => void;
  tmpPaths?: string[];
}): Promise<{ exitCode: number; output: string }>;
