import { writeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { CorralError } from '../../sys/errors.ts';
import type { CgroupStats } from '../../cgroup/cgroup.ts';
import type { OciStore } from '../../container/oci-container.ts';
import { OomWatch } from '../../container/oom-watch.ts';
import { ociFlags } from './flags.ts';

/** cgroup usage in runc's events/stats shape (types.Stats: cpu nanoseconds, memory bytes). */
export function runcStats(s: CgroupStats): Record<string, unknown> {
  return {
    cpu: { usage: { total: s.cpu.usageUsec * 1000, kernel: s.cpu.systemUsec * 1000, user: s.cpu.userUsec * 1000 }, throttling: { throttledTime: (s.cpu.throttledUsec ?? 0) * 1000 } },
    memory: { usage: { usage: s.memory?.current ?? 0, max: s.memory?.peak ?? 0, limit: s.memory?.limit ?? 0 } },
    pids: { current: s.pids?.current ?? 0, limit: s.pids?.limit ?? 0 },
    blkio: s.io ? { ioServiceBytesRecursive: [{ op: 'Read', value: s.io.readBytes }, { op: 'Write', value: s.io.writeBytes }] } : {},
  };
}

/** `events [--stats] [--interval 5s] ID`: one stats event (--stats), or one every interval and an
 * `{"type":"oom","id":ID}` event at each new OOM kill in its group (memory.events oom_kill, as
 * runc reports it) while the container is alive, as JSON lines. */
export async function eventsCommand(store: OciStore, args: string[]): Promise<number> {
  const { values, id } = ociFlags(args, { stats: { type: 'boolean' }, interval: { type: 'string' } });
  const interval = /^(\d+)(ms|s|m)?$/.exec(String(values.interval ?? '5s'));
  if (!interval) throw new CorralError(`invalid --interval "${String(values.interval)}": a duration such as 5s or 500ms`, { code: 'ERR_INVALID_ARG_VALUE' });
  const ms = Number(interval[1]) * ({ ms: 1, s: 1000, m: 60_000 } as Record<string, number>)[interval[2] ?? 's']!;
  const stats = (): void => void writeSync(1, `${JSON.stringify({ type: 'stats', id, data: runcStats(store.stats(id)) })}\n`);
  if (values.stats) return stats(), 0;
  const group = store.cgroup(id);
  // Only kills from now on are events (runc's inotify watch sees those).
  const before = group.oomKills();
  const oom = new OomWatch(group, () => writeSync(1, `${JSON.stringify({ type: 'oom', id })}\n`), before);
  oom.start();
  try {
    for (;;) {
      stats();
      await sleep(ms);
      oom.check();
      if (store.state(id).status === 'stopped') return 0;
    }
  } finally {
    oom.close();
  }
}
