// What the build tests (test/integration/build*.test.ts) do with a runtime: build a context
// recording the progress events, run a script in an image, list the steps that ran.
import assert from 'node:assert/strict';
import type { BuildProgress, Runtime } from '../lib/index.ts';

/** A build's digest, its progress events and its RUN output. */
export interface Built {
  manifestDigest: string;
  events: BuildProgress[];
  output: string;
}

/** The helpers, bound to a runtime got later (in before()). */
export function buildHelpers(runtime: () => Runtime): {
  build: (context: string, extra?: Record<string, unknown>) => Promise<Built>;
  out: (image: string, script: string) => Promise<string>;
  ran: (events: BuildProgress[]) => string[];
} {
  return {
    build: async (context, extra = {}) => {
      const events: BuildProgress[] = [];
      const { manifestDigest } = await runtime().images.build({ context, onProgress: (e) => events.push(e), ...extra });
      return { manifestDigest, events, output: Buffer.concat(events.filter((e) => e.status === 'output').map((e) => e.output!)).toString() };
    },
    out: async (image, script) => {
      const r = await runtime().run({ image, command: ['/bin/sh', '-c', script] });
      assert.equal(r.exitCode, 0, r.stderr.toString());
      return r.stdout.toString();
    },
    ran: (events) => events.filter((e) => e.status === 'running').map((e) => e.instruction),
  };
}
