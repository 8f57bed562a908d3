/** Defences a security test lifts to show its attack working without them (test/security/), so
 * that the test can fail. Never set outside tests; not part of the public API. */
export const liftedDefences = {
  /** A host fd every container process keeps open until exec, as the exec helper kept the
   * container's cgroup directory fd (CVE-2024-21626's class); -1: none. */
  leakFd: -1,
  /** The exec'd process keeps the fds of the host (the container's pidfd and cgroup directory)
   * until exec instead of closing them once it is forked inside the container. */
  keepHostFds: false,
  /** The working directory entered with a plain chdir(2) that follows links, magic ones too. */
  plainChdir: false,
  /** No check that the working directory is reachable from the container's root. */
  noCwdCheck: false,
  /** No exec into the sealed executor image: container processes stay copies of the host's node
   * until the command's exec, so /proc/self/exe is node. */
  hostExe: false,
  /** Mounts other than /dev without nodev, so device nodes on them open. */
  devNodes: false,
  /** The first process and exec'd ones stay in the host's session (no setsid), so the host's
   * terminal, when they have the host's stdio, is their controlling terminal. */
  hostSession: false,
  /** The container's own /etc files bound over their paths taken as host paths (an image's
   * symlink followed from the host's root) instead of resolved inside the container's root. */
  ownFilesOnHostPaths: false,
  /** A build step's mount stubs removed by plain paths, following a symlink the step left on the
   * way (lib/fs/mount-stubs.ts). */
  followStubLinks: false,
  /** ADD unpacks an archive's whiteout names (.wh.x) into the layer, where they delete image files
   * (lib/build/archives.ts). */
  archiveWhiteouts: false,
  /** The overlay mounted with mount(2) from paths, as on kernels that take no layers by fd, so
   * /proc/self/mountinfo shows the writable layer's host path. */
  overlayFromPaths: false,
  /** corral-oci takes any linux.sysctl key, whichever namespace it belongs to (lib/container/oci-sysctl.ts). */
  sysctlAnyKey: false,
  /** corral-oci's exec joins only the namespaces the container made, not those it joined by path
   * (lib/container/oci-exec.ts). */
  execMadeNamespacesOnly: false,
};
