/* nbdswap: making the serving process safe in the kernel's reclaim path.
 *
 * When the client host is short of memory it swaps out through us.  A
 * server that faults pages in, is throttled or recursed into reclaim, or
 * is OOM-killed while serving can deadlock the machine.  So:
 *   - mlockall (MCL_CURRENT|MCL_FUTURE|MCL_ONFAULT) in the serving process
 *     (locks are not inherited across fork: call it after nbdkit forked);
 *     ONFAULT keeps only touched pages locked (thread stacks stay small);
 *   - PR_SET_IO_FLUSHER on every thread that serves I/O (per thread: the
 *     kernel then allocates for it with GFP_NOIO and does not throttle it
 *     as a dirtier);
 *   - oom_score_adj -1000.
 * Each returns 0 or -errno; the caller decides how loud a failure is.
 */
#ifndef NBDSWAP_HARDEN_H
#define NBDSWAP_HARDEN_H

#include <stdbool.h>

/* Before threads exist (.load): one malloc arena, so that locked
 * address space (VmLck) stays close to what is used. */
extern void harden_malloc (void);

/* Stack size of the serving threads.  glibc gives new threads
 * RLIMIT_STACK (8 MiB by default), and under mlockall every stack is
 * locked address space: 16 threads a connection would make hundreds of
 * MiB of VmLck.  A serving thread needs a few KiB (batches are small,
 * nothing big lives on the stack); 512 KiB is ample. */
#define HARDEN_THREAD_STACK (512 * 1024)

/* Before threads exist (.load): threads created from now on, with or
 * without explicit attributes that leave the size unset, get stacks of
 * at most HARDEN_THREAD_STACK.  Never raises the size.  0 or -errno. */
extern int harden_thread_stacks (void);
extern int harden_mlock (void);
extern int harden_oom_exempt (void);
extern int harden_io_flusher (void);

/* The serving process, after any fork and before its serving threads
 * exist: lock its memory (when lock; failing that, an error naming the
 * fix, to which unlocked_fix adds how to run unlocked, or NULL), leave
 * the OOM killer's list and mark the calling thread, and so every thread
 * created after it, as an I/O flusher (each a warning if not
 * permitted).  0, or -1 when memory could not be locked. */
extern int harden_serving_process (bool lock, const char *unlocked_fix);

/* PR_SET_IO_FLUSHER on the calling thread (and so on the threads it
 * creates afterwards), warning once per process if it is not permitted.
 * harden_serving_process calls it, so that every thread created after
 * is marked from birth; serving threads call it again at their first
 * request, for one created before. */
extern void harden_serving_thread (void);

#endif /* NBDSWAP_HARDEN_H */
