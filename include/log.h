/* nbdswap: the logging interface of the shared code.
 *
 * Only plugin/swapfile.c talks to nbdkit.  Everything else (the plugin's
 * modules, the nbdswap command, the unit tests) logs through these
 * functions; the host program installs a sink that routes the formatted
 * line to nbdkit_error/nbdkit_debug, to stderr, or to a test buffer.
 *
 * Messages are formatted into a buffer on the stack: logging never
 * allocates, so it is safe on the I/O path.  errno is preserved, so "%m"
 * in a format refers to the caller's errno.
 */
#ifndef NBDSWAP_LOG_H
#define NBDSWAP_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level {
  LOG_LEVEL_ERROR,
  LOG_LEVEL_WARNING,
  LOG_LEVEL_INFO,
  LOG_LEVEL_DEBUG,
};

/* The longest line a sink receives, including the NUL. */
#define LOG_LINE_MAX 1024

typedef void (*log_sink_fn) (enum log_level level, const char *line);

/* Install a sink; NULL restores the default (stderr, "nbdswap: " prefix,
 * debug lines dropped unless log_set_debug (1)). */
extern void log_set_sink (log_sink_fn sink);
extern void log_set_debug (int enabled);
extern int log_debug_enabled (void);

/* Text a client sent (an export name), made safe to log in out (of
 * outlen bytes, NUL-terminated, cut to fit): bytes other than printable
 * ASCII written as \xNN, so that a client cannot forge log lines.
 * Returns out. */
extern const char *log_escape (const char *in, char *out, size_t outlen);

/* The level's tag in a line ("error: ", "warning: ", "" for
 * information, "debug: ") and its syslog priority (LOG_ERR...). */
extern const char *log_level_tag (enum log_level level);
extern int log_syslog_priority (enum log_level level);

/* True when stderr is systemd's journal stream (JOURNAL_STREAM names its
 * device and inode). */
extern bool log_stderr_is_journal (void);

/* Write "WHO: warning: LINE" (the level's tag: "error: ", "warning: ",
 * none for information, "debug: ") on stderr, starting with "<N>", the
 * syslog level, when stderr is systemd's journal (JOURNAL_STREAM), so
 * that the journal keeps the level. */
extern void log_stderr_line (enum log_level level, const char *who,
                             const char *line);

/* Where nbdkit sends its own log: its --log=stderr|syslog|null, or
 * auto (no --log: stderr, or syslog once it has forked into the
 * background, its stderr then /dev/null). */
enum log_dest {
  LOG_DEST_AUTO,
  LOG_DEST_STDERR,
  LOG_DEST_SYSLOG,
  LOG_DEST_NULL,
};

/* The --log of a command line given as NUL-separated arguments (the
 * form of /proc/self/cmdline), len bytes; the last one counts.  An
 * unknown value is LOG_DEST_AUTO (nbdkit refuses it anyway). */
extern enum log_dest log_dest_from_cmdline (const char *args, size_t len);

extern void log_error (const char *fmt, ...)
  __attribute__ ((format (printf, 1, 2)));
extern void log_warning (const char *fmt, ...)
  __attribute__ ((format (printf, 1, 2)));
extern void log_info (const char *fmt, ...)
  __attribute__ ((format (printf, 1, 2)));
extern void log_debug (const char *fmt, ...)
  __attribute__ ((format (printf, 1, 2)));

#endif /* NBDSWAP_LOG_H */
