// A runtime with the busybox test image, a host secret outside every build context, and contexts
// made on demand: what the hostile-context tests (build-context-*.test.ts) share.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime } from '../../lib/index.ts';
import { busyboxLayout, contextOf } from '../image-fixtures.ts';

/** What a hostile-context test works with. */
export interface BuildFixture {
  work: string;
  rt: Runtime;
  /** A host file no build may read. */
  secret: string;
  /** A fresh context directory with these files. */
  context(files: Record<string, string>): string;
  /** stdout of a shell script in an image. */
  out(image: string, script: string): Promise<string>;
  done(): void;
}

export const SECRET = 'TOP-SECRET-HOST-DATA';

/** Sets up the fixture (call in before()). */
export async function buildFixture(name: string): Promise<BuildFixture> {
  const work = mkdtempSync(join(tmpdir(), `corral-sec-${name}-`));
  const rt = new Runtime({ root: join(work, 'state'), cgroupParent: false });
  await rt.images.import(busyboxLayout(work));
  const secret = join(work, 'secret');
  writeFileSync(secret, SECRET, { mode: 0o600 });
  let n = 0;
  return {
    work, rt, secret,
    context: (files) => contextOf(join(work, `ctx-${++n}`), files),
    out: async (image, script) => (await rt.run({ image, command: ['/bin/sh', '-c', script] })).stdout.toString(),
    done: () => rmSync(work, { recursive: true, force: true }),
  };
}
