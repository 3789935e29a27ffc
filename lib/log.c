/* nbdswap: formatting and routing of log lines (see include/log.h). */
#include <config.h>

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"

/* Atomic: a daemon switches to syslog (daemon_ready) while its threads
 * may be logging. */
static _Atomic (log_sink_fn) sink;
static int debug_enabled;

/* True when stderr is systemd's journal stream (JOURNAL_STREAM names
 * its device and inode): a line may then start with "<N>", its syslog
 * level, which journald takes off and keeps as the entry's priority. */
bool
log_stderr_is_journal (void)
{
  const char *js = getenv ("JOURNAL_STREAM");
  unsigned long long dev, ino;
  struct stat sb;

  return js && sscanf (js, "%llu:%llu", &dev, &ino) == 2 &&
    fstat (STDERR_FILENO, &sb) == 0 && sb.st_dev == dev && sb.st_ino == ino;
}

const char *
log_escape (const char *in, char *out, size_t outlen)
{
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;

  for (; *in != '\0'; in++) {
    unsigned char c = (unsigned char) *in;
    size_t need = c >= 0x20 && c < 0x7f && c != '\\' ? 1 : 4;

    if (o + need >= outlen)
      break;
    if (need == 1)
      out[o++] = (char) c;
    else {
      out[o++] = '\\';
      out[o++] = 'x';
      out[o++] = hex[c >> 4];
      out[o++] = hex[c & 15];
    }
  }
  if (outlen > 0)
    out[o] = '\0';
  return out;
}

const char *
log_level_tag (enum log_level level)
{
  static const char *const tag[] = {
    [LOG_LEVEL_ERROR] = "error: ",
    [LOG_LEVEL_WARNING] = "warning: ",
    [LOG_LEVEL_INFO] = "",
    [LOG_LEVEL_DEBUG] = "debug: ",
  };
  return tag[level];
}

int
log_syslog_priority (enum log_level level)
{
  static const int prio[] = {
    [LOG_LEVEL_ERROR] = LOG_ERR, [LOG_LEVEL_WARNING] = LOG_WARNING,
    [LOG_LEVEL_INFO] = LOG_INFO, [LOG_LEVEL_DEBUG] = LOG_DEBUG,
  };
  return prio[level];
}

void
log_stderr_line (enum log_level level, const char *who, const char *line)
{
  if (log_stderr_is_journal ())
    fprintf (stderr, "<%d>%s: %s%s\n", log_syslog_priority (level), who,
             log_level_tag (level), line);
  else
    fprintf (stderr, "%s: %s%s\n", who, log_level_tag (level), line);
}

/* The default sink: one line on stderr. */
static void
stderr_sink (enum log_level level, const char *line)
{
  if (level == LOG_LEVEL_DEBUG && !debug_enabled)
    return;
  log_stderr_line (level, "nbdswap", line);
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

static enum log_dest
log_dest_named (const char *name)
{
  if (strcmp (name, "stderr") == 0)
    return LOG_DEST_STDERR;
  if (strcmp (name, "syslog") == 0)
    return LOG_DEST_SYSLOG;
  if (strcmp (name, "null") == 0)
    return LOG_DEST_NULL;
  return LOG_DEST_AUTO;
}

/* The length of the argument at a (before end), or -1 if it has no
 * NUL before end. */
static long
arg_len (const char *a, const char *end)
{
  size_t n = strnlen (a, (size_t) (end - a));
  return n < (size_t) (end - a) ? (long) n : -1;
}

enum log_dest
log_dest_from_cmdline (const char *args, size_t len)
{
  enum log_dest d = LOG_DEST_AUTO;
  const char *a = args, *end = args + len;
  long n;

  while (a < end && (n = arg_len (a, end)) >= 0) {
    const char *next = a + n + 1;
    if (strncmp (a, "--log=", 6) == 0)
      d = log_dest_named (a + 6);
    else if (strcmp (a, "--log") == 0 && next < end && arg_len (next, end) >= 0)
      d = log_dest_named (next);
    a = next;
  }
  return d;
}

/* Format on the stack and hand the line to the sink, keeping errno.
 * The format attribute: clang's -Wformat-nonliteral wants it here. */
static void __attribute__ ((format (printf, 2, 0)))
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
