/* nbdswap verify FILE [--json]: the verification report. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "nbdswap.h"
#include "verify.h"

/* The subcommand's --help text. */
static void
usage (void)
{
  printf ("\nUsage:\n"
          " nbdswap verify FILE [--json]\n"
          "\nCheck that FILE is fit to serve as swap: a regular file (or a "
          "block device)\nwith every block allocated and written, no holes, "
          "no shared, compressed or\ninline extents, NOCOW on btrfs, "
          "O_DIRECT, not in use as kernel swap or by\nanother server, not "
          "on a soft NFS mount.\n"
          "\nOptions:\n"
          " -j, --json    print the result as one JSON object\n"
          " -h, --help    display this help\n"
          "\nExit status: 0 fit, 1 usage error, 2 unfit, 3 cannot verify "
          "(e.g. FILE missing).\n");
}

/* Opens without blocking on a FIFO and without taking a terminal. */
static int
open_for_verify (const char *path)
{
  return open (path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
}

/* Parses options, opens FILE, verifies and prints the report. */
int
cmd_verify (int argc, char **argv)
{
  static const struct option longopts[] = {
    { "json", no_argument, NULL, 'j' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  struct verify_result res;
  bool json = false;
  int c, fd, r;

  while ((c = getopt_long (argc, argv, "jh", longopts, NULL)) != -1) {
    switch (c) {
    case 'j': json = true; break;
    case 'h': usage (); return EXIT_FIT;
    default: return try_help ("verify");   /* getopt said why */
    }
  }
  if (argc - optind != 1)
    return usage_error ("verify", "expected one FILE");
  fd = open_for_verify (argv[optind]);
  if (fd == -1) {
    log_error ("%s: cannot open: %m", argv[optind]);
    return EXIT_SYSTEM;
  }
  r = verify_fd (fd, argv[optind], NULL, &res);
  close (fd);
  if (r < 0) {
    log_error ("%s: cannot verify: %s", argv[optind], strerror (-r));
    return EXIT_SYSTEM;
  }
  if (json)
    verify_print_json (stdout, &res);
  else
    verify_print_text (stdout, &res);
  r = res.verdict == VERIFY_FIT ? EXIT_FIT : EXIT_UNFIT;
  verify_result_free (&res);
  return r;
}
