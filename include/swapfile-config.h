/* nbdswap: the plugin's parameters and their parser.
 *
 * The parser is pure (no nbdkit, no I/O) so that the unit tests and the
 * nbdswap command share it with the plugin.  swapfile_config in the
 * callbacks file only resolves file= to an absolute path first.
 */
#ifndef NBDSWAP_SWAPFILE_CONFIG_H
#define NBDSWAP_SWAPFILE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "acl.h"

enum engine_kind {
  ENGINE_AUTO,                  /* io_uring, else pread with a warning */
  ENGINE_IO_URING,              /* io_uring or refuse to start */
  ENGINE_PREAD,                 /* pread/pwrite, chosen by the operator */
};

/* allow=NAME=CIDR[,...]: the export NAME of dir= only from nets. */
struct config_export_allow {
  char *name;
  char *nets;                   /* acl.h's list, checked by config_set */
};

struct swapfile_config {
  char *file;                   /* backing file (owned; absolute in the plugin) */
  char *dir;                    /* or a directory of them (owned, absolute) */
  enum engine_kind engine;
  bool direct;                  /* O_DIRECT (default true) */
  unsigned queue_depth;         /* io_uring entries per serving thread */
  unsigned workers;             /* serving threads prepared before serving */
  unsigned recheck;             /* seconds between re-verifications; 0 off */
  unsigned retry_timeout;       /* seconds a transient error is retried */
  bool retry_eio;               /* EIO is one of them (default true) */
  bool mlock;                   /* mlockall the serving process */
  char *stats_file;             /* JSON counters, on SIGUSR1 and at exit */
  struct acl allow;             /* TCP clients allowed (empty: all) */
  struct config_export_allow *export_allow;  /* per export, with dir= */
  size_t nr_export_allow;
};

#define CONFIG_QUEUE_DEPTH_DEFAULT 8
#define CONFIG_QUEUE_DEPTH_MAX 1024
#define CONFIG_WORKERS_DEFAULT 64     /* 4 connections x nbdkit's 16 threads */
#define CONFIG_WORKERS_MAX 4096
#define CONFIG_RECHECK_DEFAULT 300
#define CONFIG_RETRY_TIMEOUT_DEFAULT 60
#define CONFIG_SECONDS_MAX 86400

/* The one-screen help shown by nbdkit swapfile --help. */
extern const char config_help_text[];

/* Set the defaults. */
extern void config_init (struct swapfile_config *c);

/* Free what config_set allocated. */
extern void config_free (struct swapfile_config *c);

/* Apply key=value.  Returns 0, or -EINVAL with a message naming the key,
 * the bad value and the accepted values in err; -ENOENT (and a message)
 * when key is not a parameter of the plugin (serve leaves those to
 * nbdkit); -ENOMEM on no memory. */
extern int config_set (struct swapfile_config *c, const char *key,
                       const char *value, char *err, size_t errlen);

/* Check that the parameters form a whole (file= or dir=, not both;
 * allow=NAME=CIDR only with dir=).  Same returns. */
extern int config_check (const struct swapfile_config *c,
                         char *err, size_t errlen);

/* "recheck=N retry-timeout=N retry-eio=B mlock=B" into buf: how the
 * parameters that govern serving are shown (the native server's start
 * log, serve --native --dry-run). */
extern void config_format (const struct swapfile_config *c, char *buf,
                           size_t len);

/* The name of an engine kind, as the parameter spells it. */
extern const char *config_engine_name (enum engine_kind e);

#endif /* NBDSWAP_SWAPFILE_CONFIG_H */
