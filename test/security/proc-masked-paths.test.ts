// /proc files that tell about or act on the host (/proc/kcore, /proc/keys, /proc/timer_list,
// /proc/sysrq-trigger, ...) are masked: /dev/null is bound over them.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { hostileRoot, mode } from './hostile.ts';

// Those of Docker's list that are files; kernels lack some (no SysRq, no /proc/kcore, ...).
const MASKED = ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/proc/sysrq-trigger', '/proc/sched_debug', '/proc/latency_stats', '/proc/timer_stats'].filter((p) => existsSync(p));

describe(`security: masked /proc paths (${mode})`, () => {
  const h = hostileRoot();

  it('each is /dev/null and reads nothing', async () => {
    assert.ok(MASKED.length >= 2, `this kernel has too few of the masked files: ${MASKED.join(' ')}`);
    for (const path of MASKED) {
      assert.equal(await h.probe(['stat-dev', path]), 'char 1:3', path);
      assert.equal(await h.probe(['read', path]), 'read 0', path);
    }
  });

  it('twin: with maskedPaths [] they are the kernel\'s files', async () => {
    for (const path of MASKED) assert.equal(await h.probe(['stat-dev', path], { maskedPaths: [] }), 'other 0:0', path);
  });
});
