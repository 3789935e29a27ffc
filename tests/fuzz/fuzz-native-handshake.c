/* nbdswap fuzz target: the native server's negotiation, server side.
 *
 * The input is everything a client sends from its first byte: client
 * flags, then options (NBD_OPT_GO, INFO, LIST, EXPORT_NAME, ABORT,
 * anything else, with any length), then end of stream.  The server runs
 * native_handshake on the other end of a socketpair, with a catalogue
 * of one export described as nbdswap serve --native describes its own
 * (the name "swap"); the go
 * callback says yes without setting a connection up (the transmission
 * phase is fuzz-native-conn's).  Whatever the input, native_handshake
 * must return (the end of stream comes before its 30 s deadline), with
 * 1, 0 or a negative errno, and touch no memory it should not.
 */
#include <config.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "native.h"
#include "native-proto.h"

static const struct native_export export = {
  .fd = -1,
  .size = 64 * 1024 * 1024,
  .align = 4096,
  .mem_align = 4096,
  .name = "swap",
  .flags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
    NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_CAN_MULTI_CONN,
};

/* The go callback: yes, and count the calls (at most one per GO or
 * EXPORT_NAME that named the export). */
static int
go_yes (void *arg, char *why, size_t whylen)
{
  unsigned *calls = arg;

  (*calls)++;
  return 0;
}

/* The catalogue's select and list: the one export. */
static int
select_swap (void *arg, const char *name, const char *identity,
             const struct native_export **e)
{
  if (strcmp (name, export.name) != 0)
    return -ENOENT;
  *e = &export;
  return 0;
}

static int
list_swap (void *arg, const char *identity,
           int (*emit) (void *ctx, const char *name), void *ctx)
{
  return emit (ctx, export.name);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  fuzz_quiet_log ();
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct fuzz_peer peer = { .received = NULL };
  unsigned calls = 0;
  struct native_catalog cat = {
    .select = select_swap, .list = list_swap, .go = go_yes, .arg = &calls,
  };
  int sock = fuzz_peer_start (&peer, data, size);
  int r = native_handshake (sock, &cat);

  fuzz_peer_finish (&peer, sock);
  if (r > 1 || (r == 1 && calls != 1) || (r != 1 && calls > 0))
    fuzz_fail ("fuzz: native_handshake returned %d after %u go calls", r,
               calls);
  return 0;
}
