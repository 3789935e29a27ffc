/* nbdswap: what the subcommands of the nbdswap command share. */
#ifndef NBDSWAP_COMMAND_H
#define NBDSWAP_COMMAND_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#include "create.h"

/* Exit codes, documented in --help and docs/verify.md. */
enum {
  EXIT_FIT = 0,                 /* success; the file is fit to serve */
  EXIT_USAGE = 1,               /* wrong arguments */
  EXIT_UNFIT = 2,               /* verified: the file must not be served */
  EXIT_SYSTEM = 3,              /* could not open, create or verify */
  EXIT_INTERRUPTED = 130,       /* SIGINT/SIGTERM (128 + SIGINT) */
};

/* One subcommand: run gets argv with argv[0] the subcommand's name. */
struct command {
  const char *name;
  const char *args;             /* synopsis after the name */
  const char *summary;
  int (*run) (int argc, char **argv);
};

extern int cmd_create (int argc, char **argv);
extern int cmd_verify (int argc, char **argv);
extern int cmd_serve (int argc, char **argv);
extern int cmd_status (int argc, char **argv);

/* Prints "Try 'nbdswap CMD --help'..." to stderr; returns EXIT_USAGE. */
extern int try_help (const char *cmd);

/* Prints "nbdswap: MESSAGE" and try_help's line; returns EXIT_USAGE. */
extern int usage_error (const char *cmd, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));

/* The progress sink for create_file: a bar on a terminal, a line per
 * 10% otherwise.  opaque is a struct progress. */
struct progress {
  FILE *fp;
  bool tty;
  int last_decile;
  double last_draw;
  bool line_open;               /* a bar is drawn, not yet at 100% */
};
extern void progress_init (struct progress *p, FILE *fp);
extern void progress_update (const struct create_progress *cp, void *opaque);
extern void progress_end (struct progress *p);

/* nbdswap create --dir: makes DIR/NAME for each of the n names (opts as
 * for create_file, its cancel flag set by the caller's signal handlers),
 * then prints the unfit reports and a summary; the exit status. */
extern int create_dir_main (const char *dir, char **names, size_t n,
                            uint64_t size, struct create_options *opts,
                            bool quiet);

#endif /* NBDSWAP_COMMAND_H */
