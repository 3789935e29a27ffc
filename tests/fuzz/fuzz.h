/* nbdswap fuzz targets: what the native server's two fuzz targets share
 * (docs/design.md, "Fuzzing").
 *
 * Each target defines LLVMFuzzerTestOneInput: the input is the byte
 * stream of a client, written by a peer thread into one end of a
 * socketpair while the server code under test runs on the other end;
 * then the peer shuts its writing side down (the server sees end of
 * stream) and reads whatever the server answers until the server's end
 * is closed.  Built with clang -fsanitize=fuzzer for make fuzz, or with
 * the build's own compiler and fuzz-replay.c's main() for the replay of
 * the corpus that make check runs.
 */
#ifndef NBDSWAP_FUZZ_H
#define NBDSWAP_FUZZ_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* libFuzzer's entry points (fuzz-replay.c calls them the same way). */
extern int LLVMFuzzerInitialize (int *argc, char ***argv);
extern int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* The client side of one run. */
struct fuzz_peer {
  pthread_t thread;
  int sock;                     /* the peer's end */
  const uint8_t *data;          /* what the client sends */
  size_t size;
  /* Called with each piece of what the server sent, then with n == 0
   * at its end of stream; NULL: dropped unread. */
  void (*received) (void *arg, const uint8_t *p, size_t n);
  void *arg;
};

/* Make the socketpair and start the peer sending data (p->received
 * and p->arg set by the caller); returns the server's end of it
 * (blocking), or aborts. */
extern int fuzz_peer_start (struct fuzz_peer *p, const uint8_t *data,
                            size_t size);

/* The server is done with its end: shut it down, wait for the peer,
 * close both ends. */
extern void fuzz_peer_finish (struct fuzz_peer *p, int server_sock);

/* The server's log lines are dropped (every bad input logs one) unless
 * NBDSWAP_FUZZ_LOG is set in the environment. */
extern void fuzz_quiet_log (void);

/* A finding: say what, then abort (libFuzzer and ASan then save the
 * input and print the stack). */
extern void fuzz_fail (const char *fmt, ...)
  __attribute__ ((format (printf, 1, 2), noreturn));

/* This target cannot run here (no io_uring, say): exit 77, automake's
 * SKIP, with the reason. */
extern void fuzz_cannot_run (const char *why) __attribute__ ((noreturn));

#endif /* NBDSWAP_FUZZ_H */
