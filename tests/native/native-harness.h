/* The native server's tests (test-native, test-hostile): start 'nbdswap
 * serve --native' on a unix socket in a private directory, talk to it
 * with libnbd or a raw socket, and check the backing file against a
 * shadow copy kept by the test (seeded random bytes, so a misplaced or
 * lost block shows).
 */
#ifndef NBDSWAP_NATIVE_HARNESS_H
#define NBDSWAP_NATIVE_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <libnbd.h>

/* Failed checks count here; main ends with harness_finish. */
#define CHECK_FAILURES failures
#include "../test-check.h"

extern int failures;

/* The private directory and what is in it. */
extern char dir[256], file[300], sock[300], logpath[300], pidf[300];
extern pid_t server;                    /* started by start_server */
extern int server_nofile;               /* RLIMIT_NOFILE for it, or 0 */
extern const char *spawn_file;          /* FILE as the server gets it */
extern bool spawn_preload;              /* it may run nbdkit: preload */
extern unsigned char *shadow;           /* what the file must hold */
extern size_t file_size;                /* the backing file's size */

/* Make the private directory NAME.XXXXXX under the current directory
 * (on a filesystem with O_DIRECT, unlike some /tmp) and in it the
 * backing file of size bytes, fully written, and its shadow. */
extern void harness_init (const char *name, size_t size);

/* Print the server's log if a check failed, remove the directory, print
 * the summary line; the exit status for main. */
extern int harness_finish (const char *name);

/* xorshift, seeded: repeatable data. */
extern uint64_t rnd (uint64_t *s);
extern void fill (unsigned char *p, size_t n, uint64_t *seed);

/* Does a libnbd client complete a handshake? */
extern bool handshake_ok (void);

/* Fork and exec the server: [wrap] nbdswap serve --native --foreground
 * FILE --pidfile P, then extra (NULL-terminated), its output to the
 * log. */
extern pid_t spawn_server (const char *wrap, const char *const *extra);

/* Start the server on the unix socket (sets server); it is ready once a
 * handshake succeeds.  Exits the test if it does not start. */
extern void start_server (void);

/* Wait up to ms for pid to exit; its exit status, or -1 (then killed). */
extern int wait_exit (pid_t pid, int ms);

/* Does the log hold this text? */
extern bool log_has (const char *text);

/* A libnbd handle connected to the server, strict mode off (so that
 * out-of-range requests reach it); exits the test on failure. */
extern struct nbd_handle *connect_h (void);

/* Read [off, off+len) through h and compare with the shadow. */
extern void check_range (struct nbd_handle *h, uint64_t off, uint32_t len,
                         const char *what);

/* The backing file itself holds the shadow, and has its size. */
extern void check_file (void);

/* A unix socket connected to the server, or -1. */
extern int connect_raw (void);

/* A raw client, negotiated with NBD_OPT_EXPORT_NAME (10 s receive
 * timeout); -1 on failure. */
extern int raw_client (void);

/* Does the server close s (within its receive timeout)? */
extern bool closed_by_server (int s);

/* Send a request header (cookie 7). */
extern void send_header (int s, uint16_t type, uint64_t off, uint32_t len,
                         uint32_t magic);

/* Read one simple reply, and a read's data of len bytes (up to 128 KiB)
 * when it succeeded; its error, or -1 if none came.  The data is left
 * in reply_data. */
extern int read_reply (int s, uint32_t len);
extern unsigned char reply_data[128 * 1024];

#endif /* NBDSWAP_NATIVE_HARNESS_H */
