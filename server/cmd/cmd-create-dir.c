/* nbdswap create --dir DIR NAME... --size SIZE: the files of a fleet, one
 * progress bar over all of them, then a summary of what was made. */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "create.h"
#include "log.h"
#include "nbdswap.h"
#include "verify-internal.h"

/* How many items ended in each state, and how many made are unfit. */
struct tally {
  size_t count[CREATE_FAILED + 1];
  size_t unfit;
};

/* Counts the outcomes. */
static void
tally_items (const struct create_item *items, size_t n, struct tally *t)
{
  size_t i;

  memset (t, 0, sizeof *t);
  for (i = 0; i < n; ++i) {
    t->count[items[i].state]++;
    if (items[i].state == CREATE_MADE && items[i].res.verdict != VERIFY_FIT)
      t->unfit++;
  }
}

/* Why an item was skipped or failed, with the fix. */
static const char *
item_cause (const struct create_item *item, char *buf, size_t len)
{
  switch (item->err) {
  case -EEXIST:
    return "already exists (remove it, or add --force to replace it)";
  case -EBUSY:
    return "in use as kernel swap or by a server (stop that first)";
  case -ECANCELED:
    return "interrupted (the partial file was removed)";
  }
  snprintf (buf, len, "%s%s", strerror (-item->err),
            item->state == CREATE_FAILED ? " (the partial file was removed)"
            : "");
  return buf;
}

/* One line per name: what became of it. */
static void
print_item (FILE *fp, const struct create_item *item, bool cancelled)
{
  char buf[256];

  switch (item->state) {
  case CREATE_MADE:
    fprintf (fp, "  created  %s%s\n", item->path,
             item->res.verdict == VERIFY_FIT ? ""
             : " (unfit here: see its report)");
    break;
  case CREATE_SKIPPED:
    fprintf (fp, "  skipped  %s: %s\n", item->path,
             item_cause (item, buf, sizeof buf));
    break;
  case CREATE_FAILED:
    fprintf (fp, "  failed   %s: %s\n", item->path,
             item_cause (item, buf, sizeof buf));
    break;
  case CREATE_PENDING:
    fprintf (fp, "  not made %s: %s\n", item->path,
             cancelled ? "interrupted before it"
             : "creation stopped at the failure above");
    break;
  }
}

/* The reports of unfit files, then the summary; the exit status. */
static int
report (const char *dir, const struct create_item *items, size_t n,
        uint64_t size, bool cancelled, bool quiet)
{
  struct tally t;
  FILE *fp;
  char h[32];
  size_t i;

  tally_items (items, n, &t);
  for (i = 0; i < n; ++i)
    if (items[i].state == CREATE_MADE && items[i].res.verdict != VERIFY_FIT)
      verify_print_text (stderr, &items[i].res);
  if (t.count[CREATE_MADE] == n && t.unfit == 0 && quiet)
    return EXIT_FIT;
  fp = quiet || t.count[CREATE_MADE] < n ? stderr : stdout;
  fprintf (fp, "nbdswap: create: made %zu of %zu files of %s in %s",
           t.count[CREATE_MADE], n,
           verify_human_size (size, h, sizeof h), dir);
  if (t.count[CREATE_MADE] < n)
    fprintf (fp, "; %zu skipped, %zu failed, %zu not made",
             t.count[CREATE_SKIPPED], t.count[CREATE_FAILED],
             t.count[CREATE_PENDING]);
  if (t.unfit)
    fprintf (fp, "; %zu unfit", t.unfit);
  fputs (":\n", fp);
  for (i = 0; i < n; ++i)
    print_item (fp, &items[i], cancelled);
  if (cancelled)
    return EXIT_INTERRUPTED;
  if (t.count[CREATE_MADE] < n)
    return EXIT_SYSTEM;
  return t.unfit ? EXIT_UNFIT : EXIT_FIT;
}

int
create_dir_main (const char *dir, char **names, size_t n, uint64_t size,
                 struct create_options *opts, bool quiet)
{
  struct create_item *items = calloc (n, sizeof *items);
  struct progress progress;
  size_t i;
  int r;

  if (items == NULL) {
    perror ("nbdswap: calloc");
    return EXIT_SYSTEM;
  }
  for (i = 0; i < n; ++i)
    items[i].name = names[i];
  if (!quiet) {
    progress_init (&progress, stderr);
    opts->progress = progress_update;
    opts->progress_opaque = &progress;
  }
  r = create_in_dir (dir, items, n, size, opts);
  if (!quiet)
    progress_end (&progress);
  if (r < 0 && r != -ECANCELED) {
    fprintf (stderr, "nbdswap: create: nothing was made in %s\n", dir);
    r = r == -EINVAL ? EXIT_USAGE : EXIT_SYSTEM;
  }
  else
    r = report (dir, items, n, size, r == -ECANCELED, quiet);
  create_items_free (items, n);
  free (items);
  return r;
}
