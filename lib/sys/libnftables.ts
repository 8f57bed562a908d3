import koffi from 'koffi';
import { CorralError } from './errors.ts';

const NFT_CTX_OUTPUT = { HANDLE: 8, JSON: 16, ECHO: 32 } as const;

type Lib = ReturnType<typeof koffi.load>;
let nft: { ctx: unknown; run: (ctx: unknown, text: string) => number; output: (ctx: unknown) => string | null; error: (ctx: unknown) => string | null } | undefined;

function load(): NonNullable<typeof nft> {
  let lib: Lib;
  try {
    lib = koffi.load('libnftables.so.1');
  } catch (cause) {
    throw new CorralError('bridge networks need libnftables: install the libnftables1 package', { code: 'ERR_NETWORK_UNAVAILABLE', path: 'libnftables.so.1', cause });
  }
  const newCtx = lib.func('void *nft_ctx_new(uint32_t flags)');
  const setFlags = lib.func('void nft_ctx_output_set_flags(void *ctx, uint32_t flags)');
  const bufferOutput = lib.func('int nft_ctx_buffer_output(void *ctx)');
  const bufferError = lib.func('int nft_ctx_buffer_error(void *ctx)');
  const ctx = newCtx(0);
  if (!ctx) throw new CorralError('nft_ctx_new failed', { code: 'ERR_NETWORK_UNAVAILABLE', step: 'open libnftables' });
  // JSON output makes libnftables read JSON input; ECHO and HANDLE give back the handles of added rules.
  setFlags(ctx, NFT_CTX_OUTPUT.JSON | NFT_CTX_OUTPUT.ECHO | NFT_CTX_OUTPUT.HANDLE);
  bufferOutput(ctx);
  bufferError(ctx);
  return {
    ctx,
    run: lib.func('int nft_run_cmd_from_buffer(void *ctx, const char *buf)'),
    output: lib.func('const char *nft_ctx_get_output_buffer(void *ctx)'),
    error: lib.func('const char *nft_ctx_get_error_buffer(void *ctx)'),
  };
}

/** Runs one libnftables JSON batch ({ nftables: [...] }, applied atomically) and returns what it
 * printed (listed objects) and echoed (what was added, with its handles); null when nothing. */
export function nftRun(batch: unknown, step: string): { nftables: Record<string, unknown>[] } | null {
  nft ??= load();
  const status = nft.run(nft.ctx, JSON.stringify(batch));
  const out = nft.output(nft.ctx);
  if (status !== 0) {
    const message = (nft.error(nft.ctx) ?? '').trim();
    throw new CorralError(`${step}: nftables refused the batch: ${message}`, { code: 'ERR_NETWORK_SETUP', step });
  }
  if (!out) return null;
  // One JSON document per line: what a list printed, then the echo of the batch.
  const docs = out.split('\n').filter((line) => line.trim() !== '').map((line) => JSON.parse(line) as { nftables?: Record<string, unknown>[] });
  return { nftables: docs.flatMap((d) => d.nftables ?? []) };
}
