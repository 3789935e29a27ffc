/* nbdswap: formatting and routing of log lines (see include/log.h). */
#include <config.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "log.h"

/* Atomic: a daemon switches to syslog (daemon_ready) while its threads
 * may be logging. */
static _Atomic (log_sink_fn) sink;
static int debug_enabled;

/* The default sink: one line on stderr. */
static void
stderr_sink (enum log_level level, const char *line)
{
  static const char *const prefix[] = {
    [LOG_LEVEL_ERROR] = "error: ",
    [LOG_LEVEL_WARNING] = "warning: ",
    [LOG_LEVEL_INFO] = "",
    [LOG_LEVEL_DEBUG] = "debug: ",
  };

  if (level == LOG_LEVEL_DEBUG && !debug_enabled)
    return;
  fprintf (stderr, "nbdswap: %s%s\n", prefix[level], line);
}

void
log_set_sink (log_sink_fn s)
{
  sink = s;
}

void
log_set_debug (int enabled)
{
  debug_enabled = enabled;
}

int
log_debug_enabled (void)
{
  return debug_enabled;
}

/* Format on the stack and hand the line to the sink, keeping errno. */
static void
log_va (enum log_level level, const char *fmt, va_list args)
{
  char line[LOG_LINE_MAX];
  int saved_errno = errno;
  log_sink_fn s = sink;

  errno = saved_errno;          /* "%m" reads it during formatting */
  vsnprintf (line, sizeof line, fmt, args);
  (s ? s : stderr_sink) (level, line);
  errno = saved_errno;
}

#define DEFINE_LOG_FN(name, level)              \
  void                                          \
  name (const char *fmt, ...)                   \
  {                                             \
    va_list args;                               \
    va_start (args, fmt);                       \
    log_va (level, fmt, args);                  \
    va_end (args);                              \
  }

DEFINE_LOG_FN (log_error, LOG_LEVEL_ERROR)
DEFINE_LOG_FN (log_warning, LOG_LEVEL_WARNING)
DEFINE_LOG_FN (log_info, LOG_LEVEL_INFO)
DEFINE_LOG_FN (log_debug, LOG_LEVEL_DEBUG)
