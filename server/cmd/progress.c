/* nbdswap: progress of nbdswap create on stderr. */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

#include "nbdswap.h"

#define BAR_WIDTH 30
#define MIB (1024.0 * 1024.0)

/* Redraw a terminal bar at most this often (seconds). */
#define REDRAW_INTERVAL 0.1

/* A bar when fp is a terminal, plain lines otherwise. */
void
progress_init (struct progress *p, FILE *fp)
{
  p->fp = fp;
  p->tty = isatty (fileno (fp));
  p->last_decile = 0;
  p->last_draw = -1;
  p->line_open = false;
}

/* Ends a bar that stopped short of 100% (a batch that failed or was
 * interrupted), so that what follows starts on its own line. */
void
progress_end (struct progress *p)
{
  if (p->line_open)
    fputc ('\n', p->fp);
  p->line_open = false;
}

/* "m:ss" or "h:mm:ss" for the ETA. */
static void
format_eta (double seconds, char *buf, size_t len)
{
  unsigned long s = seconds + 0.5;

  if (s >= 3600)
    snprintf (buf, len, "%lu:%02lu:%02lu", s / 3600, s / 60 % 60, s % 60);
  else
    snprintf (buf, len, "%lu:%02lu", s / 60, s % 60);
}

/* One redraw of the bar: percent, bar, MiB/s, ETA. */
static void
draw_bar (struct progress *p, const struct create_progress *cp,
          double percent, double rate)
{
  int i, filled = percent * BAR_WIDTH / 100;
  char eta[32] = "--:--";

  if (rate > 0 && cp->done < cp->total)
    format_eta ((cp->total - cp->done) / rate, eta, sizeof eta);
  else if (cp->done == cp->total)
    format_eta (cp->elapsed, eta, sizeof eta);
  fprintf (p->fp, "\r%3.0f%% [", percent);
  for (i = 0; i < BAR_WIDTH; ++i)
    fputc (i < filled ? '#' : ' ', p->fp);
  fprintf (p->fp, "] %7.1f MiB/s %s %s", rate / MIB,
           cp->done == cp->total ? "in" : "ETA", eta);
  if (cp->done == cp->total)
    fputc ('\n', p->fp);
  p->line_open = cp->done != cp->total;
  fflush (p->fp);
}

/* Redraws the bar (rate-limited) or prints a line per 10%. */
void
progress_update (const struct create_progress *cp, void *opaque)
{
  struct progress *p = opaque;
  double percent = cp->total ? 100.0 * cp->done / cp->total : 100;
  double rate = cp->elapsed > 0 ? cp->done / cp->elapsed : 0;
  int decile = percent / 10;

  if (p->tty) {
    if (cp->done == cp->total || p->last_draw < 0
        || cp->elapsed - p->last_draw >= REDRAW_INTERVAL) {
      draw_bar (p, cp, percent, rate);
      p->last_draw = cp->elapsed;
    }
    return;
  }
  if (decile > p->last_decile || cp->done == cp->total) {
    fprintf (p->fp, "nbdswap: create: %3.0f%% (%.1f of %.1f MiB), "
             "%.1f MiB/s\n", percent, cp->done / MIB, cp->total / MIB,
             rate / MIB);
    p->last_decile = decile;
  }
}
