/* nbdswap: attach and detach, and the exit codes they add. */
#ifndef NBDSWAP_ATTACH_H
#define NBDSWAP_ATTACH_H

/* Exit codes beyond nbdswap.h's 0-3 and 130 (docs/attach.md). */
enum {
  EXIT_BUSY = 4,                /* the device is in use or busy */
  EXIT_UNREACHABLE = 5,         /* the server cannot be reached */
  EXIT_NOMEM = 6,               /* swapoff: not enough memory for the pages */
};

extern int cmd_attach (int argc, char **argv);
extern int cmd_detach (int argc, char **argv);

/* Parses /dev/nbdN or nbdN; returns N or -1. */
extern int nbd_device_index (const char *arg);

/* True if /dev/nbdN is configured (has a pid file or a size). */
extern int nbd_device_in_use (int index, long *pid);

/* The largest request the kernel sends /dev/nbdN: the nbd driver of
 * Linux 6.1 caps it at 128 KiB (max_sectors 256), which splits swap-outs
 * into two or more round trips; 1024 KiB halved the requests and moved
 * the swap benchmark in 0.9x the time, through the native server and
 * qemu-nbd alike (docs/benchmarks.md, "The request size cap").  Later
 * kernels start nbd devices at the block layer's default (1280 KiB):
 * attach leaves the cap alone unless told a value (opt-in: 1 MiB
 * requests hung a server in the same kernel under global memory
 * exhaustion, docs/attach.md).  The queue keeps it
 * across reconnections, and after detach. */
#define NBD_MAX_SECTORS_KB_ADVICE 1024
#define NBD_MAX_SECTORS_KB_MIN 4
#define NBD_MAX_SECTORS_KB_MAX 32768   /* the driver's max_hw_sectors */

/* /dev/nbdN's max_sectors_kb now, or -errno. */
extern long nbd_device_max_sectors_kb (int index);

/* Set /dev/nbdN's max_sectors_kb to kb: the value the kernel kept (read
 * back: it may round down), or -errno. */
extern long nbd_device_set_max_sectors_kb (int index, unsigned kb);

#endif /* NBDSWAP_ATTACH_H */
