/* nbdswap detach: is there room for the pages swapoff brings back?
 *
 * swapoff(2) reads every page of the device back into memory, charging
 * each to the memory cgroup that swapped it out.  Where a cgroup's
 * memory.max leaves no room, the kernel (Linux 6.1) reclaims, then
 * OOM-kills inside that cgroup: a workload dies, and swapoff may fail with
 * ENOMEM all the same (seen in the detach VM scenario).  So detach looks
 * first and refuses when the pages cannot fit.
 * The estimate is an upper bound on need (a cgroup's memory.swap.current
 * covers all swap devices) and counts page cache as room (reclaimable).
 */
#ifndef NBDSWAP_SWAPROOM_H
#define NBDSWAP_SWAPROOM_H

#include <stdint.h>

struct swaproom_report {
  uint64_t need_kib;            /* what would come back */
  uint64_t room_kib;            /* where it could go */
  char cgroup[256];             /* the cgroup short of room; "" = the system */
};

/* 0 if the pages on block device dev (active swap) fit back into memory,
 * 1 if not (rep says where), -errno if the kernel's figures are
 * unreadable. */
extern int swaproom_check (const char *dev, struct swaproom_report *rep);

#endif /* NBDSWAP_SWAPROOM_H */
