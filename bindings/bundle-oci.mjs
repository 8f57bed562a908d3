// Bundles corral-oci's Node side (dist/cli/oci/main.js and all it imports but packages) into one
// file, dist/corral-oci.js, which the native front end (oci-front.c) execs: each start of Node then
// reads and compiles one file instead of resolving and loading ~50 modules (about a fifth of a
// create here). Each module's import.meta.url is rewritten to its own dist/ file's URL, so the paths
// it finds from there (bindings/build, package.json) stay right.
import { build } from 'esbuild';
import { readFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('..', import.meta.url));
const outfile = join(repo, 'dist/corral-oci.js');

await build({
  entryPoints: [join(repo, 'dist/cli/oci/main.js')],
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
