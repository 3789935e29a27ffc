/* nbdswap: fault injection for test builds (see include/fault.h). */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "fault.h"
#include "log.h"

#ifndef NBDSWAP_FAULT_INJECTION
#error "fault.c belongs to test builds only"
#endif

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int op;                  /* 0 read, 1 write, 2 any; -1 off */
static int err;
static unsigned long after;
static unsigned long window_ms;
static unsigned long times;     /* count=: fail this many, then stop */
static char file[256];          /* file=: only this file's operations */
static atomic_ulong seen;
static atomic_ullong opened_ms; /* 0 until the window opens */

static int
errno_by_name (const char *name)
{
  static const struct { const char *name; int err; } names[] = {
    { "EAGAIN", EAGAIN }, { "EINTR", EINTR }, { "ENOMEM", ENOMEM },
    { "ENOBUFS", ENOBUFS }, { "ETIMEDOUT", ETIMEDOUT }, { "EIO", EIO },
    { "ENOSPC", ENOSPC }, { "ENOLINK", ENOLINK }, { "ESTALE", ESTALE },
  };

  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp (name, names[i].name) == 0)
      return names[i].err;
  return strcmp (name, "SHORT") == 0 ? FAULT_SHORT : 0;
}

/* Parse the optional last field of spec (rest: what follows the window),
 * ":file=NAME": false if rest is anything else. */
static bool
parse_file (const char *rest)
{
  int n = -1;

  if (*rest == '\0')
    return true;
  sscanf (rest, ":file=%255[^:]%n", file, &n);
  return n > 0 && rest[n] == '\0' && strchr (file, '/') == NULL;
}

/* Parse NBDSWAP_FAULT once. */
static void
parse (void)
{
  const char *spec = getenv ("NBDSWAP_FAULT");
  char opname[16], errname[16];
  int n = -1, m = -1;

  op = -1;
  if (spec == NULL || *spec == '\0')
    return;
  sscanf (spec, "%15[a-z]:%15[A-Z]:after=%lu:for=%lu%n", opname, errname,
          &after, &window_ms, &n);
  if (n < 0)
    sscanf (spec, "%15[a-z]:%15[A-Z]:after=%lu:count=%lu%n", opname,
            errname, &after, &times, &m);
  if ((n < 0 && m < 0) || !parse_file (spec + (n >= 0 ? n : m))
      || (err = errno_by_name (errname)) == 0) {
    log_error ("NBDSWAP_FAULT=%s: expected OP:ERRNO:after=N:for=MS or "
               "OP:ERRNO:after=N:count=K, optionally then :file=NAME",
               spec);
    return;
  }
  op = strcmp (opname, "read") == 0 ? 0 : strcmp (opname, "write") == 0
    ? 1 : 2;
  if (times > 0)
    log_warning ("fault injection: %s%s%s fails with %s for %lu "
                 "operations after %lu", opname, *file ? " of " : "", file,
                 errname, times, after);
  else
    log_warning ("fault injection: %s%s%s fails with %s for %lu ms after "
                 "%lu operations", opname, *file ? " of " : "", file,
                 errname, window_ms, after);
}

/* Is path the file file= names (NAME, or a path ending in /NAME)? */
static bool
file_matches (const char *path)
{
  size_t n = strlen (path), k = strlen (file);

  if (k == 0)
    return true;
  return n >= k && strcmp (path + n - k, file) == 0
    && (n == k || path[n - k - 1] == '/');
}

int
fault_check (const char *path, bool write)
{
  unsigned long long t, opened;
  unsigned long n;

  pthread_once (&once, parse);
  if (op < 0 || (op != 2 && op != (int) write) || !file_matches (path))
    return 0;
  if (times > 0) {
    n = atomic_fetch_add (&seen, 1);
    return n >= after && n - after < times ? err : 0;
  }
  opened = atomic_load (&opened_ms);
  if (opened == 0) {
    if (atomic_fetch_add (&seen, 1) < after)
      return 0;
    t = (clock_now_ns () / 1000000);
    atomic_compare_exchange_strong (&opened_ms, &opened, t);
    opened = atomic_load (&opened_ms);
  }
  return (clock_now_ns () / 1000000) - opened < window_ms ? err : 0;
}
