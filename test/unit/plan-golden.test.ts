// Golden plans: the exact op lists the spec compiler produces for representative specs, kept as
// text in test/unit/golden/*.plan so that any change to a plan shows in review. After an intended
// change, regenerate with CORRAL_UPDATE_GOLDEN=1 and read the diff.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveSpec, type ContainerSpec } from '../../lib/container/spec.ts';
import { cloneFlags, commandStartOps, containerSetupOps, envList, joinedProcessOps, joiningOps, searchPath, type SetupContext } from '../../lib/container/setup.ts';
import { lastStepOps } from '../../lib/container/hardening.ts';
import { joinPlan, pendingPlan, runPlan, type LaunchSpec } from '../../lib/spawn/launch.ts';
import type { PlanOp } from '../../lib/spawn/ops.ts';
import type { IdMap } from '../../lib/sys/id-map.ts';
import type { HostEntry } from '../../lib/fs/rootfs.ts';
import { planText } from '../plan-text.ts';
import { etcFiles, type HostEtc } from '../../lib/container/etc-files.ts';

// Far above any fd this process has open, so it can never be the executor image's fd (shown as exe).
const TARGET_PIDFD = 1019;
const JOIN_CGROUP_FD = 1020;
const STATUS_FD = 1021;
const START_FD = 1022;
const CONSOLE_FD = 1023;
/** The process's shared user namespace (rootless with a range). */
const USERNS_FD = 1018;
/** A map with a subordinate range: the parent maps it (newuidmap), or it is the shared namespace's. */
const RANGE: IdMap = {
  uids: [{ inside: 0, outside: 1000, count: 1 }, { inside: 1, outside: 100000, count: 65536 }],
  gids: [{ inside: 0, outside: 1000, count: 1 }, { inside: 1, outside: 100000, count: 65536 }],
};
const STDIO = [30, 31, 32] as const;
const LAYER = { kind: 'disk' as const, dir: '/var/lib/corral/containers/golden', upper: '/var/lib/corral/containers/golden/upper', work: '/var/lib/corral/containers/golden/work' };
/** What run() gets: the writable layer on a tmpfs inside the container's mount namespace. */
const MEMORY = { kind: 'memory' as const, why: 'run()' };
const IMAGE = { manifestDigest: 'sha256:0', defaults: { entrypoint: [], cmd: ['sh'], env: {}, cwd: '/', user: undefined }, layersDir: '/var/lib/corral/layers', lowerNames: ['b2', 'a1'] };

/** A host root's top-level entries, as hostRootEntries() reads them. */
const HOST_ENTRIES: HostEntry[] = [
  { name: 'usr', kind: 'dir' }, { name: 'bin', kind: 'link', target: 'usr/bin' }, { name: 'etc', kind: 'dir' }, { name: 'home', kind: 'dir' },
  { name: 'proc', kind: 'dir' }, { name: 'tmp', kind: 'dir' }, { name: '.dockerenv', kind: 'file' },
];

/** A rootfs directory must exist for the spec to resolve; the plans read it as /srv/rootfs. */
let rootfs = '';
/** The host's hosts file and resolv.conf the plans' own /etc files are made from (fixtures in rootfs). */
let hostEtc: HostEtc = { hosts: '', resolvConf: '' };
const ROOTFS = '/srv/rootfs';

/** The launch of a container's first process for a spec, as the runtime builds it. */
function launchOf(spec: ContainerSpec, rootless: boolean, context: Partial<SetupContext> = {}, idMap?: IdMap): LaunchSpec {
  const resolved = resolveSpec({ id: 'golden', ...spec, ...(spec.rootfs ? { rootfs } : {}) }, rootless, null, false, idMap);
  const ownCgroup = context.ownCgroup ?? !rootless;
  const ownFiles = etcFiles(resolved, context.mounts ?? [], false, hostEtc);
  return {
    cloneFlags: cloneFlags(resolved, ownCgroup),
    setup: containerSetupOps(resolved, { ownCgroup, layer: null, image: null, mounts: [], hostEntries: null, ownFiles, overlayMount: 'fds', ...context }),
    beforeExec: lastStepOps(resolved.hardening),
    afterResolve: commandStartOps(resolved, CONSOLE_FD),
    keepFds: resolved.tty ? [CONSOLE_FD] : [],
    command: resolved.command,
    env: envList(resolved.env),
    searchPath: searchPath(resolved.env),
    stdio: STDIO,
  };
}

/** The plan of an exec into a running container, with a terminal or not. */
function execPlan(tty: boolean): PlanOp[] {
  const resolved = resolveSpec({ id: 'golden', command: ['sleep', '1'], rootfs, cwd: '/work' }, false);
  return joinPlan({
    cloneFlags: 0n,
    targetPidfd: TARGET_PIDFD,
    nsFlags: cloneFlags(resolved),
    joinCgroupFd: JOIN_CGROUP_FD,
    joinSetup: joiningOps(),
    setup: joinedProcessOps(resolved),
    beforeExec: lastStepOps(resolved.hardening),
    afterResolve: commandStartOps({ init: false, tty: tty ? { size: null } : null }, CONSOLE_FD),
    keepFds: tty ? [CONSOLE_FD] : [],
    command: ['ls', '-l'],
    env: envList(resolved.env),
    searchPath: searchPath(resolved.env),
    stdio: STDIO,
  }, STATUS_FD);
}

const plans: Record<string, () => PlanOp[]> = {
  'run-default-root': () => runPlan(launchOf({ command: ['sh', '-c', 'echo hi'], rootfs: ROOTFS }, false, { layer: MEMORY }), STATUS_FD),
  'run-rootless': () => runPlan(launchOf({ command: ['true'], rootfs: ROOTFS }, true, { layer: MEMORY }), STATUS_FD),
  'run-rootless-host-pid-net': () => runPlan(launchOf({ command: ['true'], rootfs: ROOTFS, network: 'host', namespaces: { pid: false, net: false } }, true, { layer: MEMORY }), STATUS_FD),
  'run-image-overlay': () => runPlan(launchOf({ command: ['sh'], cwd: '/srv' }, false, { layer: MEMORY, image: IMAGE }), STATUS_FD),
  // The fallback for kernels that take no overlay layers by fd: mount(2) from paths.
  'run-image-overlay-paths': () => runPlan(launchOf({ command: ['sh'], cwd: '/srv' }, false, { layer: MEMORY, image: IMAGE, overlayMount: 'paths' }), STATUS_FD),
  'create-image-overlay-paths': () => pendingPlan(launchOf({ command: ['sh'] }, false, { layer: LAYER, image: IMAGE, overlayMount: 'paths' }), STATUS_FD, START_FD),
  'run-host-root': () => runPlan(launchOf({ command: ['true'] }, false), STATUS_FD),
  'run-host-root-system': () => runPlan(launchOf({ command: ['true'], hostRoot: 'system' }, true, {
    hostEntries: HOST_ENTRIES,
    mounts: [{ type: 'bind', source: '/srv/project', target: '/project', readonly: false, recursive: true, propagation: 'rprivate', sourceIsDir: true }],
  }), STATUS_FD),
  'run-readonly-direct': () => runPlan(launchOf({ command: ['true'], rootfs: ROOTFS, rootfsWritable: 'direct', readonlyRootfs: true }, false), STATUS_FD),
  'run-mounts': () => runPlan(launchOf({ command: ['true'], rootfs: ROOTFS }, false, {
    layer: MEMORY,
    mounts: [
      { type: 'bind', source: '/srv/data', target: '/data', readonly: true, recursive: true, propagation: 'rslave', sourceIsDir: true },
      { type: 'bind', source: '/etc/resolv.conf', target: '/etc/resolv.conf', readonly: true, recursive: false, propagation: 'rprivate', sourceIsDir: false },
      { type: 'bind', source: '/var/lib/corral/volumes/cache/data', target: '/cache', readonly: false, recursive: false, propagation: 'rprivate', sourceIsDir: true },
      { type: 'tmpfs', target: '/scratch', size: 1 << 20, mode: 0o700 },
    ],
  }), STATUS_FD),
  'run-user-limits': () => runPlan(launchOf({ command: ['id'], rootfs: ROOTFS, user: { uid: 1000, gid: 1000, groups: [10, 20] }, rlimits: { nofile: [64, 128] }, oomScoreAdj: 300, hostname: 'box', namespaces: { net: false }, network: 'host' }, false, { layer: MEMORY }), STATUS_FD),
  'run-hardening-off': () => runPlan(launchOf({ command: ['true'], rootfs: ROOTFS, capabilities: 'all', seccomp: 'unconfined', noNewPrivileges: false, maskedPaths: [], readonlyPaths: [] }, false, { layer: MEMORY }), STATUS_FD),
  'create-tty-init': () => pendingPlan(launchOf({ command: ['sh'], rootfs: ROOTFS, tty: true, consoleSize: { cols: 80, rows: 24 }, init: true }, false, { layer: LAYER }), STATUS_FD, START_FD),
  'run-rootless-tty': () => runPlan(launchOf({ command: ['sh'], rootfs: ROOTFS, tty: true }, true, { layer: MEMORY }), STATUS_FD),
  'create-default-root': () => pendingPlan(launchOf({ command: ['sleep', '1'], rootfs: ROOTFS }, false, { layer: LAYER }), STATUS_FD, START_FD),
  'run-etc-files': () => runPlan(launchOf({ command: ['true'], rootfs: ROOTFS, hostname: 'web', dns: ['10.0.0.53'], dnsSearch: ['corp.test'], dnsOptions: ['ndots:2'], extraHosts: { db: '10.0.0.7' } }, false, { layer: MEMORY }), STATUS_FD),
  // Rootless with a range, in the process's shared user namespace: joined, then the other namespaces.
  'run-rootless-shared-userns': () => runPlan({ ...launchOf({ command: ['true'], rootfs: ROOTFS }, true, { layer: MEMORY }, RANGE), userNamespaceFd: USERNS_FD }, STATUS_FD),
  'create-rootless-shared-userns': () => pendingPlan({ ...launchOf({ command: ['sleep', '1'], rootfs: ROOTFS }, true, { layer: MEMORY }, RANGE), userNamespaceFd: USERNS_FD }, STATUS_FD, START_FD),
  'exec-root': () => execPlan(false),
  'exec-tty': () => execPlan(true),
};

describe('golden setup plans', () => {
  before(() => {
    rootfs = mkdtempSync(join(tmpdir(), 'corral-golden-'));
    hostEtc = { hosts: join(rootfs, 'hosts'), resolvConf: join(rootfs, 'resolv.conf') };
    writeFileSync(hostEtc.hosts, '127.0.0.1\tlocalhost\n10.0.0.5\thost.example\n');
    writeFileSync(hostEtc.resolvConf, 'search example.test\nnameserver 127.0.0.53\noptions edns0\n');
  });
  after(() => rmSync(rootfs, { recursive: true, force: true }));
  for (const [name, plan] of Object.entries(plans)) {
    it(name, () => {
      const file = new URL(`golden/${name}.plan`, import.meta.url);
      const text = planText(plan()).replaceAll(rootfs, ROOTFS);
      if (process.env.CORRAL_UPDATE_GOLDEN === '1') writeFileSync(file, text);
      assert.equal(text, readFileSync(file, 'utf8'), `the plan of ${name} changed; if that is intended, regenerate with CORRAL_UPDATE_GOLDEN=1 and review the diff`);
    });
  }
});
