/* nbdswap fuzz targets: a main() for builds without libFuzzer.
 *
 * Runs the target once on each file named on the command line, as a
 * libFuzzer binary does when given files: the replay of the corpus and
 * the regression inputs in make check (tests/fuzz/test-fuzz-replay.sh),
 * with any compiler, under ASan+UBSan in build.sh's sanitizer pass and
 * under valgrind if asked.  An input that takes longer than
 * REPLAY_TIMEOUT seconds is a hang: reported, and the run fails.
 */
#include <config.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"

#define REPLAY_TIMEOUT 60

static const char *current;     /* the input being run, for the alarm */

/* An input ran too long. */
static void
on_alarm (int sig)
{
  static const char msg[] = "fuzz: a hang: the input did not finish within "
    "the replay's timeout: ";

  if (write (2, msg, sizeof msg - 1) < 0 ||
      write (2, current, strlen (current)) < 0 || write (2, "\n", 1) < 0) {
    /* Nothing more to say. */
  }
  _exit (1);
}

/* Read the whole of path into a malloc'ed buffer (the size in *size). */
static uint8_t *
read_input (const char *path, size_t *size)
{
  FILE *fp = fopen (path, "rb");
  uint8_t *buf = NULL;
  size_t len = 0, cap = 0;

  if (fp == NULL)
    return NULL;
  for (;;) {
    if (len == cap) {
      cap = cap ? 2 * cap : 4096;
      uint8_t *n = realloc (buf, cap);
      if (n == NULL) {
        free (buf);
        fclose (fp);
        return NULL;
      }
      buf = n;
    }
    size_t r = fread (buf + len, 1, cap - len, fp);
    len += r;
    if (r == 0)
      break;
  }
  if (ferror (fp)) {
    free (buf);
    buf = NULL;
  }
  fclose (fp);
  *size = len;
  return buf;
}

int
main (int argc, char **argv)
{
  signal (SIGALRM, on_alarm);
  signal (SIGPIPE, SIG_IGN);
  LLVMFuzzerInitialize (&argc, &argv);
  for (int i = 1; i < argc; i++) {
    size_t size;
    uint8_t *data = read_input (argv[i], &size);

    if (data == NULL) {
      fprintf (stderr, "fuzz: %s: %s\n", argv[i], strerror (errno));
      return 1;
    }
    current = argv[i];
    fprintf (stderr, "fuzz: %s\n", current);  /* the culprit if it dies */
    alarm (REPLAY_TIMEOUT);
    LLVMFuzzerTestOneInput (data, size);
    alarm (0);
    free (data);
  }
  printf ("fuzz: %d inputs ran\n", argc - 1);
  return 0;
}
