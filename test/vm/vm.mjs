// Boots the installed Debian kernel under qemu (TCG) with pure cgroup v2, the host root shared
// read-only (tmpfs overlay on top), runs one command as root and returns its output and exit code.
// CLI: node test/vm/vm.mjs [--cwd DIR] [--timeout MS] -- cmd args...
// For test authors: a run costs ~5 s of boot plus the command (Node starts in ~2-3 s under TCG);
// host paths (the repo, node_modules) appear at the same paths; guest writes land in RAM only;
// /tmp is a fresh tmpfs except the entries kept by runInVm; stdout/stderr are one stream (a tty).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, closeSync, constants, existsSync, mkdtempSync, openSync, readFileSync, readSync, realpathSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { pathToFileURL } from 'node:url';
import { BUSYBOX, buildInitramfs, findKernel, shellQuote as sq } from './initramfs.mjs';

const QEMU = 'qemu-system-x86_64';
const SETPRIV = '/usr/bin/setpriv'; // util-linux: lets qemu die with us even on SIGKILL
const DEFAULT_TIMEOUT_MS = 300_000;

const onPath = (bin) => (process.env.PATH ?? '').split(':').some((d) => {
  try { accessSync(join(d || '.', bin), constants.X_OK); return true; } catch { return false; }
});

// Why: lets tests skip cleanly (with the reason) on machines that cannot boot the VM.
export function vmAvailable() {
  if (process.platform !== 'linux' || process.arch !== 'x64') return { ok: false, reason: 'needs linux on x86_64' };
  if (!onPath(QEMU)) return { ok: false, reason: `${QEMU} not found on PATH (apt-get install qemu-system-x86)` };
  const kernel = findKernel();
  if (!kernel) return { ok: false, reason: 'no /boot/vmlinuz-* with matching /lib/modules (apt-get install linux-image-amd64)' };
  try { accessSync(kernel.image, constants.R_OK); } catch { return { ok: false, reason: `${kernel.image} is not readable` }; }
  try {
    accessSync(BUSYBOX, constants.X_OK);
    if (readFileSync(BUSYBOX).includes('/lib64/ld-linux')) throw new Error('dynamic');
  } catch { return { ok: false, reason: `${BUSYBOX} missing or not static (apt-get install busybox-static)` }; }
  return { ok: true };
}

// A temp file that exists only as an open fd: created in a fresh mkdtemp dir, then unlinked and
// the dir removed at once, so nothing is left on disk even if this process is SIGKILLed.
// qemu, given the fd as an extra stdio slot, opens it again as /dev/fd/N.
function anonymousFile() {
  const dir = mkdtempSync(join(tmpdir(), 'corral-vm-'));
  try {
    const fd = openSync(join(dir, 'f'), 'w+');
    unlinkSync(join(dir, 'f'));
    return fd;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// Booting the Debian bzImage makes the guest xz-decompress the kernel under TCG (~5 s); so once
// per process we decompress it on the host into an anonymous file and qemu boots the ELF through
// its PVH entry. Resolves to that fd, or null to boot the bzImage as is.
let vmlinuxPromise;
function vmlinuxFd(kernel) {
  vmlinuxPromise ??= (async () => {
    const config = `/boot/config-${kernel.version}`;
    if (!existsSync(config) || !/^CONFIG_PVH=y$/m.test(readFileSync(config, 'utf8')) || !onPath('xz')) return null;
    const image = readFileSync(kernel.image);
    const start = image.indexOf(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])); // xz magic
    if (start < 0) return null;
    const fd = anonymousFile();
    const ok = await new Promise((done) => {
      const xz = spawn('xz', ['-dc', '--single-stream'], { stdio: ['pipe', fd, 'ignore'] });
      xz.on('error', () => done(false));
      xz.on('exit', (code) => done(code === 0));
      xz.stdin.on('error', () => {});
      xz.stdin.end(image.subarray(start));
    });
    const magic = Buffer.alloc(4);
    if (ok && readSync(fd, magic, 0, 4, 0) === 4 && magic.toString('latin1') === '\x7fELF') return fd;
    closeSync(fd);
    return null;
  })();
  return vmlinuxPromise;
}

// Stage 2, run by busybox sh as PID 1 inside the switched root. Markers are assembled by printf
// so their literal text never appears in this script (which is visible in /proc/1/cmdline).
function jobScript({ command, cwd, env, nonce }) {
  const vars = { PATH: process.env.PATH || '/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin', HOME: '/root', ...env };
  const assignments = Object.entries(vars).map(([k, v]) => sq(`${k}=${v}`)).join(' ');
  return [
    'exec 2>/dev/null', // keeps this shell's own notes (e.g. "Killed") out of the output
    'stty -F /dev/console -onlcr', // no \n -> \r\n: output arrives as the command wrote it
    'echo 1 > /proc/sys/kernel/printk', // only emergencies on the console (no OOM-kill reports)
    `printf '@@corral-vm-%s-BEGIN@@\\n' ${nonce}`,
    `/usr/bin/env -i ${assignments} /bin/sh -c 'exec </dev/null >/dev/console 2>&1; cd -- "$1" || exit 126; shift; exec "$@"' corral-vm ${sq(cwd)} ${command.map(sq).join(' ')}`,
    `printf '@@corral-vm-%s-END:%s@@\\n' ${nonce} $?`,
    'poweroff -f; echo o > /proc/sysrq-trigger; sleep 5',
    '',
  ].join('\n');
}

// Splits the serial stream into console noise, the command's output (streamed to onOutput with
// a hold-back so a marker split across chunks is never emitted) and the exit code.
function markerParser(nonce, onOutput) {
  const begin = new RegExp(`@@corral-vm-${nonce}-BEGIN@@\\r?\\n`);
  const endPrefix = `@@corral-vm-${nonce}-END:`;
  const end = new RegExp(`${endPrefix}(\\d+)@@`);
  const state = { console: '', output: '', exitCode: null, started: false };
  let pending = '';
  const emit = (text) => { if (text) { state.output += text; onOutput?.(text); } };
  state.push = (text) => {
    if (state.exitCode !== null) return;
    if (!state.started) {
      state.console = (state.console + text).slice(-65536);
      const m = begin.exec(state.console);
      if (!m) return;
      state.started = true;
      text = state.console.slice(m.index + m[0].length);
      state.console = state.console.slice(0, m.index);
    }
    pending += text;
    const m = end.exec(pending);
    if (m) { emit(pending.slice(0, m.index)); state.exitCode = Number(m[1]); pending = ''; return; }
    // Hold back only a tail that could still grow into the end marker.
    let cut = Math.max(0, pending.length - endPrefix.length - 24);
    while (cut < pending.length && !couldBeEnd(pending.slice(cut))) cut++;
    emit(pending.slice(0, cut));
    pending = pending.slice(cut);
  };
  const couldBeEnd = (tail) => endPrefix.startsWith(tail) || (tail.startsWith(endPrefix) && /^\d*@?$/.test(tail.slice(endPrefix.length)));
  state.flush = () => { emit(pending); pending = ''; };
  return state;
}

// Live qemu processes, killed if we get SIGINT/SIGTERM or exit while they run.
const live = new Set();
const killAll = () => { for (const child of live) child.kill('SIGKILL'); };
function onSignal(signal) {
  killAll();
  live.clear();
  untrack();
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal); // default action
}
function track(child) {
  if (live.size === 0) { process.on('SIGINT', onSignal); process.on('SIGTERM', onSignal); process.on('exit', killAll); }
  live.add(child);
}
function untrack(child) {
  live.delete(child);
  if (live.size === 0) { process.off('SIGINT', onSignal); process.off('SIGTERM', onSignal); process.off('exit', killAll); }
}

function qemuArgs(kernel, vmlinux) {
  const args = [
    '-accel', 'tcg', '-cpu', 'max', '-m', '2048', '-smp', '2',
    '-nodefaults', '-no-user-config', '-display', 'none', '-monitor', 'none', '-serial', 'stdio', '-no-reboot',
    '-initrd', '/dev/fd/3', '-kernel', vmlinux === null ? kernel.image : '/dev/fd/4',
    '-append', 'console=ttyS0 cgroup_no_v1=all quiet panic=-1',
    '-virtfs', 'local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap',
  ];
  // setpriv --pdeathsig: qemu dies with this process even if it is SIGKILLed.
  return existsSync(SETPRIV) ? [SETPRIV, ['--pdeathsig', 'KILL', '--', QEMU, ...args]] : [QEMU, args];
}

// The guest's /tmp is a fresh tmpfs; these host /tmp entries stay visible in it: the top-level
// /tmp/NAME holding cwd, os.tmpdir() (test runners point TMPDIR into /tmp) and each of tmpPaths.
function keptTmpEntries(paths) {
  const kept = new Map();
  for (const p of paths) {
    const m = /^\/tmp\/([^/]+)/.exec(p);
    if (!m || kept.has(m[0])) continue;
    try { kept.set(m[0], { path: m[0], dir: statSync(m[0]).isDirectory() }); } catch { /* gone: nothing to keep */ }
  }
  return [...kept.values()];
}

// Why: the only way to test cgroup v2 limits here (the host has hybrid cgroups with no v2
// controllers). Resolves { exitCode, output }; rejects if the VM fails to boot or times out.
// Optional: `onOutput(text)` receives the output as it arrives; `tmpPaths` (host paths under
// /tmp) are kept visible in the guest, as cwd and os.tmpdir() are when they lie under /tmp.
export async function runInVm({ command, cwd = process.cwd(), env = {}, timeoutMs = DEFAULT_TIMEOUT_MS, onOutput, tmpPaths = [] } = {}) {
  if (!Array.isArray(command) || command.length === 0 || !command.every((a) => typeof a === 'string')) {
    throw new TypeError('runInVm: command must be a non-empty array of strings');
  }
  for (const [k, v] of Object.entries(env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) || String(v).includes('\0')) throw new TypeError(`runInVm: bad env entry ${k}`);
  }
  if ([...command, cwd].some((a) => a.includes('\0'))) throw new TypeError('runInVm: NUL byte in command or cwd');
  if (!existsSync(cwd) || !statSync(cwd).isDirectory()) throw new Error(`runInVm: cwd ${cwd} is not a directory`);
  cwd = realpathSync(cwd);
  if (cwd === '/tmp') throw new Error('runInVm: cwd /tmp would be hidden in the VM (its /tmp is a fresh tmpfs)');
  const keepTmp = keptTmpEntries([cwd, tmpdir(), ...tmpPaths].map((p) => { try { return realpathSync(p); } catch { return p; } }));
  const avail = vmAvailable();
  if (!avail.ok) throw new Error(`runInVm: VM not available: ${avail.reason}`);

  const kernel = findKernel();
  const vmlinux = await vmlinuxFd(kernel);
  const nonce = randomBytes(8).toString('hex');
  const initrd = anonymousFile();
  let child;
  try {
    writeFileSync(initrd, buildInitramfs({ modulesDir: kernel.modulesDir, keepTmp, jobScript: jobScript({ command, cwd, env, nonce }) }).image);
    const [bin, args] = qemuArgs(kernel, vmlinux);
    const parser = markerParser(nonce, onOutput);
    const decoder = new StringDecoder('utf8');
    let stderr = '';
    return await new Promise((done, fail) => {
      child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe', initrd, vmlinux ?? 'ignore'] });
      track(child);
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        const err = new Error(`runInVm: timed out after ${timeoutMs} ms running ${JSON.stringify(command)}`);
        fail(Object.assign(err, { output: parser.output, console: parser.console }));
      }, timeoutMs);
      child.stdout.on('data', (chunk) => parser.push(decoder.write(chunk)));
      child.stderr.on('data', (chunk) => { stderr = (stderr + chunk).slice(-8192); });
      child.on('error', (err) => { clearTimeout(timer); fail(err); });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        parser.push(decoder.end());
        if (parser.exitCode !== null) return done({ exitCode: parser.exitCode, output: parser.output });
        parser.flush();
        fail(Object.assign(new Error(`runInVm: VM ended (qemu ${signal ?? `exit ${code}`}) without reporting an exit code`
          + `\n--- qemu stderr ---\n${stderr}\n--- console (tail) ---\n${parser.console.slice(-4000)}\n--- output ---\n${parser.output.slice(-4000)}`),
        { output: parser.output, console: parser.console }));
      });
    });
  } finally {
    if (child) { child.kill('SIGKILL'); untrack(child); }
    closeSync(initrd);
  }
}

async function main(argv) {
  const sep = argv.indexOf('--');
  const opts = sep < 0 ? argv : argv.slice(0, sep);
  const command = sep < 0 ? [] : argv.slice(sep + 1);
  let cwd = process.cwd();
  let timeoutMs = DEFAULT_TIMEOUT_MS;
  let bad = false;
  for (let i = 0; i < opts.length; i++) {
    if (opts[i] === '--cwd') cwd = opts[++i];
    else if (opts[i] === '--timeout') timeoutMs = Number(opts[++i]);
    else bad = true;
  }
  if (bad || !command.length || !cwd || !(timeoutMs > 0)) {
    process.stderr.write('usage: node test/vm/vm.mjs [--cwd DIR] [--timeout MS] -- cmd args...\n');
    return 2;
  }
  try {
    const { exitCode } = await runInVm({ command, cwd, timeoutMs, onOutput: (text) => process.stdout.write(text) });
    return exitCode;
  } catch (err) {
    process.stderr.write(`${err.message}\n`);
    return 125;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exitCode = await main(process.argv.slice(2));
}
