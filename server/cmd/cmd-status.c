/* nbdswap status [FILE...] [--json | --prometheus FILE]: what is served
 * and attached, as a table, as JSON or as a node_exporter textfile. */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "nbdswap.h"
#include "status.h"
#include "verify-internal.h"

/* The subcommand's --help text. */
static void
usage (void)
{
  printf ("\nUsage:\n"
          " nbdswap status [FILE...] [--json | --prometheus OUTFILE]\n"
          "\nShow the swap servers running here (nbdkit with the swapfile "
          "plugin, or\n'nbdswap serve --native': PID, backing file, socket "
          "or address, and their\ncounters, fresh: each server is asked "
          "with SIGUSR1 to write its stats file),\nthe connected nbd devices "
          "and their use as swap (/proc/swaps).  With FILE\narguments, only "
          "the servers of those backing files (or of the directory\nholding "
          "them).  A server of a directory ('serve --native --dir', the\n"
          "plugin's dir=) has a row per export, with its clients.\n"
          "\nOptions:\n"
          " -j, --json                 one JSON object (stable keys)\n"
          " -p, --prometheus OUTFILE   write node_exporter's textfile format "
          "to OUTFILE\n"
          "                            (atomically: OUTFILE.tmp, then "
          "rename)\n"
          " -h, --help                 display this help\n"
          "\nExit status: 0 shown, 1 usage error, 3 system error (cannot read "
          "/proc or\nwrite OUTFILE).\n");
}

/* "unix:PATH", "tcp:ADDR:PORT" or "systemd socket". */
static void
listen_name (const struct served *s, char *buf, size_t len)
{
  if (s->socket)
    snprintf (buf, len, "unix:%s", s->socket);
  else if (s->port)
    snprintf (buf, len, "tcp:%s:%s", s->bind ? s->bind : "*", s->port);
  else
    snprintf (buf, len, "inherited-socket");
}

/* A byte count for people: "12.0 MiB". */
static void
human_size (uint64_t n, char *buf, size_t len)
{
  static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
  double v = (double) n;
  int u = 0;

  while (v >= 1024 && u < 4) {
    v /= 1024;
    u++;
  }
  if (u == 0)
    snprintf (buf, len, "%" PRIu64 " B", n);
  else
    snprintf (buf, len, "%.1f %s", v, unit[u]);
}

/* The counter columns of a row of the served table. */
static void
print_counters (const uint64_t *counters, bool fresh)
{
  char rd[32], wr[32];

  human_size (counters[ST_READ_BYTES], rd, sizeof rd);
  human_size (counters[ST_WRITE_BYTES], wr, sizeof wr);
  printf ("%8" PRIu64 " %8" PRIu64 " %9s %9s %6" PRIu64 " %7" PRIu64 "%s\n",
          counters[ST_READS], counters[ST_WRITES], rd, wr,
          counters[ST_ERRORS], counters[ST_P99_US], fresh ? "" : " (stale)");
}

/* A client of an export of server s for people: "192.0.2.7:41234 (PSK
 * identity 'host1'), file I/O inline", "local (unix socket), file I/O
 * through io_uring's workers"; nbdkit's, with TLS-PSK, says that its
 * identity is not known rather than show none, and nothing of file I/O
 * (only the native server has the choice). */
static void
client_text (const struct served *s, const struct served_client *c,
             char *buf, size_t len)
{
  char id[300];

  if (c->address)
    snprintf (buf, len, "%s%s%s:%u", strchr (c->address, ':') ? "[" : "",
              c->address, strchr (c->address, ':') ? "]" : "", c->port);
  else
    snprintf (buf, len, "local (unix socket)");
  if (c->identity) {
    log_escape (c->identity, id, sizeof id);
    snprintf (buf + strlen (buf), len - strlen (buf),
              " (PSK identity '%s')", id);
  }
  else if (s->identity_unknown)
    snprintf (buf + strlen (buf), len - strlen (buf),
              " (PSK identity unknown: nbdkit does not tell the plugin)");
  if (c->file_io)
    snprintf (buf + strlen (buf), len - strlen (buf), ", file I/O %s",
              strcmp (c->file_io, "inline") == 0 ? "inline"
              : "through io_uring's workers");
}

/* A directory's exports under its row: one row each (name, connections
 * open now, counters), then a line per client connected. */
static void
print_exports_rows (const struct served *s)
{
  char name[300], conns[32], who[400];

  for (size_t i = 0; i < s->nr_exports; i++) {
    const struct served_export *e = &s->exports[i];

    snprintf (name, sizeof name, "  export ");
    log_escape (e->name, name + 9, sizeof name - 9);
    snprintf (conns, sizeof conns, "%" PRIu64 " connection%s",
              e->connections, e->connections == 1 ? "" : "s");
    printf ("%-7s %-32s %-28s ", "", name, conns);
    print_counters (e->counters, s->stats_fresh);
    for (size_t j = 0; j < e->nr_clients; j++) {
      client_text (s, &e->clients[j], who, sizeof who);
      printf ("%-7s     client %s\n", "", who);
    }
  }
}

static void
print_served_table (const struct status *st)
{
  char where[PATH_MAX + 8];

  if (st->nr_served == 0) {
    printf ("Served: none (no nbdkit with the swapfile plugin and no "
            "'nbdswap serve --native'\nruns here)\n");
    return;
  }
  printf ("%-7s %-32s %-28s %8s %8s %9s %9s %6s %7s\n", "PID", "FILE",
          "LISTEN", "READS", "WRITES", "READ", "WRITTEN", "ERRORS", "P99_US");
  for (size_t i = 0; i < st->nr_served; i++) {
    const struct served *s = &st->served[i];
    listen_name (s, where, sizeof where);
    printf ("%-7d %-32s %-28s ", (int) s->pid, s->file ? s->file : "?",
            where);
    if (!s->have_stats) {
      printf ("(no counters: %s)\n", s->stats_file ? "stats file not "
              "written yet" : "no stats-file=");
      continue;
    }
    print_counters (s->counters, s->stats_fresh);
    print_exports_rows (s);
  }
}

static void
print_attached_table (const struct status *st)
{
  char size[32], ssize[32], used[32];

  if (st->nr_attached == 0) {
    printf ("Attached: none (no connected /dev/nbd* device)\n");
    return;
  }
  printf ("%-11s %-7s %10s %-20s %10s %10s %5s\n", "DEVICE", "PID", "SIZE",
          "SWAP", "SWAP_SIZE", "USED", "PRIO");
  for (size_t i = 0; i < st->nr_attached; i++) {
    const struct attached *a = &st->attached[i];
    human_size (a->size, size, sizeof size);
    printf ("/dev/%-6s %-7d %10s ", a->name, (int) a->pid, size);
    if (!a->swapping) {
      printf ("%-20s\n", "(not swap)");
      continue;
    }
    human_size (a->swap_size, ssize, sizeof ssize);
    human_size (a->swap_used, used, sizeof used);
    printf ("%-20s %10s %10s %5d\n", a->swap_name, ssize, used,
            a->swap_priority);
  }
}

/* "key":"value", or "key":null. */
static void
json_str (FILE *fp, const char *key, const char *value, bool comma)
{
  fprintf (fp, "\"%s\":", key);
  if (value)
    json_print_string (fp, value);
  else
    fputs ("null", fp);
  if (comma)
    fputc (',', fp);
}

/* "counters":{...}, or null without them. */
static void
json_counters (FILE *fp, const uint64_t *counters)
{
  fputs ("\"counters\":", fp);
  if (counters == NULL) {
    fputs ("null", fp);
    return;
  }
  fputc ('{', fp);
  for (int c = 0; c < ST_P50_US; c++)
    fprintf (fp, "\"%s\":%" PRIu64 ",", status_counter_names[c],
             counters[c]);
  fprintf (fp, "\"latency_us\":{\"p50\":%" PRIu64 ",\"p99\":%" PRIu64
           ",\"p999\":%" PRIu64 "}}", counters[ST_P50_US],
           counters[ST_P99_US], counters[ST_P999_US]);
}

/* One export of a directory's server. */
static void
json_export (FILE *fp, const struct served_export *e)
{
  fputc ('{', fp);
  json_str (fp, "name", e->name, true);
  json_str (fp, "path", e->path, true);
  fprintf (fp, "\"size\":%" PRIu64 ",\"connections\":%" PRIu64
           ",\"connections_total\":%" PRIu64 ",\"clients\":[", e->size,
           e->connections, e->connections_total);
  for (size_t j = 0; j < e->nr_clients; j++) {
    const struct served_client *c = &e->clients[j];

    fputs (j ? ",{" : "{", fp);
    json_str (fp, "address", c->address, true);
    if (c->address)
      fprintf (fp, "\"port\":%u,", c->port);
    else
      fputs ("\"port\":null,", fp);
    json_str (fp, "identity", c->identity, true);
    json_str (fp, "file_io", c->file_io, false);
    fputc ('}', fp);
  }
  fputs ("],", fp);
  json_counters (fp, e->counters);
  fputc ('}', fp);
}

/* "exports":[...] for a directory's server with counters, else null. */
static void
json_exports (FILE *fp, const struct served *s)
{
  fputs ("\"exports\":", fp);
  if (!s->dir || !s->have_stats) {
    fputs ("null", fp);
    return;
  }
  fputc ('[', fp);
  for (size_t i = 0; i < s->nr_exports; i++) {
    if (i)
      fputc (',', fp);
    json_export (fp, &s->exports[i]);
  }
  fputc (']', fp);
}

static void
json_served (FILE *fp, const struct served *s)
{
  fprintf (fp, "{\"pid\":%d,", (int) s->pid);
  json_str (fp, "server", s->native ? "native" : "nbdkit", true);
  json_str (fp, "file", s->file, true);
  json_str (fp, "socket", s->socket, true);
  json_str (fp, "address", s->port ? (s->bind ? s->bind : "*") : NULL, true);
  if (s->port)
    fprintf (fp, "\"port\":%lu,", strtoul (s->port, NULL, 10));
  else
    fputs ("\"port\":null,", fp);
  fprintf (fp, "\"socket_inherited\":%s,", s->activated ? "true" : "false");
  fprintf (fp, "\"directory\":%s,", s->dir ? "true" : "false");
  fprintf (fp, "\"identities_known\":%s,",
           s->identity_unknown ? "false" : "true");
  json_str (fp, "export", s->export, true);
  json_str (fp, "stats_file", s->stats_file, true);
  fprintf (fp, "\"stats_fresh\":%s,", s->stats_fresh ? "true" : "false");
  json_counters (fp, s->have_stats ? s->counters : NULL);
  fputc (',', fp);
  json_exports (fp, s);
  fputc ('}', fp);
}

static void
json_attached (FILE *fp, const struct attached *a)
{
  char dev[64];

  snprintf (dev, sizeof dev, "/dev/%s", a->name);
  fputc ('{', fp);
  json_str (fp, "device", dev, true);
  fprintf (fp, "\"pid\":%d,\"size\":%" PRIu64 ",", (int) a->pid, a->size);
  json_str (fp, "backend", a->backend[0] ? a->backend : NULL, true);
  json_str (fp, "holder", a->holder[0] ? a->holder : NULL, true);
  fputs ("\"swap\":", fp);
  if (a->swapping) {
    fputc ('{', fp);
    json_str (fp, "name", a->swap_name, true);
    fprintf (fp, "\"size\":%" PRIu64 ",\"used\":%" PRIu64
             ",\"priority\":%d}", a->swap_size, a->swap_used,
             a->swap_priority);
  }
  else
    fputs ("null", fp);
  fputc ('}', fp);
}

static void
print_json (FILE *fp, const struct status *st)
{
  fputs ("{\"served\":[", fp);
  for (size_t i = 0; i < st->nr_served; i++) {
    if (i)
      fputc (',', fp);
    json_served (fp, &st->served[i]);
  }
  fputs ("],\"attached\":[", fp);
  for (size_t i = 0; i < st->nr_attached; i++) {
    if (i)
      fputc (',', fp);
    json_attached (fp, &st->attached[i]);
  }
  fputs ("]}\n", fp);
}

/* A label value with \, " and newline escaped, as the format wants. */
static void
prom_label (FILE *fp, const char *v)
{
  for (; v && *v; v++) {
    if (*v == '\\' || *v == '"')
      fprintf (fp, "\\%c", *v);
    else if (*v == '\n')
      fputs ("\\n", fp);
    else
      fputc (*v, fp);
  }
}

/* One metric family: HELP and TYPE, then a sample per server. */
struct prom_metric {
  const char *name, *type, *help;
  int counter;                  /* index into counters[] */
  const char *extra_label;      /* e.g. "op=\"read\"", or NULL */
};

static const struct prom_metric served_metrics[] = {
  { "nbdswap_server_requests_total", "counter",
    "Requests served, by operation.", ST_READS, "op=\"read\"" },
  { NULL, NULL, NULL, ST_WRITES, "op=\"write\"" },
  { NULL, NULL, NULL, ST_ZEROES, "op=\"zero\"" },
  { NULL, NULL, NULL, ST_FLUSHES, "op=\"flush\"" },
  { "nbdswap_server_bytes_total", "counter",
    "Bytes read from and written to the backing file.", ST_READ_BYTES,
    "op=\"read\"" },
  { NULL, NULL, NULL, ST_WRITE_BYTES, "op=\"write\"" },
  { "nbdswap_server_rmw_total", "counter",
    "Writes that needed a read-modify-write.", ST_RMW, NULL },
  { "nbdswap_server_bounced_total", "counter",
    "Requests copied through a bounce buffer.", ST_BOUNCED, NULL },
  { "nbdswap_server_retries_total", "counter",
    "Transient I/O errors retried.", ST_RETRIES, NULL },
  { "nbdswap_server_errors_total", "counter",
    "Requests that failed.", ST_ERRORS, NULL },
  { "nbdswap_server_latency_microseconds", "gauge",
    "Request latency percentile (upper bound of a power-of-two bucket).",
    ST_P50_US, "quantile=\"0.5\"" },
  { NULL, NULL, NULL, ST_P99_US, "quantile=\"0.99\"" },
  { NULL, NULL, NULL, ST_P999_US, "quantile=\"0.999\"" },
};

/* A sample's first labels, file and export (unless NULL), the brace
 * left open. */
static void
prom_labels_open (FILE *fp, const struct served *s, const char *export)
{
  fputs ("{file=\"", fp);
  prom_label (fp, s->file);
  if (export) {
    fputs ("\",export=\"", fp);
    prom_label (fp, export);
  }
  fputc ('"', fp);
}

/* A sample's labels: file, export (unless NULL), then extra (unless
 * NULL, already formatted). */
static void
prom_labels (FILE *fp, const struct served *s, const char *export,
             const char *extra)
{
  prom_labels_open (fp, s, export);
  fprintf (fp, "%s%s}", extra ? "," : "", extra ? extra : "");
}

/* The samples of one counter for server s: its own (a directory's: the
 * sum, exports since dropped included), then one per export. */
static void
prom_counter (FILE *fp, const char *name, const struct prom_metric *pm,
              const struct served *s)
{
  fputs (name, fp);
  prom_labels (fp, s, NULL, pm->extra_label);
  fprintf (fp, " %" PRIu64 "\n", s->counters[pm->counter]);
  for (size_t i = 0; i < s->nr_exports; i++) {
    fputs (name, fp);
    prom_labels (fp, s, s->exports[i].name, pm->extra_label);
    fprintf (fp, " %" PRIu64 "\n", s->exports[i].counters[pm->counter]);
  }
}

/* The connections of e from the client at index j, if it is the first
 * of its address and identity (one sample per client); 0 otherwise. */
static uint64_t
client_conns (const struct served_export *e, size_t j)
{
  const struct served_client *c = &e->clients[j], *d;
  uint64_t n = 0;

  for (size_t k = 0; k < e->nr_clients; k++) {
    d = &e->clients[k];
    if ((c->address == NULL) != (d->address == NULL)
        || (c->address && strcmp (c->address, d->address))
        || (c->identity == NULL) != (d->identity == NULL)
        || (c->identity && strcmp (c->identity, d->identity)))
      continue;
    if (k < j)
      return 0;
    n++;
  }
  return n;
}

/* One sample per client of export e of server s. */
static void
prom_clients (FILE *fp, const struct served *s, const struct served_export *e)
{
  uint64_t n;

  for (size_t j = 0; j < e->nr_clients; j++) {
    if ((n = client_conns (e, j)) == 0)
      continue;
    fputs ("nbdswap_server_client_connections", fp);
    prom_labels_open (fp, s, e->name);
    fputs (",address=\"", fp);
    prom_label (fp, e->clients[j].address ? e->clients[j].address : "local");
    fputs ("\",identity=\"", fp);
    prom_label (fp, e->clients[j].identity ? e->clients[j].identity : "");
    fprintf (fp, "\"} %" PRIu64 "\n", n);
  }
}

/* One family with a sample per export of each directory's server: the
 * uint64_t at offset field of its struct served_export. */
static void
prom_per_export (FILE *fp, const struct status *st, const char *name,
                 const char *type, const char *help, size_t field)
{
  fprintf (fp, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
  for (size_t i = 0; i < st->nr_served; i++)
    for (size_t x = 0; x < st->served[i].nr_exports; x++) {
      const struct served_export *e = &st->served[i].exports[x];

      fputs (name, fp);
      prom_labels (fp, &st->served[i], e->name, NULL);
      fprintf (fp, " %" PRIu64 "\n",
               *(const uint64_t *) ((const char *) e + field));
    }
}

/* The connections of a directory's exports: open now, since served,
 * and open now per client (its address, "local" on the unix socket,
 * and TLS-PSK identity). */
static void
prom_connections (FILE *fp, const struct status *st)
{
  prom_per_export (fp, st, "nbdswap_server_connections", "gauge",
                   "Connections transmitting now, per export of a "
                   "directory.",
                   offsetof (struct served_export, connections));
  prom_per_export (fp, st, "nbdswap_server_connections_total", "counter",
                   "Connections made, per export of a directory.",
                   offsetof (struct served_export, connections_total));
  fputs ("# HELP nbdswap_server_client_connections Connections transmitting "
         "now from one client (address, TLS-PSK identity) to an export.\n"
         "# TYPE nbdswap_server_client_connections gauge\n", fp);
  for (size_t i = 0; i < st->nr_served; i++)
    for (size_t x = 0; x < st->served[i].nr_exports; x++)
      prom_clients (fp, &st->served[i], &st->served[i].exports[x]);
}

static void
prom_served (FILE *fp, const struct status *st)
{
  const char *name = NULL;

  fputs ("# HELP nbdswap_server_info A swap server (nbdkit with the "
         "swapfile plugin, or nbdswap serve --native).\n"
         "# TYPE nbdswap_server_info gauge\n", fp);
  for (size_t i = 0; i < st->nr_served; i++) {
    fputs ("nbdswap_server_info{file=\"", fp);
    prom_label (fp, st->served[i].file);
    fprintf (fp, "\",pid=\"%d\"} 1\n", (int) st->served[i].pid);
  }
  for (size_t m = 0; m < sizeof served_metrics / sizeof *served_metrics;
       m++) {
    const struct prom_metric *pm = &served_metrics[m];
    if (pm->name) {
      name = pm->name;
      fprintf (fp, "# HELP %s %s\n# TYPE %s %s\n", name, pm->help, name,
               pm->type);
    }
    for (size_t i = 0; i < st->nr_served; i++)
      if (st->served[i].have_stats)
        prom_counter (fp, name, pm, &st->served[i]);
  }
  prom_connections (fp, st);
}

static void
prom_attached (FILE *fp, const struct status *st)
{
  fputs ("# HELP nbdswap_device_size_bytes Size of a connected nbd "
         "device.\n# TYPE nbdswap_device_size_bytes gauge\n", fp);
  for (size_t i = 0; i < st->nr_attached; i++)
    fprintf (fp, "nbdswap_device_size_bytes{device=\"/dev/%s\"} %" PRIu64
             "\n", st->attached[i].name, st->attached[i].size);
  fputs ("# HELP nbdswap_swap_size_bytes Size of the swap area on an nbd "
         "device.\n# TYPE nbdswap_swap_size_bytes gauge\n", fp);
  for (size_t i = 0; i < st->nr_attached; i++)
    if (st->attached[i].swapping)
      fprintf (fp, "nbdswap_swap_size_bytes{device=\"/dev/%s\"} %" PRIu64
               "\n", st->attached[i].name, st->attached[i].swap_size);
  fputs ("# HELP nbdswap_swap_used_bytes Swap in use on an nbd device.\n"
         "# TYPE nbdswap_swap_used_bytes gauge\n", fp);
  for (size_t i = 0; i < st->nr_attached; i++)
    if (st->attached[i].swapping)
      fprintf (fp, "nbdswap_swap_used_bytes{device=\"/dev/%s\"} %" PRIu64
               "\n", st->attached[i].name, st->attached[i].swap_used);
}

/* Writes OUTFILE.tmp and renames it: node_exporter never reads half a
 * file.  0 or EXIT_SYSTEM. */
static int
write_prometheus (const char *path, const struct status *st)
{
  char tmp[PATH_MAX];
  FILE *fp;

  if ((size_t) snprintf (tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) {
    log_error ("%s: path too long", path);
    return EXIT_SYSTEM;
  }
  fp = fopen (tmp, "we");
  if (fp == NULL) {
    log_error ("%s: cannot write: %m: check the directory exists and is "
               "writable (node_exporter's --collector.textfile.directory)",
               tmp);
    return EXIT_SYSTEM;
  }
  prom_served (fp, st);
  prom_attached (fp, st);
  if (fclose (fp) == EOF || rename (tmp, path) == -1) {
    log_error ("%s: cannot write: %m", path);
    unlink (tmp);
    return EXIT_SYSTEM;
  }
  return 0;
}

/* FILE arguments resolved to absolute paths (missing ones keep their
 * spelling), in a new array the caller frees with free_files. */
static char **
resolve_files (char **files, int n)
{
  char **out = calloc ((size_t) n + 1, sizeof *out);

  for (int i = 0; out && i < n; i++) {
    out[i] = realpath (files[i], NULL);
    if (out[i] == NULL)
      out[i] = strdup (files[i]);
  }
  return out;
}

static void
free_files (char **files, int n)
{
  for (int i = 0; files && i < n; i++)
    free (files[i]);
  free (files);
}

/* Parses options, scans and prints. */
int
cmd_status (int argc, char **argv)
{
  static const struct option longopts[] = {
    { "json", no_argument, NULL, 'j' },
    { "prometheus", required_argument, NULL, 'p' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  const char *prom = NULL;
  struct status st;
  char **files;
  bool json = false;
  int c, r, nfiles;

  while ((c = getopt_long (argc, argv, "jp:h", longopts, NULL)) != -1) {
    switch (c) {
    case 'j': json = true; break;
    case 'p': prom = optarg; break;
    case 'h': usage (); return EXIT_FIT;
    default: return try_help ("status");   /* getopt said why */
    }
  }
  if (json && prom)
    return usage_error ("status", "--json and --prometheus exclude each "
                        "other: choose one output");
  /* The scan parses running servers' command lines with getopt, which
   * moves optind: count the files first. */
  nfiles = argc - optind;
  files = resolve_files (argv + optind, nfiles);
  r = files ? status_scan (&st, files, (size_t) nfiles) : -ENOMEM;
  free_files (files, nfiles);
  if (r < 0) {
    log_error ("cannot read /proc: %s: mount /proc", strerror (-r));
    return EXIT_SYSTEM;
  }
  r = EXIT_FIT;
  if (prom)
    r = write_prometheus (prom, &st);
  else if (json)
    print_json (stdout, &st);
  else {
    print_served_table (&st);
    printf ("\n");
    print_attached_table (&st);
  }
  status_free (&st);
  return r;
}
