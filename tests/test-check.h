/* The check of the libnbd integration and native tests: a failed
 * condition is reported with its place and a message, counted, and the
 * test goes on (it exits non-zero at the end).  The including file
 * defines CHECK_FAILURES, the int it counts in.
 */
#ifndef NBDSWAP_TEST_CHECK_H
#define NBDSWAP_TEST_CHECK_H

#include <stdio.h>

#define CHECK(cond, ...)                                                \
  do {                                                                  \
    if (!(cond)) {                                                      \
      fprintf (stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);  \
      fprintf (stderr, __VA_ARGS__);                                    \
      fprintf (stderr, "\n");                                           \
      CHECK_FAILURES++;                                                 \
    }                                                                   \
  } while (0)

#endif /* NBDSWAP_TEST_CHECK_H */
