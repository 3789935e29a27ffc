/* nbdswap: fault injection, compiled into test builds only.
 *
 * The check-only builds (lib/libnbdswap-faulty.la and what links it) are
 * made from the same sources with NBDSWAP_FAULT_INJECTION defined.
 * There, the environment variable
 *
 *   NBDSWAP_FAULT=OP:ERRNO:after=N:for=MS[:file=NAME]
 *                                  e.g. write:EAGAIN:after=20:for=1500
 *
 * makes every OP (read, write or any) issued during a window fail with
 * ERRNO instead of reaching the file: the window opens at the (N+1)-th
 * such operation and stays open for MS milliseconds.  With count=K
 * instead of for=MS exactly the (N+1)-th to the (N+K)-th fail, so that a
 * test can count the retries.  ERRNO may also be
 * SHORT: the operation is issued for only half of what is left (in whole
 * 4 KiB blocks, when at least 8 KiB is left), a short transfer that the
 * engine must resume.  With file=NAME only the operations on the file
 * NAME (a path ending in /NAME: one export of a directory) count and
 * fail; the other exports of the process are served as usual, which is
 * how a test shows that one export's failing storage holds up no other
 * (tests/serve/test-dir-isolation.sh).  The operation is
 * not performed at all, exactly as when the system call fails, so what
 * follows (retry, backoff, EIO, the log) is the real code path.  The
 * request engine (request.c) asks before each file operation, so both
 * front ends are tested through it: the faulty plugin and the faulty
 * nbdswap (nbdswap-faulty, for serve --native).  In shipped builds
 * fault_check is a constant 0 and compiles away.
 */
#ifndef NBDSWAP_FAULT_H
#define NBDSWAP_FAULT_H

#include <stdbool.h>

/* fault_check's answer for "issue this operation short". */
#define FAULT_SHORT (-1)

/* How many bytes to issue of len left under fault f (FAULT_SHORT or not). */
static inline unsigned
fault_len (int f, unsigned len)
{
  return f == FAULT_SHORT && len >= 8192 ? (len / 2) & ~4095u : len;
}

#ifdef NBDSWAP_FAULT_INJECTION
/* The errno to fail this operation on the file at path with,
 * FAULT_SHORT, or 0 to perform it as asked. */
extern int fault_check (const char *path, bool write);
#else
static inline int
fault_check (const char *path, bool write)
{
  return 0;
}
#endif

#endif /* NBDSWAP_FAULT_H */
