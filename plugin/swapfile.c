/* nbdkit-swapfile-plugin: serve one swap backing file (file=), or every
 * swap backing file of a directory (dir=, one export per file), over NBD
 * with O_DIRECT I/O through io_uring.
 *
 * This is the only file that talks to nbdkit.  The data path, as a reader
 * should find it here:
 *
 *   NBD request -> swapfile_pread/pwrite/zero/flush (this file: the
 *   connection's export is its handle; take the thread's worker,
 *   describe the request, one call) -> worker_run
 *   (worker.c: drive the request engine to its end) -> the request
 *   engine (request.c: plan the O_DIRECT segments, bounce what is
 *   unaligned, lock and read-modify-write, resume short transfers, retry
 *   transient errors) -> the engine (engine-uring.c: one operation on
 *   the thread's own ring, submit and wait) -> 0, or -1 with errno for
 *   the client.
 *
 * The exports are a set (lib/exports.c, the native server's): file= is
 * a set of one, served under whatever name a client asks for (nbdkit's
 * way); dir= is every fit file of the directory, each under its file
 * name, with the same scan, verification, lock and refusal rules as
 * serve --dir (the native server), re-scanned on SIGHUP.  .open takes a
 * reference to the export a client asked for (if it may open it:
 * allow=NAME=CIDR), .close lets go of it; a removed file's clients get
 * EIO.
 *
 * Lifecycle: .config parses, .config_complete checks the parameters,
 * .get_ready opens, checks and locks the files (lib/backing.c through
 * the set, as the native server does) and picks the engine (before
 * nbdkit forks, so that errors reach the terminal), .after_fork makes
 * the rings and buffers (rings must not cross a fork) and starts the
 * set's monitor thread.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "acl.h"
#include "align.h"
#include "backing.h"
#include "blocksize.h"
#include "engine.h"
#include "exports.h"
#include "harden.h"
#include "log.h"
#include "peer.h"
#include "request.h"
#include "retry.h"
#include "servefiles.h"
#include "swapfile-config.h"

/* Per-worker bounce buffer; a 4 KiB page plus room for large unaligned
 * requests to move in big chunks. */
#define BOUNCE_SIZE (256 * 1024)


/* The name of file='s one export: NBD's default export, which is what
 * NBD_OPT_LIST names (every name a client asks for opens it). */
#define FILE_EXPORT ""

static struct swapfile_config cfg;
static struct exports exports;          /* file=: a set of one; dir= */
static bool single_stdio;               /* nbdkit -s: stdio is the client */
/* dir=, held open while serving: 'nbdswap status' finds which directory
 * this process serves by it (as the kernel names it, whatever dir= was
 * relative to), as it does for serve --native --dir. */
static int served_dir = -1;
static const struct engine *engine;
/* What the workers' buffers serve: an export whose O_DIRECT alignment
 * exceeds them (a file a re-scan added) is refused at .open. */
static uint32_t pool_mem_align, pool_scratch;

/* nbdkit's --log, read from its command line at .load, and the PID
 * then: nbdkit forks into the background after .load. */
static enum log_dest nbdkit_log_dest;
static pid_t load_pid;

static enum log_dest
read_nbdkit_log_dest (void)
{
  char buf[65536];
  size_t len = 0;
  ssize_t n = 0;
  int cmdline = open ("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);

  if (cmdline < 0)
    return LOG_DEST_AUTO;
  while (len < sizeof buf &&
         (n = read (cmdline, buf + len, sizeof buf - len)) > 0)
    len += (size_t) n;
  close (cmdline);
  return log_dest_from_cmdline (buf, len);
}

/* Where nbdkit's own lines go now.  Auto, as nbdkit decides it: stderr,
 * or syslog once nbdkit has forked into the background. */
static enum log_dest
nbdkit_log_now (void)
{
  if (nbdkit_log_dest != LOG_DEST_AUTO)
    return nbdkit_log_dest;
  return getpid () != load_pid ? LOG_DEST_SYSLOG : LOG_DEST_STDERR;
}

/* Route the shared code's log lines.  nbdkit 1.32 offers a plugin
 * errors (nbdkit_error) and debug lines (-v), nothing in between, so
 * warnings and information go where nbdkit logs, at their own level: a
 * warning or the counters in syslog at LOG_ERR would page whoever watches
 * errors.  Errors go to nbdkit_error, except on the journal, where they
 * need their "<3>" to rank above the warnings. */
static void
nbdkit_sink (enum log_level level, const char *line)
{
  enum log_dest dest = nbdkit_log_now ();

  if (level == LOG_LEVEL_DEBUG) {
    nbdkit_debug ("%s", line);
    return;
  }
  if (level == LOG_LEVEL_ERROR &&
      !(dest == LOG_DEST_STDERR && log_stderr_is_journal ())) {
    nbdkit_error ("%s", line);
    return;
  }
  switch (dest) {
  case LOG_DEST_SYSLOG:
    syslog (LOG_DAEMON | log_syslog_priority (level), "swapfile: %s%s",
            log_level_tag (level), line);
    break;
  case LOG_DEST_NULL:
    break;
  default:
    log_stderr_line (level, "nbdkit: swapfile", line);
  }
}

static void
swapfile_load (void)
{
  int r;

  harden_malloc ();
  nbdkit_log_dest = read_nbdkit_log_dest ();
  load_pid = getpid ();
  log_set_sink (nbdkit_sink);
  /* nbdkit makes its connection and worker threads after this, with
   * glibc's default attributes: small stacks keep VmLck small. */
  r = harden_thread_stacks ();
  if (r < 0)
    log_warning ("cannot make thread stacks smaller (%s): every nbdkit "
                 "thread keeps RLIMIT_STACK (ulimit -s) of locked address "
                 "space; lower that limit", strerror (-r));
  config_init (&cfg);
}

static void
swapfile_unload (void)
{
  /* First: nbdkit unmaps this plugin right after .unload, and a late
   * SIGHUP or SIGUSR1 must not jump into unmapped code. */
  signal (SIGHUP, SIG_IGN);
  signal (SIGUSR1, SIG_IGN);
  exports_monitor_stop (&exports);
  /* The rings first: they hold file='s registered file. */
  worker_pool_fini ();
  exports_close (&exports);
  if (served_dir >= 0)
    close (served_dir);
  config_free (&cfg);
  servefiles_remove ();
}

/* file= or dir= as an absolute path in *path (nbdkit changes directory
 * when it forks): 0, or -1 saying why (a missing file, what to make). */
static int
resolve_path (const char *key, const char *value, char **path)
{
  bool dir = strcmp (key, "dir") == 0;
  struct stat st;

  *path = realpath (value, NULL);
  if (*path == NULL && errno == ENOENT && dir) {
    log_error ("dir=%s: no such directory: make it with its files: "
               "'nbdswap create --dir %s NAME... --size SIZE'", value, value);
    return -1;
  }
  if (*path == NULL && errno == ENOENT) {
    log_error ("%s: no such file: create it with "
               "'nbdswap create %s SIZE'", value, value);
    return -1;
  }
  if (*path == NULL) {
    log_error ("realpath: %s: %m", value);
    return -1;
  }
  if (dir && (stat (*path, &st) == -1 || !S_ISDIR (st.st_mode))) {
    log_error ("dir=%s: not a directory: give the directory of the swap "
               "backing files (file= serves one file)", value);
    free (*path);
    *path = NULL;
    return -1;
  }
  return 0;
}

static int
swapfile_config (const char *key, const char *value)
{
  char err[512];
  char *path = NULL;
  int r;

  if (strcmp (key, "file") == 0 || strcmp (key, "dir") == 0) {
    if (resolve_path (key, value, &path) < 0)
      return -1;
    value = path;
  }
  /* stats-file= is written after nbdkit changed directory: anchor it. */
  if (strcmp (key, "stats-file") == 0 && value[0] != '/') {
    char cwd[4096];
    if (getcwd (cwd, sizeof cwd) == NULL
        || asprintf (&path, "%s/%s", cwd, value) == -1) {
      log_error ("stats-file: %m");
      return -1;
    }
    value = path;
  }
  r = config_set (&cfg, key, value, err, sizeof err);
  free (path);
  if (r == -ENOMEM) {
    log_error ("%s: %s", key, strerror (ENOMEM));
    return -1;
  }
  if (r < 0) {
    log_error ("%s", err);
    return -1;
  }
  return 0;
}

static int
swapfile_config_complete (void)
{
  char err[512];

  if (config_check (&cfg, err, sizeof err) < 0) {
    log_error ("%s", err);
    return -1;
  }
  return 0;
}

static void
swapfile_dump_plugin (void)
{
  char why[256];
  int r = engine_uring_probe (why, sizeof why);

  printf ("swapfile_version=%s\n", PACKAGE_VERSION);
  printf ("swapfile_io_uring=%s\n", r == 0 ? "yes" : "no");
  if (r < 0)
    printf ("swapfile_io_uring_reason=%s\n", why);
}

/* io_uring unless denied; pread/pwrite as the loud fallback. */
static int
choose_engine (void)
{
  char why[256];

  if (cfg.engine == ENGINE_PREAD) {
    engine = &engine_pread;
    return 0;
  }
  if (engine_uring_probe (why, sizeof why) == 0) {
    engine = &engine_uring;
    return 0;
  }
  if (cfg.engine == ENGINE_IO_URING) {
    log_error ("engine=io_uring: %s: allow io_uring (e.g. in the "
               "container's seccomp profile), or use engine=auto to fall "
               "back to pread/pwrite", why);
    return -1;
  }
  log_warning ("io_uring is unavailable: %s.  FALLING BACK to the "
               "pread/pwrite engine: it still does O_DIRECT, but each "
               "request blocks a thread.  Allow io_uring to fix this, or set "
               "engine=pread to say this is intended", why);
  engine = &engine_pread;
  return 0;
}

/* dir='s access: the per-export allow lists, or a loud line saying
 * that there are none.  0 or -1 (said). */
static int
dir_access (void)
{
  char err[256];

  /* nbdkit 1.32 gives a plugin no client's TLS identity: the native
   * server's one-identity-one-export rule cannot be had here. */
  if (cfg.nr_export_allow == 0)
    log_warning ("dir=%s: every client that connects may open every "
                 "export: nbdkit tells the plugin no TLS identity, so give "
                 "each export its networks with allow=NAME=CIDR, or serve "
                 "with the native server, 'nbdswap serve --dir' (--tls-psk: "
                 "each identity opens its own)", cfg.dir);
  for (size_t i = 0; i < cfg.nr_export_allow; i++)
    if (exports_allow (&exports, cfg.export_allow[i].name,
                       cfg.export_allow[i].nets, err, sizeof err) < 0) {
      log_error ("allow=%s=%s: %s", cfg.export_allow[i].name,
                 cfg.export_allow[i].nets, err);
      return -1;
    }
  return 0;
}

/* The set: file= as one export (an unfit file stops the start), or
 * every fit file of dir= (an unfit one is left out, logged).  0 or -1
 * (lib/backing.c said what failed). */
static int
open_exports (void)
{
  struct exports_config ec = {
    .dir = cfg.dir,
    .no_direct_fix = ", or add direct=false to serve through the page "
    "cache anyway (not recommended)",
    .page_cache = !cfg.direct,
    .retry = { cfg.retry_timeout, cfg.retry_eio },
    .stats_path = cfg.stats_file,
    .recheck = cfg.recheck,
  };

  exports_init (&exports, &ec);
  if (cfg.dir == NULL)
    return exports_add_file (&exports, FILE_EXPORT, cfg.file) == BACKING_OK
      ? 0 : -1;
  /* If this fails, status shows dir= as given: no cause to stop. */
  served_dir = open (cfg.dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dir_access () < 0 || exports_scan (&exports) < 0)
    return -1;
  if (exports_count (&exports) == 0)
    log_warning ("dir=%s: no export to serve yet: add swap backing files "
                 "('nbdswap create %s/NAME SIZE'), then send SIGHUP",
                 cfg.dir, cfg.dir);
  return 0;
}

/* The start-up line: what is served, how. */
static void
log_serving (void)
{
  const struct backing *b;
  size_t n;

  if (cfg.dir != NULL) {
    n = exports_count (&exports);
    log_info ("serving %zu export%s from %s, engine %s, %s", n,
              n == 1 ? "" : "s", cfg.dir, engine->name,
              cfg.direct ? "O_DIRECT" : "page cache");
    return;
  }
  b = &exports.list->backing;
  nbdkit_debug ("serving %s: %" PRIu64 " bytes, engine %s, %s, alignment "
                "%u (memory %u) from %s", cfg.file, b->size, engine->name,
                cfg.direct ? "O_DIRECT" : "page cache", b->dio.offset,
                b->dio.mem, b->dio.source);
}

/* Open, prove, size, lock and verify the files (lib/backing.c through
 * the set; it says what failed), then pick the engine. */
static int
swapfile_get_ready (void)
{
  /* Until nbdkit starts serving, stdio is unsafe only under -s. */
  single_stdio = !nbdkit_stdio_safe ();
  if (open_exports () < 0 || choose_engine () < 0)
    return -1;
  log_serving ();
  return 0;
}

/* The workers' buffer alignment and scratch block: enough for every
 * export served now, and at least a page for the files a re-scan adds
 * (swapfile_open refuses one that needs more).  Before any connection
 * and the monitor thread: nothing changes the list meanwhile. */
static void
pool_buffers (uint32_t *mem_align, uint32_t *scratch)
{
  uint32_t offset = 1;

  *mem_align = DIO_MEM_MIN;
  for (const struct export *x = exports.list; x != NULL; x = x->next) {
    if (dio_mem_align (&x->backing.dio) > *mem_align)
      *mem_align = dio_mem_align (&x->backing.dio);
    if (x->backing.dio.offset > offset)
      offset = x->backing.dio.offset;
  }
  *scratch = (uint32_t) round_up (offset, *mem_align);
}

/* Make what serving needs, after nbdkit forked: rings do not survive a
 * fork, and nothing may be allocated once requests arrive. */
static int
swapfile_after_fork (void)
{
  struct worker_params wp = {
    /* file='s one file is registered with every ring; dir='s requests
     * each name their export's. */
    .fd = cfg.dir == NULL ? exports.list->backing.fd : -1,
    .queue_depth = cfg.queue_depth,
    .bounce_size = BOUNCE_SIZE,
  };
  int r;

  /* After the fork: locks are not inherited by a child. */
  if (harden_serving_process (cfg.mlock, ", or add mlock=false to run "
                              "unlocked (not recommended)") < 0)
    return -1;
  pool_buffers (&pool_mem_align, &pool_scratch);
  wp.buf_align = pool_mem_align;
  wp.scratch_size = pool_scratch;
  r = worker_pool_init (engine, &wp, cfg.workers);
  if (r < 0) {
    errno = -r;
    if (r == -ENOMEM && engine == &engine_uring)
      log_error ("io_uring: preparing %u workers: %m: without "
                 "CAP_IPC_LOCK, rings count against RLIMIT_MEMLOCK; "
                 "raise it (ulimit -l, LimitMEMLOCK=), or lower workers= "
                 "or queue-depth=, or use engine=pread", cfg.workers);
    else
      log_error ("%s: preparing %u workers: %m", engine->name,
                 cfg.workers);
    return -1;
  }
  /* The monitor thread: re-verify every recheck= seconds and on SIGHUP
   * (which nbdkit leaves at its default, terminate: an operator's "check
   * again" must not stop the swap server), which also re-scans dir=;
   * report stats on SIGUSR1. */
  if (exports_monitor_start (&exports) < 0)
    return -1;
  /* Here, not at .load: only the process that serves (after nbdkit's
   * fork into the background) removes serve's socket and pidfile. */
  servefiles_claim ();
  return 0;
}

/* allow=: turn away TCP clients outside the list before the handshake. */
static int
swapfile_preconnect (int readonly)
{
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;

  if (cfg.allow.n == 0)
    return 0;
  if (nbdkit_peer_name ((struct sockaddr *) &ss, &len) == -1)
    return -1;
  return acl_admit (&cfg.allow, (struct sockaddr *) &ss, "allow=") ? 0 : -1;
}

/* Who the calling connection's client is, for dir='s access rules and
 * log lines: its address (nbdkit 1.32 tells a plugin no TLS identity).
 * file= needs none, but whether the client may be this machine
 * (exports_attach's shared-pool warning) comes from it where nbdkit
 * listens; under -s (stdio is the connection, maybe a pipe, for which
 * asking would log an error) it is not asked: the client may be here. */
static void
client_of_connection (struct sockaddr_storage *ss, struct export_client *who)
{
  socklen_t len = sizeof *ss;
  char why[128];

  who->identity = NULL;
  who->addr = NULL;
  who->file_io = NULL;
  who->here = 0;
  if (cfg.dir != NULL) {
    if (nbdkit_peer_name ((struct sockaddr *) ss, &len) == 0)
      who->addr = (const struct sockaddr *) ss;
  }
  else if (!single_stdio
           && nbdkit_peer_name ((struct sockaddr *) ss, &len) == 0)
    who->here = peer_in_this_kernel ((struct sockaddr *) ss, why, sizeof why)
      ? 1 : -1;
}

/* exports_list's call: one name into nbdkit's list. */
static int
list_add (void *list, const char *name)
{
  return nbdkit_add_export (list, name, NULL);
}

/* NBD_OPT_LIST: with dir=, the exports this client may open; with
 * file=, the default export, what nbdkit answers without this
 * callback. */
static int
swapfile_list_exports (int readonly, int is_tls, struct nbdkit_exports *list)
{
  struct sockaddr_storage ss;
  struct export_client who;
  int r;

  if (cfg.dir == NULL)
    return nbdkit_use_default_export (list);
  client_of_connection (&ss, &who);
  r = exports_list (&exports, &who, list_add, list);
  if (r == -ENOMEM) {
    errno = ENOMEM;
    log_error ("listing the exports: %m");
  }
  return r < 0 ? -1 : 0;
}

/* Can the workers' buffers serve x (a file a re-scan added may need a
 * larger O_DIRECT alignment than those served at start)? */
static bool
fits_workers (const struct export *x)
{
  if (x->target.align <= pool_scratch && x->target.mem_align <= pool_mem_align)
    return true;
  log_error ("export '%s': its O_DIRECT alignment (%" PRIu32 ", memory %"
             PRIu32 ") is larger than the serving threads' buffers (%"
             PRIu32 "): restart the server to serve it", x->name,
             x->target.align, x->target.mem_align, pool_scratch);
  return false;
}

/* A connection's handle: the export it was given, and its entry among
 * that export's clients (nbdswap status lists them). */
struct handle {
  struct export *x;
  struct export_conn conn;
};

/* The export the client asked for, held until .close: with dir=, the
 * one of that name if this client may open it (else refused as the
 * native server refuses, one log line naming both); with file=, the
 * file, whatever the name.  There is no default export with dir=, even
 * with one file: a client asking for "" would be switched to another
 * file whenever the directory changes. */
static void *
swapfile_open (int readonly)
{
  const char *name = cfg.dir != NULL ? nbdkit_export_name () : FILE_EXPORT;
  struct sockaddr_storage ss;
  struct export_client who;
  struct export *x;
  struct handle *h;
  char why[256];
  bool exists;

  if (name == NULL)
    return NULL;
  client_of_connection (&ss, &who);
  x = exports_get (&exports, name, &who, &exists);
  if (x == NULL) {
    exports_log_refusal ("", &who, name, exists, name[0] != '\0' ? ""
                         : ": dir= has no default export: ask for one by "
                         "name (nbdinfo --list names them)");
    return NULL;
  }
  if (!fits_workers (x)) {
    exports_put (&exports, x);
    return NULL;
  }
  h = malloc (sizeof *h);
  if (h == NULL) {
    log_error ("malloc: %m");
    exports_put (&exports, x);
    return NULL;
  }
  h->x = x;
  if (exports_attach (&exports, x, &h->conn, &who, "", why, sizeof why) < 0) {
    exports_put (&exports, x);
    free (h);
    return NULL;
  }
  return h;
}

/* The export a connection's handle holds. */
static struct export *
handle_export (void *handle)
{
  return ((struct handle *) handle)->x;
}

/* The connection is over: a removed export is freed with its last. */
static void
swapfile_close (void *handle)
{
  struct handle *h = handle;

  exports_detach (&exports, h->x, &h->conn);
  exports_put (&exports, h->x);
  free (h);
}

static int64_t
swapfile_get_size (void *handle)
{
  const struct export *x = handle_export (handle);

  return (int64_t) x->target.size;
}

/* The constraints the native server advertises too (blocksize.h): hints
 * for the minimum and preferred sizes (every size and offset works,
 * through the bounce buffer), the maximum enforced by run_request. */
static int
swapfile_block_size (void *handle, uint32_t *minimum, uint32_t *preferred,
                     uint32_t *maximum)
{
  const struct export *x = handle_export (handle);
  struct blocksize bs = blocksize_for (x->backing.dio.offset);

  *minimum = bs.minimum;
  *preferred = bs.preferred;
  *maximum = bs.maximum;
  return 0;
}

static int
swapfile_can_write (void *handle)
{
  const struct export *x = handle_export (handle);

  return x->backing.writable;
}

static int
swapfile_can_flush (void *handle)
{
  return 1;
}

static int
swapfile_can_fua (void *handle)
{
  return NBDKIT_FUA_NATIVE;
}

/* Trim is not offered: punching holes would leave the file needing
 * allocation on the swap-out path, and a trim that does nothing would
 * only cost round trips (see docs/design.md). */
static int
swapfile_can_trim (void *handle)
{
  return 0;
}

static int
swapfile_can_zero (void *handle)
{
  return 1;
}

/* Zeroing writes zeroes: it is never faster than a write, so every
 * fast zero is refused (swapfile_zero).  Offered all the same: nbdkit
 * 1.32.5 does not check the flag against what was offered and aborts
 * (an assertion in backend_zero) when a client sends a fast zero to a
 * plugin that said no, taking every client's swap with it.  The native
 * server offers and refuses it alike. */
static int
swapfile_can_fast_zero (void *handle)
{
  return 1;
}

/* There is no cache: every connection sees the same bytes. */
static int
swapfile_can_multi_conn (void *handle)
{
  return 1;
}

static int
swapfile_can_extents (void *handle)
{
  return 1;
}

/* The calling thread's worker, or -1 for the client. */
static struct worker *
get_worker (const char *op)
{
  struct worker *w = worker_get ();

  if (w == NULL)
    log_error ("%s: no I/O worker for this thread: %m: the server "
               "could not make one while serving; give it the memory "
               "(RLIMIT_MEMLOCK for rings) or raise workers= so that all "
               "are made at start", op);
  return w;
}

/* Carry out one request on the calling thread's worker: 0, or -1 with
 * errno for the client (the request engine logged why).  A read or write
 * over the maximum advertised is refused here: nbdkit 1.32 passes on
 * anything up to its own 64 MiB.  Like every refusal before the request
 * engine, by either server, it is not counted. */
static int
run_request (struct export *x, const char *op, enum req_cmd cmd, void *buf,
             uint32_t count, uint64_t offset, uint32_t flags)
{
  struct worker *w;
  struct req r = {
    .cmd = cmd, .offset = offset, .count = count, .data = buf,
    .fua = flags & NBDKIT_FLAG_FUA,
  };
  int err;

  if ((cmd == REQ_READ || cmd == REQ_WRITE) &&
      (err = blocksize_check (op, count)) < 0) {
    errno = -err;
    return -1;
  }
  w = get_worker (op);
  if (w == NULL)
    return -1;
  err = worker_run (&x->target, x->backing.fd, w, &r);
  if (err == 0)
    return 0;
  errno = -err;
  return -1;
}

static int
swapfile_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
                uint32_t flags)
{
  return run_request (handle_export (handle), "pread", REQ_READ, buf, count,
                      offset, 0);
}

static int
swapfile_pwrite (void *handle, const void *buf, uint32_t count,
                 uint64_t offset, uint32_t flags)
{
  return run_request (handle_export (handle), "pwrite", REQ_WRITE,
                      (void *) buf, count, offset, flags);
}

/* Write zeroes from the zero page; NBDKIT_FLAG_MAY_TRIM is ignored on
 * purpose: the file must stay allocated.  A fast zero is refused with
 * ENOTSUP, the protocol's "do it the slow way" (not counted, as no
 * refusal before the request engine is). */
static int
swapfile_zero (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  if (flags & NBDKIT_FLAG_FAST_ZERO) {
    errno = ENOTSUP;
    return -1;
  }
  return run_request (handle_export (handle), "zero", REQ_ZERO, NULL, count,
                      offset, flags);
}

static int
swapfile_flush (void *handle, uint32_t flags)
{
  return run_request (handle_export (handle), "flush", REQ_FLUSH, NULL, 0, 0,
                      0);
}

/* The file was verified fully allocated: all of it is data. */
static int
swapfile_extents (void *handle, uint32_t count, uint64_t offset,
                  uint32_t flags, struct nbdkit_extents *extents)
{
  return nbdkit_add_extent (extents, offset, count, 0);
}

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

static struct nbdkit_plugin plugin = {
  .name = "swapfile",
  .longname = "nbdswap swap backing file plugin",
  .version = PACKAGE_VERSION,
  .description = "Serve swap backing files with O_DIRECT io_uring I/O",
  .load = swapfile_load,
  .unload = swapfile_unload,
  .config = swapfile_config,
  .config_complete = swapfile_config_complete,
  .config_help = config_help_text,
  .magic_config_key = "file",
  .dump_plugin = swapfile_dump_plugin,
  .get_ready = swapfile_get_ready,
  .after_fork = swapfile_after_fork,
  .preconnect = swapfile_preconnect,
  .list_exports = swapfile_list_exports,
  .open = swapfile_open,
  .close = swapfile_close,
  .get_size = swapfile_get_size,
  .block_size = swapfile_block_size,
  .can_write = swapfile_can_write,
  .can_flush = swapfile_can_flush,
  .can_fua = swapfile_can_fua,
  .can_trim = swapfile_can_trim,
  .can_zero = swapfile_can_zero,
  .can_fast_zero = swapfile_can_fast_zero,
  .can_multi_conn = swapfile_can_multi_conn,
  .can_extents = swapfile_can_extents,
  .pread = swapfile_pread,
  .pwrite = swapfile_pwrite,
  .zero = swapfile_zero,
  .flush = swapfile_flush,
  .extents = swapfile_extents,
  .errno_is_preserved = 1,
};

NBDKIT_REGISTER_PLUGIN (plugin)
