/* Integration test: eight connections, sixteen requests in flight each,
 * hammer sub-block writes that share 512-byte blocks (every write is a
 * 48-byte run, so most need read-modify-write of one or two blocks that
 * other connections are patching at the same moment).  Each connection
 * owns its runs, so the final file is known exactly: any lost update (an
 * RMW writing back a stale copy of a neighbour's bytes) shows up. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define SIZE (UINT64_C (1) << 20)
#define CONNS 8
#define QD 16
#define RUN 48
#define RUNS (SIZE / RUN)

static unsigned char *model;
static struct server s;

struct conn {
  int k;
  struct nbd_handle *h;
  unsigned char buf[QD][RUN];
  int64_t cookie[QD];
  int errors;
};

/* Issue writes to every run this connection owns, in a shuffled order,
 * keeping QD in flight. */
static void *
hammer (void *cv)
{
  struct conn *c = cv;
  uint64_t st = 0x1234567 + (uint64_t) c->k * 7919;
  uint64_t runs[RUNS / CONNS + 1];
  size_t n = 0;

  for (uint64_t r = (uint64_t) c->k; r < RUNS; r += CONNS)
    runs[n++] = r;
  for (size_t i = n - 1; i > 0; i--) {
    size_t j = rnd (&st) % (i + 1);
    uint64_t t = runs[i]; runs[i] = runs[j]; runs[j] = t;
  }
  for (int q = 0; q < QD; q++)
    c->cookie[q] = 0;
  for (size_t i = 0; i < n; ) {
    int issued = 0;
    for (int q = 0; q < QD && i < n; q++) {
      if (c->cookie[q] > 0) {
        int r = nbd_aio_command_completed (c->h, c->cookie[q]);
        if (r == 0)
          continue;
        if (r == -1)
          c->errors++;
        c->cookie[q] = 0;
      }
      for (int b = 0; b < RUN; b++)
        c->buf[q][b] = (unsigned char) rnd (&st);
      memcpy (model + runs[i] * RUN, c->buf[q], RUN);
      c->cookie[q] = nbd_aio_pwrite (c->h, c->buf[q], RUN, runs[i] * RUN,
                                     NBD_NULL_COMPLETION, 0);
      if (c->cookie[q] == -1) {
        fprintf (stderr, "aio_pwrite: %s\n", nbd_get_error ());
        c->errors++;
        c->cookie[q] = 0;
      }
      i++;
      issued++;
    }
    if (!issued && nbd_poll (c->h, -1) == -1)
      c->errors++;
  }
  while (nbd_aio_in_flight (c->h) > 0)
    if (nbd_poll (c->h, -1) == -1)
      break;
  for (int q = 0; q < QD; q++)
    if (c->cookie[q] > 0 && nbd_aio_command_completed (c->h, c->cookie[q]) != 1)
      c->errors++;
  return NULL;
}

int
main (void)
{
  static struct conn conns[CONNS];
  pthread_t t[CONNS];
  char path[400], filearg[420];
  unsigned char *buf = malloc (SIZE);
  struct nbd_handle *h;
  int fd;

  model = malloc (SIZE);
  if (!model || !buf)
    return EXIT_FAILURE;
  harness_init (&s, "concurrent");
  snprintf (path, sizeof path, "%s/backing.img", s.dir);
  make_file (path, SIZE, 2);
  fd = open (path, O_RDONLY);
  CHECK (pread (fd, model, SIZE, 0) == (ssize_t) SIZE, "read model");
  close (fd);
  snprintf (filearg, sizeof filearg, "file=%s", path);
  const char *params[] = { filearg, NULL };
  if (server_start (&s, NULL, params) == -1) {
    fprintf (stderr, "server failed:\n%s\n", server_log (&s));
    return EXIT_FAILURE;
  }
  for (int k = 0; k < CONNS; k++) {
    conns[k].k = k;
    conns[k].h = server_connect (&s, false);
    CHECK (nbd_can_multi_conn (conns[k].h) == 1, "multi-conn");
  }
  for (int k = 0; k < CONNS; k++)
    pthread_create (&t[k], NULL, hammer, &conns[k]);
  for (int k = 0; k < CONNS; k++) {
    pthread_join (t[k], NULL);
    CHECK (conns[k].errors == 0, "connection %d: %d failed writes", k,
           conns[k].errors);
  }
  for (int k = 0; k < CONNS; k++)
    CHECK (nbd_flush (conns[k].h, 0) == 0, "flush: %s", nbd_get_error ());

  /* Read back through a fresh connection, then from the file itself. */
  h = server_connect (&s, true);
  CHECK (nbd_pread (h, buf, SIZE, 0, 0) == 0, "pread: %s", nbd_get_error ());
  for (uint64_t i = 0; i < SIZE; i++)
    if (buf[i] != model[i]) {
      CHECK (0, "byte %" PRIu64 " (run %" PRIu64 ", owner %" PRIu64
             ") differs: a lost update", i, i / RUN, (i / RUN) % CONNS);
      break;
    }
  nbd_close (h);
  for (int k = 0; k < CONNS; k++)
    nbd_close (conns[k].h);
  CHECK (server_stop (&s) == 0, "server exit status");
  fd = open (path, O_RDONLY);
  CHECK (pread (fd, buf, SIZE, 0) == (ssize_t) SIZE, "read file");
  close (fd);
  CHECK (memcmp (buf, model, SIZE) == 0, "backing file differs from model");
  harness_cleanup (&s);
  free (buf);
  free (model);
  return harness_exit ("test-concurrent");
}
