// Builds the tiny initramfs that boots the test VM: busybox-static, the modules needed to
// mount the host root over 9p with an overlay, an /init script, and the job to run.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

// Why: the static busybox that becomes the initramfs userland (and stage 2's shell, from the host root).
export const BUSYBOX = '/bin/busybox';

// What the guest needs to see the host root; their dependencies come from modules.dep.
const NEEDED_MODULES = ['virtio_pci', '9pnet_virtio', '9p', 'overlay'];

const moduleName = (file) => file.split('/').pop().replace(/\.ko(\.(xz|zst|gz))?$/, '').replace(/-/g, '_');

// Why: pick a kernel whose modules are installed, so the initramfs can carry matching modules.
export function findKernel() {
  const versions = existsSync('/boot') ? readdirSync('/boot')
    .filter((f) => f.startsWith('vmlinuz-'))
    .map((f) => f.slice('vmlinuz-'.length))
    .filter((v) => existsSync(`/lib/modules/${v}/modules.dep`)) : [];
  versions.sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const version = versions.pop();
  return version ? { version, image: `/boot/vmlinuz-${version}`, modulesDir: `/lib/modules/${version}` } : null;
}

// Why: the modules to insmod, dependencies first, skipping built-ins; reports what it skipped.
export function moduleLoadOrder(modulesDir, wanted = NEEDED_MODULES) {
  const builtin = new Set(readFileSync(`${modulesDir}/modules.builtin`, 'utf8').split('\n').filter(Boolean).map(moduleName));
  const deps = new Map();
  for (const line of readFileSync(`${modulesDir}/modules.dep`, 'utf8').split('\n')) {
    const [file, rest] = line.split(':');
    if (file && rest !== undefined) deps.set(moduleName(file), { file, deps: rest.trim().split(/\s+/).filter(Boolean) });
  }
  const order = [];
  const seen = new Set();
  const skipped = { builtin: [], missing: [] };
  const visit = (name) => {
    if (seen.has(name)) return;
    seen.add(name);
    if (builtin.has(name)) return void skipped.builtin.push(name);
    const entry = deps.get(name);
    if (!entry) return void skipped.missing.push(name);
    for (const dep of entry.deps) visit(moduleName(dep));
    order.push({ name, path: `${modulesDir}/${entry.file}` });
  };
  wanted.forEach(visit);
  return { order, skipped };
}

function readModule(path) {
  if (path.endsWith('.gz')) return gunzipSync(readFileSync(path));
  const tool = path.endsWith('.xz') ? 'xz' : path.endsWith('.zst') ? 'zstd' : null;
  if (!tool) return readFileSync(path);
  return execFileSync(tool, ['-dc', path], { maxBuffer: 256 << 20 });
}

// Why: single-quotes a string for sh (used for every path and argument put into a script).
export const shellQuote = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;

// The /init run by the kernel: mount the host root read-only over 9p, put a tmpfs overlay on
// top, mount the usual pseudo filesystems (cgroup2 included), then switch_root into the job.
// `keepTmp` lists host /tmp entries ({ path, dir }) that stay visible over the fresh tmpfs /tmp
// (bind-mounted from the overlay, so guest writes there still never reach the host).
function initScript(modules, keepTmp) {
  const mk = (k, path) => (k.dir ? `mkdir -p ${path}` : `touch ${path}`);
  return `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
fail() { echo "corral-vm-init: $*"; poweroff -f; echo o > /proc/sysrq-trigger; }
${modules.map((m) => `insmod /modules/${m}.ko || fail "insmod ${m} failed"`).join('\n')}
mkdir -p /lower /rw /newroot
mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=512000,cache=loose hostroot /lower || fail "9p mount failed"
mount -t tmpfs -o mode=755 tmpfs /rw
mkdir /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot || fail "overlay mount failed"
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
mount --move /dev /newroot/dev
mount -t cgroup2 cgroup2 /newroot/sys/fs/cgroup || fail "cgroup2 mount failed"
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts /newroot/dev/pts
mount -t tmpfs -o mode=1777 tmpfs /newroot/dev/shm
mkdir /keep
${keepTmp.map((k, i) => `${mk(k, `/keep/${i}`)} && mount --bind ${shellQuote(`/newroot${k.path}`)} /keep/${i}`).join('\n')}
mount -t tmpfs -o mode=1777 tmpfs /newroot/tmp
${keepTmp.map((k, i) => `${mk(k, shellQuote(`/newroot${k.path}`))} && mount --move /keep/${i} ${shellQuote(`/newroot${k.path}`)}`).join('\n')}
exec switch_root /newroot ${BUSYBOX} sh -c "$(cat /job.sh)"
`;
}

// newc cpio: 110-byte ASCII header, NUL-terminated name, data, each padded to 4 bytes.
function cpio(entries) {
  const chunks = [];
  const pad = (n) => Buffer.alloc((4 - (n % 4)) % 4);
  let ino = 1;
  for (const { name, mode, data = Buffer.alloc(0), rdev = [0, 0] } of [...entries, { name: 'TRAILER!!!', mode: 0 }]) {
    const fields = [ino++, mode, 0, 0, 1, 0, data.length, 0, 0, ...rdev, Buffer.byteLength(name) + 1, 0];
    const header = '070701' + fields.map((f) => f.toString(16).padStart(8, '0')).join('') + name + '\0';
    chunks.push(Buffer.from(header), pad(header.length), data, pad(data.length));
  }
  return Buffer.concat(chunks);
}

// Why: one uncompressed cpio image per run (gunzip under TCG costs more than it saves), carrying `jobScript` (run by busybox sh as the new PID 1).
export function buildInitramfs({ modulesDir, jobScript, keepTmp = [] }) {
  const { order, skipped } = moduleLoadOrder(modulesDir);
  const dir = (name) => ({ name, mode: 0o040755 });
  const file = (name, data, mode = 0o100644) => ({ name, mode, data: Buffer.isBuffer(data) ? data : Buffer.from(data) });
  const entries = [
    ...['bin', 'dev', 'proc', 'sys', 'modules'].map(dir),
    { name: 'dev/console', mode: 0o020600, rdev: [5, 1] },
    file('bin/busybox', readFileSync(BUSYBOX), 0o100755),
    ...order.map((m) => file(`modules/${m.name}.ko`, readModule(m.path))),
    file('init', initScript(order.map((m) => m.name), keepTmp), 0o100755),
    file('job.sh', jobScript),
  ];
  return { image: cpio(entries), modules: order.map((m) => m.name), skipped };
}
