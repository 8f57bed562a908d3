/* corral-oci: the native front end of the runc-compatible runtime (the `corral-oci` command).
 *
 * containerd's shim and conmon start the runtime once per call, and a cycle is create + start +
 * delete: Node's start-up (~50-90 ms here) paid for start, state, kill and delete would be most of a
 * cycle. This program does those four itself when the case is the simple one, from the line-based
 * ROOT/ID/state.lines that lib/container/oci-container.ts writes beside state.json at create, and
 * for everything else execs Node on dist/corral-oci.js (dist/cli/oci/main.js bundled into one file
 * by bundle.mjs) with argv unchanged: other commands, other
 * flags, anything unexpected, and every error (Node reports it, with runc's json log, once). It
 * hands over before its first side effect, or after side effects that Node's own command redoes
 * harmlessly (delete), so the outcome is Node's.
 *
 * state.lines (keep in step with ociStateLines in lib/container/oci-container.ts):
 *   corral-oci-state 1
 *   PID
 *   START_TIME            (field 22 of /proc/PID/stat at create)
 *   CGROUP_DIR            (empty: none)
 *   NO_HOOKS              (1, or 0 when start and delete are Node's: startContainer, poststart
 *                         or poststop hooks)
 *   then runc's state JSON as `state` prints it, pretty with two spaces, whose lines
 *   `  "pid": ...,` and `  "status": ...,` are replaced by the live values. */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAGIC "corral-oci-state 1"

static int g_argc;
static char **g_argv;

/* Execs Node on dist/corral-oci.js (found from this binary: bindings/build/corral-oci) with the
 * same arguments; never returns. */
static void node(void) {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) {
    fprintf(stderr, "corral-oci: readlink /proc/self/exe (to find dist/corral-oci.js) failed: %s\n", strerror(errno));
    exit(127);
  }
  exe[n] = 0;
  for (int up = 0; up < 3; up++) {
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
  }
  char main_js[PATH_MAX + 32];
  snprintf(main_js, sizeof main_js, "%s/dist/corral-oci.js", exe);
  char **args = calloc((size_t)g_argc + 2, sizeof *args);
  if (!args) exit(127);
  args[0] = "node";
  args[1] = main_js;
  for (int i = 1; i < g_argc; i++) args[i + 1] = g_argv[i];
  execvp("node", args);
  fprintf(stderr, "corral-oci: exec node %s (on PATH) failed: %s\n", main_js, strerror(errno));
  exit(127);
}

struct record {
  int pid;
  char start[32];
  char cgroup[PATH_MAX];
  int no_hooks;
  const char *json; /* the rest of the file */
  char dir[PATH_MAX];
};

/* The next line of *p (its newline replaced by NUL), or NULL at the end. */
static char *line(char **p) {
  char *s = *p, *nl = s ? strchr(s, '\n') : NULL;
  if (!nl) return NULL;
  *nl = 0;
  *p = nl + 1;
  return s;
}

static int valid_id(const char *id) {
  size_t n = strlen(id);
  if (n == 0 || n > 128 || !isalnum((unsigned char)id[0])) return 0;
  for (size_t i = 1; i < n; i++)
    if (!isalnum((unsigned char)id[i]) && !strchr("_.-", id[i])) return 0;
  return 1;
}

/* Reads ROOT/ID/state.lines, or hands over to Node (no such container, an older record, ...). */
static void load(const char *root, const char *id, struct record *r) {
  if (!valid_id(id)) node();
  if (snprintf(r->dir, sizeof r->dir, "%s/%s", root, id) >= (int)sizeof r->dir) node();
  char path[PATH_MAX + 16];
  snprintf(path, sizeof path, "%s/state.lines", r->dir);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0 || st.st_size > (1 << 24)) node();
  char *buf = malloc((size_t)st.st_size + 1);
  if (!buf) node();
  ssize_t got = 0;
  while (got < st.st_size) {
    ssize_t k = read(fd, buf + got, (size_t)(st.st_size - got));
    if (k <= 0) node();
    got += k;
  }
  buf[got] = 0;
  close(fd);
  char *p = buf, *magic = line(&p), *pid = line(&p), *start = line(&p), *cgroup = line(&p), *del = line(&p);
  if (!del || strcmp(magic, MAGIC) != 0 || strlen(start) >= sizeof r->start || strlen(cgroup) >= sizeof r->cgroup) node();
  r->pid = atoi(pid);
  strcpy(r->start, start);
  strcpy(r->cgroup, cgroup);
  r->no_hooks = strcmp(del, "1") == 0;
  r->json = p;
}

/* The init still runs (same start time, not a zombie): what lib/container/oci-container.ts #alive checks. */
static int alive(const struct record *r) {
  if (r->start[0] == 0 || r->pid <= 0) return 0;
  char path[64], stat[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", r->pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, stat, sizeof stat - 1);
  close(fd);
  if (n <= 0) return 0;
  stat[n] = 0;
  char *p = strrchr(stat, ')');
  if (!p || p[1] != ' ') return 0;
  p += 2;
  if (*p == 'Z') return 0;
  for (int field = 0; field < 19; field++) {
    p = strchr(p, ' ');
    if (!p) return 0;
    p++;
  }
  size_t len = strcspn(p, " \n");
  return len == strlen(r->start) && strncmp(p, r->start, len) == 0;
}

static const char *status(const struct record *r) {
  if (!alive(r)) return "stopped";
  char path[PATH_MAX + 16];
  snprintf(path, sizeof path, "%s/exec.fifo", r->dir);
  if (access(path, F_OK) == 0) return "created";
  if (r->cgroup[0]) {
    snprintf(path, sizeof path, "%s/cgroup.events", r->cgroup);
    FILE *f = fopen(path, "re");
    char l[128];
    int frozen = 0;
    while (f && fgets(l, sizeof l, f))
      if (strcmp(l, "frozen 1\n") == 0) frozen = 1;
    if (f) fclose(f);
    if (frozen) return "paused";
  }
  return "running";
}

/* Signals the init through a pidfd opened after the start-time check holds, so a recycled pid is
 * never signalled; 0, or -1 when it has gone. */
static int signal_init(const struct record *r, int sig) {
  int pidfd = (int)syscall(SYS_pidfd_open, r->pid, 0);
  if (pidfd < 0) return -1;
  int rc = alive(r) ? (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) : -1;
  close(pidfd);
  return rc;
}

static const char *const SIGNALS[][2] = {
  {"HUP", "1"}, {"INT", "2"}, {"QUIT", "3"}, {"ILL", "4"}, {"TRAP", "5"}, {"ABRT", "6"}, {"IOT", "6"},
  {"BUS", "7"}, {"FPE", "8"}, {"KILL", "9"}, {"USR1", "10"}, {"SEGV", "11"}, {"USR2", "12"},
  {"PIPE", "13"}, {"ALRM", "14"}, {"TERM", "15"}, {"STKFLT", "16"}, {"CHLD", "17"}, {"CONT", "18"},
  {"STOP", "19"}, {"TSTP", "20"}, {"TTIN", "21"}, {"TTOU", "22"}, {"URG", "23"}, {"XCPU", "24"},
  {"XFSZ", "25"}, {"VTALRM", "26"}, {"PROF", "27"}, {"WINCH", "28"}, {"IO", "29"}, {"POLL", "29"},
  {"PWR", "30"}, {"SYS", "31"},
};

/* A signal by number or name (with or without SIG, any case); an unknown one goes to Node. */
static int signal_number(const char *raw) {
  if (*raw && strspn(raw, "0123456789") == strlen(raw)) return atoi(raw);
  if (strncasecmp(raw, "SIG", 3) == 0) raw += 3;
  for (size_t i = 0; i < sizeof SIGNALS / sizeof SIGNALS[0]; i++)
    if (strcasecmp(raw, SIGNALS[i][0]) == 0) return atoi(SIGNALS[i][1]);
  node();
  return 0;
}

static int cmd_state(const struct record *r) {
  int pid = alive(r) ? r->pid : 0;
  const char *st = status(r);
  for (const char *p = r->json; *p;) {
    const char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) : strlen(p);
    if (strncmp(p, "  \"pid\": ", 9) == 0) printf("  \"pid\": %d,\n", pid);
    else if (strncmp(p, "  \"status\": ", 12) == 0) printf("  \"status\": \"%s\",\n", st);
    else printf("%.*s\n", (int)len, p);
    p += len + (nl ? 1 : 0);
  }
  return fflush(stdout) == 0 ? 0 : 1;
}

static int cmd_start(const struct record *r) {
  if (!r->no_hooks || strcmp(status(r), "created") != 0) node();
  char fifo[PATH_MAX + 16];
  snprintf(fifo, sizeof fifo, "%s/exec.fifo", r->dir);
  int fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) node();
  if (write(fd, "\1", 1) != 1) {
    close(fd);
    node();
  }
  close(fd);
  unlink(fifo);
  return 0;
}

static int cmd_kill(const struct record *r, int sig, int all) {
  if (!alive(r)) node();
  if (all && r->cgroup[0]) {
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/cgroup.procs", r->cgroup);
    FILE *f = fopen(path, "re");
    if (!f) node();
    int pid;
    while (fscanf(f, "%d", &pid) == 1)
      if (kill(pid, sig) < 0 && errno != ESRCH) node();
    fclose(f);
    return 0;
  }
  if (signal_init(r, sig) < 0) node();
  return 0;
}

/* Removes a directory tree (the state directory: files and, from other versions, subdirectories). */
static int rm_tree(int parent, const char *name) {
  int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? 0 : -1;
  DIR *d = fdopendir(fd);
  if (!d) return close(fd), -1;
  struct dirent *e;
  int rc = 0;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && unlinkat(fd, e->d_name, 0) < 0)
      rc |= (errno == EISDIR || errno == EPERM) ? rm_tree(fd, e->d_name) : -1;
  closedir(d);
  return rc < 0 || unlinkat(parent, name, AT_REMOVEDIR) < 0 ? -1 : 0;
}

static void sleep_ms(long ms) {
  struct timespec ts = {0, ms * 1000000L};
  nanosleep(&ts, NULL);
}

/* What Cgroup.remove does: rmdir, else cgroup.kill and rmdir once the group is empty. */
static int remove_cgroup(const char *dir) {
  if (rmdir(dir) == 0 || errno == ENOENT) return 0;
  if (errno != EBUSY) return -1;
  char path[PATH_MAX + 16];
  snprintf(path, sizeof path, "%s/cgroup.kill", dir);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, "1", 1) != 1) return fd >= 0 ? close(fd), -1 : -1;
  close(fd);
  for (int i = 0; i < 10000; i++) {
    if (rmdir(dir) == 0 || errno == ENOENT) return 0;
    if (errno != EBUSY) return -1;
    sleep_ms(1);
  }
  return -1;
}

static int cmd_delete(const struct record *r, int force) {
  const char *st = status(r);
  if (!r->no_hooks || (!force && strcmp(st, "stopped") && strcmp(st, "created"))) node();
  if (alive(r)) signal_init(r, SIGKILL);
  if (r->cgroup[0] && remove_cgroup(r->cgroup) < 0) node();
  for (int i = 0; i < 200 && alive(r); i++) sleep_ms(5);
  if (rm_tree(AT_FDCWD, r->dir) < 0) node();
  return 0;
}

int main(int argc, char **argv) {
  g_argc = argc;
  g_argv = argv;
  const char *root = "/run/corral-oci";
  int i = 1;
  /* The global flags main.ts takes the same way; any other (--version, --systemd-cgroup, ...) is Node's. */
  for (; i < argc && argv[i][0] == '-'; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--root") == 0 && i + 1 < argc) root = argv[++i];
    else if (strncmp(a, "--root=", 7) == 0) root = a + 7;
    else if ((strcmp(a, "--log") == 0 || strcmp(a, "--log-format") == 0) && i + 1 < argc) i++;
    else if (strncmp(a, "--log=", 6) && strncmp(a, "--log-format=", 13) && strcmp(a, "--debug")) node();
  }
  if (i >= argc) node();
  const char *command = argv[i++];
  int flag_all = 0, flag_force = 0;
  for (; i < argc && argv[i][0] == '-'; i++) {
    if (strcmp(command, "kill") == 0 && (strcmp(argv[i], "--all") == 0 || strcmp(argv[i], "-a") == 0)) flag_all = 1;
    else if (strcmp(command, "delete") == 0 && (strcmp(argv[i], "--force") == 0 || strcmp(argv[i], "-f") == 0)) flag_force = 1;
    else node();
  }
  int left = argc - i;
  struct record r;
  if (strcmp(command, "state") == 0 && left == 1) return load(root, argv[i], &r), cmd_state(&r);
  if (strcmp(command, "start") == 0 && left == 1) return load(root, argv[i], &r), cmd_start(&r);
  if (strcmp(command, "delete") == 0 && left == 1) return load(root, argv[i], &r), cmd_delete(&r, flag_force);
  if (strcmp(command, "kill") == 0 && (left == 1 || left == 2)) {
    int sig = signal_number(left == 2 ? argv[i + 1] : "TERM");
    return load(root, argv[i], &r), cmd_kill(&r, sig, flag_all);
  }
  node();
  return 127;
}
