/* nbdswap: the swap side of attach and detach: the swap signature,
 * swapon/swapoff, and the dm-crypt mapping of --encrypt (the header a
 * new swap area gets is swaphdr.h's).  Functions return 0 or -errno;
 * what is printed is left to the caller, except the output of the tools
 * run (dmsetup) on their errors.
 */
#ifndef NBDSWAP_SWAPDEV_H
#define NBDSWAP_SWAPDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 1 if dev's first page carries a swap signature, 0 if not, -errno. */
extern int swapdev_has_signature (const char *dev);

/* swapon(2); priority < 0: the kernel's default. */
extern int swapdev_swapon (const char *dev, int priority);

/* swapoff(2), in a child process; -ENOMEM: not enough memory to take
 * the pages back (the kernel's ENOMEM, or the child OOM-killed). */
extern int swapdev_swapoff (const char *dev);

/* True if dev is active swap (listed in /proc/swaps). */
extern bool swapdev_is_active (const char *dev);

/* vm.page-cluster: swap-in readahead reads at most 2^N pages at a
 * fault, on every swap device of the machine.  The kernel's default is
 * 3; through NBD each read is a round trip, and 4 moved the swap
 * workload of docs/benchmarks.md in about 0.6x the time, so attach
 * advises it (--page-cluster N sets it). */
#define SWAPDEV_PAGE_CLUSTER_ADVICE 4
#define SWAPDEV_PAGE_CLUSTER_MAX 10

/* The value now, or -errno. */
extern int swapdev_page_cluster (void);

/* Set it to n: 0 or -errno. */
extern int swapdev_set_page_cluster (unsigned n);

/* The mapping's name and node for /dev/nbdN. */
extern void swapdev_crypt_name (int index, char *name, size_t len);

/* Maps /dev/nbdN through dm-crypt plain mode with a fresh random key:
 * aes-xts-plain64 (512 bits), or with integrity authenticated encryption
 * over a dm-integrity device (integrity.c): authenc(hmac(sha256),
 * xts(aes)) with a random IV per 4 KiB sector.  path gets
 * /dev/mapper/NAME. */
extern int swapdev_crypt_open (int index, bool integrity, char *path,
                               size_t len);

/* Removes the mappings of /dev/nbdN; -ENOENT if there is none. */
extern int swapdev_crypt_close (int index);

/* integrity.c: the dm-integrity device under --integrity's dm-crypt,
 * storing SWAPDEV_INTEGRITY_TAG bytes per 4 KiB sector (a 32-byte
 * HMAC-SHA256 and a 16-byte random IV).  under gets its MAJ:MIN, nr the
 * sectors it provides. */
#define SWAPDEV_INTEGRITY_TAG 48
extern void swapdev_integrity_name (int index, char *name, size_t len);
extern int swapdev_integrity_open (int index, char *under, size_t len,
                                   uint64_t *nr);
extern int swapdev_integrity_close (int index);

/* Run argv (stdin from in_fd, or /dev/null): its output is printed to
 * stderr if it fails, else copied to keep (if not NULL).  0, -EIO, or
 * -ENOENT when there is no such tool. */
extern int swapdev_run (char *const argv[], int in_fd, char *keep,
                        size_t keeplen);

/* dmsetup VERB --noudevsync NAME; with the table line (len bytes) on its
 * stdin when table is not NULL, through a pipe: a key in it never appears
 * on a command line or in a file. */
extern int swapdev_dmsetup (const char *verb, const char *name,
                            const char *table, size_t len);

#endif /* NBDSWAP_SWAPDEV_H */
