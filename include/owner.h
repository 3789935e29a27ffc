/* nbdswap: one owner per backing file.
 *
 * Two servers on one swap file (or a server and the kernel's own swapon)
 * would hand out the same pages twice: memory corruption on the clients.
 * The server holds an exclusive OFD lock on the whole file for its whole
 * life.  OFD locks belong to the open file description, so the lock
 * survives nbdkit's fork into the background and goes with the last
 * descriptor, whichever process closes it.
 */
#ifndef NBDSWAP_OWNER_H
#define NBDSWAP_OWNER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Take the lock: exclusive (F_WRLCK) on a read-write descriptor, shared
 * (F_RDLCK, which still excludes every writer) on a read-only one.
 * Returns 0; -EBUSY when another process holds a conflicting lock, with
 * that process's PID in *holder if the system can tell (else 0); or
 * another -errno. */
extern int owner_lock (int fd, bool exclusive, pid_t *holder);

/* The PID holding an OFD or POSIX lock on fd's file, from /proc/locks;
 * 0 if none is listed. */
extern pid_t owner_find_holder (int fd);

/* open (path, flags) for serving: with O_NOATIME where the file's owner
 * (or CAP_FOWNER) allows it, so that reads never update the access time
 * (a metadata update in the middle of a swap-in, see docs/verify.md,
 * no-lazytime); where it is not allowed (EPERM), without it. */
extern int owner_open (const char *path, int flags);

#endif /* NBDSWAP_OWNER_H */
