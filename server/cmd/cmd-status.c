/* nbdswap status [FILE...] [--json | --prometheus FILE]: what is served
 * and attached, as a table, as JSON or as a node_exporter textfile. */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
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
          "the servers of those backing files.\n"
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

static void
print_served_table (const struct status *st)
{
  char where[PATH_MAX + 8], rd[32], wr[32];

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
    human_size (s->counters[ST_READ_BYTES], rd, sizeof rd);
    human_size (s->counters[ST_WRITE_BYTES], wr, sizeof wr);
    printf ("%8" PRIu64 " %8" PRIu64 " %9s %9s %6" PRIu64 " %7" PRIu64 "%s\n",
            s->counters[ST_READS], s->counters[ST_WRITES], rd, wr,
            s->counters[ST_ERRORS], s->counters[ST_P99_US],
            s->stats_fresh ? "" : " (stale)");
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

static void
json_counters (FILE *fp, const struct served *s)
{
  fputs ("\"counters\":", fp);
  if (!s->have_stats) {
    fputs ("null", fp);
    return;
  }
  fputc ('{', fp);
  for (int c = 0; c < ST_P50_US; c++)
    fprintf (fp, "\"%s\":%" PRIu64 ",", status_counter_names[c],
             s->counters[c]);
  fprintf (fp, "\"latency_us\":{\"p50\":%" PRIu64 ",\"p99\":%" PRIu64
           ",\"p999\":%" PRIu64 "}}", s->counters[ST_P50_US],
           s->counters[ST_P99_US], s->counters[ST_P999_US]);
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
  json_str (fp, "export", s->export, true);
  json_str (fp, "stats_file", s->stats_file, true);
  fprintf (fp, "\"stats_fresh\":%s,", s->stats_fresh ? "true" : "false");
  json_counters (fp, s);
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
    for (size_t i = 0; i < st->nr_served; i++) {
      const struct served *s = &st->served[i];
      if (!s->have_stats)
        continue;
      fprintf (fp, "%s{file=\"", name);
      prom_label (fp, s->file);
      fprintf (fp, "\"%s%s} %" PRIu64 "\n", pm->extra_label ? "," : "",
               pm->extra_label ? pm->extra_label : "",
               s->counters[pm->counter]);
    }
  }
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
