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

#endif /* NBDSWAP_ATTACH_H */
