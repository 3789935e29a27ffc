/* nbdswap VM tests: a workload that forces its own pages through swap.
 *
 * It maps SIZE MiB of anonymous memory, stamps every 64-bit word with a
 * value derived from the word's position and a per-run seed, then reads
 * every word back and compares.  Run inside a memory cgroup smaller than
 * SIZE, most pages must travel to the swap device and back between the two
 * passes, so a block that comes back from the wrong offset, stale, or torn
 * shows up as a mismatch with its address.
 *
 * Usage: swap-workload SIZE_MIB [PASSES]
 * SWAP_WORKLOAD_CORRUPT=OFFSET flips one word before verifying, to show
 * that the check can fail.
 * SWAP_WORKLOAD_HOLD=1 makes it wait after stamping, touching nothing, until
 * it gets SIGUSR1, then verify: its pages stay swapped out meanwhile (the
 * detach scenario swaps off under it).  It prints "stamped" when it waits.
 * Exit status: 0 all words verified, 1 mismatches, 2 usage or setup error.
 */

#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <signal.h>
#include <unistd.h>
#include <sys/mman.h>

/* How many mismatches are printed in full; the rest are only counted. */
#define MAX_REPORTED 32

/* The value word INDEX must hold: a multiplicative hash of the index so
 * that neighbouring words, pages and blocks all differ, mixed with SEED so
 * that data left over from an earlier run never verifies.  Never zero for
 * long runs, so a block read back as zeros is always caught. */
static uint64_t
pattern (uint64_t index, uint64_t seed)
{
  uint64_t v = (index + 1) * UINT64_C (0x9E3779B97F4A7C15);

  return (v ^ seed) | UINT64_C (1) << 63;
}

/* Parse a positive decimal number no larger than MAX, or return 0. */
static uint64_t
parse_count (const char *s, uint64_t max)
{
  char *end;
  unsigned long long v;

  errno = 0;
  v = strtoull (s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v == 0 || v > max)
    return 0;
  return v;
}

/* A seed that differs between runs. */
static uint64_t
make_seed (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_REALTIME, &ts);
  return ((uint64_t) ts.tv_nsec << 20) ^ (uint64_t) ts.tv_sec
         ^ ((uint64_t) getpid () << 40);
}

/* Map SIZE bytes of private anonymous memory, without transparent huge
 * pages so that reclaim swaps ordinary 4 KiB pages, or return NULL. */
static uint64_t *
map_region (size_t size)
{
  void *p = mmap (NULL, size, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

  if (p == MAP_FAILED) {
    perror ("swap-workload: mmap");
    return NULL;
  }
  /* Not fatal: kernels without THP reject the advice. */
  madvise (p, size, MADV_NOHUGEPAGE);
  return p;
}

/* Stamp every word of the region. */
static void
fill (uint64_t *words, uint64_t nwords, uint64_t seed)
{
  for (uint64_t i = 0; i < nwords; i++)
    words[i] = pattern (i, seed);
}

/* Read every word back; print the first mismatches with their address
 * and offset, and return how many words were wrong. */
static uint64_t
verify (const uint64_t *words, uint64_t nwords, uint64_t seed)
{
  uint64_t bad = 0, bad_pages = 0, last_bad_page = UINT64_MAX;

  for (uint64_t i = 0; i < nwords; i++) {
    uint64_t want = pattern (i, seed), got = words[i];

    if (got == want)
      continue;
    if (bad < MAX_REPORTED)
      printf ("swap-workload: MISMATCH at %p (offset 0x%" PRIx64 "): "
              "expected 0x%016" PRIx64 ", got 0x%016" PRIx64 "\n",
              (const void *) &words[i], i * 8, want, got);
    if (i * 8 / 4096 != last_bad_page) {
      last_bad_page = i * 8 / 4096;
      bad_pages++;
    }
    bad++;
  }
  if (bad > 0)
    printf ("swap-workload: %" PRIu64 " bad words in %" PRIu64 " pages\n",
            bad, bad_pages);
  return bad;
}

/* If SWAP_WORKLOAD_CORRUPT names a byte offset inside the region, flip
 * the word there: the self-test of the verifier. */
static void
corrupt_for_self_test (uint64_t *words, uint64_t nwords)
{
  const char *s = getenv ("SWAP_WORKLOAD_CORRUPT");
  char *end;
  unsigned long long off;

  if (s == NULL)
    return;
  off = strtoull (s, &end, 0);
  if (*end == '\0' && off / 8 < nwords)
    words[off / 8] ^= 1;
}

/* With SWAP_WORKLOAD_HOLD=1, block SIGUSR1 now (so that one sent early is
 * not lost) and return true: the caller waits for it after stamping. */
static bool
hold_requested (sigset_t *set)
{
  const char *s = getenv ("SWAP_WORKLOAD_HOLD");

  if (s == NULL || strcmp (s, "1") != 0)
    return false;
  sigemptyset (set);
  sigaddset (set, SIGUSR1);
  sigprocmask (SIG_BLOCK, set, NULL);
  return true;
}

/* Wait for SIGUSR1 without touching the region. */
static void
hold (const sigset_t *set)
{
  int sig;

  printf ("swap-workload: stamped, holding until SIGUSR1\n");
  fflush (stdout);
  while (sigwait (set, &sig) != 0)
    ;
  printf ("swap-workload: released, verifying\n");
  fflush (stdout);
}

int
main (int argc, char *argv[])
{
  uint64_t mib, passes = 1, nwords, seed, bad = 0;
  uint64_t *words;
  sigset_t hold_set;
  bool holding;

  if (argc < 2 || argc > 3
      || (mib = parse_count (argv[1], 1 << 20)) == 0
      || (argc == 3 && (passes = parse_count (argv[2], 1000)) == 0)) {
    fprintf (stderr, "usage: swap-workload SIZE_MIB [PASSES]\n");
    return 2;
  }
  nwords = mib * 1024 * 1024 / 8;
  holding = hold_requested (&hold_set);
  words = map_region (mib * 1024 * 1024);
  if (words == NULL)
    return 2;

  seed = make_seed ();
  printf ("swap-workload: %" PRIu64 " MiB at %p, seed 0x%016" PRIx64 "\n",
          mib, (void *) words, seed);
  fflush (stdout);
  fill (words, nwords, seed);
  corrupt_for_self_test (words, nwords);
  if (holding)
    hold (&hold_set);
  for (uint64_t p = 0; p < passes; p++)
    bad += verify (words, nwords, seed);

  printf ("swap-workload: %s: %" PRIu64 " words x %" PRIu64 " passes, "
          "%" PRIu64 " mismatches\n", bad ? "FAILED" : "verified",
          nwords, passes, bad);
  return bad ? 1 : 0;
}
