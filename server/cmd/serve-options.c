/* nbdswap serve's own options: one table, one parser (serve.h).
 *
 * cmd-serve.c parses its command line with serve_args_parse and prints
 * its --help lines from the table; status reads a running native
 * server's command line ('nbdswap serve FILE ...', /proc/PID/cmdline)
 * with the same parser, so the two cannot disagree about what an option
 * is.
 */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "native.h"
#include "serve.h"

#define STR_(x) #x
#define STR(x) STR_(x)

/* What an option sets in struct serve_args: a flag takes no argument, a
 * string keeps the last one given, a list each one. */
enum serve_option_kind {
  SERVE_FLAG,
  SERVE_STRING,
  SERVE_LIST,
};

struct serve_option {
  const char *name;             /* --NAME */
  char letter;                  /* -L, or 0: long only */
  enum serve_option_kind kind;
  size_t field;                 /* what it sets: offset in serve_args */
  const char *arg;              /* the argument in the help, or NULL */
  const char *help;             /* lines after the first are indented */
};

#define FIELD(f) offsetof (struct serve_args, f)

/* In the order of serve --help. */
static const struct serve_option serve_options[] = {
  { "socket", 's', SERVE_STRING, FIELD (socket), "PATH",
    "listen on this unix socket instead" },
  { "port", 'p', SERVE_STRING, FIELD (port), "N",
    "listen on TCP port N (loopback only, unless --bind)" },
  { "bind", 'b', SERVE_STRING, FIELD (bind), "ADDR",
    "listen on this numeric address (port " SERVE_DEFAULT_PORT "\n"
    "unless --port); a non-loopback ADDR needs --allow" },
  { "allow", 'a', SERVE_LIST, FIELD (allow), "CIDR[,...]",
    "only these clients may connect (repeat or list);\n"
    "NAME=CIDR[,...]: only these may open the export\n"
    "NAME (with --nbdkit: --dir only)" },
  { "tls-psk", 0, SERVE_STRING, FIELD (tls_psk), "FILE",
    "require TLS with the pre-shared keys in FILE" },
  { "tls-psk-exports", 0, SERVE_STRING, FIELD (tls_psk_exports), "FILE",
    "with --dir and --tls-psk: 'IDENTITY NAME...'\n"
    "lines: the exports a PSK identity may open\n"
    "besides the one of its name (not --nbdkit)" },
  { "tls-certificates", 0, SERVE_STRING, FIELD (tls_certs), "DIR",
    "require TLS with the certificates in DIR" },
  { "tls-verify-peer", 0, SERVE_FLAG, FIELD (tls_verify_peer), NULL,
    "with --tls-certificates: admit only clients whose\n"
    "certificate DIR/ca-cert.pem signed" },
  { "export", 'e', SERVE_STRING, FIELD (export), "NAME",
    "serve only the export NAME" },
  { "dir", 'd', SERVE_STRING, FIELD (dir), "DIR",
    "instead of FILE: serve every swap backing file\n"
    "in DIR, each an export named after its file\n"
    "(SIGHUP: re-scan DIR)" },
  { "threads", 't', SERVE_STRING, FIELD (threads), "N",
    "with --nbdkit: nbdkit threads per connection\n"
    "(default " STR (SERVE_DEFAULT_THREADS) ")" },
  { "foreground", 'f', SERVE_FLAG, FIELD (foreground), NULL,
    "do not fork (the default under systemd)" },
  { "pidfile", 'P', SERVE_STRING, FIELD (pidfile), "FILE",
    "write the server's PID to FILE" },
  { "dry-run", 'n', SERVE_FLAG, FIELD (dry_run), NULL,
    "print which server would serve and how (the\n"
    "nbdkit command), do not run it" },
  { "nbdkit", 0, SERVE_FLAG, FIELD (nbdkit), NULL,
    "serve with nbdkit and the swapfile plugin\n"
    "instead of the native server" },
  { "native", 0, SERVE_FLAG, FIELD (native), NULL,
    "the native server: the default, so this does\n"
    "nothing (older command lines give it)" },
  { "poll-us", 0, SERVE_STRING, FIELD (poll_us), "N",
    "native server: spin up to N microseconds\n"
    "(0-" STR (NATIVE_POLL_US_MAX) ", default " STR (NATIVE_POLL_US)
    ") for the disk when a\n"
    "connection has one request: can lower QD1\n"
    "latency on a busy host, costs CPU" },
  { "file-io", 0, SERVE_STRING, FIELD (file_io), "MODE",
    "native server: how file operations are\n"
    "issued: auto (the default: inline for clients\n"
    "on other machines, through io_uring's workers\n"
    "for those that may be this one), worker, inline" },
  { "help", 'h', SERVE_FLAG, FIELD (help), NULL,
    "display this help" },
};

#define NR_OPTIONS (sizeof serve_options / sizeof serve_options[0])

/* getopt_long's value for the long-only option at index i. */
#define LONG_ONLY 256

/* The help's first column is this wide: longer ones stand alone. */
#define HELP_INDENT 26

/* getopt_long's two tables, built from serve_options. */
static void
getopt_tables (struct option *longopts, char *shortopts)
{
  for (size_t i = 0; i < NR_OPTIONS; i++) {
    const struct serve_option *o = &serve_options[i];
    int has_arg = o->kind == SERVE_FLAG ? no_argument : required_argument;

    longopts[i] = (struct option) {
      o->name, has_arg, NULL, o->letter ? o->letter : LONG_ONLY + (int) i,
    };
    if (o->letter) {
      *shortopts++ = o->letter;
      if (has_arg)
        *shortopts++ = ':';
    }
  }
  longopts[NR_OPTIONS] = (struct option) { NULL, 0, NULL, 0 };
  *shortopts = '\0';
}

/* The option getopt_long returned c for, or NULL ('?': not one). */
static const struct serve_option *
option_of (int c)
{
  if (c >= LONG_ONLY && c < LONG_ONLY + (int) NR_OPTIONS)
    return &serve_options[c - LONG_ONLY];
  for (size_t i = 0; i < NR_OPTIONS; i++)
    if (serve_options[i].letter != 0 && serve_options[i].letter == c)
      return &serve_options[i];
  return NULL;
}

/* Stores val (NULL for a flag) where option o says.  0 or -E2BIG. */
static int
option_set (const struct serve_option *o, struct serve_args *a, char *val)
{
  char *field = (char *) a + o->field;
  struct serve_list *list = (struct serve_list *) field;

  switch (o->kind) {
  case SERVE_FLAG:
    *(bool *) field = true;
    return 0;
  case SERVE_STRING:
    *(const char **) field = val;
    return 0;
  case SERVE_LIST:
    if (list->n == SERVE_MAX_ALLOW)
      return -E2BIG;
    list->item[list->n++] = val;
    return 0;
  }
  return 0;
}

/* The words after the first "--" go to a->extra; the count before it. */
static int
split_extra (int argc, char **argv, struct serve_args *a)
{
  for (int i = 1; i < argc; i++)
    if (strcmp (argv[i], "--") == 0) {
      a->extra = argv + i + 1;
      a->nr_extra = argc - i - 1;
      return i;
    }
  return argc;
}

/* getopt_long over the table into *a (serve.h says how). */
int
serve_args_parse (int argc, char **argv, struct serve_args *a, bool quiet)
{
  struct option longopts[NR_OPTIONS + 1];
  char shortopts[2 * NR_OPTIONS + 1];
  const struct serve_option *o;
  int c, r;

  memset (a, 0, sizeof *a);
  argc = split_extra (argc, argv, a);
  getopt_tables (longopts, shortopts);
  /* glibc: optind 0 starts afresh, for status reads many command lines. */
  optind = 0;
  opterr = !quiet;
  while ((c = getopt_long (argc, argv, shortopts, longopts, NULL)) != -1) {
    o = option_of (c);
    if (o == NULL) {
      if (quiet)
        continue;
      return -EINVAL;
    }
    r = option_set (o, a, optarg);
    if (r < 0 && !quiet)
      return r;
  }
  a->nr_files = (size_t) (argc - optind);
  a->file = optind < argc ? argv[optind] : NULL;
  return 0;
}

/* Prints s, each line after the first indented to the help column. */
static void
print_indented (FILE *fp, const char *s)
{
  for (; *s; s++) {
    fputc (*s, fp);
    if (*s == '\n')
      fprintf (fp, "%*s", HELP_INDENT, "");
  }
}

/* Each option's line: "-L, --NAME ARG" in the first column, its help
 * from HELP_INDENT on. */
void
serve_options_help (FILE *fp)
{
  char left[64];

  for (size_t i = 0; i < NR_OPTIONS; i++) {
    const struct serve_option *o = &serve_options[i];

    snprintf (left, sizeof left, "%c%c%c --%s%s%s",
              o->letter ? '-' : ' ', o->letter ? o->letter : ' ',
              o->letter ? ',' : ' ', o->name, o->arg ? " " : "",
              o->arg ? o->arg : "");
    if (strlen (left) + 2 > HELP_INDENT)
      fprintf (fp, " %s\n%*s", left, HELP_INDENT, "");
    else
      fprintf (fp, " %-*s", HELP_INDENT - 1, left);
    print_indented (fp, o->help);
    fputc ('\n', fp);
  }
}
