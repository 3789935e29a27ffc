/* Integration test: random reads, writes and zeroes of every size and
 * alignment (1 byte to 4 MiB, offsets up to the last byte) against an
 * in-memory model, for each engine and for direct=false.  The same seed
 * drives every configuration, so the files they leave must be identical
 * too; and the file itself (read after the server stops) must equal the
 * model: acknowledged data is on disk, not in a cache. */
#include <config.h>

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define SIZE ((UINT64_C (16) << 20) + 3 * 4096)
#define OPS 500

static unsigned char *model, *buf, *file_after[3];

/* A request length: mostly small and odd, sometimes pages, sometimes
 * megabytes. */
static uint32_t
pick_len (uint64_t *st)
{
  switch (rnd (st) % 5) {
  case 0: return 1 + rnd (st) % 511;
  case 1: return 1 + rnd (st) % 8192;
  case 2: return 4096 * (1 + rnd (st) % 16);
  case 3: return 512 * (1 + rnd (st) % 64);
  default: return 1 + rnd (st) % (4 << 20);
  }
}

static uint64_t
pick_off (uint64_t *st, uint32_t len)
{
  uint64_t max = SIZE - len;

  switch (rnd (st) % 4) {
  case 0: return max - rnd (st) % (max < 9000 ? max + 1 : 9000); /* end */
  case 1: return (rnd (st) % (max / 4096 + 1)) * 4096;           /* page */
  default: return rnd (st) % (max + 1);
  }
}

static void
run_config (int idx, const char *const *params)
{
  struct server s;
  struct nbd_handle *h;
  char path[400];
  uint64_t st = 0x9e3779b97f4a7c15;
  int fd;

  harness_init (&s, "data");
  snprintf (path, sizeof path, "%s/backing.img", s.dir);
  make_file (path, SIZE, 1);
  fd = open (path, O_RDONLY);
  CHECK (pread (fd, model, SIZE, 0) == (ssize_t) SIZE, "read model");
  close (fd);

  const char *p[8] = { NULL };
  char filearg[420];
  int n = 0;
  snprintf (filearg, sizeof filearg, "file=%s", path);
  p[n++] = filearg;
  for (; params && *params; params++)
    p[n++] = *params;
  if (server_start (&s, NULL, p) == -1) {
    char *log = server_log (&s);
    fprintf (stderr, "server failed to start:\n%s\n", log);
    exit (EXIT_FAILURE);
  }
  h = server_connect (&s, false);
  CHECK (nbd_get_size (h) == (int64_t) SIZE, "size %" PRIi64,
         nbd_get_size (h));

  for (int i = 0; i < OPS; i++) {
    uint32_t len = pick_len (&st);
    uint64_t off = pick_off (&st, len);
    unsigned kind = rnd (&st) % 10;

    if (kind < 4) {
      CHECK (nbd_pread (h, buf, len, off, 0) == 0, "pread %u@%" PRIu64
             ": %s", len, off, nbd_get_error ());
      CHECK (memcmp (buf, model + off, len) == 0,
             "op %d: read %u@%" PRIu64 " differs from the model", i, len, off);
    }
    else if (kind < 9) {
      uint32_t flags = rnd (&st) % 4 == 0 ? LIBNBD_CMD_FLAG_FUA : 0;
      for (uint32_t j = 0; j < len; j++)
        buf[j] = (unsigned char) rnd (&st);
      CHECK (nbd_pwrite (h, buf, len, off, flags) == 0, "pwrite %u@%"
             PRIu64 ": %s", len, off, nbd_get_error ());
      memcpy (model + off, buf, len);
    }
    else {
      CHECK (nbd_zero (h, len, off, 0) == 0, "zero %u@%" PRIu64 ": %s",
             len, off, nbd_get_error ());
      memset (model + off, 0, len);
    }
    if (i % 97 == 0)
      CHECK (nbd_flush (h, 0) == 0, "flush: %s", nbd_get_error ());
  }
  /* The whole export once more through the server. */
  for (uint64_t off = 0; off < SIZE; off += 4 << 20) {
    uint32_t len = SIZE - off < (4 << 20) ? SIZE - off : (4 << 20);
    CHECK (nbd_pread (h, buf, len, off, 0) == 0, "pread: %s",
           nbd_get_error ());
    CHECK (memcmp (buf, model + off, len) == 0, "final read at %" PRIu64,
           off);
  }
  nbd_shutdown (h, 0);
  nbd_close (h);
  CHECK (server_stop (&s) == 0, "server exit status");

  fd = open (path, O_RDONLY);
  CHECK (pread (fd, file_after[idx], SIZE, 0) == (ssize_t) SIZE, "read file");
  close (fd);
  CHECK (memcmp (file_after[idx], model, SIZE) == 0,
         "config %d: the backing file differs from the model", idx);
  harness_cleanup (&s);
}

int
main (void)
{
  static const char *const uring[] = { "engine=io_uring", NULL };
  static const char *const pread_e[] = { "engine=pread", NULL };
  static const char *const buffered[] = { "direct=false", NULL };

  model = malloc (SIZE);
  buf = malloc (4 << 20);
  for (int i = 0; i < 3; i++)
    file_after[i] = malloc (SIZE);
  if (!model || !buf || !file_after[2])
    return EXIT_FAILURE;
  run_config (0, uring);
  run_config (1, pread_e);
  run_config (2, buffered);
  CHECK (memcmp (file_after[0], file_after[1], SIZE) == 0,
         "io_uring and pread engines left different files");
  CHECK (memcmp (file_after[0], file_after[2], SIZE) == 0,
         "direct=true and direct=false left different files");
  return harness_exit ("test-data");
}
