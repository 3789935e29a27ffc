/* The native server's test harness (see native-harness.h). */
#include <config.h>

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "native-harness.h"

int failures;
char dir[256], file[300], sock[300], logpath[300], pidf[300];
pid_t server;
int server_nofile;
const char *spawn_file;
bool spawn_preload;
unsigned char *shadow;
size_t file_size;
unsigned char reply_data[128 * 1024];

/* xorshift64. */
uint64_t
rnd (uint64_t *s)
{
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

/* n bytes of the sequence from seed. */
void
fill (unsigned char *p, size_t n, uint64_t *seed)
{
  for (size_t i = 0; i < n; i++)
    p[i] = (unsigned char) rnd (seed);
}

/* The backing file, fully written (verify refuses holes), and its
 * shadow. */
static void
make_file (size_t size)
{
  uint64_t seed = 1;
  int fd = open (file, O_WRONLY | O_CREAT | O_TRUNC, 0600);

  file_size = size;
  shadow = malloc (size);
  fill (shadow, size, &seed);
  if (fd == -1 || write (fd, shadow, size) != (ssize_t) size
      || fsync (fd) == -1 || close (fd) == -1) {
    perror (file);
    exit (EXIT_FAILURE);
  }
}

/* The private directory, its paths, the backing file. */
void
harness_init (const char *name, size_t size)
{
  char cwd[300];

  if (getcwd (cwd, sizeof cwd) == NULL) {
    perror ("getcwd");
    exit (EXIT_FAILURE);
  }
  snprintf (dir, sizeof dir, "%.200s/%.30s.XXXXXX", cwd, name);
  if (mkdtemp (dir) == NULL) {
    perror ("mkdtemp");
    exit (EXIT_FAILURE);
  }
  snprintf (file, sizeof file, "%s/swap.img", dir);
  snprintf (sock, sizeof sock, "%s/s.sock", dir);
  snprintf (logpath, sizeof logpath, "%s/server.log", dir);
  snprintf (pidf, sizeof pidf, "%s/server.pid", dir);
  signal (SIGPIPE, SIG_IGN);
  make_file (size);
}

/* The log on failure, clean up, the summary line. */
int
harness_finish (const char *name)
{
  char cmd[600];

  if (failures) {
    fprintf (stderr, "server log:\n");
    snprintf (cmd, sizeof cmd, "cat '%s' >&2", logpath);
    if (system (cmd)) { }
  }
  snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system (cmd)) { }
  printf ("%s: %d failure%s\n", name, failures, failures == 1 ? "" : "s");
  return failures ? 1 : 0;
}

/* Connect with libnbd and disconnect cleanly. */
bool
handshake_ok (void)
{
  struct nbd_handle *h = nbd_create ();
  bool ok = h && nbd_connect_unix (h, sock) == 0;

  if (ok)
    nbd_shutdown (h, 0);
  nbd_close (h);
  return ok;
}

/* Fork and exec the server: [wrap] nbdswap serve --native --foreground
 * FILE --pidfile P, then extra (NULL-terminated), its output to the log. */
pid_t
spawn_server (const char *wrap, const char *const *extra)
{
  const char *argv[24];
  int n = 0;
  pid_t pid;

  unlink (pidf);
  if (wrap)
    argv[n++] = wrap;
  argv[n++] = NBDSWAP;
  argv[n++] = "serve";
  argv[n++] = "--native";
  argv[n++] = "--foreground";
  argv[n++] = spawn_file ? spawn_file : file;
  argv[n++] = "--pidfile";
  argv[n++] = pidf;
  for (int i = 0; extra[i] && n < 23; i++)
    argv[n++] = extra[i];
  argv[n] = NULL;
  pid = fork ();
  if (pid == 0) {
    int fd = open (logpath, O_WRONLY | O_CREAT | O_APPEND, 0600);

    dup2 (fd, 1);
    dup2 (fd, 2);
    setenv ("NBDSWAP_RUNTIME_DIR", dir, 1);
    /* The sanitizer pass: nbdkit loading the instrumented plugin needs
     * the runtimes preloaded (leak checks off: nbdkit's are not ours). */
    if (spawn_preload && getenv ("NBDSWAP_SERVER_PRELOAD")
        && *getenv ("NBDSWAP_SERVER_PRELOAD")) {
      setenv ("LD_PRELOAD", getenv ("NBDSWAP_SERVER_PRELOAD"), 1);
      setenv ("ASAN_OPTIONS", "detect_leaks=0", 1);
    }
    if (server_nofile) {
      struct rlimit rl = { server_nofile, server_nofile };
      setrlimit (RLIMIT_NOFILE, &rl);
    }
    execv (argv[0], (char **) argv);
    _exit (127);
  }
  return pid;
}

/* Start the server on the unix socket; it is ready once a handshake
 * succeeds. */
void
start_server (void)
{
  const char *extra[] = { "--socket", sock, NULL };
  struct stat st;
  int status;

  server = spawn_server (NULL, extra);
  for (int i = 0; i < 6000; i++) {
    if (stat (pidf, &st) == 0 && st.st_size > 0 && handshake_ok ())
      return;
    if (waitpid (server, &status, WNOHANG) == server) {
      fprintf (stderr, "the server exited at start; its log:\n");
      execlp ("cat", "cat", logpath, (char *) NULL);
      exit (EXIT_FAILURE);
    }
    usleep (10000);
  }
  fprintf (stderr, "the server did not start in 60 s\n");
  kill (server, SIGKILL);
  exit (EXIT_FAILURE);
}

/* Wait up to ms for pid to exit; its exit status, or -1 (then killed). */
int
wait_exit (pid_t pid, int ms)
{
  int status;

  for (int i = 0; i < ms / 10; i++) {
    if (waitpid (pid, &status, WNOHANG) == pid)
      return WIFEXITED (status) ? WEXITSTATUS (status)
        : 128 + WTERMSIG (status);
    usleep (10000);
  }
  kill (pid, SIGKILL);
  waitpid (pid, &status, 0);
  return -1;
}

/* Does the log hold this text? */
bool
log_has (const char *text)
{
  char cmd[700];

  snprintf (cmd, sizeof cmd, "grep -qF -e '%s' '%s'", text, logpath);
  return system (cmd) == 0;
}

/* Connect with strict mode off. */
struct nbd_handle *
connect_h (void)
{
  struct nbd_handle *h = nbd_create ();

  if (h == NULL || nbd_set_strict_mode (h, 0) == -1
      || nbd_connect_unix (h, sock) == -1) {
    fprintf (stderr, "connect: %s\n", nbd_get_error ());
    exit (EXIT_FAILURE);
  }
  return h;
}

/* Read [off, off+len) through h and compare with the shadow. */
void
check_range (struct nbd_handle *h, uint64_t off, uint32_t len,
             const char *what)
{
  unsigned char *b = malloc (len);

  CHECK (nbd_pread (h, b, len, off, 0) == 0, "%s: pread: %s", what,
         nbd_get_error ());
  CHECK (memcmp (b, shadow + off, len) == 0, "%s: data differs in [%"
         PRIu64 ", +%" PRIu32 ")", what, off, len);
  free (b);
}

/* A raw client, negotiated with NBD_OPT_EXPORT_NAME; -1 on failure. */
int
raw_client (void)
{
  struct sockaddr_un sun = { .sun_family = AF_UNIX };
  unsigned char greet[18], reply[10];
  struct timeval tv = { 10, 0 };
  uint32_t cflags = htobe32 (3);
  struct { uint64_t magic; uint32_t opt, len; } __attribute__ ((packed))
    opt = { htobe64 (UINT64_C (0x49484156454f5054)), htobe32 (1), 0 };
  int s = socket (AF_UNIX, SOCK_STREAM, 0);

  if (strlen (sock) >= sizeof sun.sun_path)
    return -1;
  memcpy (sun.sun_path, sock, strlen (sock) + 1);
  setsockopt (s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect (s, (struct sockaddr *) &sun, sizeof sun) == -1
      || recv (s, greet, sizeof greet, MSG_WAITALL) != sizeof greet
      || send (s, &cflags, 4, 0) != 4 || send (s, &opt, 16, 0) != 16
      || recv (s, reply, sizeof reply, MSG_WAITALL) != sizeof reply) {
    close (s);
    return -1;
  }
  return s;
}

/* Does the server close s (within the receive timeout)? */
bool
closed_by_server (int s)
{
  unsigned char b[64];
  ssize_t r;

  while ((r = recv (s, b, sizeof b, 0)) > 0)
    ;
  return r == 0 || (r == -1 && errno == ECONNRESET);
}

/* A request header, cookie 7. */
void
send_header (int s, uint16_t type, uint64_t off, uint32_t len, uint32_t magic)
{
  struct { uint32_t magic; uint16_t flags, type; uint64_t cookie, off;
           uint32_t len; } __attribute__ ((packed)) rq = {
    htobe32 (magic), 0, htobe16 (type), 7, htobe64 (off), htobe32 (len)
  };

  if (send (s, &rq, sizeof rq, MSG_NOSIGNAL) != sizeof rq)
    perror ("send");
}

/* Read one simple reply, and a read's data of len bytes when it
 * succeeded; its error, or -1 if none came. */
int
read_reply (int s, uint32_t len)
{
  struct { uint32_t magic, error; uint64_t cookie; }
    __attribute__ ((packed)) r;

  if (recv (s, &r, sizeof r, MSG_WAITALL) != sizeof r ||
      be32toh (r.magic) != 0x67446698)
    return -1;
  if (r.error == 0 && len > 0 &&
      recv (s, reply_data, len, MSG_WAITALL) != (ssize_t) len)
    return -1;
  return (int) be32toh (r.error);
}

/* A unix socket connected to the server, or -1. */
int
connect_raw (void)
{
  struct sockaddr_un sun = { .sun_family = AF_UNIX };
  int s = socket (AF_UNIX, SOCK_STREAM, 0);

  memcpy (sun.sun_path, sock, strlen (sock) + 1);
  if (connect (s, (struct sockaddr *) &sun, sizeof sun) == -1) {
    close (s);
    return -1;
  }
  return s;
}

/* The backing file itself holds what the clients wrote, and has not
 * grown. */
void
check_file (void)
{
  unsigned char *b = malloc (file_size);
  int fd = open (file, O_RDONLY);
  struct stat st;

  CHECK (fd >= 0 && fstat (fd, &st) == 0 && st.st_size == (off_t) file_size,
         "the backing file's size is %jd, not %zu", (intmax_t) st.st_size,
         file_size);
  CHECK (fd >= 0 && pread (fd, b, file_size, 0) == (ssize_t) file_size,
         "read file");
  for (size_t off = 0; off < file_size; off += 4096)
    if (memcmp (b + off, shadow + off, 4096) != 0) {
      CHECK (0, "backing file differs in block at %zu", off);
      break;
    }
  close (fd);
  free (b);
}
