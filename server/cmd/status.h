/* nbdswap status: what the host serves and has attached.
 *
 * The scan reads /proc (nbdkit processes running the swapfile plugin
 * and 'nbdswap serve --native' processes, their command line and their
 * stats file: for a server of a directory, the sum and then each
 * export's counters and clients), /sys/block/nbd* (connected
 * devices) and /proc/swaps.  It asks each server for fresh counters with
 * SIGUSR1, but only a server whose SigCgt shows that the plugin already
 * handles SIGUSR1: the signal's default action would kill a server that
 * is still starting.
 */
#ifndef NBDSWAP_STATUS_H
#define NBDSWAP_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The counters of include/stats.h, in its report order. */
enum {
  ST_READS, ST_WRITES, ST_ZEROES, ST_FLUSHES, ST_READ_BYTES, ST_WRITE_BYTES,
  ST_RMW, ST_BOUNCED, ST_RETRIES, ST_ERRORS, ST_P50_US, ST_P99_US,
  ST_P999_US, ST_NR
};
extern const char *const status_counter_names[ST_NR];

/* A client transmitting with an export of a directory's server. */
struct served_client {
  char *address;                /* NULL: a local client (unix socket) */
  unsigned port;
  char *identity;               /* its TLS-PSK identity, or NULL */
  char *file_io;                /* "inline", "worker", or NULL (unsaid) */
};

/* One export of a directory's server (serve --native --dir), from the
 * "exports" array of its stats file. */
struct served_export {
  char *name, *path;
  uint64_t size;
  uint64_t connections;         /* transmitting now */
  uint64_t connections_total;   /* since it was served */
  struct served_client *clients;
  size_t nr_clients;
  uint64_t counters[ST_NR];
};

struct served {
  pid_t pid;
  char *file;                   /* file= or dir= (nbdkit), FILE or --dir
                                 * (native), as the kernel names it when
                                 * the server holds it open, else as
                                 * given */
  char *socket;                 /* -U, or NULL */
  char *port, *bind;            /* -p, -i, or NULL */
  char *export;                 /* -e, or NULL */
  char *stats_file;             /* stats-file=, or NULL */
  bool activated;               /* neither -U nor -p: handed its socket */
  bool native;                  /* nbdswap serve --native, not nbdkit */
  bool have_stats;              /* counters read from stats_file */
  bool stats_fresh;             /* ... after our SIGUSR1 */
  uint64_t counters[ST_NR];     /* of a directory: the sum */
  bool dir;                     /* file is a directory of exports */
  bool identity_unknown;        /* nbdkit's dir= with TLS-PSK: its
                                 * clients' identities are not told to
                                 * the plugin (nbdkit 1.32) */
  struct served_export *exports; /* a directory's, with have_stats */
  size_t nr_exports;
};

struct attached {
  char name[32];                /* "nbd0" */
  pid_t pid;                    /* the process that connected it */
  uint64_t size;                /* bytes */
  char backend[256];            /* netlink backend identifier, or "" */
  char holder[64];              /* "dm-0" (e.g. attach --encrypt), or "" */
  bool swapping;                /* in /proc/swaps (itself or its holder) */
  char swap_name[256];
  uint64_t swap_size, swap_used; /* bytes */
  int swap_priority;
};

struct status {
  struct served *served;
  size_t nr_served;
  struct attached *attached;
  size_t nr_attached;
};

/* Fills *st; only servers of the backing files in files[] (resolved to
 * absolute paths) when nr_files > 0.  Returns 0 or -errno. */
extern int status_scan (struct status *st, char **files, size_t nr_files);

extern void status_free (struct status *st);

/* Parses the plugin's stats JSON into counters[]; false if it is not
 * one. */
extern bool status_parse_stats (const char *json, uint64_t *counters);

/* The "exports" array of a directory server's stats JSON into *out
 * (status_exports_free frees it): 0, or -EINVAL for JSON that is not
 * the server's, -ENOMEM. */
extern int status_parse_exports (const char *json,
                                 struct served_export **out, size_t *n);
extern void status_exports_free (struct served_export *e, size_t n);

#endif /* NBDSWAP_STATUS_H */
