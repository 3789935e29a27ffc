/* For tests/attach/test-swaphdr.sh: swaphdr-write FILE LABEL writes the
 * swap header attach writes (server/attach/swaphdr.c) over FILE's first
 * page and prints its UUID as blkid does.  Exit 1 with the error. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "swaphdr.h"

int
main (int argc, char **argv)
{
  unsigned char id[SWAPHDR_UUID_LEN];
  int r;

  if (argc != 3) {
    fprintf (stderr, "usage: swaphdr-write FILE LABEL\n");
    return EXIT_FAILURE;
  }
  r = swaphdr_write (argv[1], argv[2], id);
  if (r < 0) {
    fprintf (stderr, "swaphdr-write: %s: %s\n", argv[1], strerror (-r));
    return EXIT_FAILURE;
  }
  for (int i = 0; i < SWAPHDR_UUID_LEN; i++)
    printf ("%s%02x", i == 4 || i == 6 || i == 8 || i == 10 ? "-" : "",
            id[i]);
  printf ("\n");
  return EXIT_SUCCESS;
}
