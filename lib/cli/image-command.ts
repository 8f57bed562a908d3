import { parseArgs } from 'node:util';
import { Runtime } from '../runtime.ts';
import type { ImageFormat } from '../image/formats/io.ts';
import type { ImageProgress } from '../image/image-store.ts';
import { usageError } from './parse.ts';

/** Help for `corral image`. */
export const IMAGE_USAGE = `usage: corral image COMMAND [--root DIR]

  import PATH [--format F] [--tag REF]   import an OCI layout, OCI archive or docker archive
  export REF DEST [--format F]           write an image (F: oci-layout, oci-archive, docker-archive)
  ls                                     list images
  inspect REF                            print manifest, config and layers as JSON
  tag REF NEWREF                         name an image again
  rm REF [-f]                            remove a tag (the image goes with its last tag)
  gc                                     delete blobs and layers no image needs
  du                                     disk usage, shared layers counted once`;

const FORMATS = new Set(['oci-layout', 'oci-archive', 'docker-archive']);

function format(value: string | undefined): ImageFormat | undefined {
  if (value === undefined) return undefined;
  if (!FORMATS.has(value)) throw usageError(`--format must be oci-layout, oci-archive or docker-archive, got '${value}'`);
  return value as ImageFormat;
}

/** Bytes as docker prints them: 1000-based, three significant digits ('5.2MB'). */
function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let n = bytes;
  let u = 0;
  for (; n >= 1000 && u < units.length - 1; u++) n /= 1000;
  return `${u === 0 ? n : n.toPrecision(3).replace(/\.?0+$/, '')}${units[u]}`;
}

/** A one-line progress bar on stderr when it is a terminal. */
function progressBar(): ((p: ImageProgress) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  return (p) => {
    const width = 30;
    const done = p.layersTotal ? Math.round((width * p.layersDone) / p.layersTotal) : width;
    process.stderr.write(`\r[${'#'.repeat(done)}${'.'.repeat(width - done)}] ${p.layersDone}/${p.layersTotal} layers, ${(p.bytes / 1e6).toFixed(1)} MB${p.phase === 'done' ? '\n' : ''}`);
  };
}

/** `corral image import|export|ls|inspect|tag|rm|gc|du`. */
export async function imageCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      root: { type: 'string' },
      format: { type: 'string' },
      tag: { type: 'string' },
      force: { type: 'boolean', short: 'f' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [sub, a, b] = positionals;
  if (values.help || sub === undefined) {
    console.log(IMAGE_USAGE);
    return sub === undefined && !values.help ? 1 : 0;
  }
  const images = new Runtime(values.root === undefined ? {} : { root: values.root }).images;
  const need = (v: string | undefined, what: string): string => {
    if (!v) throw usageError(`corral image ${sub} needs ${what}`);
    return v;
  };
  switch (sub) {
    case 'import': {
      const f = format(values.format);
      const onProgress = progressBar();
      const imported = await images.import(need(a, 'a PATH'), { ...(f ? { format: f } : {}), ...(values.tag ? { tag: values.tag } : {}), ...(onProgress ? { onProgress } : {}) });
      for (const i of imported) console.log(`${i.manifestDigest} ${i.tags.join(' ')}`.trim());
      return 0;
    }
    case 'export':
      await images.export(need(a, 'a REF'), need(b, 'a DEST'), { format: format(values.format) ?? 'oci-layout' });
      return 0;
    case 'ls':
    case 'list':
      console.log(['REF', 'IMAGE ID', 'LAYERS', 'SIZE'].join('\t'));
      for (const i of images.list()) console.log([i.tags.join(',') || '<none>', i.manifestDigest.replace(/^sha256:/, '').slice(0, 12), String(i.layers), humanSize(i.unpackedBytes)].join('\t'));
      return 0;
    case 'inspect':
      console.log(JSON.stringify(await images.inspect(need(a, 'a REF')), null, 2));
      return 0;
    case 'tag':
      await images.tag(need(a, 'a REF'), need(b, 'a NEWREF'));
      return 0;
    case 'rm':
    case 'remove':
      await images.remove(need(a, 'a REF'), { force: values.force === true });
      return 0;
    case 'gc':
      console.log(JSON.stringify(await images.gc()));
      return 0;
    case 'du':
      console.log(JSON.stringify(images.diskUsage(), null, 2));
      return 0;
    default:
      throw usageError(`unknown image command '${sub}' (try corral image --help)`);
  }
}
