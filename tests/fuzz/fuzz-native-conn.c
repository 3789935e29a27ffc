/* nbdswap fuzz target: one native connection in the transmission phase.
 *
 * The input is what a client sends after the negotiation: request
 * headers, write payloads, garbage, then end of stream.  The server is
 * a real connection (native_conn_new, native_conn_serve: its ring, the
 * request engine, O_DIRECT I/O) on the other end of a socketpair,
 * serving a small real backing file made once in the build tree
 * (NBDSWAP_FUZZ_BACKING names another).  The file is the export, then
 * a guard region the export does not include.  After every input:
 *   - native_conn_serve returned (a connection ends at end of stream:
 *     a hang is a finding, libFuzzer's -timeout or the replay's alarm);
 *   - the file's size and its guard region are unchanged (no write
 *     outside the export);
 *   - no range lock is held or waited for (every request finished);
 *   - the replies are well framed: each answers one request of the
 *     input (by its cookie) with one of the protocol's errors, a
 *     successful read's carries exactly its data, and every whole
 *     request the server had to read gets one (all those before the
 *     first bad magic, NBD_CMD_DISC, or the end of the input; a read or
 *     write over the maximum is refused, not the end).
 * Writes change the export's contents: that is expected.
 */
#include <config.h>

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dioalign.h"
#include "fuzz.h"
#include "native.h"
#include "native-proto.h"
#include "request.h"

/* The export: larger than all the mid buffers hold (NATIVE_MID_BUFS x
 * NATIVE_MID_DATA and a little), so that requests through runs of them
 * and through the connection's large buffer both fit; the guard after
 * it.  Both multiples of any O_DIRECT alignment (DIO_ALIGN_MAX). */
#define EXPORT_SIZE (2 * 1024 * 1024)
#define GUARD_SIZE (64 * 1024)
#define GUARD_BYTE 0xa5

static struct native_export export;
static struct req_target target;
static int stop_fd = -1;
static int guard_fd = -1;       /* the same file, buffered */

/* The backing file's path: NBDSWAP_FUZZ_BACKING, else the one in the
 * build tree. */
static const char *
backing_path (void)
{
  const char *p = getenv ("NBDSWAP_FUZZ_BACKING");

  return p ? p : FUZZ_BACKING;
}

/* Make the file (export, then guard) if needed and fill the guard. */
static void
backing_create (const char *path)
{
  static unsigned char guard[GUARD_SIZE];

  guard_fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (guard_fd == -1)
    fuzz_cannot_run ("cannot create the backing file (set "
                     "NBDSWAP_FUZZ_BACKING to a writable path)");
  memset (guard, GUARD_BYTE, sizeof guard);
  if (ftruncate (guard_fd, EXPORT_SIZE + GUARD_SIZE) == -1 ||
      pwrite (guard_fd, guard, sizeof guard, EXPORT_SIZE) != GUARD_SIZE ||
      fdatasync (guard_fd) == -1)
    fuzz_fail ("fuzz: %s: making the backing file: %s", path,
               strerror (errno));
}

/* Open the file O_DIRECT and describe it as native-serve.c does. */
static void
backing_open_direct (const char *path)
{
  struct dio_align dio;
  char why[512];
  int r;

  export.fd = open (path, O_RDWR | O_DIRECT | O_CLOEXEC);
  if (export.fd == -1) {
    snprintf (why, sizeof why, "%s: O_DIRECT refused here (%s): set "
              "NBDSWAP_FUZZ_BACKING to a file on ext4 or xfs", path,
              strerror (errno));
    fuzz_cannot_run (why);
  }
  r = dio_align_learn (export.fd, &dio);
  if (r < 0 || dio.offset > DIO_ALIGN_MAX)
    fuzz_cannot_run ("cannot learn the backing file's O_DIRECT alignment");
  export.size = EXPORT_SIZE;
  export.align = dio.offset;
  export.mem_align = dio_mem_align (&dio);
  export.name = "";
  export.flags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH |
    NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_CAN_MULTI_CONN;
  r = native_conn_probe (&export, why, sizeof why);
  if (r < 0)
    fuzz_cannot_run (why);
  /* Retries as the default policy, but short: an injected or real
   * transient error must not stall the fuzzer for a minute. */
  r = req_target_init (&target, path, export.size, export.align,
                       export.mem_align, &(struct retry_policy) { 1, true });
  if (r < 0)
    fuzz_fail ("fuzz: req_target_init: %s", strerror (-r));
  export.target = &target;
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  const char *path = backing_path ();

  fuzz_quiet_log ();
  backing_create (path);
  backing_open_direct (path);
  stop_fd = eventfd (0, EFD_CLOEXEC);   /* never written: no stop */
  if (stop_fd == -1)
    fuzz_fail ("fuzz: eventfd: %s", strerror (errno));
  return 0;
}

/* The checks after every input (see the top of the file). */
static void
check_backing (void)
{
  static unsigned char guard[GUARD_SIZE];
  struct stat st;

  if (fstat (guard_fd, &st) == -1)
    fuzz_fail ("fuzz: fstat: %s", strerror (errno));
  if (st.st_size != EXPORT_SIZE + GUARD_SIZE)
    fuzz_fail ("fuzz: the backing file's size changed: %lld bytes, was %d",
               (long long) st.st_size, EXPORT_SIZE + GUARD_SIZE);
  if (pread (guard_fd, guard, sizeof guard, EXPORT_SIZE) != GUARD_SIZE)
    fuzz_fail ("fuzz: reading the guard region: %s", strerror (errno));
  for (size_t i = 0; i < sizeof guard; i++)
    if (guard[i] != GUARD_BYTE)
      fuzz_fail ("fuzz: a write outside the export: the byte at %zu of "
                 "the file changed", EXPORT_SIZE + i);
  for (int i = 0; i < RANGELOCK_STRIPES; i++)
    if (target.locks.holders[i] != 0 || target.locks.waiters[i] != 0)
      fuzz_fail ("fuzz: range lock stripe %d still held (%d) or waited for "
                 "(%u) after the connection ended", i,
                 target.locks.holders[i], target.locks.waiters[i]);
}

/* A request of the input that must be answered. */
struct expect {
  uint64_t cookie;              /* as on the wire */
  uint32_t data;                /* a read's length: its data follows */
  uint16_t type;
  bool answered;
};

/* The reply stream as the peer reads it. */
struct replies {
  struct expect *want;
  size_t nwant;
  unsigned char hdr[sizeof (struct nbd_simple_reply)];
  size_t hdr_got;
  uint64_t data_left;           /* of the read being answered */
  bool lost;                    /* a cookie used twice: cannot follow */
};

/* The requests the server must answer, found as native-conn.c parses
 * the stream: up to a bad magic, a truncated header or payload, or
 * NBD_CMD_DISC.  A write's payload follows its header whatever its
 * length (one over the maximum is read and dropped). */
static size_t
expect_requests (const uint8_t *d, size_t size, struct expect *want)
{
  size_t pos = 0, n = 0;

  while (size - pos >= sizeof (struct nbd_request)) {
    struct nbd_request rq;
    uint32_t len;
    uint16_t type;

    memcpy (&rq, d + pos, sizeof rq);
    pos += sizeof rq;
    len = be32toh (rq.length);
    type = be16toh (rq.type);
    if (be32toh (rq.magic) != NBD_MAGIC_REQUEST || type == NBD_CMD_DISC)
      break;
    if (type == NBD_CMD_WRITE) {
      if (len > size - pos)
        break;
      pos += len;
    }
    want[n++] = (struct expect) {
      rq.cookie, type == NBD_CMD_READ ? len : 0, type, false
    };
  }
  return n;
}

/* The request a reply with this cookie answers: the first unanswered
 * one with it; NULL if there is none, or (rp->lost) if requests of
 * different kinds share the cookie. */
static struct expect *
match_reply (struct replies *rp, uint64_t cookie)
{
  struct expect *first = NULL;

  for (size_t i = 0; i < rp->nwant; i++) {
    struct expect *w = &rp->want[i];

    if (w->answered || w->cookie != cookie)
      continue;
    if (first == NULL)
      first = w;
    else if (w->type != first->type || w->data != first->data)
      rp->lost = true;
  }
  return first;
}

/* One whole reply header. */
static void
check_reply_header (struct replies *rp)
{
  struct nbd_simple_reply h;
  struct expect *w;
  uint32_t err;

  memcpy (&h, rp->hdr, sizeof h);
  rp->hdr_got = 0;
  err = be32toh (h.error);
  if (be32toh (h.magic) != NBD_MAGIC_SIMPLE_REPLY)
    fuzz_fail ("fuzz: a reply with magic 0x%08x", be32toh (h.magic));
  if (err != 0 && err != NBD_EPERM && err != NBD_EIO && err != NBD_ENOMEM &&
      err != NBD_EINVAL && err != NBD_ENOSPC && err != NBD_EOVERFLOW &&
      err != NBD_ENOTSUP && err != NBD_ESHUTDOWN)
    fuzz_fail ("fuzz: a reply with error %u, not one of the protocol's", err);
  w = match_reply (rp, h.cookie);
  if (rp->lost)
    return;
  if (w == NULL)
    fuzz_fail ("fuzz: a reply for cookie 0x%016llx, which no request left "
               "unanswered had", (unsigned long long) be64toh (h.cookie));
  w->answered = true;
  if (err == 0)
    rp->data_left = w->data;
}

/* The peer's callback: follow the replies; at the end (n == 0), check
 * that none is cut short and every request got one. */
static void
check_replies (void *arg, const uint8_t *p, size_t n)
{
  struct replies *rp = arg;

  if (n == 0) {
    if (rp->lost)
      return;
    if (rp->hdr_got != 0 || rp->data_left != 0)
      fuzz_fail ("fuzz: the server's last reply is cut short");
    for (size_t i = 0; i < rp->nwant; i++)
      if (!rp->want[i].answered)
        fuzz_fail ("fuzz: request %zu of %zu (type %u, cookie 0x%016llx) "
                   "was never answered", i + 1, rp->nwant,
                   rp->want[i].type,
                   (unsigned long long) be64toh (rp->want[i].cookie));
    return;
  }
  while (n > 0 && !rp->lost) {
    size_t k;

    if (rp->data_left > 0) {
      k = n < rp->data_left ? n : (size_t) rp->data_left;
      rp->data_left -= k;
    }
    else {
      k = sizeof rp->hdr - rp->hdr_got;
      k = n < k ? n : k;
      memcpy (rp->hdr + rp->hdr_got, p, k);
      rp->hdr_got += k;
      if (rp->hdr_got == sizeof rp->hdr)
        check_reply_header (rp);
    }
    p += k;
    n -= k;
  }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct replies rp = { .want = NULL };
  struct fuzz_peer peer = { .received = check_replies, .arg = &rp };
  char why[512];
  int sock;
  struct conn *c;

  rp.want = malloc ((size / sizeof (struct nbd_request) + 1) *
                    sizeof *rp.want);
  if (rp.want == NULL)
    fuzz_fail ("fuzz: malloc: %s", strerror (errno));
  rp.nwant = expect_requests (data, size, rp.want);
  sock = fuzz_peer_start (&peer, data, size);
  c = native_conn_new (sock, stop_fd, &export, why, sizeof why);
  if (c == NULL)
    fuzz_fail ("fuzz: native_conn_new: %s", why);
  native_conn_serve (c);
  fuzz_peer_finish (&peer, sock);
  free (rp.want);
  check_backing ();
  return 0;
}
