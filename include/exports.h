/* nbdswap: the exports of a serving process: one file, or every swap
 * backing file of a directory, each its own export.
 *
 * An export is a name, a backing file claimed through backing.h (opened,
 * owner-locked, fully verified, its extent map pinned), the request
 * engine's target (request.h: stripe locks, retry policy, refusals) and
 * its own counters.  A front end finds the export a client asks for by
 * name (exports_get, which also says whether this client may open it),
 * serves it, and lets go of it (exports_put).
 *
 *   exports_add_file   one file under a given name (serve FILE);
 *   exports_scan       every regular file or block device (or symlink to
 *                      one) directly in the set's directory, but names
 *                      starting with '.', is an export named after its
 *                      file name.  A file that cannot be claimed (unfit,
 *                      locked by another server, missing direct I/O) is
 *                      not served: backing.c logs its cause and fix once,
 *                      and it is tried again only once the file changed
 *                      (or, when another process held its lock, at each
 *                      re-scan).  A file no longer there (or replaced by
 *                      another) is dropped: no new client gets it, the
 *                      requests of the clients still using it fail with
 *                      EIO, and it is closed once the last lets go.
 *   exports_monitor_start
 *                      the process's monitor thread (monitor.h): every
 *                      export re-verified every recheck seconds and on
 *                      SIGHUP, which also re-scans the directory; the
 *                      counters on SIGUSR1 (lib/exports-report.c).
 *   exports_attach     a connection in transmission with an export: the
 *                      counters name it among the export's clients, and
 *                      no other client may transmit with it meanwhile;
 *                      a file unsafe for swap of this machine is said
 *                      once, when a client may be this machine.
 *
 * Memory: what a set keeps per export is small and not per request: the
 * names, the verified extent map (the baseline of re-verification: one
 * entry per extent, a handful for a file nbdswap create made), a stripe
 * lock table and the counters (about 1 KiB together).  The zero page of
 * the request engine is shared by all exports.  Connections, not
 * exports, own the large buffers.
 *
 * Threads: the set's lock guards the list, the reference counts, each
 * export's connections and the counters of dropped exports.  Only the
 * thread that scans (start-up, then the monitor) adds or drops exports;
 * connection threads only take and let go of references.  The report
 * copies under the lock what the file and the log show, and writes them
 * without it.
 */
#ifndef NBDSWAP_EXPORTS_H
#define NBDSWAP_EXPORTS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "acl.h"
#include "backing.h"
#include "request.h"
#include "retry.h"
#include "stats.h"

/* A connection transmitting with an export, as the counters report it
 * (exports_attach fills it in): the connection's own memory, linked into
 * its export's list while it serves. */
struct export_conn {
  char address[INET6_ADDRSTRLEN]; /* the client's; "" for a local one */
  unsigned port;                /* with address */
  char identity[256];           /* its TLS-PSK identity, or "" */
  char file_io[8];              /* "inline", "worker", "": not said */
  struct export_conn *next;
};

struct export {
  char *name;                   /* what a client asks for */
  char *path;                   /* the file (DIR/NAME, or serve's FILE) */
  struct backing backing;       /* open, locked, verified */
  struct req_target target;     /* the request engine's */
  struct stats stats;           /* this export's counters */
  dev_t dev;                    /* the file served: a file replaced */
  ino_t ino;                    /* under its name is another export */
  unsigned refs;                /* clients using it (set lock) */
  bool removed;                 /* gone from the set, freed at refs 0 */
  struct export_conn *conns;    /* transmitting now (set lock) */
  unsigned nr_conns;            /* ... how many */
  uint64_t conns_total;         /* ... and since it was served */
  bool pool_warned;             /* exports_attach's shared-pool warning
                                   said (set lock) */
  struct export *next;
};

/* A file that is not served, remembered so that it is reported once:
 * tried again when its status changed (or when a lock was the cause). */
struct export_refused {
  char *name;
  dev_t dev;
  ino_t ino;
  struct timespec ctime;
  off_t size;
  bool lock_busy;
  struct export_refused *next;
};

/* How every export of the set is opened and served: set before the
 * first add or scan, the strings borrowed. */
struct exports_config {
  const char *dir;              /* the directory scanned, or NULL */
  const char *read_write_only;  /* backing.h's */
  const char *no_direct_fix;    /* backing.h's */
  bool page_cache;              /* serve without O_DIRECT (backing.h's
                                   direct = false: the plugin's
                                   direct=false) */
  struct retry_policy retry;    /* the request engine's */
  const char *stats_path;       /* the JSON counters (the sum), or NULL */
  unsigned recheck;             /* re-verify every N seconds; 0: SIGHUP */
  void (*report_extra) (void);  /* backing.h's */
  /* Access: TLS-PSK identities name the export they may open
   * (identity = export name, and exports_grant's); see
   * exports_may_open. */
  bool psk;
};

struct export_allow;
struct export_grant;
struct exports {
  struct exports_config cfg;
  pthread_mutex_t lock;
  struct export *list;          /* served */
  struct export_refused *refused;
  struct export_allow *allow;   /* exports_allow's lists, by name */
  struct export_grant *grants;  /* exports_grant's pairs */
  struct export *draining;      /* dropped, still used by clients */
  struct stats retired;         /* counters of exports freed */
  bool monitoring;
};

/* An empty set. */
extern void exports_init (struct exports *s, const struct exports_config *c);

/* Claim path and serve it as name: BACKING_OK, or the status of the
 * step that failed (logged). */
extern enum backing_status exports_add_file (struct exports *s,
                                             const char *name,
                                             const char *path);

/* (Re-)scan the directory: claim new files, drop those gone.  0, or
 * -errno when the directory cannot be read (logged); a file that cannot
 * be claimed is not an error here. */
extern int exports_scan (struct exports *s);

/* How many exports are served. */
extern size_t exports_count (struct exports *s);

/* Who asks: the PSK identity of a TLS client (NULL without TLS-PSK) and
 * its address (NULL or AF_UNIX: a local client). */
struct export_client {
  const char *identity;
  const struct sockaddr *addr;
  const char *file_io;          /* how its file operations go (the native
                                   server's --file-io), or NULL */
  /* May the client be this machine (peer.h)?  1 yes, -1 no; 0 not
   * known: exports_attach asks peer_in_this_kernel (no address: it
   * may be). */
  int here;
};

/* May this client open x?  With TLS-PSK, only if its identity names x
 * (or was granted x); with per-export allow entries, only from their
 * networks. */
extern bool exports_may_open (const struct exports *s, const struct export *x,
                              const struct export_client *who);

/* The export called name, if this client may open it: a reference the
 * caller lets go of with exports_put.  NULL for a name that does not
 * exist and for one the client may not open alike (the client must not
 * learn which names exist); *exists tells the caller's log which. */
extern struct export *exports_get (struct exports *s, const char *name,
                                   const struct export_client *who,
                                   bool *exists);
extern void exports_put (struct exports *s, struct export *x);

/* The connection c of client who transmits with x (a reference the
 * connection holds) from now on / no longer: its address and identity
 * are reported among x's clients in between.  One client at a time
 * writes to an export: while connections of another client transmit
 * with x, exports_attach refuses (-EBUSY): it logs "TAGclient WHO asked
 * for export 'NAME': refused (in use by OTHER ...)" and puts what the
 * client is told in why.  A client is its TLS-PSK identity, or
 * without one its address (not its port): the several connections of
 * one client (multi-conn, a reconnect while the server has not yet seen
 * the old connection end) are one client, and so are all local
 * (unix-socket) connections: they come from this machine.  The first
 * client of x that may be this machine (who->here) gets one warning
 * when x is a file whose direct I/O shares the kernel's bio pool with
 * this machine's swap-outs (backing_shares_swap_pool). */
extern int exports_attach (struct exports *s, struct export *x,
                           struct export_conn *c,
                           const struct export_client *who,
                           const char *tag, char *why, size_t whylen);
extern void exports_detach (struct exports *s, struct export *x,
                            struct export_conn *c);

/* One log line for a client refused the export called name: "TAGclient
 * WHO asked for export 'NAME': refused (no such export)TAIL", or "(not
 * one this client may open)" when exists; the name, the client's text,
 * escaped.  Both front ends' refusals read alike. */
extern void exports_log_refusal (const char *tag,
                                 const struct export_client *who,
                                 const char *name, bool exists,
                                 const char *tail);

/* Call fn with the name of each export this client may open, until it
 * returns non-zero; returns that, 0, or -ENOMEM.  fn runs without the
 * set's lock (it may wait on its client). */
extern int exports_list (struct exports *s, const struct export_client *who,
                         int (*fn) (void *arg, const char *name), void *arg);

/* Restrict name to the networks in list (acl.h's CIDR list); allowed
 * before or after the export exists (kept by name).  0, or -errno with
 * the reason in err. */
extern int exports_allow (struct exports *s, const char *name,
                          const char *list, char *err, size_t errlen);

/* With TLS-PSK: let identity open the export called name too (one
 * client, several exports).  0 or -ENOMEM. */
extern int exports_grant (struct exports *s, const char *identity,
                          const char *name);

/* exports_grant for each line of the file at path: "IDENTITY NAME...",
 * blank lines and '#' comments skipped.  0, or -errno with the reason
 * (naming the file and line) in err. */
extern int exports_read_grants (struct exports *s, const char *path,
                                char *err, size_t errlen);

/* Re-verify every export; with rescan, re-scan the directory first. */
extern void exports_recheck (struct exports *s, bool rescan);

/* The counters: one "stats:" line for the sum (the exports served, those
 * dropped included), one per export when the set is a directory, the
 * front end's lines, and the JSON file: the sum, and for a directory an
 * "exports" array after it, each export's name, path, connections,
 * clients and counters (docs/nbdswap.8, "Statistics").  Called by the
 * scanning thread (the monitor, or after it stopped). */
extern void exports_report_stats (struct exports *s);

/* The monitor thread (monitor.h) and SIGHUP/SIGUSR1, for this set.
 * Call after any fork. */
extern enum backing_status exports_monitor_start (struct exports *s);
extern void exports_monitor_stop (struct exports *s);

/* Drop every export (none may be in use) and what the set remembers. */
extern void exports_close (struct exports *s);

#endif /* NBDSWAP_EXPORTS_H */
