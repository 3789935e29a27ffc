/* nbdswap create FILE SIZE | --dir DIR NAME... --size SIZE [--force]
 * [--quiet]: make a backing file, or many in one directory. */
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
          " nbdswap create --dir DIR NAME... --size SIZE [--force] [--quiet]\n"
          "\nCreate FILE of SIZE bytes fit to serve as swap: mode 0600, NOCOW "
          "and no\ncompression on btrfs, every block allocated and written "
          "with zeroes through\nO_DIRECT, synced; then verify it and print "
          "the report.\n"
          "\nWith --dir, create DIR/NAME for each NAME (one export per "
          "client), with one\nprogress bar over all of them and a summary. "
          "Bad names, a missing DIR and\nnot enough free space for all the "
          "files are refused before anything is\nwritten; a NAME that "
          "exists is skipped (replaced with --force); a failure\nstops the "
          "batch and leaves only whole files.\n"
          "\nSIZE is a number of bytes with an optional binary suffix K, M, "
          "G or T\n(also KiB, MiB, GiB, TiB); a multiple of 4096, at least "
          "40K.\n"
          "\nOptions:\n"
          " -d, --dir DIR     create the NAMEs in DIR\n"
          " -s, --size SIZE   the size of each file made with --dir\n"
          " -f, --force       replace FILE if it exists (a regular file that "
          "no\n                   server or kernel swap is using)\n"
          " -q, --quiet       no progress and no report (errors still print)\n"
          " -h, --help        display this help\n"
          "\nCtrl-C stops the creation and removes the partial file.\n"
          "\nExit status: 0 created and fit, 1 usage error, 2 created but "
          "unfit here,\n3 cannot create (exists, no space, I/O error; with "
          "--dir: any NAME not\nmade), 130 interrupted.\n");
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

/* SIZE (the argument s) into *size; a usage error's exit status, or 0. */
static int
parse_size (const char *s, uint64_t *size)
{
  if (create_parse_size (s, size) < 0)
    return usage_error ("create", "'%s' is not a size (examples: 1G, "
                        "512M, 65536)", s);
  if (*size == 0 || *size % 4096 != 0 || *size < VERIFY_MIN_SIZE)
    return usage_error ("create", "SIZE %s must be a multiple of 4096 "
                        "bytes and at least 40K", s);
  return 0;
}

/* The operands: FILE SIZE, or with --dir the NAMEs (--size required). */
static int
run_operands (int argc, char **argv, const char *dir, const char *size_arg,
              struct create_options *opts, bool quiet)
{
  uint64_t size;
  int r;

  if (dir == NULL && size_arg != NULL)
    return usage_error ("create", "--size goes with --dir; for one file "
                        "give FILE SIZE");
  if (dir == NULL && argc != 2)
    return usage_error ("create", "expected FILE and SIZE");
  if (dir != NULL && size_arg == NULL)
    return usage_error ("create", "--dir needs --size SIZE, the size of "
                        "each file");
  if (dir != NULL && argc == 0)
    return usage_error ("create", "--dir needs at least one NAME");
  r = parse_size (dir ? size_arg : argv[1], &size);
  if (r != 0)
    return r;
  install_handlers ();
  if (dir != NULL)
    return create_dir_main (dir, argv, argc, size, opts, quiet);
  return run_create (argv[0], size, opts, quiet);
}

/* Parses options, then FILE and SIZE or the NAMEs, then creates. */
int
cmd_create (int argc, char **argv)
{
  static const struct option longopts[] = {
    { "dir", required_argument, NULL, 'd' },
    { "size", required_argument, NULL, 's' },
    { "force", no_argument, NULL, 'f' },
    { "quiet", no_argument, NULL, 'q' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  struct create_options opts;
  const char *dir = NULL, *size_arg = NULL;
  bool quiet = false;
  int c;

  create_options_init (&opts);
  opts.cancel = &cancelled;
  while ((c = getopt_long (argc, argv, "d:s:fqh", longopts, NULL)) != -1) {
    switch (c) {
    case 'd': dir = optarg; break;
    case 's': size_arg = optarg; break;
    case 'f': opts.force = true; break;
    case 'q': quiet = true; break;
    case 'h': usage (); return EXIT_FIT;
    default: return try_help ("create");   /* getopt said why */
    }
  }
  return run_operands (argc - optind, argv + optind, dir, size_arg, &opts,
                       quiet);
}
