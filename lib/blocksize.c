/* nbdswap: the request size limit both servers enforce (blocksize.h). */
#include <config.h>

#include <errno.h>
#include <inttypes.h>

#include "blocksize.h"
#include "log.h"

int
blocksize_refuse (const char *op, uint32_t count)
{
  /* The client ignored the maximum it was given: its bug, but said at
   * error level as nbdkit says its own refusals. */
  log_error ("%s of %" PRIu32 " bytes: over the maximum of %d bytes "
             "advertised (NBD_INFO_BLOCK_SIZE): refused with EINVAL",
             op, count, BLOCKSIZE_MAX);
  return -EINVAL;
}
