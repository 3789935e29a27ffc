/* nbdswap: the counters of a set of exports (exports_report_stats, see
 * include/exports.h).
 *
 * What the report shows is copied in one short hold of the set's lock
 * (atomic loads and a few small copies, no I/O), so that the sum counts
 * every export exactly once, whether it is served, dropped while clients
 * still use it, or freed; the log lines and the JSON file are written
 * after the lock is let go, so a slow log never holds up a client's
 * lookup.
 */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exports.h"
#include "log.h"
#include "verify-internal.h"

/* One export as the report shows it. */
struct report_export {
  const struct export *x;       /* its name, path, size: served, so the
                                 * scanning thread (this one) may read them */
  struct stats stats;
  unsigned nr_conns;            /* transmitting now */
  uint64_t conns_total;         /* ... and since it was served */
  struct export_conn *conns;    /* copies of the first nr_copied (in
                                 * the report's pool) */
  unsigned nr_copied;
};

struct report {
  struct stats sum;
  struct report_export *ex;     /* a directory's exports, or NULL */
  size_t n;
  bool per_export;              /* ex holds every export (a directory) */
  struct export_conn *pool;     /* room for the clients' copies */
  size_t pool_len, pool_used;
};

/* Copy x into e, its clients into r's pool while it has room (the
 * others are only counted): the caller holds the set's lock. */
static void
copy_export (struct report *r, struct report_export *e,
             const struct export *x)
{
  const struct export_conn *c;

  e->x = x;
  stats_add (&e->stats, &x->stats);
  e->nr_conns = x->nr_conns;
  e->conns_total = x->conns_total;
  e->conns = r->pool + r->pool_used;
  for (c = x->conns; c != NULL && r->pool_used < r->pool_len; c = c->next) {
    r->pool[r->pool_used++] = *c;
    e->nr_copied++;
  }
}

/* How many connections transmit now, in all exports. */
static size_t
count_conns (struct exports *s)
{
  size_t n = 0;

  pthread_mutex_lock (&s->lock);
  for (const struct export *x = s->list; x != NULL; x = x->next)
    n += x->nr_conns;
  pthread_mutex_unlock (&s->lock);
  return n;
}

/* Fill r: the sum, and each export of a directory.  Nothing is
 * allocated under the set's lock (the monitor thread is an I/O flusher
 * that must not wait on reclaim while clients wait on the lock): the
 * room for the clients is counted first, with a margin for those that
 * come meanwhile. */
static void
report_take (struct exports *s, struct report *r)
{
  struct export *x;
  size_t n = 0;

  memset (r, 0, sizeof *r);
  /* The scanning thread (this one) alone changes the list: it may count
   * it without the lock. */
  for (x = s->list; x != NULL; x = x->next)
    n++;
  if (s->cfg.dir != NULL && n > 0) {
    r->ex = calloc (n, sizeof *r->ex);
    r->pool_len = count_conns (s) + 16;
    r->pool = calloc (r->pool_len, sizeof *r->pool);
    if (r->pool == NULL)
      r->pool_len = 0;
  }
  r->per_export = s->cfg.dir != NULL && (n == 0 || r->ex != NULL);
  /* What no export counts: the rings' waits (retry_pause). */
  stats_add (&r->sum, &stats);
  pthread_mutex_lock (&s->lock);
  stats_add (&r->sum, &s->retired);
  for (x = s->draining; x != NULL; x = x->next)
    stats_add (&r->sum, &x->stats);
  for (x = s->list; x != NULL; x = x->next) {
    stats_add (&r->sum, &x->stats);
    if (r->ex != NULL)
      copy_export (r, &r->ex[r->n++], x);
  }
  pthread_mutex_unlock (&s->lock);
}

static void
report_free (struct report *r)
{
  free (r->pool);
  free (r->ex);
}

/* "key":"value", or "key":null for an empty value. */
static void
json_member (FILE *fp, const char *key, const char *value)
{
  fprintf (fp, "\"%s\":", key);
  if (value[0] != '\0')
    json_print_string (fp, value);
  else
    fputs ("null", fp);
}

/* One client: its address and port (null for a local client), its
 * TLS-PSK identity (null without). */
static void
json_client (FILE *fp, const struct export_conn *c)
{
  fputc ('{', fp);
  json_member (fp, "address", c->address);
  if (c->address[0] != '\0')
    fprintf (fp, ",\"port\":%u,", c->port);
  else
    fputs (",\"port\":null,", fp);
  json_member (fp, "identity", c->identity);
  fputc (',', fp);
  json_member (fp, "file_io", c->file_io);
  fputc ('}', fp);
}

/* One export's object in the "exports" array. */
static void
json_export (FILE *fp, const struct report_export *e)
{
  char fields[1024];

  fputc ('{', fp);
  json_member (fp, "name", e->x->name);
  fputc (',', fp);
  json_member (fp, "path", e->x->path);
  fprintf (fp, ",\"size\":%" PRIu64 ",\"connections\":%u,"
           "\"connections_total\":%" PRIu64 ",\"clients\":[",
           e->x->backing.size, e->nr_conns, e->conns_total);
  for (unsigned i = 0; i < e->nr_copied; i++) {
    if (i)
      fputc (',', fp);
    json_client (fp, &e->conns[i]);
  }
  stats_format_fields (&e->stats, fields, sizeof fields);
  fprintf (fp, "],\"counters\":{%s}}", fields);
}

/* stats_write_file_more's: the "exports" array after the sum. */
static void
json_exports (FILE *fp, void *arg)
{
  const struct report *r = arg;

  fputs (",\"exports\":[", fp);
  for (size_t i = 0; i < r->n; i++) {
    if (i)
      fputc (',', fp);
    json_export (fp, &r->ex[i]);
  }
  fputc (']', fp);
}

void
exports_report_stats (struct exports *s)
{
  struct report r;
  char line[1024];

  report_take (s, &r);
  for (size_t i = 0; i < r.n; i++) {
    stats_format_line (&r.ex[i].stats, line, sizeof line);
    log_info ("stats: export '%s': %s", r.ex[i].x->name, line);
  }
  stats_format_line (&r.sum, line, sizeof line);
  log_info ("stats: %s", line);
  if (s->cfg.report_extra != NULL)
    s->cfg.report_extra ();
  if (s->cfg.stats_path != NULL
      && stats_write_file_more (&r.sum, s->cfg.stats_path,
                                r.per_export ? json_exports : NULL,
                                &r) == -1)
    log_error ("stats-file: %s: %m", s->cfg.stats_path);
  report_free (&r);
}
