/* nbdswap: the request engine, shared by both front ends.
 *
 * One NBD request (read, write, write-zeroes, flush) against the backing
 * file, as a resumable step machine.  The engine decides every file
 * operation the request needs, in order: the I/O plan (plan.h: an
 * aligned request goes direct from the client's memory; an unaligned one
 * goes through a bounce buffer), the read-modify-write of partial edge
 * blocks, the stripe locks that keep RMW correct (rangelock.h: a write
 * holds each segment's stripes while that segment's I/O runs), retry of
 * transient errors (retry.h, each retry counted once), fault injection
 * in test builds (fault.h), the counters (stats.h), and one log line for
 * a request that fails.  It performs no I/O itself: its caller does each
 * operation (req->io) and hands the result back.
 *
 *   n = req_start (t, r);
 *   while (n != REQ_DONE)
 *     n = n == REQ_IO ? req_io_done (t, r, do_the_io (&r->io))
 *                     : req_resume (t, r);    (REQ_BLOCKED: later)
 *   reply with r->err
 *
 * The plugin's serving threads run that loop to the end on their own
 * ring or with pread/pwrite (worker_run, engine.h), and may sleep on a
 * lock (may_block).  The native server's event loop advances each
 * request from its completions, and parks one that is REQ_BLOCKED.
 * Nothing here allocates.
 */
#ifndef NBDSWAP_REQUEST_H
#define NBDSWAP_REQUEST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "plan.h"
#include "rangelock.h"
#include "retry.h"
#include "stats.h"

/* Why a target refuses requests (req_target.refuse, bits). */
enum {
  /* The re-verification found the extent map changed: writes and
   * zeroes fail with EIO, reads still work (the client swaps back in). */
  REQ_REFUSE_WRITES = 1,
  /* The export was removed while a client used it: every request fails
   * with EIO. */
  REQ_REFUSE_ALL = 2,
};

/* What every request of one export shares: made before serving, then
 * read-only but for the locks, the counters and refuse. */
struct req_target {
  const char *file;             /* names the file in log lines */
  uint64_t size;                /* export size */
  uint32_t align;               /* file offset/length alignment */
  uint32_t mem_align;           /* memory handed to the kernel as is */
  const unsigned char *zero_buf;  /* aligned zeroes for WRITE_ZEROES */
  uint32_t zero_size;
  uint32_t max_direct;          /* the longest direct file operation:
                                   REQ_MAX_DIRECT, REQ_BDEV_MAX_DIRECT */
  struct retry_policy retry;
  struct rangelock locks;
  struct stats *stats;          /* counted here: &stats unless changed */
  atomic_uint refuse;           /* REQ_REFUSE_* bits; set by the monitor */
};

/* The longest file operation a zeroing request issues from the zero
 * page (also its size). */
#define REQ_ZERO_SIZE (1024 * 1024)

/* The longest direct segment of a client buffer: one file operation for
 * any request a front end accepts (nbdkit's are at most 64 MiB). */
#define REQ_MAX_DIRECT (UINT32_C (64) << 20)

/* ... on a block device (the caller sets max_direct): Linux (6.1
 * block/fops.c) takes the bio of a direct operation of up to 256 pages
 * from the block layer's own pool, but the further bios of a longer one
 * from fs_bio_set, the pool this machine's swap-outs hold until the
 * server answers (backing_shares_swap_pool). */
#define REQ_BDEV_MAX_DIRECT (UINT32_C (1) << 20)

/* Set up t (its locks, the zero page every target shares: memory does
 * not grow with exports), counting into the process's stats.  0 or
 * -errno. */
extern int req_target_init (struct req_target *t, const char *file,
                            uint64_t size, uint32_t align,
                            uint32_t mem_align,
                            const struct retry_policy *retry);
extern void req_target_fini (struct req_target *t);

enum req_cmd { REQ_READ, REQ_WRITE, REQ_ZERO, REQ_FLUSH };
enum req_op { REQ_OP_READ, REQ_OP_WRITE, REQ_OP_SYNC };

/* One file operation to perform: the system call's arguments. */
struct req_io {
  enum req_op op;
  void *buf;
  uint64_t off;
  uint32_t len;
  bool fua;                     /* a write with RWF_DSYNC */
};

/* What the caller does next. */
enum req_next {
  REQ_IO,                       /* perform r->io, then req_io_done */
  REQ_BLOCKED,                  /* a lock is taken: req_resume later */
  REQ_DONE,                     /* finished: r->err is 0 or -errno */
};

/* Internal: where the step machine resumes. */
enum req_phase {
  REQ_PH_NEXT, REQ_PH_SEG, REQ_PH_LOCK, REQ_PH_HEAD, REQ_PH_HEAD_DONE,
  REQ_PH_TAIL, REQ_PH_TAIL_DONE, REQ_PH_WRITE, REQ_PH_SEG_DONE,
  REQ_PH_SYNC, REQ_PH_SYNC_DONE,
};

/* The caller sets every field of the first part before req_start; the
 * rest needs no initialising (req_start sets what the engine reads), so
 * a front end that reuses one struct per slot does not clear it for
 * every request. */
struct req {
  /* Set by the caller before req_start. */
  enum req_cmd cmd;
  uint64_t offset;              /* the client's range, inside the export */
  uint32_t count;               /* > 0, except for a flush */
  bool fua;
  void *data;                   /* read into, or write from (NULL: zero) */
  unsigned char *bounce;        /* mem_align'ed, bounce_size bytes */
  uint32_t bounce_size;         /* a multiple of align */
  unsigned char *scratch;       /* mem_align'ed, align bytes: RMW edges */
  bool in_place;                /* data = bounce + offset % align, and
                                   bounce holds the whole aligned cover:
                                   nothing is copied */
  bool may_block;               /* lock waits sleep instead of REQ_BLOCKED */
  /* The engine's answers. */
  struct req_io io;             /* REQ_IO: the operation to perform */
  int err;                      /* REQ_DONE: 0 or -errno */
  /* The engine's state. */
  enum req_phase phase;
  struct io_plan plan;
  struct io_seg seg;
  unsigned char *mem;           /* the current segment's memory */
  unsigned char *op_buf;        /* the whole current file operation */
  uint64_t op_off;
  uint32_t op_len, op_done;
  struct retry retry;
  uint64_t lock_mask;
  bool locked, lock_excl, lock_waiting;
  bool quiet;                   /* failed for a reason already logged */
  bool no_progress;             /* an operation moved nothing */
  uint64_t start_ns;
};

extern enum req_next req_start (struct req_target *t, struct req *r);
extern enum req_next req_io_done (struct req_target *t, struct req *r,
                                  int res);
extern enum req_next req_resume (struct req_target *t, struct req *r);

/* How the plugin names each command in its log lines (inline: a front
 * end names the command of every request it checks, and a constant
 * folds away). */
static inline const char *
req_cmd_name (enum req_cmd cmd)
{
  switch (cmd) {
  case REQ_READ: return "pread";
  case REQ_WRITE: return "pwrite";
  case REQ_ZERO: return "zero";
  case REQ_FLUSH: return "flush";
  }
  return "request";
}

#endif /* NBDSWAP_REQUEST_H */
