/* Run a command with io_uring_setup denied (EPERM), the way container
 * runtimes' default seccomp profiles deny it.
 * Usage: seccomp-deny-uring COMMAND [ARGS...] */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <seccomp.h>

int
main (int argc, char **argv)
{
  scmp_filter_ctx ctx;

  if (argc < 2) {
    fprintf (stderr, "usage: %s COMMAND [ARGS...]\n", argv[0]);
    return 2;
  }
  ctx = seccomp_init (SCMP_ACT_ALLOW);
  if (ctx == NULL
      || seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM),
                           SCMP_SYS (io_uring_setup), 0) < 0
      || seccomp_load (ctx) < 0) {
    fprintf (stderr, "%s: cannot install the seccomp filter\n", argv[0]);
    return 77;
  }
  seccomp_release (ctx);
  execvp (argv[1], argv + 1);
  perror (argv[1]);
  return 127;
}
