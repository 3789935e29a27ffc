/* nbdswap: the request engine (see include/request.h). */
#include <config.h>

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "align.h"
#include "clock.h"
#include "fault.h"
#include <pthread.h>

#include "log.h"
#include "request.h"

/* The zero page all targets share (a process serving many exports
 * keeps one), with how many targets use it and its alignment. */
static pthread_mutex_t zero_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char *zero_page;
static unsigned zero_users;
static uint32_t zero_align;

/* The shared zero page, aligned to at least align; NULL if out of
 * memory.  A target whose devices want a larger alignment than the
 * page has gets one of its own (zero_release frees it). */
static unsigned char *
zero_take (uint32_t align)
{
  void *p = NULL;

  /* mem_align is 1 for buffered I/O (direct=false): a page still. */
  if (align < 4096)
    align = 4096;
  pthread_mutex_lock (&zero_lock);
  if (zero_page != NULL && align <= zero_align) {
    zero_users++;
    p = zero_page;
  }
  else if (posix_memalign (&p, align, REQ_ZERO_SIZE) == 0) {
    memset (p, 0, REQ_ZERO_SIZE);
    if (zero_page == NULL) {
      zero_page = p;
      zero_align = align;
      zero_users = 1;
    }
  }
  else
    p = NULL;
  pthread_mutex_unlock (&zero_lock);
  return p;
}

static void
zero_release (const unsigned char *p)
{
  pthread_mutex_lock (&zero_lock);
  if (p != zero_page)
    free ((void *) p);
  else if (--zero_users == 0) {
    free (zero_page);
    zero_page = NULL;
  }
  pthread_mutex_unlock (&zero_lock);
}

int
req_target_init (struct req_target *t, const char *file, uint64_t size,
                 uint32_t align, uint32_t mem_align,
                 const struct retry_policy *retry)
{
  unsigned char *zero = zero_take (mem_align);
  int r;

  if (zero == NULL)
    return -ENOMEM;
  r = rangelock_init (&t->locks);
  if (r < 0) {
    zero_release (zero);
    return r;
  }
  t->file = file;
  t->size = size;
  t->align = align;
  t->mem_align = mem_align;
  t->zero_buf = zero;
  t->zero_size = REQ_ZERO_SIZE;
  t->max_direct = REQ_MAX_DIRECT;
  t->retry = *retry;
  t->stats = &stats;
  atomic_init (&t->refuse, 0);
  return 0;
}

void
req_target_fini (struct req_target *t)
{
  if (t->zero_buf == NULL)
    return;
  rangelock_destroy (&t->locks);
  zero_release (t->zero_buf);
  t->zero_buf = NULL;
}

/* The name retry's log lines give the current operation. */
static const char *
op_name (const struct req *r)
{
  return r->io.op == REQ_OP_WRITE ? "write" : r->io.op == REQ_OP_READ
    ? "read" : "fdatasync";
}

/* Let go of the current segment's stripes, if held. */
static void
unlock (struct req_target *t, struct req *r)
{
  if (r->locked)
    rangelock_release (&t->locks, r->lock_mask, r->lock_excl);
  r->locked = false;
}

/* The one log line of a failed request: what, where, and why, with the
 * retry's verdict when it gave up. */
static void
log_failure (struct req_target *t, struct req *r, int err)
{
  char why[160];

  if (r->retry.expired)
    snprintf (why, sizeof why, "%s persisted for %u s (retry-timeout): "
              "reporting EIO", strerror (r->retry.expired), t->retry.timeout);
  else if (r->retry.sync_eio)
    snprintf (why, sizeof why, "%s: not retried (a repeated flush could "
              "succeed without the data)", strerror (-err));
  else if (r->no_progress)
    snprintf (why, sizeof why, "no progress at offset %" PRIu64
              " (end of file?)", r->op_off + r->op_done);
  else
    snprintf (why, sizeof why, "%s", strerror (-err));
  log_error ("%s: %s: offset %" PRIu64 " length %" PRIu32 ": %s",
             req_cmd_name (r->cmd), t->file, r->offset, r->count, why);
}

/* End the request with err (0 or -errno): let go of its stripes, count
 * it, and log a failure once. */
static enum req_next
finish (struct req_target *t, struct req *r, int err)
{
  unlock (t, r);
  r->err = err;
  stats_latency (t->stats, clock_now_ns () - r->start_ns);
  if (err < 0) {
    STATS_ADD (t->stats, errors, 1);
    if (!r->quiet)
      log_failure (t, r, err);
    return REQ_DONE;
  }
  switch (r->cmd) {
  case REQ_READ:
    STATS_ADD (t->stats, reads, 1);
    STATS_ADD (t->stats, read_bytes, r->count);
    break;
  case REQ_WRITE:
    STATS_ADD (t->stats, writes, 1);
    STATS_ADD (t->stats, write_bytes, r->count);
    break;
  case REQ_ZERO: STATS_ADD (t->stats, zeroes, 1); break;
  case REQ_FLUSH: STATS_ADD (t->stats, flushes, 1); break;
  }
  return REQ_DONE;
}

/* A failed operation (-err): retry it after the backoff, or end the
 * request.  Returns true to issue the rest of the operation again. */
static bool
failed (struct req_target *t, struct req *r, int err, enum req_next *next)
{
  int e = r->io.op == REQ_OP_SYNC
    ? retry_after_sync (&r->retry, &t->retry, err)
    : retry_after (&r->retry, &t->retry, err, op_name (r),
                   r->op_off + r->op_done);

  if (e == 0) {
    STATS_ADD (t->stats, retries, 1);
    return true;
  }
  *next = finish (t, r, e);
  return false;
}

/* Hand the caller what is left of the current operation.  In test
 * builds an injected fault fails it here, before any I/O, exactly as the
 * system call would, or shortens it. */
static enum req_next
issue (struct req_target *t, struct req *r)
{
  enum req_next next;

  for (;;) {
    int f = r->io.op == REQ_OP_SYNC ? 0
      : fault_check (t->file, r->io.op == REQ_OP_WRITE);

    if (f > 0) {
      if (failed (t, r, f, &next))
        continue;
      return next;
    }
    r->io.buf = r->op_buf ? r->op_buf + r->op_done : NULL;
    r->io.off = r->op_off + r->op_done;
    r->io.len = fault_len (f, r->op_len - r->op_done);
    return REQ_IO;
  }
}

/* Start the file operation op on [off, off+len) with memory buf. */
static enum req_next
start_op (struct req_target *t, struct req *r, enum req_op op, void *buf,
          uint64_t off, uint32_t len, enum req_phase then)
{
  r->io = (struct req_io) { .op = op, .fua = op == REQ_OP_WRITE && r->fua };
  r->op_buf = buf;
  r->op_off = off;
  r->op_len = len;
  r->op_done = 0;
  r->phase = then;
  return issue (t, r);
}

/* Copy into block [b, b+align) of the segment's memory the bytes of the
 * file (read into scratch) that the client's part [skip, skip+n) does
 * not cover. */
static void
patch_block (struct req *r, uint32_t b, uint32_t align)
{
  uint32_t lo = r->seg.skip > b ? r->seg.skip : b;
  uint32_t end = r->seg.skip + r->seg.n;
  uint32_t hi = end < b + align ? end : b + align;

  /* An edge block always holds some of the client's bytes. */
  assert (lo < hi);
  memcpy (r->mem + b, r->scratch, lo - b);
  memcpy (r->mem + hi, r->scratch + (hi - b), b + align - hi);
}

/* The client's bytes of the current segment. */
static unsigned char *
client_part (struct req *r)
{
  return (unsigned char *) r->data + r->seg.buf_off;
}

/* The memory of the current segment's file I/O: the client's own
 * (direct; the zero page for zeroes), where its data already is (in
 * place), or the bounce buffer. */
static unsigned char *
segment_memory (struct req_target *t, struct req *r)
{
  if (r->seg.direct)
    return r->data ? client_part (r) : (unsigned char *) t->zero_buf;
  if (r->in_place)
    return client_part (r) - r->seg.skip;
  return r->bounce;
}

/* Run the step machine until it needs I/O, a lock, or is done. */
static enum req_next
step (struct req_target *t, struct req *r)
{
  uint32_t a = t->align;

  for (;;) {
    switch (r->phase) {
    case REQ_PH_SEG_DONE:       /* the segment's last operation is done */
      if (r->cmd == REQ_READ && !r->seg.direct
          && r->mem + r->seg.skip != client_part (r))
        memcpy (client_part (r), r->mem + r->seg.skip, r->seg.n);
      unlock (t, r);
      /* fall through */
    case REQ_PH_NEXT:
      if (!plan_next (&r->plan, &r->seg))
        return finish (t, r, 0);
      /* fall through */
    case REQ_PH_SEG:            /* r->seg is the next segment: start it */
      r->mem = segment_memory (t, r);
      if (r->cmd == REQ_READ)
        return start_op (t, r, REQ_OP_READ, r->mem, r->seg.file_off,
                         r->seg.len, REQ_PH_SEG_DONE);
      /* A write holds its segment's stripes while that segment's I/O
       * runs: exclusively if it reads and patches an edge block. */
      r->lock_mask = rangelock_mask (r->seg.file_off, r->seg.len);
      r->lock_excl = r->seg.read_first || r->seg.read_last;
      r->phase = REQ_PH_LOCK;
      break;
    case REQ_PH_LOCK:
      if (r->may_block)
        rangelock_wait (&t->locks, r->lock_mask, r->lock_excl);
      else if (!rangelock_try (&t->locks, r->lock_mask, r->lock_excl,
                               &r->lock_waiting))
        return REQ_BLOCKED;
      r->locked = true;
      r->phase = r->seg.read_first ? REQ_PH_HEAD
        : r->seg.read_last ? REQ_PH_TAIL : REQ_PH_WRITE;
      break;
    case REQ_PH_HEAD:
      return start_op (t, r, REQ_OP_READ, r->scratch, r->seg.file_off, a,
                       REQ_PH_HEAD_DONE);
    case REQ_PH_HEAD_DONE:
      patch_block (r, 0, a);
      r->phase = r->seg.read_last ? REQ_PH_TAIL : REQ_PH_WRITE;
      break;
    case REQ_PH_TAIL:
      return start_op (t, r, REQ_OP_READ, r->scratch,
                       r->seg.file_off + r->seg.len - a, a,
                       REQ_PH_TAIL_DONE);
    case REQ_PH_TAIL_DONE:
      patch_block (r, r->seg.len - a, a);
      r->phase = REQ_PH_WRITE;
      break;
    case REQ_PH_WRITE:
      if (!r->seg.direct && r->data == NULL)
        memset (r->mem + r->seg.skip, 0, r->seg.n);
      else if (!r->seg.direct && r->mem + r->seg.skip != client_part (r))
        memcpy (r->mem + r->seg.skip, client_part (r), r->seg.n);
      return start_op (t, r, REQ_OP_WRITE, r->mem, r->seg.file_off,
                       r->seg.len, REQ_PH_SEG_DONE);
    case REQ_PH_SYNC:
      return start_op (t, r, REQ_OP_SYNC, NULL, 0, 0, REQ_PH_SYNC_DONE);
    case REQ_PH_SYNC_DONE:
      return finish (t, r, 0);
    }
  }
}

/* Plan a read, write or zeroing through the caller's memory, and set
 * the phase that starts it.  The common request, one aligned segment (a
 * swapped page), is that segment at once; the rest go through the
 * planner, segment by segment. */
static void
plan_request (struct req_target *t, struct req *r)
{
  bool zero = r->cmd == REQ_ZERO;
  bool mem_ok = zero || ptr_is_aligned (r->data, t->mem_align);
  uint32_t max_direct = zero ? t->zero_size : t->max_direct;
  uint32_t chunk = r->bounce_size;

  if (plan_one_direct (&r->plan, &r->seg, r->offset, r->count, t->align,
                       mem_ok, max_direct)) {
    r->phase = REQ_PH_SEG;
    return;
  }
  if (r->in_place) {
    uint64_t cover = round_up (r->offset + r->count, t->align)
      - round_down (r->offset, t->align);

    /* Segments where the data already is: the whole cover, or pieces
     * of max_direct (a block device's pool covers no more per
     * operation). */
    assert (!zero && cover <= r->bounce_size);
    assert ((unsigned char *) r->data
            == r->bounce + r->offset % t->align);
    chunk = cover < max_direct ? (uint32_t) cover : max_direct;
  }
  plan_init (&r->plan, r->offset, r->count, t->align, mem_ok, chunk,
             max_direct);
  if (!r->plan.direct)
    STATS_ADD (t->stats, bounced, 1);
  if (r->cmd != REQ_READ && plan_needs_rmw (r->offset, r->count, t->align))
    STATS_ADD (t->stats, rmw, 1);
  r->phase = REQ_PH_NEXT;
}

enum req_next
req_start (struct req_target *t, struct req *r)
{
  unsigned refuse = atomic_load_explicit (&t->refuse, memory_order_relaxed);

  r->err = 0;
  r->retry = (struct retry) RETRY_INIT;
  r->locked = r->lock_waiting = r->quiet = r->no_progress = false;
  r->start_ns = clock_now_ns ();
  if (refuse != 0 && (refuse & REQ_REFUSE_ALL
                      || (r->cmd != REQ_READ && r->cmd != REQ_FLUSH))) {
    r->quiet = true;            /* the monitor said why, loudly */
    return finish (t, r, -EIO);
  }
  if (r->cmd == REQ_FLUSH) {
    r->phase = REQ_PH_SYNC;
    return step (t, r);
  }
  assert (r->count > 0 && r->offset <= t->size
          && r->count <= t->size - r->offset);
  plan_request (t, r);
  return step (t, r);
}

enum req_next
req_io_done (struct req_target *t, struct req *r, int res)
{
  enum req_next next;

  if (res > 0 || (res == 0 && r->io.op == REQ_OP_SYNC)) {
    r->op_done += (uint32_t) res;
    if (r->io.op != REQ_OP_SYNC && r->op_done < r->op_len)
      return issue (t, r);      /* short transfer: the rest */
    return step (t, r);
  }
  if (res == 0) {
    /* No progress: the file ended early (it shrank under us). */
    r->no_progress = true;
    return finish (t, r, -EIO);
  }
  if (failed (t, r, -res, &next))
    return issue (t, r);
  return next;
}

enum req_next
req_resume (struct req_target *t, struct req *r)
{
  return step (t, r);
}
