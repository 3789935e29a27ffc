/* nbdswap native server: the state of one connection, shared by its
 * event loop (native-conn.c: the ring, receive, send, file operations)
 * and its request logic (native-request.c: commands, bounds, buffers,
 * handing requests to the request engine, request.h).  Only the
 * connection's own thread touches any of it.
 */
#ifndef NBDSWAP_NATIVE_CONN_H
#define NBDSWAP_NATIVE_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <liburing.h>

#include "native.h"
#include "native-proto.h"
#include "request.h"

/* The staging buffer for the byte stream from the client. */
#define NATIVE_RBUF (64 * 1024)

/* A payload part at least this large is received straight into the
 * request's buffer instead of through the staging buffer. */
#define NATIVE_RECV_DIRECT (16 * 1024)

/* Busy-polling for a depth-1 request's file operation (poll_file): how
 * many fruitless spins in a row turn it off, and for how many waits.
 * How long it spins is export->poll_ns (NATIVE_POLL_US in native.h). */
#define NATIVE_POLL_MISSES 8
#define NATIVE_POLL_PAUSE 1024

/* Entries of one gather send: two per reply (header, read data). */
#define NATIVE_IOV 64

enum slot_state { SLOT_FREE, SLOT_PAYLOAD, SLOT_PARKED, SLOT_IO, SLOT_REPLY };

/* Which of the connection's buffers a request uses (native.h says why
 * three sizes). */
enum buf_tier { BUF_NONE, BUF_SMALL, BUF_MID, BUF_LARGE };

/* One request.  Its data lives at buf + offset % align, so the buffer
 * it is given holds the aligned cover of the request in the file and
 * the request engine does its file I/O in place (req.in_place), with no
 * second copy. */
struct slot {
  struct nbd_simple_reply reply;        /* sent as is */
  enum slot_state state;
  unsigned idx;                         /* index in slots[]: file tags */
  uint16_t type, flags;
  uint64_t offset;                      /* the client's range */
  uint32_t len;
  uint32_t got;                         /* payload bytes received */
  uint32_t skip;                        /* offset % align */
  uint64_t arrived_ns;                  /* header read (stats turn_ns) */
  bool discard;                         /* payload to be dropped ... */
  int discard_err;                      /* ... and this error replied */
  bool started;                         /* req_start was called */
  bool waited;                          /* counted in native_mid_waits */
  /* The buffer assigned (assign_buffer), BUF_NONE and NULL until then:
   * its registered index (buf_reg: a run's is NATIVE_RUN_REG; -1 for
   * the large buffer, not registered) is what a fixed read or write
   * names, never idx. */
  enum buf_tier tier;
  unsigned char *buf;
  size_t buf_len;
  int buf_reg;                          /* one mid: NATIVE_SLOTS + which */
  unsigned mid_first, mid_n;            /* BUF_MID: the run it holds */
  struct req req;                       /* the request engine's state */
  struct slot *next;                    /* free, parked or send list */
};

struct conn {
  struct io_uring ring;
  const struct native_export *e;
  int sock;
  int stop_fd;                          /* eventfd: the server stops */
  uint64_t stop_val;
  bool stopping;
  /* The registered buffers, in one mapping: slot i's small one
   * (registered index i), then the mid ones (NATIVE_SLOTS + j). */
  unsigned char *buf_mem;
  size_t buf_mem_len;
  size_t small_stride, mid_stride;      /* cover room + one scratch block */
  uint32_t mid_free;                    /* bit j: mid buffer j is free */
  bool mid_blocked;                     /* this turn a request waits for
                                           mid buffers: none for later
                                           ones (native_unpark clears) */
  unsigned char *large;                 /* BLOCKSIZE_MAX + 2 blocks */
  size_t large_len;
  bool large_busy;
  struct slot slots[NATIVE_SLOTS];
  struct slot *free;
  unsigned nfree;
  struct slot *parked, *parked_tail;    /* waiting for a lock or buffer,
                                           oldest first */
  unsigned nparked;
  /* Receiving. */
  unsigned char rbuf[NATIVE_RBUF];
  uint32_t rpos, rend;
  struct slot *payload;                 /* the write whose data comes next */
  bool recv_busy, recv_direct;
  bool recv_cancelled;                  /* a cancel of it is on its way */
  bool drained;                         /* stopping: the socket was empty */
  /* Sending. */
  struct slot *sq_head, *sq_tail;
  struct slot *sending[NATIVE_IOV];
  unsigned nsending;
  struct iovec iov[NATIVE_IOV];
  unsigned iov_pos, iov_n;
  struct msghdr msg;
  bool send_busy;
  bool timer_busy;
  unsigned poll_misses, poll_pause;     /* poll_file's */
  unsigned inflight;                    /* file operations */
  bool file_async;                      /* IOSQE_ASYNC: !e->file_inline */
  bool closing;                         /* read no more requests */
  bool broken;                          /* sends fail: drop replies */
  bool peer_gone;                       /* the client's end of stream came */
};

/* native-conn.c: the event loop and file operations. */
extern void native_conn_loop (struct conn *c);
extern void native_reply (struct conn *c, struct slot *s, int err);
extern void native_reply_drop (struct conn *c, struct slot *s);
extern void native_stop_reading (struct conn *c);
extern void native_park (struct conn *c, struct slot *s);
extern void native_advance (struct conn *c, struct slot *s,
                            enum req_next next);

/* native-request.c: the commands. */
extern void native_request (struct conn *c, struct slot *s);
extern bool native_payload_ready (struct conn *c, struct slot *s);
extern void native_payload_done (struct conn *c, struct slot *s);
extern void native_unpark (struct conn *c);
extern void native_buffer_release (struct conn *c, struct slot *s);

/* The registered index of all the mid buffers as one (they lie end to
 * end): a run's fixed operations name it.  Fixed, the kernel builds the
 * bio from the registered pages, with no array of them to allocate per
 * operation (a 1 MiB plain one needs 256 entries from the bio pool's
 * reserve, the pool the kernel's own swap-outs draw from). */
#define NATIVE_RUN_REG (NATIVE_SLOTS + NATIVE_MID_BUFS)

/* Slot i's small buffer, and mid buffer j (struct conn's buf_mem). */
static inline unsigned char *
native_small_buf (const struct conn *c, unsigned i)
{
  return c->buf_mem + i * c->small_stride;
}

static inline unsigned char *
native_mid_buf (const struct conn *c, unsigned j)
{
  return c->buf_mem + NATIVE_SLOTS * c->small_stride + j * c->mid_stride;
}

static inline unsigned
native_parked (const struct conn *c)
{
  return c->nparked;
}

#endif /* NBDSWAP_NATIVE_CONN_H */
