/* nbdswap VM tests: look for the swap workload's plaintext in a file.
 *
 * Usage: plaintext-scan FILE SEED
 *        plaintext-scan --stream FILE SEED
 * Prints "pattern_pages=N signature_pages=M".  A page holds workload
 * plaintext if two neighbouring words w0, w1 satisfy the workload's
 * pattern: (w ^ seed) is (index + 1) * K with bit 63 forced, so the low
 * 63 bits of (w1 ^ seed) - (w0 ^ seed) are those of K, whatever the
 * index.  A page counts as a signature page if "SWAPSPACE2" appears in
 * it anywhere.  Used both ways: the unencrypted scenario must find
 * plaintext (so the scan works), the encrypted one must find none.
 *
 * --stream scans a byte stream with no page alignment (captured network
 * payload): at every byte offset, four words in a row that follow the
 * pattern count as a run.  Prints "pattern_runs=N bytes=B".
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define K UINT64_C (0x9E3779B97F4A7C15)
#define LOW63 (~(UINT64_C (1) << 63))
#define PAGE_WORDS 512

/* True if words i and i+1 of the page follow the pattern, for three
 * pairs spread over the page (a chance match is ~2^-189). */
static int
is_plaintext (const uint64_t *w, uint64_t seed)
{
  static const int at[] = { 0, 255, 510 };
  size_t k;

  for (k = 0; k < 3; ++k) {
    uint64_t a = w[at[k]] ^ seed, b = w[at[k] + 1] ^ seed;
    if (((b - a) & LOW63) != (K & LOW63))
      return 0;
  }
  return 1;
}

/* --stream: count the offsets where four words in a row follow the
 * pattern (three pairs: a chance match is ~2^-189). */
static int
scan_stream (const char *path, uint64_t seed)
{
  static unsigned char buf[1 << 20];
  uint64_t runs = 0, total = 0;
  size_t have = 0, n;
  FILE *fp = fopen (path, "rb");

  if (fp == NULL) {
    perror (path);
    return 2;
  }
  /* The buffer keeps the last 31 bytes of each fill, so that a run
   * across two fills is seen. */
  while ((n = fread (buf + have, 1, sizeof buf - have, fp)) > 0) {
    have += n;
    total += n;
    for (size_t i = 0; i + 32 <= have; i++) {
      uint64_t w[4];
      int k;

      memcpy (w, buf + i, sizeof w);
      for (k = 0; k < 3; k++)
        if ((((w[k + 1] ^ seed) - (w[k] ^ seed)) & LOW63) != (K & LOW63))
          break;
      runs += k == 3;
    }
    if (have >= 31) {
      memmove (buf, buf + have - 31, 31);
      have = 31;
    }
  }
  fclose (fp);
  printf ("pattern_runs=%" PRIu64 " bytes=%" PRIu64 "\n", runs, total);
  return 0;
}

int
main (int argc, char **argv)
{
  uint64_t page[PAGE_WORDS], seed, pattern = 0, sig = 0;
  FILE *fp;

  if (argc == 4 && strcmp (argv[1], "--stream") == 0)
    return scan_stream (argv[2], strtoull (argv[3], NULL, 0));
  if (argc != 3) {
    fprintf (stderr, "usage: plaintext-scan [--stream] FILE SEED\n");
    return 2;
  }
  seed = strtoull (argv[2], NULL, 0);
  fp = fopen (argv[1], "rb");
  if (fp == NULL) {
    perror (argv[1]);
    return 2;
  }
  while (fread (page, sizeof page, 1, fp) == 1) {
    pattern += is_plaintext (page, seed);
    sig += memmem (page, sizeof page, "SWAPSPACE2", 10) != NULL;
  }
  fclose (fp);
  printf ("pattern_pages=%" PRIu64 " signature_pages=%" PRIu64 "\n",
          pattern, sig);
  return 0;
}
