// Bundles the Node side of each command: dist/cli/main.js (the corral command, package.json's
// bin) into dist/corral/ (main.js, with the library in chunks that its commands import when they
// run, so --version, --help and usage errors load none of it), and dist/cli/oci/main.js into one
// file, dist/corral-oci.js, which the native front end (oci-front.c) execs. Each start of Node then
// reads and compiles a few files instead of resolving and loading ~190 (corral) or ~50
// (corral-oci) modules. Packages stay external. Each module's import.meta.url is rewritten to its
// own dist/ file's URL, so the paths it finds from there (bindings/build, package.json) stay right.
import { build } from 'esbuild';
import { readFile, rm } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('..', import.meta.url));
const BUNDLES = [
  { entry: 'dist/cli/main.js', outdir: 'dist/corral', splitting: true },
  { entry: 'dist/cli/oci/main.js', outfile: 'dist/corral-oci.js', splitting: false },
];

await Promise.all(BUNDLES.map(async ({ entry, outdir, outfile, splitting }) => {
  const from = outdir ? join(repo, outdir) : dirname(join(repo, outfile));
  // Chunks are named by their hash: those of an earlier build would stay beside the new ones.
  if (outdir) await rm(from, { recursive: true, force: true });
  await build({
    entryPoints: [join(repo, entry)],
    ...(outdir ? { outdir: from } : { outfile: join(repo, outfile) }),
    splitting,
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
          const own = JSON.stringify(relative(from, args.path));
          return { contents: (await readFile(args.path, 'utf8')).replaceAll('import.meta.url', `new URL(${own}, import.meta.url).href`), loader: 'js' };
        });
      },
    }],
  });
}));
