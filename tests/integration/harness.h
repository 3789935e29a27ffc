/* Integration test harness: start nbdkit with the swapfile plugin on a
 * unix socket in a private directory, connect with libnbd, stop it. */
#ifndef NBDSWAP_TEST_HARNESS_H
#define NBDSWAP_TEST_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <libnbd.h>

struct server {
  pid_t pid;
  char dir[256];                /* private directory (socket, log, file) */
  char sock[300];
  char log[300];
  char pidfile[300];            /* written by nbdkit once ready to serve */
};

/* Failed checks count here; tests end with harness_exit (). */
#define CHECK_FAILURES harness_failures
#include "../test-check.h"

extern int harness_failures;

/* Make the private directory (under the current directory, which is on
 * a filesystem with O_DIRECT, unlike some /tmp). */
extern void harness_init (struct server *s, const char *name);

/* Write size bytes of pattern seeded by seed to path; fsync. */
extern void make_file (const char *path, uint64_t size, unsigned seed);

/* True when the environment variable NBDSWAP_NATIVE names an nbdswap
 * binary: then server_start runs 'nbdswap serve --native' instead of
 * nbdkit, with the same plugin parameters (see server_start). */
extern bool harness_native (void);

/* Start nbdkit -f: opts go before the plugin, params after it (both
 * NULL-terminated, may be NULL).  Under harness_native, the native
 * server instead: params after "--" (file= as its FILE), opts unused.  Returns 0 once the server completes an
 * NBD handshake (the socket alone appears before the plugin has finished
 * starting), -1 if the server exited first (its log is kept in s->log). */
extern int server_start (struct server *s, const char *const *opts,
                         const char *const *params);

/* SIGTERM and reap; returns the exit status (or 128+signal). */
extern int server_stop (struct server *s);

/* The server's log so far (malloc'd; never NULL). */
extern char *server_log (const struct server *s);

/* A connected handle; strict=false lets unaligned and out-of-range
 * requests reach the server. */
extern struct nbd_handle *server_connect (const struct server *s, bool strict);

/* Remove the private directory and its files. */
extern void harness_cleanup (struct server *s);

/* Print the summary line and exit 0/1. */
extern int harness_exit (const char *name);

/* xorshift pseudo-random numbers, seeded per test for repeatability. */
extern uint64_t rnd (uint64_t *state);

#endif
