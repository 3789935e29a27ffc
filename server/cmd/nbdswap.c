/* nbdswap: the command.  Finds the subcommand in a table and runs it;
 * later subcommands (serve, attach, detach, status) add a row.
 */
#include <config.h>

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attach.h"
#include "nbdswap.h"

static const struct command commands[] = {
  { "create", "FILE SIZE [--force] [--quiet]",
    "create a backing file that passes verify", cmd_create },
  { "create", "--dir DIR NAME... --size SIZE",
    "create many, one per client", cmd_create },
  { "verify", "FILE [--json]",
    "check that FILE is fit to serve as swap", cmd_verify },
  { "serve", "FILE [options] [-- nbdkit args]",
    "verify FILE, then serve it with nbdkit", cmd_serve },
  { "status", "[--json | --prometheus FILE]",
    "what is served and attached, with counters", cmd_status },
  { "attach", "SOCKET|HOST[:PORT] [/dev/nbdN] [--encrypt]",
    "connect a kernel nbd device and swap on it", cmd_attach },
  { "detach", "/dev/nbdN|all", "swapoff and disconnect", cmd_detach },
};
#define NR_COMMANDS (sizeof commands / sizeof commands[0])

/* The top-level help, in util-linux's layout. */
static void
usage (FILE *fp)
{
  size_t i;

  fprintf (fp,
           "\nUsage:\n"
           " nbdswap <command> [arguments]\n"
           " nbdswap -h|--help | -V|--version\n"
           "\nServe swap backing files over NBD, safely.\n"
           "\nCommands:\n");
  for (i = 0; i < NR_COMMANDS; ++i)
    fprintf (fp, " %s %-32s %s\n", commands[i].name, commands[i].args,
             commands[i].summary);
  fprintf (fp,
           "\nOptions:\n"
           " -h, --help      display this help\n"
           " -V, --version   display version\n"
           "\nExit status:\n"
           "   0  success: the file is fit to serve\n"
           "   1  usage error\n"
           "   2  the file is unfit to serve (the report says why)\n"
           "   3  system error: could not open, create or verify\n"
           "   4  attach/detach: the device is busy\n"
           "   5  attach: the server cannot be reached\n"
           "   6  detach: not enough memory to swapoff\n"
           " 130  interrupted (create removes the partial file)\n"
           "\nRun 'nbdswap <command> --help' for a command's options.\n");
}

/* Where to find help; for errors getopt has already described. */
int
try_help (const char *cmd)
{
  fprintf (stderr, "Try 'nbdswap%s%s --help' for more information.\n",
           cmd ? " " : "", cmd ? cmd : "");
  return EXIT_USAGE;
}

/* One line naming the problem and where to find help. */
int
usage_error (const char *cmd, const char *fmt, ...)
{
  va_list args;

  fprintf (stderr, "nbdswap: ");
  va_start (args, fmt);
  vfprintf (stderr, fmt, args);
  va_end (args);
  fputc ('\n', stderr);
  return try_help (cmd);
}

/* Global options, then the subcommand from the table. */
int
main (int argc, char **argv)
{
  static char name[64];
  size_t i;

  if (argc < 2)
    return usage_error (NULL, "no command given");
  if (strcmp (argv[1], "-h") == 0 || strcmp (argv[1], "--help") == 0) {
    usage (stdout);
    return EXIT_FIT;
  }
  if (strcmp (argv[1], "-V") == 0 || strcmp (argv[1], "--version") == 0) {
    printf ("nbdswap %s\n", PACKAGE_VERSION);
    return EXIT_FIT;
  }
  for (i = 0; i < NR_COMMANDS; ++i)
    if (strcmp (argv[1], commands[i].name) == 0) {
      /* getopt names argv[0] in its messages: "nbdswap create: ..." */
      snprintf (name, sizeof name, "nbdswap %s", commands[i].name);
      argv[1] = name;
      return commands[i].run (argc - 1, argv + 1);
    }
  return usage_error (NULL, "unknown command '%s'", argv[1]);
}
