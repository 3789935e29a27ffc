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
  rangelock_lock (&rl, 2, true);
  inside = 1;
  rangelock_unlock (&rl, 2);
  return NULL;
}

/* A shared holder blocks an exclusive locker of the same stripe, and an
 * exclusive locker of another stripe does not wait. */
START_TEST (test_exclusion)
{
  pthread_t t;

  ck_assert_int_eq (rangelock_init (&rl), 0);
  rangelock_lock (&rl, 2 | 4, false);
  inside = 0;
  ck_assert_int_eq (pthread_create (&t, NULL, try_exclusive, NULL), 0);
  usleep (100000);
  ck_assert_int_eq (inside, 0);
  rangelock_lock (&rl, 1, true);        /* other stripe: no wait */
  rangelock_unlock (&rl, 1);
  rangelock_unlock (&rl, 2 | 4);
  pthread_join (t, NULL);
  ck_assert_int_eq (inside, 1);
  rangelock_destroy (&rl);
}
END_TEST

START_TEST (test_retry_classes)
{
  struct retry r = RETRY_INIT;

  ck_assert (retry_is_transient (EAGAIN));
  ck_assert (retry_is_transient (ENOMEM));
  ck_assert (retry_is_transient (ETIMEDOUT));
  ck_assert (retry_is_transient (ENOLINK));
  ck_assert (retry_is_transient (EIO));
  ck_assert (!retry_is_transient (ENOSPC));
  ck_assert (!retry_is_transient (ESTALE));
  ck_assert (!retry_is_transient (EREMOTEIO));
  /* retry-eio=false: EIO is reported as is, the others still retried. */
  retry_eio = false;
  ck_assert (!retry_is_transient (EIO));
  ck_assert (retry_is_transient (ENOLINK));
  ck_assert_int_eq (retry_after (&r, EIO, "write", 0), -EIO);
  ck_assert_uint_eq (r.deadline_ns, 0);
  retry_eio = true;
  /* A failed flush is never retried for EIO, even with budget left. */
  retry_timeout = 5;
  ck_assert_int_eq (retry_after_sync (&r, EIO), -EIO);
  ck_assert_uint_eq (r.deadline_ns, 0);
  /* Not transient: reported as is, no sleep. */
  ck_assert_int_eq (retry_after (&r, ENOSPC, "write", 0), -ENOSPC);
  /* Transient with no budget: EIO. */
  retry_timeout = 0;
  ck_assert_int_eq (retry_after (&r, EAGAIN, "write", 0), -EIO);
  /* Transient with budget: retried. */
  retry_timeout = 5;
  r = (struct retry) RETRY_INIT;
  ck_assert_int_eq (retry_after (&r, EAGAIN, "write", 0), 0);
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
  tcase_add_test (tc, test_retry_classes);
  suite_add_tcase (s, tc);
  return check_run (s);
}
