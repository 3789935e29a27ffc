/* Integration test harness (see harness.h). */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

int harness_failures;

uint64_t
rnd (uint64_t *state)
{
  uint64_t x = *state;

  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *state = x;
}

void
harness_init (struct server *s, const char *name)
{
  memset (s, 0, sizeof *s);
  snprintf (s->dir, sizeof s->dir, "tmp-%s-XXXXXX", name);
  if (mkdtemp (s->dir) == NULL) {
    perror ("mkdtemp");
    exit (EXIT_FAILURE);
  }
  snprintf (s->sock, sizeof s->sock, "%s/sock", s->dir);
  snprintf (s->log, sizeof s->log, "%s/server.log", s->dir);
  snprintf (s->pidfile, sizeof s->pidfile, "%s/server.pid", s->dir);
}

void
make_file (const char *path, uint64_t size, unsigned seed)
{
  uint64_t st = seed * 2654435761u + 1;
  static uint64_t buf[1 << 16];
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

  if (fd == -1) {
    perror (path);
    exit (EXIT_FAILURE);
  }
  for (uint64_t done = 0; done < size; ) {
    size_t n = size - done < sizeof buf ? size - done : sizeof buf;
    for (size_t i = 0; i < sizeof buf / 8; i++)
      buf[i] = rnd (&st);
    if (write (fd, buf, n) != (ssize_t) n) {
      perror ("write");
      exit (EXIT_FAILURE);
    }
    done += n;
  }
  if (fsync (fd) == -1 || close (fd) == -1) {
    perror ("fsync");
    exit (EXIT_FAILURE);
  }
}

bool
harness_native (void)
{
  const char *p = getenv ("NBDSWAP_NATIVE");

  return p != NULL && *p != '\0';
}

static const char *
plugin_path (void)
{
  const char *p = getenv ("NBDSWAP_PLUGIN");
  return p ? p : PLUGIN_PATH;
}

/* The native server's command line for the same parameters:
 * NBDSWAP_NATIVE serve FILE --native --foreground --socket S --pidfile P
 * -- PARAMS (file= becomes FILE; nbdkit's options do not apply). */
static int
native_args (const struct server *s, const char *const *params,
             const char **argv, int n)
{
  const char *file = NULL;
  int first;

  argv[n++] = getenv ("NBDSWAP_NATIVE");
  argv[n++] = "serve";
  first = n++;
  argv[n++] = "--native";
  argv[n++] = "--foreground";
  argv[n++] = "--socket";
  argv[n++] = s->sock;
  argv[n++] = "--pidfile";
  argv[n++] = s->pidfile;
  argv[n++] = "--";
  for (; params && *params; params++) {
    if (strncmp (*params, "file=", 5) == 0)
      file = *params + 5;
    else
      argv[n++] = *params;
  }
  argv[first] = file;
  if (strcmp (argv[n - 1], "--") == 0)
    n--;
  return n;
}

/* Exec the server in the child: nbdkit with the plugin, or the native
 * server where NBDSWAP_NATIVE names an nbdswap; stdout+stderr to the
 * log. */
static void
exec_server (const struct server *s, const char *const *opts,
             const char *const *params)
{
  const char *argv[64];
  int n = 0, fd;
  const char *wrap = getenv ("NBDSWAP_SERVER_WRAPPER");

  if (wrap && *wrap)
    argv[n++] = wrap;
  if (harness_native ()) {
    n = native_args (s, params, argv, n);
    setenv ("NBDSWAP_RUNTIME_DIR", s->dir, 1);
  }
  else {
    argv[n++] = "nbdkit";
    argv[n++] = "-f";
    /* -v logs every request, and nbdkit's debug logging allocates: a
     * test that counts allocations asks for a quiet server. */
    if (!getenv ("NBDSWAP_SERVER_QUIET"))
      argv[n++] = "-v";
    argv[n++] = "-U";
    argv[n++] = s->sock;
    argv[n++] = "-P";
    argv[n++] = s->pidfile;
    for (; opts && *opts; opts++)
      argv[n++] = *opts;
    argv[n++] = plugin_path ();
    for (; params && *params; params++)
      argv[n++] = *params;
  }
  argv[n] = NULL;
  fd = open (s->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd == -1 || dup2 (fd, 1) == -1 || dup2 (fd, 2) == -1)
    _exit (126);
  /* The server runs with the preload (e.g. the ASan runtime for a
   * sanitizer build) that the test itself must not get. */
  if (getenv ("NBDSWAP_SERVER_PRELOAD")
      && *getenv ("NBDSWAP_SERVER_PRELOAD")) {
    setenv ("LD_PRELOAD", getenv ("NBDSWAP_SERVER_PRELOAD"), 1);
    /* nbdkit itself is not instrumented: its exit-time allocations are
     * not ours to report.  Errors still end the server with status 1,
     * which every test checks. */
    setenv ("ASAN_OPTIONS", "detect_leaks=0", 1);
  }
  execvp (argv[0], (char **) argv);
  _exit (127);
}

static bool unloaded (const struct server *s);

/* Does the server complete an NBD handshake?  Only a server whose
 * plugin finished starting does (nbdkit writes its pidfile a little
 * before .after_fork has run, and removes it when it fails). */
static bool
handshake (const struct server *s)
{
  struct nbd_handle *h = nbd_create ();
  bool ok;

  if (h == NULL)
    return false;
  ok = nbd_connect_unix (h, s->sock) == 0;
  if (ok)
    nbd_shutdown (h, 0);
  nbd_close (h);
  return ok;
}

int
server_start (struct server *s, const char *const *opts,
              const char *const *params)
{
  struct stat st;
  int status;

  unlink (s->sock);
  unlink (s->pidfile);
  s->pid = fork ();
  if (s->pid == -1) {
    perror ("fork");
    exit (EXIT_FAILURE);
  }
  if (s->pid == 0)
    exec_server (s, opts, params);
  /* Up to 60 s: sanitizer and valgrind builds start slowly. */
  for (int i = 0; i < 6000; i++) {
    if (stat (s->pidfile, &st) == 0 && st.st_size > 0 && handshake (s))
      return 0;
    if (waitpid (s->pid, &status, WNOHANG) == s->pid) {
      s->pid = 0;
      return -1;
    }
    /* A failed start stuck in the sanitizer exit deadlock (see
     * wait_with_timeout) has failed all the same. */
    if (i % 50 == 49 && getenv ("NBDSWAP_SERVER_PRELOAD")
        && *getenv ("NBDSWAP_SERVER_PRELOAD") && unloaded (s)) {
      kill (s->pid, SIGKILL);
      waitpid (s->pid, &status, 0);
      s->pid = 0;
      return -1;
    }
    usleep (10000);
  }
  fprintf (stderr, "server did not create its socket in 60 s\n");
  server_stop (s);
  return -1;
}

/* Has the server finished unloading the plugin (its last words)? */
static bool
unloaded (const struct server *s)
{
  char *log = server_log (s);
  bool done = strstr (log, "swapfile: unload plugin") != NULL;

  free (log);
  return done;
}

/* Reap the server.  An nbdkit running with the sanitizer runtimes
 * preloaded can deadlock after our plugin is gone, in p11-kit's exit
 * handler (freelocale); that is not ours to test, so once the log shows
 * the plugin fully unloaded, a server stuck for 2 s is killed and counted
 * as a clean exit.  Anything else stuck for 20 s is a failure. */
static int
wait_with_timeout (struct server *s, int *status)
{
  bool preloaded = getenv ("NBDSWAP_SERVER_PRELOAD")
    && *getenv ("NBDSWAP_SERVER_PRELOAD");

  for (int i = 0; i < 2000; i++) {
    pid_t r = waitpid (s->pid, status, WNOHANG);
    if (r == s->pid)
      return 0;
    if (r == -1)
      return -1;
    /* Stuck after the plugin is gone: no need to wait the full 20 s. */
    if (preloaded && i >= 200 && i % 50 == 0 && unloaded (s))
      break;
    usleep (10000);
  }
  fprintf (stderr, "server %d still running after SIGTERM%s\n",
           (int) s->pid, preloaded && unloaded (s)
           ? " (after unloading the plugin: known sanitizer exit deadlock)"
           : "");
  kill (s->pid, SIGKILL);
  if (waitpid (s->pid, status, 0) == -1)
    return -1;
  if (preloaded && unloaded (s))
    *status = 0;
  return 0;
}

int
server_stop (struct server *s)
{
  int status;

  if (s->pid <= 0)
    return -1;
  kill (s->pid, SIGTERM);
  if (wait_with_timeout (s, &status) == -1)
    return -1;
  s->pid = 0;
  if (WIFEXITED (status))
    return WEXITSTATUS (status);
  return 128 + WTERMSIG (status);
}

char *
server_log (const struct server *s)
{
  FILE *fp = fopen (s->log, "re");
  char *buf;
  long n;

  if (fp == NULL)
    return strdup ("");
  fseek (fp, 0, SEEK_END);
  n = ftell (fp);
  rewind (fp);
  buf = calloc (1, (size_t) n + 1);
  if (buf && fread (buf, 1, (size_t) n, fp) != (size_t) n)
    buf[0] = '\0';
  fclose (fp);
  return buf;
}

struct nbd_handle *
server_connect (const struct server *s, bool strict)
{
  struct nbd_handle *h = nbd_create ();

  if (h == NULL) {
    fprintf (stderr, "nbd_create: %s\n", nbd_get_error ());
    exit (EXIT_FAILURE);
  }
  if (!strict)
    nbd_set_strict_mode (h, 0);
  nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION);
  if (nbd_connect_unix (h, s->sock) == -1) {
    fprintf (stderr, "nbd_connect_unix: %s\n", nbd_get_error ());
    exit (EXIT_FAILURE);
  }
  return h;
}

void
harness_cleanup (struct server *s)
{
  DIR *d;
  struct dirent *e;
  char path[600];

  if (s->pid > 0)
    server_stop (s);
  if (getenv ("NBDSWAP_KEEP_TMP"))
    return;
  d = opendir (s->dir);
  if (d) {
    while ((e = readdir (d)) != NULL) {
      if (e->d_name[0] == '.')
        continue;
      snprintf (path, sizeof path, "%s/%s", s->dir, e->d_name);
      unlink (path);
    }
    closedir (d);
  }
  rmdir (s->dir);
}

int
harness_exit (const char *name)
{
  printf ("%s: %s (%d failed checks)\n", name,
          harness_failures ? "FAIL" : "ok", harness_failures);
  return harness_failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
