/* nbdswap tests: run a Check suite as a unit test's whole main. */
#ifndef NBDSWAP_CHECK_RUN_H
#define NBDSWAP_CHECK_RUN_H

#include <check.h>
#include <stdlib.h>

/* Run every test of s; EXIT_SUCCESS if none failed. */
static inline int
check_run (Suite *s)
{
  SRunner *sr = srunner_create (s);
  int failed;

  srunner_run_all (sr, CK_NORMAL);
  failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif /* NBDSWAP_CHECK_RUN_H */
