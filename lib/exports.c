/* nbdswap: the exports of a serving process (see include/exports.h). */
#include <config.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exports.h"
#include "log.h"
#include "monitor.h"
#include "peer.h"

/* A per-export allow list (exports_allow), kept by name: it applies to
 * a file that appears later too. */
struct export_allow {
  char *name;
  struct acl acl;
  struct export_allow *next;
};

/* One identity that may open one more export (exports_grant). */
struct export_grant {
  char *identity;
  char *name;
  struct export_grant *next;
};

void
exports_init (struct exports *s, const struct exports_config *c)
{
  memset (s, 0, sizeof *s);
  s->cfg = *c;
  pthread_mutex_init (&s->lock, NULL);
}

/* x, dropped and no longer used, leaves the draining list (if on it)
 * and its counters go to the set's retired sum: in one hold of the set's
 * lock (the caller's), so that a report counts them exactly once. */
static void
export_retire (struct exports *s, struct export *x)
{
  struct export **p;

  for (p = &s->draining; *p != NULL && *p != x; p = &(*p)->next)
    ;
  if (*p == x)
    *p = x->next;
  x->next = NULL;
  stats_add (&s->retired, &x->stats);
}

/* Free x: its target, its descriptor (and so its owner lock), its
 * names.  x is retired: in no list, no client uses it. */
static void
export_free (struct exports *s, struct export *x)
{
  req_target_fini (&x->target);
  backing_close (&x->backing);
  free (x->name);
  free (x->path);
  free (x);
}

/* Open, claim and prepare the request target of a new export; NULL
 * with *status set (backing.c logged why) when it is not served.  The
 * caller adds it to the list. */
static struct export *
export_new (struct exports *s, const char *name, const char *path,
            enum backing_status *status, bool *lock_busy)
{
  struct export *x = calloc (1, sizeof *x);
  struct backing *b;
  struct stat st;
  int r;

  *lock_busy = false;
  *status = BACKING_SYSTEM;
  if (x == NULL) {
    log_error ("%s: %m", path);
    return NULL;
  }
  b = &x->backing;
  backing_init (b);             /* no descriptor, before any goto error */
  if ((x->name = strdup (name)) == NULL || (x->path = strdup (path)) == NULL) {
    log_error ("%s: %m", path);
    goto error;
  }
  b->path = x->path;
  b->direct = !s->cfg.page_cache;
  b->read_write_only = s->cfg.read_write_only;
  b->no_direct_fix = s->cfg.no_direct_fix;
  b->stats = &x->stats;
  b->refuse = &x->target.refuse;
  *status = backing_open (b);
  if (*status == BACKING_OK)
    *status = backing_claim (b);
  *lock_busy = b->lock_busy;
  if (*status != BACKING_OK)
    goto error;
  *status = BACKING_SYSTEM;
  if (fstat (b->fd, &st) == -1) {
    log_error ("fstat: %s: %m", path);
    goto error;
  }
  x->dev = st.st_dev;
  x->ino = st.st_ino;
  /* Through the page cache any buffer does as it is. */
  r = req_target_init (&x->target, x->path, b->size, b->dio.offset,
                       b->direct ? dio_mem_align (&b->dio) : 1,
                       &s->cfg.retry);
  if (r < 0) {
    errno = -r;
    log_error ("%s: preparing the request engine: %m", path);
    goto error;
  }
  x->target.stats = &x->stats;
  if (S_ISBLK (st.st_mode))
    x->target.max_direct = REQ_BDEV_MAX_DIRECT;
  *status = BACKING_OK;
  return x;

 error:
  if (x != NULL) {
    backing_close (&x->backing);
    free (x->name);
    free (x->path);
    free (x);
  }
  return NULL;
}

/* Put x in the list, which is kept in name order: NBD_OPT_LIST answers
 * the same names in the same order whenever they were added. */
static void
export_insert (struct exports *s, struct export *x)
{
  struct export **p;

  pthread_mutex_lock (&s->lock);
  for (p = &s->list; *p != NULL && strcmp ((*p)->name, x->name) < 0;
       p = &(*p)->next)
    ;
  x->next = *p;
  *p = x;
  pthread_mutex_unlock (&s->lock);
}

enum backing_status
exports_add_file (struct exports *s, const char *name, const char *path)
{
  enum backing_status status;
  bool busy;
  struct export *x = export_new (s, name, path, &status, &busy);

  if (x == NULL)
    return status;
  export_insert (s, x);
  return BACKING_OK;
}

/* Take x out of the set: no new client gets it; the clients that use
 * it get EIO from now on, and the last one to let go frees it (until
 * then its counters count in the sum from the draining list). */
static void
export_drop (struct exports *s, struct export *x, const char *why)
{
  struct export **p;
  bool unused;

  atomic_fetch_or (&x->target.refuse, REQ_REFUSE_ALL);
  pthread_mutex_lock (&s->lock);
  for (p = &s->list; *p != x; p = &(*p)->next)
    ;
  *p = x->next;
  x->next = NULL;
  x->removed = true;
  unused = x->refs == 0;
  if (!unused) {
    x->next = s->draining;
    s->draining = x;
    log_warning ("export '%s': %s: no longer served; the %u connection%s "
                 "still using it get EIO", x->name, why, x->refs,
                 x->refs == 1 ? "" : "s");
  }
  else {
    export_retire (s, x);
    log_info ("export '%s': %s: no longer served", x->name, why);
  }
  pthread_mutex_unlock (&s->lock);
  if (unused)
    export_free (s, x);
}

size_t
exports_count (struct exports *s)
{
  size_t n = 0;

  pthread_mutex_lock (&s->lock);
  for (struct export *x = s->list; x != NULL; x = x->next)
    n++;
  pthread_mutex_unlock (&s->lock);
  return n;
}

/* The served export called name, or NULL.  The caller holds the lock,
 * or is the scanning thread. */
static struct export *
find (const struct exports *s, const char *name)
{
  for (struct export *x = s->list; x != NULL; x = x->next)
    if (strcmp (x->name, name) == 0)
      return x;
  return NULL;
}

static struct export_refused *
find_refused (const struct exports *s, const char *name)
{
  for (struct export_refused *f = s->refused; f != NULL; f = f->next)
    if (strcmp (f->name, name) == 0)
      return f;
  return NULL;
}

/* Is the file called name (its status st) one a directory serves: a
 * regular file or a block device, not hidden?  Other kinds are passed
 * over without a word (a directory, a socket, a dangling link). */
static bool
is_candidate (const char *name, const struct stat *st)
{
  return name[0] != '.' && (S_ISREG (st->st_mode) || S_ISBLK (st->st_mode));
}

/* Has the refused file f changed since it was refused (or was its
 * cause a lock another process may since have let go of)? */
static bool
refused_changed (const struct export_refused *f, const struct stat *st)
{
  return f->lock_busy || f->dev != st->st_dev || f->ino != st->st_ino
    || f->size != st->st_size || f->ctime.tv_sec != st->st_ctim.tv_sec
    || f->ctime.tv_nsec != st->st_ctim.tv_nsec;
}

/* Remember that name (st) was not served; replaces an older record. */
static void
remember_refused (struct exports *s, const char *name, const struct stat *st,
                  bool lock_busy)
{
  struct export_refused *f = find_refused (s, name);

  if (f == NULL) {
    f = calloc (1, sizeof *f);
    if (f == NULL || (f->name = strdup (name)) == NULL) {
      free (f);
      return;                   /* tried again at the next scan: no harm */
    }
    f->next = s->refused;
    s->refused = f;
  }
  f->dev = st->st_dev;
  f->ino = st->st_ino;
  f->size = st->st_size;
  f->ctime = st->st_ctim;
  f->lock_busy = lock_busy;
}

/* Forget the refused file called name (served now, or gone). */
static void
forget_refused (struct exports *s, const char *name)
{
  struct export_refused **p, *f;

  for (p = &s->refused; *p != NULL; p = &(*p)->next)
    if (strcmp ((*p)->name, name) == 0) {
      f = *p;
      *p = f->next;
      free (f->name);
      free (f);
      return;
    }
}

/* One directory entry: served already (and still the same file), new,
 * or refused before. */
static void
scan_one (struct exports *s, int dirfd, const char *name)
{
  struct export_refused *f;
  struct export *x = find (s, name);
  enum backing_status status;
  char path[PATH_MAX];
  struct stat st;
  bool busy;

  if (fstatat (dirfd, name, &st, 0) == -1 || !is_candidate (name, &st))
    return;
  if (x != NULL && x->dev == st.st_dev && x->ino == st.st_ino)
    return;
  if (x != NULL)
    export_drop (s, x, "replaced by another file");
  f = find_refused (s, name);
  if (f != NULL && !refused_changed (f, &st))
    return;
  if ((size_t) snprintf (path, sizeof path, "%s/%s", s->cfg.dir, name)
      >= sizeof path) {
    log_error ("export '%s': not served: its path is longer than %zu "
               "bytes; serve a directory with a shorter path", name,
               sizeof path - 1);
    return;
  }
  x = export_new (s, name, path, &status, &busy);
  if (x == NULL) {
    log_error ("export '%s': not served (the lines above say why); the "
               "other exports are served", name);
    /* Only an unfit file waits for a change; a system error (memory, an
     * I/O error of the probe) is tried again at the next scan. */
    if (status == BACKING_UNFIT)
      remember_refused (s, name, &st, busy);
    return;
  }
  forget_refused (s, name);
  export_insert (s, x);
  log_info ("export '%s': serving %s (%" PRIu64 " bytes)", name, path,
            x->backing.size);
}

/* Drop the exports whose files are gone from the directory, and forget
 * refused files that are gone. */
static void
scan_gone (struct exports *s, int dirfd)
{
  struct export *x, *next;
  struct export_refused *f, *fnext;
  struct stat st;

  for (x = s->list; x != NULL; x = next) {
    next = x->next;
    if (fstatat (dirfd, x->name, &st, 0) == -1)
      export_drop (s, x, "its file was removed");
    else if (st.st_dev != x->dev || st.st_ino != x->ino)
      export_drop (s, x, "replaced by another file");
  }
  for (f = s->refused; f != NULL; f = fnext) {
    fnext = f->next;
    if (fstatat (dirfd, f->name, &st, 0) == -1)
      forget_refused (s, f->name);
  }
}

/* alphasort's order, for stable names in logs and in NBD_OPT_LIST. */
static int
by_name (const struct dirent **a, const struct dirent **b)
{
  return strcmp ((*a)->d_name, (*b)->d_name);
}

int
exports_scan (struct exports *s)
{
  struct dirent **ents;
  int dirfd, n;

  dirfd = open (s->cfg.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd == -1) {
    int err = errno;

    log_error ("--dir %s: %m: give a directory of swap backing files "
               "made by 'nbdswap create'", s->cfg.dir);
    return -err;
  }
  n = scandirat (dirfd, ".", &ents, NULL, by_name);
  if (n < 0) {
    int err = errno;

    log_error ("--dir %s: reading the directory: %m", s->cfg.dir);
    close (dirfd);
    return -err;
  }
  scan_gone (s, dirfd);
  for (int i = 0; i < n; i++) {
    scan_one (s, dirfd, ents[i]->d_name);
    free (ents[i]);
  }
  free (ents);
  close (dirfd);
  return 0;
}

/* The allow list of the export called name, or NULL. */
static const struct acl *
allow_of (const struct exports *s, const char *name)
{
  for (const struct export_allow *a = s->allow; a != NULL; a = a->next)
    if (strcmp (a->name, name) == 0)
      return &a->acl;
  return NULL;
}

/* Was identity granted the export called name? */
static bool
granted (const struct exports *s, const char *identity, const char *name)
{
  for (const struct export_grant *g = s->grants; g != NULL; g = g->next)
    if (strcmp (g->identity, identity) == 0 && strcmp (g->name, name) == 0)
      return true;
  return false;
}

int
exports_grant (struct exports *s, const char *identity, const char *name)
{
  struct export_grant *g = calloc (1, sizeof *g);

  if (g == NULL || (g->identity = strdup (identity)) == NULL
      || (g->name = strdup (name)) == NULL) {
    if (g != NULL)
      free (g->identity);
    free (g);
    return -ENOMEM;
  }
  g->next = s->grants;
  s->grants = g;
  return 0;
}

/* One line of a grants file: "IDENTITY NAME...".  0 or -errno. */
static int
grant_line (struct exports *s, char *line, const char *path, unsigned nr,
            char *err, size_t errlen)
{
  char *save = NULL, *identity, *name;
  unsigned names = 0;
  int r;

  identity = strtok_r (line, " \t\n", &save);
  if (identity == NULL || identity[0] == '#')
    return 0;
  while ((name = strtok_r (NULL, " \t\n", &save)) != NULL) {
    if ((r = exports_grant (s, identity, name)) < 0) {
      snprintf (err, errlen, "%s", strerror (-r));
      return r;
    }
    names++;
  }
  if (names == 0) {
    snprintf (err, errlen, "%s line %u: '%s' names no export: write "
              "'IDENTITY NAME...'", path, nr, identity);
    return -EINVAL;
  }
  return 0;
}

int
exports_read_grants (struct exports *s, const char *path, char *err,
                     size_t errlen)
{
  FILE *fp = fopen (path, "re");
  char line[4096];
  unsigned nr = 0;
  int r = 0;

  if (fp == NULL) {
    r = -errno;
    snprintf (err, errlen, "%s: %s: give a readable file of 'IDENTITY "
              "NAME...' lines", path, strerror (-r));
    return r;
  }
  while (r == 0 && fgets (line, sizeof line, fp) != NULL) {
    /* Never read the rest of a long line as a grant of its own. */
    if (strchr (line, '\n') == NULL && !feof (fp)) {
      snprintf (err, errlen, "%s line %u: longer than %zu bytes: split "
                "the identity's exports over several lines", path, nr + 1,
                sizeof line - 2);
      r = -EINVAL;
      break;
    }
    r = grant_line (s, line, path, ++nr, err, errlen);
  }
  fclose (fp);
  return r;
}

bool
exports_may_open (const struct exports *s, const struct export *x,
                  const struct export_client *who)
{
  const struct acl *acl = allow_of (s, x->name);

  /* TLS-PSK: the identity is the export's name.  Without TLS-PSK there
   * is no identity, and the address decides. */
  if (s->cfg.psk && (who->identity == NULL
                     || (strcmp (who->identity, x->name) != 0
                         && !granted (s, who->identity, x->name))))
    return false;
  if (acl != NULL && acl->n > 0)
    return who->addr != NULL && acl_allows (acl, who->addr);
  return true;
}

struct export *
exports_get (struct exports *s, const char *name,
             const struct export_client *who, bool *exists)
{
  struct export *x;

  pthread_mutex_lock (&s->lock);
  x = find (s, name);
  *exists = x != NULL;
  if (x != NULL && exports_may_open (s, x, who))
    x->refs++;
  else
    x = NULL;
  pthread_mutex_unlock (&s->lock);
  return x;
}

void
exports_put (struct exports *s, struct export *x)
{
  bool gone;

  if (x == NULL)
    return;
  pthread_mutex_lock (&s->lock);
  gone = --x->refs == 0 && x->removed;
  if (gone)
    export_retire (s, x);
  pthread_mutex_unlock (&s->lock);
  if (gone)
    export_free (s, x);
}

/* Are a and b connections of one client: the same TLS-PSK identity, or
 * without identities the same address ("" for every local one)? */
static bool
same_client (const struct export_conn *a, const struct export_conn *b)
{
  if (a->identity[0] != '\0' || b->identity[0] != '\0')
    return strcmp (a->identity, b->identity) == 0;
  return strcmp (a->address, b->address) == 0;
}

/* A client for a log line: its address ("a local client" for none),
 * with its TLS-PSK identity ("" for none) when it has one. */
static void
describe_client (const char *address, const char *identity, char *buf,
                 size_t len)
{
  const char *addr = address[0] != '\0' ? address : "a local client";

  if (identity[0] != '\0')
    snprintf (buf, len, "%s (PSK identity '%s')", addr, identity);
  else
    snprintf (buf, len, "%s", addr);
}

/* exports_attach's warning, once per export: swap of this machine
 * through x can stall (backing.h, backing_shares_swap_pool). */
static void
pool_warn (struct exports *s, struct export *x,
           const struct export_client *who, const char *tag)
{
  char what[160], why[128];
  bool said;

  if (who->here < 0 || !backing_shares_swap_pool (&x->backing, what,
                                                       sizeof what))
    return;
  pthread_mutex_lock (&s->lock);
  said = x->pool_warned;
  pthread_mutex_unlock (&s->lock);
  if (said
      || (who->here == 0 && !peer_in_this_kernel (who->addr, why, sizeof why)))
    return;
  pthread_mutex_lock (&s->lock);
  said = x->pool_warned;
  x->pool_warned = true;
  pthread_mutex_unlock (&s->lock);
  if (!said)
    log_warning ("%sexport '%s': %s is %s%s the kernel pool that this "
                 "machine's swap-outs hold until the server answers: if "
                 "this machine swaps through it, global memory exhaustion "
                 "can stall both; for swap of this machine, serve a block "
                 "device (a partition or an LVM volume of a disk, by its "
                 "node in /dev; docs/local-swap.md)",
                 tag, x->name, x->path, what,
                 x->backing.verified.type == VERIFY_TYPE_REGULAR
                 ? ", whose direct I/O takes its bios from"
                 : ": its I/O can wait for");
}

int
exports_attach (struct exports *s, struct export *x, struct export_conn *c,
                const struct export_client *who, const char *tag, char *why,
                size_t whylen)
{
  const struct sockaddr *sa = who->addr;
  const struct export_conn *other;
  char client[384], holder[384];

  memset (c, 0, sizeof *c);
  if (sa != NULL && (sa->sa_family == AF_INET || sa->sa_family == AF_INET6)) {
    acl_peer_name (sa, c->address, sizeof c->address);
    c->port = ntohs (sa->sa_family == AF_INET
                     ? ((const struct sockaddr_in *) sa)->sin_port
                     : ((const struct sockaddr_in6 *) sa)->sin6_port);
  }
  snprintf (c->identity, sizeof c->identity, "%s",
            who->identity ? who->identity : "");
  snprintf (c->file_io, sizeof c->file_io, "%s",
            who->file_io ? who->file_io : "");
  pthread_mutex_lock (&s->lock);
  for (other = x->conns; other != NULL; other = other->next)
    if (!same_client (other, c))
      break;
  if (other == NULL) {
    c->next = x->conns;
    x->conns = c;
    x->nr_conns++;
    x->conns_total++;
  }
  else
    describe_client (other->address, other->identity, holder,
                     sizeof holder);
  pthread_mutex_unlock (&s->lock);
  if (other == NULL) {
    pool_warn (s, x, who, tag);
    return 0;
  }
  /* Two clients swapping to one file overwrite each other's pages. */
  describe_client (c->address, c->identity, client, sizeof client);
  log_error ("%sclient %s asked for export '%s': refused (in use by %s; "
             "one client at a time writes to an export): detach it there "
             "first, or wait until the server sees that client's "
             "connections end", tag, client, x->name, holder);
  snprintf (why, whylen, "export '%s' is in use by another client: one "
            "client at a time", x->name);
  return -EBUSY;
}

void
exports_detach (struct exports *s, struct export *x, struct export_conn *c)
{
  struct export_conn **p;

  pthread_mutex_lock (&s->lock);
  for (p = &x->conns; *p != NULL && *p != c; p = &(*p)->next)
    ;
  if (*p == c) {
    *p = c->next;
    x->nr_conns--;
  }
  pthread_mutex_unlock (&s->lock);
}

/* Who asks, for a log line (describe_client's form). */
static void
client_name (const struct export_client *who, char *buf, size_t len)
{
  char addr[INET6_ADDRSTRLEN] = "";

  if (who->addr != NULL && who->addr->sa_family != AF_UNIX)
    acl_peer_name (who->addr, addr, sizeof addr);
  describe_client (addr, who->identity ? who->identity : "", buf, len);
}

void
exports_log_refusal (const char *tag, const struct export_client *who,
                     const char *name, bool exists, const char *tail)
{
  char client[384], safe[257];

  client_name (who, client, sizeof client);
  log_error ("%sclient %s asked for export '%s': refused (%s)%s", tag,
             client, log_escape (name, safe, sizeof safe),
             exists ? "not one this client may open" : "no such export",
             tail);
}

int
exports_list (struct exports *s, const struct export_client *who,
              int (*fn) (void *arg, const char *name), void *arg)
{
  struct export **held;
  size_t n = 0, i;
  int r = 0;

  /* fn writes to its client, which may take until the negotiation's
   * deadline: never under the lock (every other client's lookup and the
   * monitor's re-scan would wait for it).  The exports this client may
   * open are held for the while instead, so that their names stay. */
  pthread_mutex_lock (&s->lock);
  for (struct export *x = s->list; x != NULL; x = x->next)
    n++;
  held = calloc (n ? n : 1, sizeof *held);
  if (held == NULL) {
    pthread_mutex_unlock (&s->lock);
    return -ENOMEM;
  }
  n = 0;
  for (struct export *x = s->list; x != NULL; x = x->next)
    if (exports_may_open (s, x, who)) {
      x->refs++;
      held[n++] = x;
    }
  pthread_mutex_unlock (&s->lock);
  for (i = 0; i < n && r == 0; i++)
    r = fn (arg, held[i]->name);
  for (i = 0; i < n; i++)
    exports_put (s, held[i]);
  free (held);
  return r;
}

int
exports_allow (struct exports *s, const char *name, const char *list,
               char *err, size_t errlen)
{
  struct export_allow *a;
  int r;

  for (a = s->allow; a != NULL; a = a->next)
    if (strcmp (a->name, name) == 0)
      break;
  if (a == NULL) {
    a = calloc (1, sizeof *a);
    if (a == NULL || (a->name = strdup (name)) == NULL) {
      free (a);
      snprintf (err, errlen, "%s", strerror (ENOMEM));
      return -ENOMEM;
    }
    a->next = s->allow;
    s->allow = a;
  }
  r = acl_parse (&a->acl, list, err, errlen);
  return r;
}

void
exports_recheck (struct exports *s, bool rescan)
{
  struct export *x;

  if (rescan && s->cfg.dir != NULL)
    exports_scan (s);
  /* The scanning thread (this one) alone changes the list: it may walk
   * it without the lock while each verification runs. */
  for (x = s->list; x != NULL; x = x->next)
    backing_recheck (&x->backing);
}

/* The monitor's calls. */
static void
recheck_cb (void *arg, bool requested)
{
  exports_recheck (arg, requested);
}

static void
report_stats_cb (void *arg)
{
  exports_report_stats (arg);
}

enum backing_status
exports_monitor_start (struct exports *s)
{
  struct monitor_params mp = {
    .recheck = s->cfg.recheck, .recheck_fn = recheck_cb,
    .report_stats = report_stats_cb, .arg = s,
  };

  if (monitor_serve (&mp) < 0)
    return BACKING_SYSTEM;
  s->monitoring = true;
  return BACKING_OK;
}

void
exports_monitor_stop (struct exports *s)
{
  monitor_stop ();
  if (s->monitoring)
    exports_report_stats (s);
  s->monitoring = false;
}

void
exports_close (struct exports *s)
{
  struct export_refused *f;
  struct export_allow *a;
  struct export_grant *g;
  struct export *x;

  while ((x = s->list) != NULL) {
    s->list = x->next;
    export_retire (s, x);
    export_free (s, x);
  }
  while ((f = s->refused) != NULL) {
    s->refused = f->next;
    free (f->name);
    free (f);
  }
  while ((g = s->grants) != NULL) {
    s->grants = g->next;
    free (g->identity);
    free (g->name);
    free (g);
  }
  while ((a = s->allow) != NULL) {
    s->allow = a->next;
    acl_free (&a->acl);
    free (a->name);
    free (a);
  }
}
