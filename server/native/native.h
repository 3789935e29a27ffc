/* nbdswap: the native server (nbdswap serve's default), an event-loop
 * NBD server that replaces nbdkit on the data path.
 *
 * One thread per client connection, each with its own io_uring: the
 * socket's receives and sends and the backing file's O_DIRECT reads and
 * writes all go through that one ring, so a request costs no thread
 * hand-off and many requests of one connection are in flight at once.
 * See docs/design.md, "The native server".
 */
#ifndef NBDSWAP_NATIVE_H
#define NBDSWAP_NATIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "acl.h"
#include "swapfile-config.h"

/* Request slots per connection: the requests one connection may have
 * in flight; more wait in the socket.  The kernel client keeps up to
 * 128 per connection, fio's benchmark 32. */
#define NATIVE_SLOTS 32

/* Request buffers come in three sizes, so that a connection pins memory
 * for the requests its client sends rather than 32 times the largest
 * the kernel may send (that was 32 x 140 KiB, 4.4 MiB a connection: 16
 * connections of a fleet missed issue 17's 64 MiB).  Each buffer holds
 * a request's aligned cover (its data plus a partial block each side)
 * and a scratch block, and is registered with the connection's ring.
 *
 * Small: every slot has its own, for requests of up to
 * NATIVE_SMALL_DATA bytes, so a slot never waits for one.  32 KiB is
 * the largest read swap sends at the default vm.page-cluster (3: 8
 * pages of readahead); the kernel client's swap-ins measured 30 KiB a
 * request (bench/results/2026-12-04-0214-kernel-quick), and fio's 4K
 * jobs at depth 32 need 32 of these and nothing more. */
#define NATIVE_SMALL_DATA (32 * 1024)

/* Mid: NATIVE_MID_BUFS buffers the slots share, laid end to end, for
 * requests of up to NATIVE_MID_DATA bytes (one buffer) or larger (a run
 * of adjacent free ones, as many as the request's cover needs: all
 * eight hold 1 MiB and a little more).  The kernel's nbd client sends
 * at most 128 KiB (max_sectors 256) unless max_sectors_kb is raised, as
 * nbdswap attach --max-sectors-kb 1024 does: then swap-outs come as
 * 150-250 KiB (docs/benchmarks.md), each in a run of two or so.  Swap's queue is
 * 1.2-4.2 requests deep on average; eight is twice the deepest, 1 MiB
 * of writes in flight a connection, all of it registered, so pinned
 * before serving: a 1 MiB request allocates nothing.  A request that
 * finds no run free waits (parked, or its payload left in the socket),
 * and while one waits, later ones wait behind it, oldest served first.
 * With 32 small ones: 32 x 44 + 8 x 140 KiB, about 2.5 MiB a connection
 * with 4 KiB blocks. */
#define NATIVE_MID_DATA (128 * 1024)
#define NATIVE_MID_BUFS 8

/* Large: requests larger than all the mid buffers hold, up to the
 * maximum both servers advertise (BLOCKSIZE_MAX, blocksize.h), go
 * through the connection's one large buffer, one at a time: address
 * space only until such a request touches it (a fault then, under
 * whatever memory pressure there is), and not registered.  Only a
 * client that raises max_sectors_kb beyond 1024 sends them. */

/* The longest export name (the protocol's limit). */
#define NATIVE_NAME_MAX 4096

/* What one connection serves: its export (the backing file's
 * descriptor, the request engine's target, the geometry) and what the
 * server gives every connection (flags, spin, TLS).  Filled in when the
 * client's export is chosen; read-only afterwards. */
struct req_target;
struct tls_creds;
struct native_export {
  int fd;                       /* the backing file, O_DIRECT, read-write */
  struct req_target *target;    /* the request engine's, shared */
  uint64_t size;                /* export size */
  uint32_t align;               /* O_DIRECT offset/length alignment */
  uint32_t mem_align;           /* O_DIRECT buffer alignment */
  const char *name;             /* the export's name */
  uint16_t flags;               /* transmission flags */
  uint64_t poll_ns;             /* depth-1 spin (poll_file), 0: none */
  const struct tls_creds *tls;  /* TLS required with these, or NULL */
  bool file_inline;             /* this connection: file I/O inline */
};

/* serve --file-io: how a connection issues its file operations.  Through
 * io_uring's workers (IOSQE_ASYNC), an operation that waits in the
 * kernel (for a bio from the pool the kernel's own swap-outs draw from)
 * waits in a worker, and the connection's thread goes on replying,
 * which is what gives those bios back when the client is this kernel.
 * Inline, the connection's thread issues them itself inside
 * io_uring_enter: no hop to a worker and back, 1.6x the 4K reads and
 * 2.2x the 4K writes at depth 32 and half the CPU per request
 * (docs/benchmarks.md), but a wait there stops the replies, and with
 * the client in this kernel that cycle hung the native-pressure VM
 * scenario.  AUTO: inline for a client on another machine, workers for
 * one that may be this kernel (peer.h), unless the export is a block
 * device (its node in /dev, no loop device), whose direct I/O takes its
 * bios from a pool of its own: inline for every client then. */
enum native_file_io {
  NATIVE_FILE_IO_AUTO, NATIVE_FILE_IO_WORKER, NATIVE_FILE_IO_INLINE
};

/* serve --poll-us: how long a connection spins for the file operation
 * of its one request before it sleeps (0: never), by default and at
 * most.  Off by default: on a quiet 2-vCPU machine the spinning thread
 * keeps the client off its CPU, and the wake-ups it then needs cross
 * CPUs, which cost more than the sleep saved (docs/benchmarks.md). */
#define NATIVE_POLL_US 0
#define NATIVE_POLL_US_MAX 1000

/* Seconds a connection may take to finish after the stop (its client
 * reading the last replies, or sending the rest of a payload) before
 * its socket is shut down. */
#define NATIVE_STOP_DEADLINE 10

/* Seconds a client may take over the whole negotiation. */
#define NATIVE_HANDSHAKE_TIMEOUT 30

/* Called when the client asks to start transmission (NBD_OPT_GO or
 * NBD_OPT_EXPORT_NAME naming an export it may open), before the answer:
 * 0 to go on; -EBUSY when the export is another client's (refused by
 * policy), or -1, with the reason in why: the client gets an error
 * reply carrying it.  The callback logs its refusals. */
typedef int (*native_go_fn) (void *arg, char *why, size_t whylen);

/* What the negotiation offers: TLS, and the way to the exports (the
 * serving process's set, exports.h; the fuzz target's one export). */
struct native_catalog {
  const struct tls_creds *tls;  /* TLS required with these, or NULL */
  bool tls_psk;                 /* the client's PSK identity is passed on */
  /* Make the export called name (a C string) the connection's, if this
   * client (identity: its TLS-PSK identity, else NULL) may open it: 0
   * with *e its description, valid until the next select or the end of
   * the connection; -ENOENT alike for a name that does not exist and
   * one the client may not open (it must not learn which names exist;
   * select logs which). */
  int (*select) (void *arg, const char *name, const char *identity,
                 const struct native_export **e);
  /* Call emit with each export name this client may open, until emit
   * returns non-zero; return that, or 0. */
  int (*list) (void *arg, const char *identity,
               int (*emit) (void *ctx, const char *name), void *ctx);
  native_go_fn go;              /* transmission with the selected export */
  void *arg;                    /* theirs */
};

/* Negotiate on a blocking socket (fixed newstyle), all of it within
 * NATIVE_HANDSHAKE_TIMEOUT.  Returns 1 when the client asked for an
 * export and transmission starts, 0 when it left cleanly (NBD_OPT_ABORT,
 * or closed), -errno on a protocol error or the timeout. */
extern int native_handshake (int sock, const struct native_catalog *cat);

/* A connection ready to serve: its ring, with the backing file and the
 * socket registered and its request buffers.  NULL with the reason and
 * its fix in why. */
struct conn;
extern struct conn *native_conn_new (int sock, int stop_fd,
                                     const struct native_export *e,
                                     char *why, size_t whylen);
extern void native_conn_free (struct conn *c);

/* Serve the connection in the transmission phase until the client
 * disconnects, or stop_fd (an eventfd) is written: then the requests
 * already received are finished and answered first (a client that does
 * not let that happen is cut off after NATIVE_STOP_DEADLINE seconds).
 * Frees c; closes neither the socket nor stop_fd. */
extern void native_conn_serve (struct conn *c);

/* At start: can a connection be set up here at all (io_uring allowed,
 * the buffers within RLIMIT_MEMLOCK)?  0, or -errno with the reason and
 * its fix in why. */
extern int native_conn_probe (const struct native_export *e, char *why,
                              size_t whylen);

/* How many requests over NATIVE_MID_DATA were served through a run of
 * mid buffers, how many larger ones (which go one at a time through
 * their connection's large buffer), and how many requests waited for
 * their connection's mid buffers. */
extern uint64_t native_run_uses (void);
extern uint64_t native_large_uses (void);
extern uint64_t native_mid_waits (void);

/* How many times a connection spun for its one request's file
 * operation (serve --poll-us), and how many of those spins saw it
 * complete. */
extern void native_poll_counts (uint64_t *spins, uint64_t *hits);

/* The serving command: options from 'nbdswap serve'. */
struct native_opts {
  const char *file;             /* one file, or NULL with dir */
  const char *dir;              /* --dir: every file in it an export */
  const char *export_name;      /* FILE's: "" unless --export */
  /* --allow NAME=CIDR,...: entry i restricts export allow_names[i]. */
  const char **allow_names;
  const char **allow_nets;
  size_t nr_export_allow;
  const char *stats_path;       /* counters file, or NULL */
  const char *pidfile;
  unsigned poll_us;             /* --poll-us */
  enum native_file_io file_io;  /* --file-io */
  int listen_fd;                /* bound and listening */
  bool tcp;                     /* listen_fd is TCP: apply acl */
  struct acl acl;
  int ready_fd;                 /* in the background: daemon_ready's, else -1 */
  /* The plugin's parameters after "--" on serve's command line, parsed
   * by the plugin's own parser: the native server reads recheck=,
   * retry-timeout=, retry-eio= and mlock=. */
  const struct swapfile_config *params;
  /* TLS, required when either is set (--tls-psk, --tls-certificates),
   * and --tls-verify-peer. */
  const char *tls_psk;
  const char *tls_psk_exports;  /* identity -> exports, or NULL */
  const char *tls_certs;
  bool tls_verify_peer;
};

/* A listening TCP socket on the numeric addr and port, or -1 (logged). */
extern int native_listen_tcp (const char *addr, const char *port);

/* True if fd is an AF_INET or AF_INET6 socket. */
extern bool native_socket_is_tcp (int fd);

/* Open, verify, lock and harden, then accept and serve until SIGTERM or
 * SIGINT.  Returns the command's exit status. */
extern int native_serve (struct native_opts *o);

#endif /* NBDSWAP_NATIVE_H */
