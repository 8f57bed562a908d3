import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { endProcess } from '../../lib/sys/end-process.ts';
import { pidfdOpen } from '../../lib/sys/libc.ts';

/** A node process that has set up its SIGTERM handling (ignoring it or not) and said so. */
async function started(ignoreTerm: boolean): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', `${ignoreTerm ? "process.on('SIGTERM', () => {});" : ''} console.log('ready'); setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await once(child.stdout!, 'data');
  return child;
}

// pasta's stop (lib/net/pasta.ts): a helper that does not end on SIGTERM is killed after the grace.
describe('endProcess: SIGTERM, then SIGKILL after the grace period', () => {
  it('ends a process that honours SIGTERM with SIGTERM', async () => {
    const child = await started(false);
    const exit = once(child, 'exit');
    await endProcess(pidfdOpen(child.pid!), 5000);
    assert.deepEqual(await exit, [null, 'SIGTERM']);
  });

  it('kills a process that ignores SIGTERM once the grace has passed', async () => {
    const child = await started(true);
    const exit = once(child, 'exit');
    await endProcess(pidfdOpen(child.pid!), 200);
    assert.deepEqual(await exit, [null, 'SIGKILL']);
  });
});
