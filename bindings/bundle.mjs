// Bundles the Node side of each command into one file: dist/cli/main.js (the corral command) into
// dist/corral.js, which bin/corral.js loads, and dist/cli/oci/main.js (corral-oci) into
// dist/corral-oci.js, which the native front end (oci-front.c) execs. Each start of Node then reads
// and compiles one file instead of resolving and loading ~190 (corral) or ~50 (corral-oci) modules.
// Packages stay external. Each module's import.meta.url is rewritten to its own dist/ file's URL,
// so the paths it finds from there (bindings/build, package.json, dist/cli/main.js) stay right.
import { build } from 'esbuild';
import { readFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('..', import.meta.url));
const BUNDLES = [['dist/cli/main.js', 'dist/corral.js'], ['dist/cli/oci/main.js', 'dist/corral-oci.js']];

await Promise.all(BUNDLES.map(([entry, out]) => {
  const outfile = join(repo, out);
  return build({
    entryPoints: [join(repo, entry)],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    logLevel: 'warning',
    plugins: [{
      name: 'own-import-meta-url',
      setup(b) {
        b.onLoad({ filter: /\/dist\/.*\.js$/ }, async (args) => {
          const own = JSON.stringify(relative(dirname(outfile), args.path));
          return { contents: (await readFile(args.path, 'utf8')).replaceAll('import.meta.url', `new URL(${own}, import.meta.url).href`), loader: 'js' };
        });
      },
    }],
  });
}));
