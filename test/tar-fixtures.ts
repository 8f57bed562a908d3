// Tars built by tar-stream, an independent writer, for the layer tests.
import tar from 'tar-stream';

/** A tar of the given headers (plus content for files), every entry at mtime unless it says otherwise. */
export async function packTar(items: Array<Record<string, unknown> & { name: string; content?: string | Buffer }>, mtime: Date): Promise<Buffer> {
  const pack = tar.pack();
  for (const { content, ...header } of items) {
    const full = { mtime, ...header } as tar.Header;
    if ((header.type ?? 'file') === 'file') pack.entry(full, content ?? '');
    else pack.entry(full); // entries without content end themselves
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
