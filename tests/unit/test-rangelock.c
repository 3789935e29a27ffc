/* Unit tests: range lock stripes, and retry classification. */
#include <config.h>

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "rangelock.h"
#include "retry.h"
#include "../check-run.h"

#define REGION (UINT64_C (1) << RANGELOCK_REGION_SHIFT)

START_TEST (test_mask)
{
  ck_assert_uint_eq (rangelock_mask (0, 1), 1);
  ck_assert_uint_eq (rangelock_mask (REGION - 1, 1), 1);
  ck_assert_uint_eq (rangelock_mask (REGION - 1, 2), 3);
  ck_assert_uint_eq (rangelock_mask (REGION * 64, 4096), 1);   /* wraps */
  ck_assert_uint_eq (rangelock_mask (REGION * 63, REGION + 1), 1 | (UINT64_C (1) << 63));
  ck_assert_uint_eq (rangelock_mask (0, REGION * 64), UINT64_MAX);
  ck_assert_uint_eq (rangelock_mask (5, REGION * 100), UINT64_MAX);
}
END_TEST

static struct rangelock rl;
static volatile int inside;

static void *
try_exclusive (void *arg)
{
  rangelock_wait (&rl, 2, true);
  inside = 1;
  rangelock_release (&rl, 2, true);
  return NULL;
}

/* A shared holder blocks an exclusive locker of the same stripe, and an
 * exclusive locker of another stripe does not wait. */
START_TEST (test_exclusion)
{
  pthread_t t;

  ck_assert_int_eq (rangelock_init (&rl), 0);
  rangelock_wait (&rl, 2 | 4, false);
  inside = 0;
  ck_assert_int_eq (pthread_create (&t, NULL, try_exclusive, NULL), 0);
  usleep (100000);
  ck_assert_int_eq (inside, 0);
  rangelock_wait (&rl, 1, true);        /* other stripe: no wait */
  rangelock_release (&rl, 1, true);
  rangelock_release (&rl, 2 | 4, false);
  pthread_join (t, NULL);
  ck_assert_int_eq (inside, 1);
  rangelock_destroy (&rl);
}
END_TEST

/* Try, never wait: all stripes of a mask or none.  When one of two
 * exclusive waiters on a stripe gets it, the other still turns new
 * shared requests away. */
START_TEST (test_try_fairness)
{
  uint64_t m = UINT64_C (1) << 3;
  bool wa = false, wb = false, ws = false, wx = false, wy = false;

  ck_assert_int_eq (rangelock_init (&rl), 0);
  ck_assert (rangelock_try (&rl, m, false, &ws));
  ck_assert (!rangelock_try (&rl, m | 1, true, &wx) && wx);
  /* None of m | 1 was taken: stripe 0 is free for another writer. */
  ck_assert (rangelock_try (&rl, 1, true, &wy) && !wy);
  rangelock_release (&rl, 1, true);
  ck_assert (!rangelock_try (&rl, m, true, &wa) && wa);
  ck_assert (!rangelock_try (&rl, m, true, &wb) && wb);
  ck_assert (!rangelock_try (&rl, m, false, &ws));  /* A and B wait */
  rangelock_release (&rl, m, false);
  ck_assert (rangelock_try (&rl, m | 1, true, &wx) && !wx);
  rangelock_release (&rl, m | 1, true);
  ck_assert (rangelock_try (&rl, m, true, &wa) && !wa);
  rangelock_release (&rl, m, true);
  ck_assert (!rangelock_try (&rl, m, false, &ws));  /* B still waits */
  ck_assert (rangelock_try (&rl, m, true, &wb) && !wb);
  rangelock_release (&rl, m, true);
  ck_assert (rangelock_try (&rl, m, false, &ws));   /* nobody waits */
  rangelock_release (&rl, m, false);
  rangelock_destroy (&rl);
}
END_TEST

START_TEST (test_retry_classes)
{
  struct retry_policy p = { 5, true }, no_eio = { 5, false };
  struct retry r = RETRY_INIT;

  ck_assert (retry_is_transient (&p, EAGAIN));
  ck_assert (retry_is_transient (&p, ENOMEM));
  ck_assert (retry_is_transient (&p, ETIMEDOUT));
  ck_assert (retry_is_transient (&p, ENOLINK));
  ck_assert (retry_is_transient (&p, EIO));
  ck_assert (!retry_is_transient (&p, ENOSPC));
  ck_assert (!retry_is_transient (&p, ESTALE));
  ck_assert (!retry_is_transient (&p, EREMOTEIO));
  /* retry-eio=false: EIO is reported as is, the others still retried. */
  ck_assert (!retry_is_transient (&no_eio, EIO));
  ck_assert (retry_is_transient (&no_eio, ENOLINK));
  ck_assert_int_eq (retry_after (&r, &no_eio, EIO, "write", 0), -EIO);
  ck_assert_uint_eq (r.deadline_ns, 0);
  /* A failed flush is never retried for EIO, even with budget left. */
  ck_assert_int_eq (retry_after_sync (&r, &p, EIO), -EIO);
  ck_assert_uint_eq (r.deadline_ns, 0);
  /* Not transient: reported as is, no sleep. */
  ck_assert_int_eq (retry_after (&r, &p, ENOSPC, "write", 0), -ENOSPC);
  /* Transient with no budget: EIO. */
  p.timeout = 0;
  ck_assert_int_eq (retry_after (&r, &p, EAGAIN, "write", 0), -EIO);
  /* Transient with budget: retried. */
  p.timeout = 5;
  r = (struct retry) RETRY_INIT;
  ck_assert_int_eq (retry_after (&r, &p, EAGAIN, "write", 0), 0);
  ck_assert_uint_gt (r.deadline_ns, 0);
}
END_TEST

int
main (void)
{
  Suite *s = suite_create ("rangelock");
  TCase *tc = tcase_create ("core");

  tcase_add_test (tc, test_mask);
  tcase_add_test (tc, test_exclusion);
  tcase_add_test (tc, test_try_fairness);
  tcase_add_test (tc, test_retry_classes);
  suite_add_tcase (s, tc);
  return check_run (s);
}
