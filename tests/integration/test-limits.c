/* Integration test: request sizes and refusals, the same from both
 * servers.  nbdkit with the plugin, then 'nbdswap serve --native', on
 * the same file:
 *   - advertise the same NBD_INFO_BLOCK_SIZE (blocksize.h), maximum
 *     BLOCKSIZE_MAX;
 *   - serve a read and a write of exactly the maximum;
 *   - refuse a read and a write one block over it with EINVAL, nothing of
 *     the refused write landing, and go on serving that connection
 *     (libnbd's strict mode is off, so that it sends them);
 *   - answer a table of odd requests (zero lengths, past the end, flags
 *     a command may not carry) with the same error, each one followed
 *     by a read that must still work;
 *   - count none of those refusals among the errors of their counters
 *     (the last "stats:" line of the log).
 * The file is larger than the maximum, so that the size is what is
 * refused, not the range.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blocksize.h"
#include "harness.h"

#define SIZE ((uint64_t) BLOCKSIZE_MAX + (UINT64_C (8) << 20))
#define BLOCK 4096

static struct server s;
static char path[400], filearg[420];

/* One odd request: what it is, and the errno each server answered. */
struct odd {
  const char *what;
  char cmd;                     /* 'r'ead, 'w'rite, 'z'ero */
  uint64_t off;
  uint32_t len;
  uint32_t flags;
};

static const struct odd odds[] = {
  { "read of zero bytes", 'r', 0, 0, 0 },
  { "write of zero bytes", 'w', 0, 0, 0 },
  { "zero of zero bytes", 'z', 0, 0, 0 },
  { "read past the end", 'r', SIZE - BLOCK, 2 * BLOCK, 0 },
  { "write past the end", 'w', SIZE - BLOCK, 2 * BLOCK, 0 },
  { "zero past the end", 'z', SIZE - BLOCK, 2 * BLOCK, 0 },
  { "write at the end", 'w', SIZE, BLOCK, 0 },
  { "read with NO_HOLE", 'r', 0, BLOCK, LIBNBD_CMD_FLAG_NO_HOLE },
  { "write with NO_HOLE", 'w', 0, BLOCK, LIBNBD_CMD_FLAG_NO_HOLE },
  { "write past the end with NO_HOLE", 'w', SIZE, BLOCK,
    LIBNBD_CMD_FLAG_NO_HOLE },
  { "zero with FAST_ZERO", 'z', 0, BLOCK, LIBNBD_CMD_FLAG_FAST_ZERO },
  { "read with FUA", 'r', 0, BLOCK, LIBNBD_CMD_FLAG_FUA },
  { "write over the maximum past the end", 'w', SIZE - BLOCK,
    BLOCKSIZE_MAX + BLOCK, 0 },
};
#define NR_ODDS (sizeof odds / sizeof odds[0])

/* What one server answered. */
struct answers {
  int64_t minimum, preferred, maximum;
  int odd[NR_ODDS];             /* 0, or the errno */
  long long errors;             /* its counter at exit, or -1 */
};

static unsigned char *big;      /* BLOCKSIZE_MAX + BLOCK bytes */

/* Send one odd request through h: 0, or the errno of its refusal. */
static int
send_odd (struct nbd_handle *h, const struct odd *o)
{
  int r;

  switch (o->cmd) {
  case 'r': r = nbd_pread (h, big, o->len, o->off, o->flags); break;
  case 'w': r = nbd_pwrite (h, big, o->len, o->off, o->flags); break;
  default: r = nbd_zero (h, o->len, o->off, o->flags); break;
  }
  return r == 0 ? 0 : nbd_get_errno ();
}

/* The file itself at [off, off+len) equals buf. */
static bool
file_has (uint64_t off, const unsigned char *buf, size_t len)
{
  unsigned char *got = malloc (len);
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  bool same = got && fd >= 0 && pread (fd, got, len, (off_t) off) ==
    (ssize_t) len && memcmp (got, buf, len) == 0;

  if (fd >= 0)
    close (fd);
  free (got);
  return same;
}

/* A read of the first block works (the connection goes on). */
static void
check_alive (struct nbd_handle *h, const char *after, const char *name)
{
  static unsigned char b[BLOCK];

  CHECK (nbd_pread (h, b, sizeof b, 0, 0) == 0, "%s: after %s, the "
         "connection does not serve: %s", name, after, nbd_get_error ());
}

/* The maximum, exactly, is served; one block more is refused with
 * EINVAL and the connection goes on. */
static void
test_maximum (struct nbd_handle *h, const char *name)
{
  static unsigned char before[BLOCK];
  int fd = open (path, O_RDONLY | O_CLOEXEC);

  CHECK (nbd_pread (h, big, BLOCKSIZE_MAX, BLOCK, 0) == 0,
         "%s: a read of the maximum: %s", name, nbd_get_error ());
  CHECK (file_has (BLOCK, big, BLOCKSIZE_MAX), "%s: a read of the maximum "
         "does not return the file's bytes", name);
  memset (big, name[0], BLOCKSIZE_MAX);
  CHECK (nbd_pwrite (h, big, BLOCKSIZE_MAX, 3 * BLOCK, 0) == 0,
         "%s: a write of the maximum: %s", name, nbd_get_error ());
  CHECK (file_has (3 * BLOCK, big, BLOCKSIZE_MAX), "%s: a write of the "
         "maximum did not land", name);

  CHECK (nbd_pread (h, big, BLOCKSIZE_MAX + BLOCK, 0, 0) == -1 &&
         nbd_get_errno () == EINVAL, "%s: a read over the maximum: %s "
         "(errno %d, want EINVAL)", name, nbd_get_error (), nbd_get_errno ());
  check_alive (h, "a read over the maximum", name);

  CHECK (fd >= 0 && pread (fd, before, BLOCK, 0) == BLOCK, "pread: %m");
  memset (big, 0x77, BLOCKSIZE_MAX + BLOCK);
  CHECK (nbd_pwrite (h, big, BLOCKSIZE_MAX + BLOCK, 0, 0) == -1 &&
         nbd_get_errno () == EINVAL, "%s: a write over the maximum: %s "
         "(errno %d, want EINVAL)", name, nbd_get_error (), nbd_get_errno ());
  check_alive (h, "a write over the maximum", name);
  CHECK (file_has (0, before, BLOCK), "%s: a refused write landed", name);
  if (fd >= 0)
    close (fd);
}

/* The errors counter of the last "stats:" line in log, or -1. */
static long long
final_errors (const char *log)
{
  const char *p = NULL, *q;

  for (q = strstr (log, "stats: reads="); q; q = strstr (q + 1, "stats: reads="))
    p = q;
  p = p ? strstr (p, " errors=") : NULL;
  return p ? strtoll (p + 8, NULL, 10) : -1;
}

/* Run every check against the server harness_native () selects. */
static void
run_server (const char *name, struct answers *a)
{
  const char *params[] = { filearg, NULL };
  struct nbd_handle *h;
  char *log;

  if (server_start (&s, NULL, params) == -1) {
    log = server_log (&s);
    CHECK (0, "%s did not start:\n%s", name, log);
    free (log);
    return;
  }
  h = server_connect (&s, false);
  a->minimum = nbd_get_block_size (h, LIBNBD_SIZE_MINIMUM);
  a->preferred = nbd_get_block_size (h, LIBNBD_SIZE_PREFERRED);
  a->maximum = nbd_get_block_size (h, LIBNBD_SIZE_MAXIMUM);
  CHECK (a->maximum == BLOCKSIZE_MAX, "%s: maximum %" PRIi64 ", want %d",
         name, a->maximum, BLOCKSIZE_MAX);
  test_maximum (h, name);
  for (size_t i = 0; i < NR_ODDS; i++) {
    a->odd[i] = send_odd (h, &odds[i]);
    check_alive (h, odds[i].what, name);
  }
  nbd_shutdown (h, 0);
  nbd_close (h);
  CHECK (server_stop (&s) == 0, "%s: exit status", name);
  log = server_log (&s);
  CHECK (strstr (log, "pwrite of 33558528 bytes: over the maximum of "
                 "33554432 bytes advertised") != NULL,
         "%s: the refusal is not logged", name);
  a->errors = final_errors (log);
  CHECK (a->errors == 0, "%s: %lld errors counted, want 0: refusals are "
         "not failures of the file", name, a->errors);
  free (log);
}

int
main (void)
{
  struct answers plugin = { 0 }, native = { 0 };

  big = malloc (BLOCKSIZE_MAX + BLOCK);
  if (big == NULL) {
    perror ("malloc");
    return EXIT_FAILURE;
  }
  harness_init (&s, "limits");
  snprintf (path, sizeof path, "%s/backing.img", s.dir);
  snprintf (filearg, sizeof filearg, "file=%s", path);
  make_file (path, SIZE, 5);

  unsetenv ("NBDSWAP_NATIVE");
  run_server ("plugin", &plugin);
  setenv ("NBDSWAP_NATIVE", NBDSWAP, 1);
  run_server ("native", &native);

  CHECK (plugin.minimum == native.minimum && plugin.preferred ==
         native.preferred && plugin.maximum == native.maximum,
         "block sizes differ: plugin %" PRIi64 "/%" PRIi64 "/%" PRIi64
         ", native %" PRIi64 "/%" PRIi64 "/%" PRIi64, plugin.minimum,
         plugin.preferred, plugin.maximum, native.minimum, native.preferred,
         native.maximum);
  for (size_t i = 0; i < NR_ODDS; i++) {
    printf ("%-40s plugin %-8s native %s\n", odds[i].what,
            plugin.odd[i] ? strerror (plugin.odd[i]) : "served",
            native.odd[i] ? strerror (native.odd[i]) : "served");
    CHECK (plugin.odd[i] == native.odd[i], "%s: plugin errno %d, native "
           "errno %d", odds[i].what, plugin.odd[i], native.odd[i]);
  }
  harness_cleanup (&s);
  free (big);
  return harness_exit ("test-limits");
}
