// ptrace of another process in the same container (the way to read or steer it, or, if it joined
// from the host, the host's runtime): the default seccomp filter allows ptrace only with SYS_PTRACE.
import assert from 'node:assert/strict';
import { hostileRoot, mode } from './hostile.ts';

describe(`security: ptrace a sibling process (${mode})`, () => {
  const h = hostileRoot();
  /** Starts a sleeping sibling, tries PTRACE_ATTACH on it, prints what the probe got. */
  const attach = async (extra = {}): Promise<string> => {
    const r = await h.sh('sleep 100 & sibling=$!; /bin/probe ptrace $sibling; kill $sibling', extra);
    assert.equal(r.exitCode, 0, r.stderr.toString());
    return r.stdout.toString().trim();
  };

  it('PTRACE_ATTACH to a sibling is refused', async () => {
    assert.equal(await attach(), 'EPERM');
  });

  it('twin: without the seccomp filter the same attach works', async () => {
    assert.equal(await attach({ seccomp: 'unconfined' }), 'ok');
  });
});
