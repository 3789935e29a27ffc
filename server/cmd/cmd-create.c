/* nbdswap create FILE SIZE [--force] [--quiet]: make a backing file. */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "create.h"
#include "log.h"
#include "nbdswap.h"

/* Set by SIGINT/SIGTERM; create_file checks it between chunks. */
static volatile sig_atomic_t cancelled;

/* Asks create_file to stop; it removes the partial file. */
static void
on_signal (int sig)
{
  cancelled = 1;
}

/* Without SA_RESTART, so that a blocked write returns early. */
static void
install_handlers (void)
{
  struct sigaction sa;

  memset (&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset (&sa.sa_mask);
  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGTERM, &sa, NULL);
}

/* The subcommand's --help text. */
static void
usage (void)
{
  printf ("\nUsage:\n"
          " nbdswap create FILE SIZE [--force] [--quiet]\n"
          "\nCreate FILE of SIZE bytes fit to serve as swap: mode 0600, NOCOW "
          "and no\ncompression on btrfs, every block allocated and written "
          "with zeroes through\nO_DIRECT, synced; then verify it and print "
          "the report.\n"
          "\nSIZE is a number of bytes with an optional binary suffix K, M, "
          "G or T\n(also KiB, MiB, GiB, TiB); a multiple of 4096, at least "
          "40K.\n"
          "\nOptions:\n"
          " -f, --force   replace FILE if it exists (a regular file that no\n"
          "               server or kernel swap is using)\n"
          " -q, --quiet   no progress and no report (errors still print)\n"
          " -h, --help    display this help\n"
          "\nCtrl-C stops the creation and removes the partial file.\n"
          "\nExit status: 0 created and fit, 1 usage error, 2 created but "
          "unfit here,\n3 cannot create (exists, no space, I/O error), 130 "
          "interrupted.\n");
}

/* Creates and reports; the exit status. */
static int
run_create (const char *path, uint64_t size, struct create_options *opts,
            bool quiet)
{
  struct verify_result res;
  struct progress progress;
  int r;

  if (!quiet) {
    progress_init (&progress, stderr);
    opts->progress = progress_update;
    opts->progress_opaque = &progress;
  }
  install_handlers ();
  r = create_file (path, size, opts, &res);
  if (r == -ECANCELED) {
    fprintf (stderr, "\nnbdswap: interrupted: removed the partial file %s\n",
             path);
    return EXIT_INTERRUPTED;
  }
  if (r < 0)
    return EXIT_SYSTEM;
  if (!quiet || res.verdict != VERIFY_FIT)
    verify_print_text (quiet ? stderr : stdout, &res);
  r = res.verdict == VERIFY_FIT ? EXIT_FIT : EXIT_UNFIT;
  verify_result_free (&res);
  return r;
}

/* Parses options, FILE and SIZE, then creates. */
int
cmd_create (int argc, char **argv)
{
  static const struct option longopts[] = {
    { "force", no_argument, NULL, 'f' },
    { "quiet", no_argument, NULL, 'q' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  struct create_options opts;
  bool quiet = false;
  uint64_t size;
  int c;

  create_options_init (&opts);
  opts.cancel = &cancelled;
  while ((c = getopt_long (argc, argv, "fqh", longopts, NULL)) != -1) {
    switch (c) {
    case 'f': opts.force = true; break;
    case 'q': quiet = true; break;
    case 'h': usage (); return EXIT_FIT;
    default: return try_help ("create");   /* getopt said why */
    }
  }
  if (argc - optind != 2)
    return usage_error ("create", "expected FILE and SIZE");
  if (create_parse_size (argv[optind + 1], &size) < 0)
    return usage_error ("create", "'%s' is not a size (examples: 1G, "
                        "512M, 65536)", argv[optind + 1]);
  if (size == 0 || size % 4096 != 0 || size < VERIFY_MIN_SIZE)
    return usage_error ("create", "SIZE %s must be a multiple of 4096 "
                        "bytes and at least 40K", argv[optind + 1]);
  return run_create (argv[optind], size, &opts, quiet);
}
