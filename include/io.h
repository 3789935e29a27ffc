/* nbdswap: the request executor: plan -> engine -> copy.
 *
 * io_read/io_write/io_zero carry out one NBD request against the backing
 * file: they plan its O_DIRECT segments (plan.h), run them in batches on
 * the calling thread's worker (engine.h), and copy through the bounce
 * buffer where the request or the buffer is not aligned.  Writes hold the
 * range lock (rangelock.h); nothing is allocated.
 */
#ifndef NBDSWAP_IO_H
#define NBDSWAP_IO_H

#include <stdbool.h>
#include <stdint.h>

#include "engine.h"
#include "rangelock.h"

struct io_target {
  const struct engine *engine;
  uint64_t size;                /* export size */
  uint32_t align;               /* file offset/length alignment */
  uint32_t mem_align;           /* buffer alignment */
  uint32_t bounce_size;         /* per worker, a multiple of align */
  const void *zero_buf;         /* aligned zeroes, zero_size bytes */
  uint32_t zero_size;
  struct rangelock locks;
};

/* Each returns 0 or -errno; the caller has checked the range. */
extern int io_read (struct io_target *t, struct worker *w, void *buf,
                    uint32_t count, uint64_t offset);
extern int io_write (struct io_target *t, struct worker *w, const void *buf,
                     uint32_t count, uint64_t offset, bool fua);
extern int io_zero (struct io_target *t, struct worker *w,
                    uint32_t count, uint64_t offset, bool fua);
extern int io_flush (struct io_target *t, struct worker *w);

#endif /* NBDSWAP_IO_H */
