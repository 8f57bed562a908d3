/** xz and bzip2 archives for ADD, which Docker unpacks too: Node has no decoder for either, so the
 * system's `xz` and `bzip2` programs decompress them, as moby's archive package runs `xz -d`. */

import { spawn, spawnSync } from 'node:child_process';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** A compression told by its magic, and the program that undoes it. */
export interface ArchiveProgram {
  name: 'xz' | 'bzip2';
  command: string;
}

/** A decompression ADD cannot do: the caller names the file, line and instruction. */
export class ProgramError extends Error {}

const PROGRAMS: Array<[Buffer, ArchiveProgram]> = [
  [Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), { name: 'xz', command: 'xz' }],
  [Buffer.from('BZh'), { name: 'bzip2', command: 'bzip2' }],
];
/** What a head of the archive may decompress to when it is sniffed (a bomb stops there). */
const SNIFF_OUTPUT = 1024 * 1024;

/** The program for a file's first bytes, if it is xz or bzip2. */
export function programFor(head: Buffer): ArchiveProgram | undefined {
  return PROGRAMS.find(([magic]) => head.subarray(0, magic.length).equals(magic))?.[1];
}

/** The start of a compressed file decompressed (the program is stopped past SNIFF_OUTPUT bytes:
 * a bzip2 block needs up to 900 kB of input before it gives any). `fd`: the file, read from 0. */
export function decompressHead(program: ArchiveProgram, fd: number): Buffer {
  const result = spawnSync(program.command, ['-d', '-c', '-q'], { stdio: [fd, 'pipe', 'pipe'], maxBuffer: SNIFF_OUTPUT });
  if ((result.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') throw missing(program);
  return result.stdout ?? Buffer.alloc(0);
}

/** The decompressed bytes of `input`, from the program; its failure (a corrupt stream) is an error
 * with what it said. The program is killed if the reader stops early. */
export async function* decompressWith(program: ArchiveProgram, input: Readable): AsyncGenerator<Buffer> {
  const child = spawn(program.command, ['-d', '-c', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let spawnError: NodeJS.ErrnoException | null = null;
  let stderr = '';
  child.on('error', (e) => (spawnError = e));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  pipeline(input, child.stdin).catch(() => {}); // EPIPE when the program stops first: its exit says why
  try {
    for await (const chunk of child.stdout) yield chunk as Buffer;
    const code = await closed;
    if ((spawnError as NodeJS.ErrnoException | null)?.code === 'ENOENT') throw missing(program);
    if (code !== 0) throw new ProgramError(`the ${program.name} stream is corrupt (${program.command} -d: ${stderr.trim() || `exit ${code}`})`);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    input.destroy();
  }
}

function missing(program: ArchiveProgram): ProgramError {
  return new ProgramError(`it is ${program.name}-compressed, and unpacking it needs the ${program.command} program, which is not installed`);
}
