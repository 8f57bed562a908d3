// The corral command's usage text and exit codes, shared by its dispatcher (main.ts) and by
// run/commit (run-command.ts), which loads the library: neither needs the other to print them.

/** The usage of the corral command (corral --help, corral run --help). */
export const USAGE = `usage: corral run [options] IMAGE [COMMAND [ARG...]] | corral run [options] [--rootfs DIR] -- COMMAND [ARG...]
       corral commit [options] IMAGE NEWREF [COMMAND...]   (run, then store the changes as NEWREF)
       corral build [-t TAG] [-f FILE] [--build-arg K=V] [--target STAGE] [--no-cache] CONTEXT
       corral run -d [-i] [-t] [--name NAME] [--restart POLICY] [options] ...   (detached: prints the id)
       corral ps [-a] [-q] [--format json] | logs [-f] [--tail N] [--since T] [-t] CONTAINER
       corral exec [-it] [-e] [-w] [-u] CONTAINER COMMAND... | inspect CONTAINER... | stats [--no-stream]
       corral attach [--no-stdin] [--detach-keys KEYS] [--sig-proxy BOOL] CONTAINER
       corral start [-a [-i]]|stop [-t S]|restart [-t S]|kill [-s SIG]|rm [-f]|wait|pause|unpause CONTAINER... | rename CONTAINER NAME
       corral image import|export|ls|inspect|tag|rm|gc|du ...   (corral images, corral rmi REF)
       corral pull|push|login|logout ...                       (registries: corral pull --help)
       corral volume create|ls|inspect|rm|prune ...
       corral network create|ls|inspect|rm|prune ...

Runs COMMAND (or the IMAGE's own command) in a new container (own PID, mount, UTS, IPC, network and cgroup namespaces; a user
namespace when not root). Without --rootfs the container sees the host root read-only, with its own
/proc, /dev and an empty writable /tmp. The exit code is the command's (128+N for signal N).

options:
  --rootfs DIR            root directory of the container
  -e, --env KEY[=VALUE]   set an environment variable; a bare KEY passes this shell's on (repeatable)
      --env-file FILE     KEY=VALUE (or KEY) lines, # comments (repeatable)
      --entrypoint CMD    replaces the image's Entrypoint (and its Cmd); '' clears it
  -w, --cwd DIR           working directory inside the container
  -u, --user U[:G]        run as this user: ids or names (of the image's or rootfs's /etc/passwd)
  -h, --hostname NAME     host name inside the container (also its own /etc/hostname and /etc/hosts)
      --add-host NAME:IP  another line of the container's /etc/hosts (repeatable; NAME=IP, [IPv6] too;
                          IP host-gateway: the host as the container reaches it)
      --dns IP            nameserver of the container's /etc/resolv.conf, replacing the host's (repeatable)
      --dns-search DOMAIN search domain of its resolv.conf (repeatable)
      --dns-option OPT    resolver option of its resolv.conf, e.g. ndots:2 (repeatable)
      --network MODE      none (default: own namespace with lo), host, bridge or a network's name
      --network-alias N   another name the container resolves by on its network (repeatable)
  -p, --publish [IP:][HOST:]CONTAINER[/udp]  publish a port (default IP 127.0.0.1; no --network: bridge)
      --id ID             container id
  -l, --label KEY=VALUE   label (repeatable)
      --cap-add CAP       add a capability (repeatable; 'ALL' for all)
      --cap-drop CAP      drop a capability (repeatable)
      --memory SIZE       memory limit (512m, 1g; needs cgroup v2 controllers)
      --cpus N            CPU limit (1.5)
      --pids-limit N      most processes at once
      --timeout MS        kill the container after MS milliseconds (exit code 124)
  -v, --volume SRC:DST[:ro]  bind a host path (absolute SRC) or mount a named volume
      --mount SPEC        type=bind|tmpfs|volume,source=…,target=…[,readonly][,size=…]
      --tmpfs DST[:OPTS]  a tmpfs at DST (OPTS: size=64m,mode=1777)
      --read-only         the root filesystem read-only
      --rootfs-writable M overlay (default: writes go to a discarded layer) or direct
      --root DIR          where volumes, container layers and detached containers live
  --pull POLICY           pull IMAGE: missing (default), always, never
  -d, --detach            run under a supervisor of its own, outliving this command; print the id
      --name NAME         (detached) a name unique in the root
      --restart POLICY    (detached) no, on-failure[:N], always or unless-stopped
      --rm                (detached) removed once it ends, by its supervisor (attached ones always are)
  -i, --interactive       keep stdin connected (with -t: our terminal in raw mode, typed keys go in)
  -t, --tty               a terminal for the container (its own /dev/pts), sized like ours
      --init              an init as PID 1: forwards signals, reaps zombies
      --sig-proxy BOOL    forward SIGINT, SIGTERM, SIGHUP to the container (default true)
      --stop-timeout S    seconds between SIGTERM and SIGKILL when corral stops it (default 10)
  -m, --message TEXT      (commit) recorded in the new image's history
      --help              this text
      --version           corral's version

Options come before IMAGE; what follows IMAGE is the command with its own options.

exit codes: 125 corral failed, 126 command not executable, 127 command not found.`;

/** Exit codes for failures of corral itself, as docker uses them. */
export const EXIT = { failed: 125, notExecutable: 126, notFound: 127, timedOut: 124 } as const;
