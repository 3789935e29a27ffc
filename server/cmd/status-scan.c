/* nbdswap status: finding servers, devices and swap areas (status.h). */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "serve.h"
#include "status.h"

/* How long to wait for servers to rewrite their stats files. */
#define STATS_WAIT_MS 2000
#define STATS_POLL_MS 20

/* The arguments of a process's command line that are read. */
#define STATUS_MAX_ARGS 512

const char *const status_counter_names[ST_NR] = {
  "reads", "writes", "zeroes", "flushes", "read_bytes", "write_bytes",
  "rmw", "bounced", "retries", "errors", "p50", "p99", "p999",
};

/* Reads a whole small file into a NUL-terminated malloc'd buffer; its
 * length in *len.  NULL with errno set on failure. */
static char *
read_small_file (const char *path, size_t *len)
{
  size_t cap = 4096, n = 0;
  char *buf = malloc (cap), *nb;
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  ssize_t r;

  if (buf == NULL || fd == -1) {
    free (buf);
    if (fd >= 0)
      close (fd);
    return NULL;
  }
  while ((r = read (fd, buf + n, cap - n - 1)) > 0) {
    n += (size_t) r;
    if (cap - n - 1 == 0) {
      if (cap >= 1 << 20 || (nb = realloc (buf, cap * 2)) == NULL)
        break;
      buf = nb;
      cap *= 2;
    }
  }
  close (fd);
  buf[n] = '\0';
  if (len)
    *len = n;
  return buf;
}

bool
status_parse_stats (const char *json, uint64_t *counters)
{
  char key[32];
  const char *p;

  for (int i = 0; i < ST_NR; i++) {
    snprintf (key, sizeof key, "\"%s\":", status_counter_names[i]);
    p = strstr (json, key);
    if (p == NULL)
      return false;
    p += strlen (key);
    if (*p < '0' || *p > '9')
      return false;
    counters[i] = strtoull (p, NULL, 10);
  }
  return true;
}

/* The value of option opt ("-U") or its long form ("--unix") in argv,
 * written either "-U X", "-UX", "--unix X" or "--unix=X". */
static const char *
find_option (char **argv, size_t argc, const char *opt, const char *lopt)
{
  size_t ol = strlen (opt), ll = strlen (lopt);

  for (size_t i = 1; i < argc; i++) {
    if (strcmp (argv[i], opt) == 0 || strcmp (argv[i], lopt) == 0)
      return i + 1 < argc ? argv[i + 1] : NULL;
    if (strncmp (argv[i], lopt, ll) == 0 && argv[i][ll] == '=')
      return argv[i] + ll + 1;
    if (strncmp (argv[i], opt, ol) == 0 && argv[i][ol] != '\0'
        && opt[1] != '-')
      return argv[i] + ol;
  }
  return NULL;
}

/* The value of key=VALUE among argv. */
static const char *
find_param (char **argv, size_t argc, const char *key)
{
  size_t kl = strlen (key);

  for (size_t i = 1; i < argc; i++)
    if (strncmp (argv[i], key, kl) == 0 && argv[i][kl] == '=')
      return argv[i] + kl + 1;
  return NULL;
}

static char *
dup_or_null (const char *s)
{
  return s ? strdup (s) : NULL;
}

/* True when pid's mount namespace is not ours (a container sidecar). */
static bool
other_mount_ns (pid_t pid)
{
  char path[64], theirs[64], ours[64];
  ssize_t t, o;

  snprintf (path, sizeof path, "/proc/%d/ns/mnt", (int) pid);
  t = readlink (path, theirs, sizeof theirs - 1);
  o = readlink ("/proc/self/ns/mnt", ours, sizeof ours - 1);
  return t > 0 && o > 0 && (t != o || memcmp (theirs, ours, (size_t) t) != 0);
}

/* The stats file as this process reaches it: a sidecar's path is under
 * its own root, which /proc/PID/root opens to. */
static char *
stats_path (pid_t pid, const char *path)
{
  char *p;

  if (path == NULL || path[0] != '/' || !other_mount_ns (pid))
    return dup_or_null (path);
  if (asprintf (&p, "/proc/%d/root%s", (int) pid, path) == -1)
    return NULL;
  return p;
}

/* The value of variable name in pid's environment, malloc'd, or NULL. */
static char *
environ_value (pid_t pid, const char *name)
{
  char path[64], *buf, *v = NULL;
  size_t len, nl = strlen (name);

  snprintf (path, sizeof path, "/proc/%d/environ", (int) pid);
  buf = read_small_file (path, &len);
  if (buf == NULL)
    return NULL;
  for (size_t i = 0; i < len && v == NULL; i += strlen (buf + i) + 1)
    if (strncmp (buf + i, name, nl) == 0 && buf[i + nl] == '=')
      v = strdup (buf + i + nl + 1);
  free (buf);
  return v;
}

/* Calls fn with each open descriptor of pid (its /proc/PID/fd/N path,
 * the link's target) until fn returns true. */
static void
each_fd (pid_t pid, bool (*fn) (pid_t pid, const char *fd, const char *path,
                                const char *target, void *arg), void *arg)
{
  char dir[64], path[320], target[PATH_MAX];
  struct dirent *e;
  ssize_t n;
  DIR *d;

  snprintf (dir, sizeof dir, "/proc/%d/fd", (int) pid);
  d = opendir (dir);
  if (d == NULL)
    return;
  while ((e = readdir (d)) != NULL) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9')
      continue;
    snprintf (path, sizeof path, "%s/%s", dir, e->d_name);
    n = readlink (path, target, sizeof target - 1);
    if (n <= 0)
      continue;
    target[n] = '\0';
    if (fn (pid, e->d_name, path, target, arg))
      break;
  }
  closedir (d);
}

/* each_fd: the descriptor is a regular file open with O_DIRECT; its
 * name goes to *(char **) arg. */
static bool
is_direct_file (pid_t pid, const char *fd, const char *path,
                const char *target, void *arg)
{
  char info_path[96], *info, *flags;
  struct stat sb;
  bool direct;

  snprintf (info_path, sizeof info_path, "/proc/%d/fdinfo/%s", (int) pid, fd);
  info = read_small_file (info_path, NULL);
  flags = info ? strstr (info, "flags:") : NULL;
  direct = flags && (strtoul (flags + 6, NULL, 8) & O_DIRECT)
    && stat (path, &sb) == 0 && S_ISREG (sb.st_mode);
  free (info);
  if (direct)
    *(char **) arg = strdup (target);
  return direct;
}

/* each_fd: the descriptor is a directory; its name goes to
 * *(char **) arg. */
static bool
is_directory (pid_t pid, const char *fd, const char *path,
              const char *target, void *arg)
{
  struct stat sb;

  if (stat (path, &sb) == -1 || !S_ISDIR (sb.st_mode))
    return false;
  *(char **) arg = strdup (target);
  return true;
}

/* What a native server serves, as the kernel names it (absolute,
 * symbolic links resolved, from the server's root): the regular file it
 * holds open with O_DIRECT, or with dir the directory it holds open for
 * this (--dir: its command line may give it relative to a directory the
 * server has left).  NULL if none is found. */
static char *
served_path_of (pid_t pid, bool dir)
{
  char *found = NULL;

  each_fd (pid, dir ? is_directory : is_direct_file, &found);
  return found;
}

/* 'nbdswap serve FILE ...' or '--dir DIR' (argc entries), the native
 * server (serve's default; --native says so, and --nbdkit's serve only
 * waits for nbdkit or execs it; --dry-run and --help serve nothing):
 * fills *s.  Its socket and stats file are the ones serve chose:
 * RUNTIME_DIR/NAME.sock (unless --socket, --port/--bind or systemd's
 * LISTEN_FDS) and RUNTIME_DIR/NAME.stats, the runtime directory from the
 * server's environment. */
static bool
parse_native_cmdline (pid_t pid, char **argv, size_t argc, struct served *s)
{
  const char *base = strrchr (argv[0], '/');
  char name[256], *dir, *listen_fds, *path, *args[STATUS_MAX_ARGS];
  struct serve_args a;

  base = base ? base + 1 : argv[0];
  if (strcmp (base, "nbdswap") != 0 || argc < 3 || strcmp (argv[1], "serve"))
    return false;
  /* On a copy: getopt reorders, and argv is read again if this is no
   * native server. */
  memcpy (args, argv + 1, (argc - 1) * sizeof *args);
  serve_args_parse ((int) argc - 1, args, &a, true);
  if (a.nbdkit || a.dry_run || a.help || (a.file == NULL && a.dir == NULL))
    return false;
  memset (s, 0, sizeof *s);
  s->pid = pid;
  s->native = true;
  s->dir = a.dir != NULL;
  s->file = served_path_of (pid, s->dir);
  if (s->file == NULL)          /* still starting: as given */
    s->file = strdup (s->dir ? a.dir : a.file);
  s->socket = dup_or_null (a.socket);
  s->export = dup_or_null (a.export);
  if (a.port || a.bind) {
    s->port = strdup (a.port ? a.port : SERVE_DEFAULT_PORT);
    s->bind = strdup (a.bind ? a.bind : "127.0.0.1");
  }
  dir = environ_value (pid, "NBDSWAP_RUNTIME_DIR");
  listen_fds = environ_value (pid, "LISTEN_FDS");
  s->activated = listen_fds && listen_fds[0] && listen_fds[0] != '0';
  serve_instance_name (s->dir ? a.dir : a.file, name, sizeof name);
  if (!s->activated && s->socket == NULL && s->port == NULL &&
      asprintf (&path, "%s/%s.sock", dir && dir[0] ? dir : SERVE_RUNTIME_DIR,
                name) != -1)
    s->socket = path;
  if (asprintf (&path, "%s/%s.stats", dir && dir[0] ? dir :
                SERVE_RUNTIME_DIR, name) != -1) {
    s->stats_file = stats_path (pid, path);
    free (path);
  }
  free (dir);
  free (listen_fds);
  return true;
}

/* stats-file= of nbdkit's command line as this process reaches it.
 * The plugin anchors a relative one to the directory nbdkit started in
 * (at .config), which stays nbdkit's working directory in the
 * foreground (-f); in the background nbdkit has moved to / and the name
 * is resolved there, wrongly: the manual says to give it absolute. */
static char *
plugin_stats_path (pid_t pid, const char *given)
{
  char link[64], cwd[PATH_MAX], *joined, *p;
  ssize_t n;

  if (given == NULL || given[0] == '/')
    return stats_path (pid, given);
  snprintf (link, sizeof link, "/proc/%d/cwd", (int) pid);
  n = readlink (link, cwd, sizeof cwd - 1);
  if (n <= 0)
    return strdup (given);
  cwd[n] = '\0';
  if (asprintf (&joined, "%s%s%s", cwd, n > 1 ? "/" : "", given) == -1)
    return NULL;
  p = stats_path (pid, joined);
  free (joined);
  return p;
}

/* True when nbdkit's command line gives TLS-PSK (--tls-psk with --tls
 * on or require): its clients have identities that nbdkit 1.32 does not
 * tell the plugin. */
static bool
nbdkit_psk (char **argv, size_t argc)
{
  const char *tls = find_option (argv, argc, "--tls", "--tls");

  return tls && strcmp (tls, "off") != 0
    && find_option (argv, argc, "--tls-psk", "--tls-psk") != NULL;
}

/* Fills *s from a process's command line (NUL-separated in buf). */
static bool
parse_cmdline (pid_t pid, char *buf, size_t len, struct served *s)
{
  char *argv[STATUS_MAX_ARGS];
  const char *given;
  size_t argc = 0;

  for (size_t i = 0; i < len && argc < STATUS_MAX_ARGS;
       i += strlen (buf + i) + 1)
    argv[argc++] = buf + i;
  if (argc > 0 && parse_native_cmdline (pid, argv, argc, s))
    return true;
  if (!serve_cmdline_is_ours (argv, argc))
    return false;
  memset (s, 0, sizeof *s);
  s->pid = pid;
  given = find_param (argv, argc, "file");
  if (given == NULL) {          /* the plugin's dir=: a set of exports */
    given = find_param (argv, argc, "dir");
    s->dir = given != NULL;
  }
  /* As the kernel names it, as for a native server: the plugin holds
   * dir= (and file='s O_DIRECT descriptor) open; given relative, the
   * command line names it from a directory nbdkit may have left. */
  s->file = served_path_of (pid, s->dir);
  if (s->file == NULL)          /* not held (yet): as given */
    s->file = dup_or_null (given);
  s->stats_file = plugin_stats_path (pid, find_param (argv, argc,
                                                      "stats-file"));
  s->identity_unknown = s->dir && nbdkit_psk (argv, argc);
  s->socket = dup_or_null (find_option (argv, argc, "-U", "--unix"));
  s->port = dup_or_null (find_option (argv, argc, "-p", "--port"));
  s->bind = dup_or_null (find_option (argv, argc, "-i", "--ipaddr"));
  s->export = dup_or_null (find_option (argv, argc, "-e", "--exportname"));
  s->activated = s->socket == NULL && s->port == NULL;
  return true;
}

static void
served_free (struct served *s)
{
  status_exports_free (s->exports, s->nr_exports);
  free (s->file);
  free (s->stats_file);
  free (s->socket);
  free (s->port);
  free (s->bind);
  free (s->export);
}

/* True when file (absolute) is directly in the directory dir. */
static bool
in_dir (const char *file, const char *dir)
{
  size_t dl = strlen (dir);
  const char *rest = file + dl;

  return strncmp (file, dir, dl) == 0 && rest[0] == '/' && rest[1] != '\0'
    && strchr (rest + 1, '/') == NULL;
}

/* True when the served file is one of files[] (already absolute), or a
 * directory served holds one of them. */
static bool
wanted (const struct served *s, char **files, size_t nr_files)
{
  if (nr_files == 0)
    return true;
  for (size_t i = 0; i < nr_files; i++)
    if (s->file && (strcmp (s->file, files[i]) == 0
                    || (s->dir && in_dir (files[i], s->file))))
      return true;
  return false;
}

/* True when the process catches SIGUSR1 (SigCgt in /proc/PID/status). */
static bool
catches_sigusr1 (pid_t pid)
{
  char path[64], *buf, *p;
  unsigned long long mask = 0;

  snprintf (path, sizeof path, "/proc/%d/status", (int) pid);
  buf = read_small_file (path, NULL);
  if (buf == NULL)
    return false;
  p = strstr (buf, "\nSigCgt:");
  if (p)
    mask = strtoull (p + 8, NULL, 16);
  free (buf);
  return (mask >> (SIGUSR1 - 1)) & 1;
}

/* Appends to a growing array of elements of size sz; NULL on no memory. */
static void *
grow (void *array, size_t *nr, size_t sz)
{
  char *a = realloc (array, (*nr + 1) * sz);

  if (a == NULL)
    return NULL;
  memset (a + *nr * sz, 0, sz);
  ++*nr;
  return a;
}

/* True for the serve command of a native server still starting in the
 * background: it waits for a child with its own command line (cmd, len
 * bytes), which is the server, listed in its place. */
static bool
waits_for_twin (pid_t pid, const char *cmd, size_t len)
{
  char path[320], *kids, *p, *end, *c;
  size_t clen;
  bool twin = false;

  snprintf (path, sizeof path, "/proc/%d/task/%d/children", (int) pid,
            (int) pid);
  kids = read_small_file (path, NULL);
  for (p = kids; p && !twin; p = end) {
    long k = strtol (p, &end, 10);

    if (end == p)
      break;
    snprintf (path, sizeof path, "/proc/%ld/cmdline", k);
    c = read_small_file (path, &clen);
    twin = c && clen == len && memcmp (c, cmd, len) == 0;
    free (c);
  }
  free (kids);
  return twin;
}

/* Every process running the plugin, into st->served. */
static int
scan_processes (struct status *st, char **files, size_t nr_files)
{
  DIR *d = opendir ("/proc");
  struct dirent *e;
  struct served s, *a;
  char path[320], *buf;
  size_t len;

  if (d == NULL)
    return -errno;
  while ((e = readdir (d)) != NULL) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9')
      continue;
    snprintf (path, sizeof path, "/proc/%s/cmdline", e->d_name);
    buf = read_small_file (path, &len);
    if (buf == NULL)
      continue;
    if (parse_cmdline (atoi (e->d_name), buf, len, &s)) {
      if (!wanted (&s, files, nr_files)
          || (s.native && waits_for_twin (s.pid, buf, len))
          || (a = grow (st->served, &st->nr_served, sizeof *a)) == NULL)
        served_free (&s);
      else {
        st->served = a;
        a[st->nr_served - 1] = s;
      }
    }
    free (buf);
  }
  closedir (d);
  return 0;
}

/* each_fd: collects socket inodes into a struct sockets, up to 16. */
struct sockets {
  unsigned long inodes[16];
  size_t n;
};

static bool
add_socket (pid_t pid, const char *fd, const char *path, const char *target,
            void *arg)
{
  struct sockets *so = arg;
  unsigned long ino;

  if (sscanf (target, "socket:[%lu]", &ino) == 1)
    so->inodes[so->n++] = ino;
  return so->n == 16;
}

/* The path of the listening unix socket among pid's descriptors, from
 * /proc/PID/fd and /proc/PID/net/unix (its network namespace's, which
 * for a sidecar is not ours): how a server that was handed its socket
 * (nbdswap serve, systemd) is found.  NULL if none. */
static char *
inherited_socket (pid_t pid)
{
  char path[64], *buf, *line, *save = NULL, *found = NULL;
  struct sockets so = { .n = 0 };
  unsigned long ino;

  each_fd (pid, add_socket, &so);
  snprintf (path, sizeof path, "/proc/%d/net/unix", (int) pid);
  buf = so.n ? read_small_file (path, NULL) : NULL;
  if (buf == NULL)
    return NULL;
  /* Num RefCount Protocol Flags Type St Inode Path; listening: St 01 */
  for (line = strtok_r (buf, "\n", &save); line && !found;
       line = strtok_r (NULL, "\n", &save)) {
    char sockpath[256];
    unsigned st;
    if (sscanf (line, "%*s %*s %*s %*s %*s %x %lu %255s", &st, &ino,
                sockpath) != 3 || st != 1)
      continue;
    for (size_t i = 0; i < so.n; i++)
      if (so.inodes[i] == ino && sockpath[0] == '/')
        found = strdup (sockpath);
  }
  free (buf);
  return found;
}

/* Where s listens, as a path that works from any directory: the socket
 * it was handed, or one given relative to a directory it has left
 * (nbdkit and serve --native in the background move to /, and bind the
 * absolute path).  Kept as given when /proc does not tell. */
static void
bound_socket (struct served *s)
{
  char *path;

  if (!s->activated && (s->socket == NULL || s->socket[0] == '/'))
    return;
  path = inherited_socket (s->pid);
  if (path == NULL)
    return;
  free (s->socket);
  s->socket = path;
}

/* The modification time of path in nanoseconds, 0 if it is missing. */
static uint64_t
mtime_ns (const char *path)
{
  struct stat sb;

  if (path == NULL || stat (path, &sb) == -1)
    return 0;
  return (uint64_t) sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
}

static void
sleep_ms (long ms)
{
  struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

  nanosleep (&ts, NULL);
}

/* Asks every server with a stats file for fresh counters and reads
 * them: SIGUSR1 to all, then poll until each file changed or time ran
 * out (then the last counters it wrote, marked not fresh). */
static void
collect_stats (struct status *st)
{
  uint64_t *before = calloc (st->nr_served + 1, sizeof *before);
  bool *asked = calloc (st->nr_served + 1, sizeof *asked), waiting = false;
  char *buf;

  if (before == NULL || asked == NULL) {
    free (before);
    free (asked);
    return;
  }

  for (size_t i = 0; i < st->nr_served; i++) {
    struct served *s = &st->served[i];
    before[i] = mtime_ns (s->stats_file);
    asked[i] = s->stats_file && catches_sigusr1 (s->pid)
      && kill (s->pid, SIGUSR1) == 0;
    waiting |= asked[i];
  }
  for (int t = 0; waiting && t < STATS_WAIT_MS / STATS_POLL_MS; t++) {
    sleep_ms (STATS_POLL_MS);
    waiting = false;
    for (size_t i = 0; i < st->nr_served; i++)
      if (asked[i] && mtime_ns (st->served[i].stats_file) == before[i])
        waiting = true;
  }
  for (size_t i = 0; i < st->nr_served; i++) {
    struct served *s = &st->served[i];
    if (s->stats_file == NULL
        || (buf = read_small_file (s->stats_file, NULL)) == NULL)
      continue;
    s->have_stats = status_parse_stats (buf, s->counters);
    /* A directory's server without the array (out of memory when it
     * wrote the file) shows the sum only. */
    if (s->have_stats && s->dir)
      status_parse_exports (buf, &s->exports, &s->nr_exports);
    s->stats_fresh = s->have_stats && asked[i]
      && mtime_ns (s->stats_file) != before[i];
    free (buf);
  }
  free (before);
  free (asked);
}

/* /sys/block/NAME/LEAF, or /sys/block for a NULL name; under
 * $NBDSWAP_SYSROOT when set (the tests' fake sysfs). */
static void
sys_path (char *buf, size_t len, const char *name, const char *leaf)
{
  const char *root = getenv ("NBDSWAP_SYSROOT");

  if (snprintf (buf, len, "%s/sys/block%s%s%s%s", root ? root : "",
                name ? "/" : "", name ? name : "", leaf ? "/" : "",
                leaf ? leaf : "") >= (int) len)
    buf[0] = '\0';
}

/* A one-line sysfs attribute, trailing newline removed; false if absent. */
static bool
read_attr (const char *name, const char *leaf, char *out, size_t len)
{
  char path[PATH_MAX], *buf;

  sys_path (path, sizeof path, name, leaf);
  buf = read_small_file (path, NULL);
  if (buf == NULL)
    return false;
  buf[strcspn (buf, "\n")] = '\0';
  snprintf (out, len, "%s", buf);
  free (buf);
  return true;
}

/* The first holder of sysfs block device name into out (empty: none). */
static void
first_holder (const char *name, char *out, size_t len)
{
  char path[PATH_MAX];
  struct dirent *e;
  DIR *d;

  out[0] = '\0';
  sys_path (path, sizeof path, name, "holders");
  d = opendir (path);
  if (d == NULL)
    return;
  while ((e = readdir (d)) != NULL)
    if (e->d_name[0] != '.' && strlen (e->d_name) < len) {
      strcpy (out, e->d_name);
      break;
    }
  closedir (d);
}

/* The top of the device's holder chain: dm-crypt from attach --encrypt,
 * over the dm-integrity device of --integrity. */
static void
find_holder (struct attached *a)
{
  char next[sizeof a->holder];

  first_holder (a->name, a->holder, sizeof a->holder);
  for (int depth = 0; a->holder[0] && depth < 4; depth++) {
    first_holder (a->holder, next, sizeof next);
    if (next[0] == '\0')
      break;
    strcpy (a->holder, next);
  }
}

/* Connected nbd devices: those with a pid attribute. */
static int
scan_devices (struct status *st)
{
  char path[PATH_MAX], val[64];
  struct attached *a;
  struct dirent *e;
  DIR *d;

  sys_path (path, sizeof path, NULL, NULL);
  d = opendir (path);
  if (d == NULL)
    return 0;
  while ((e = readdir (d)) != NULL) {
    if (strncmp (e->d_name, "nbd", 3) != 0
        || strlen (e->d_name) >= sizeof a->name
        || !read_attr (e->d_name, "pid", val, sizeof val))
      continue;
    a = grow (st->attached, &st->nr_attached, sizeof *a);
    if (a == NULL) {
      closedir (d);
      return -ENOMEM;
    }
    st->attached = a;
    a += st->nr_attached - 1;
    strcpy (a->name, e->d_name);
    a->pid = atoi (val);
    if (read_attr (e->d_name, "size", val, sizeof val))
      a->size = strtoull (val, NULL, 10) * 512;
    read_attr (e->d_name, "backend", a->backend, sizeof a->backend);
    find_holder (a);
  }
  closedir (d);
  return 0;
}

/* Undoes /proc/swaps' octal escapes (\040 for a space) in place. */
static void
unescape (char *s)
{
  char *w = s;

  for (; *s; s++, w++) {
    if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] && s[3]) {
      *w = (char) ((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
      s += 3;
    }
    else
      *w = *s;
  }
  *w = '\0';
}

/* True when the swap area named swap is device name (or its dm holder):
 * by name, or by device number for other names of the same node. */
static bool
same_device (const char *swap, const char *name)
{
  char want[320], dmname[128], dev[32];
  unsigned maj, mnr;
  struct stat sb;

  snprintf (want, sizeof want, "/dev/%s", name);
  if (strcmp (swap, want) == 0)
    return true;
  if (read_attr (name, "dm/name", dmname, sizeof dmname)) {
    snprintf (want, sizeof want, "/dev/mapper/%s", dmname);
    if (strcmp (swap, want) == 0)
      return true;
  }
  return read_attr (name, "dev", dev, sizeof dev)
    && sscanf (dev, "%u:%u", &maj, &mnr) == 2
    && stat (swap, &sb) == 0 && S_ISBLK (sb.st_mode)
    && sb.st_rdev == makedev (maj, mnr);
}

/* /proc/swaps: which attached device (or its holder) is swap. */
static void
scan_swaps (struct status *st)
{
  const char *root = getenv ("NBDSWAP_SYSROOT");
  char path[PATH_MAX], *buf, *line, *save = NULL, name[256];
  unsigned long long size, used;
  int prio;

  snprintf (path, sizeof path, "%s/proc/swaps", root ? root : "");
  buf = read_small_file (path, NULL);
  if (buf == NULL)
    return;
  line = strtok_r (buf, "\n", &save);   /* the header */
  while ((line = strtok_r (NULL, "\n", &save)) != NULL) {
    if (sscanf (line, "%255s %*s %llu %llu %d", name, &size, &used,
                &prio) != 4)
      continue;
    unescape (name);
    for (size_t i = 0; i < st->nr_attached; i++) {
      struct attached *a = &st->attached[i];
      if (!same_device (name, a->name)
          && !(a->holder[0] && same_device (name, a->holder)))
        continue;
      a->swapping = true;
      snprintf (a->swap_name, sizeof a->swap_name, "%s", name);
      a->swap_size = size * 1024;
      a->swap_used = used * 1024;
      a->swap_priority = prio;
    }
  }
  free (buf);
}

static int
by_pid (const void *a, const void *b)
{
  const struct served *x = a, *y = b;

  return (x->pid > y->pid) - (x->pid < y->pid);
}

static int
by_name (const void *a, const void *b)
{
  const struct attached *x = a, *y = b;
  size_t lx = strlen (x->name), ly = strlen (y->name);

  /* nbd2 before nbd10 */
  return lx != ly ? (lx > ly) - (lx < ly) : strcmp (x->name, y->name);
}

int
status_scan (struct status *st, char **files, size_t nr_files)
{
  int r;

  memset (st, 0, sizeof *st);
  r = scan_processes (st, files, nr_files);
  if (r == 0)
    r = scan_devices (st);
  if (r < 0) {
    status_free (st);
    return r;
  }
  if (st->nr_served > 1)
    qsort (st->served, st->nr_served, sizeof *st->served, by_pid);
  for (size_t i = 0; i < st->nr_served; i++)
    bound_socket (&st->served[i]);
  if (st->nr_attached > 1)
    qsort (st->attached, st->nr_attached, sizeof *st->attached, by_name);
  collect_stats (st);
  scan_swaps (st);
  return 0;
}

void
status_free (struct status *st)
{
  for (size_t i = 0; i < st->nr_served; i++)
    served_free (&st->served[i]);
  free (st->served);
  free (st->attached);
  memset (st, 0, sizeof *st);
}
