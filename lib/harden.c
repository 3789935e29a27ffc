/* nbdswap: memory locking, IO_FLUSHER and OOM exemption (see
 * include/harden.h). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "harden.h"
#include "log.h"

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57            /* Linux 5.6 */
#endif
#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4                   /* Linux 4.4 */
#endif

void
harden_malloc (void)
{
  /* One malloc arena: every thread's own arena reserves 64 MiB of
   * address space, which mlockall turns into locked address space
   * (VmLck), for a process that allocates nothing while serving. */
  mallopt (M_ARENA_MAX, 1);
}

int
harden_thread_stacks (void)
{
  pthread_attr_t attr;
  size_t size;
  int r;

  r = pthread_getattr_default_np (&attr);
  if (r != 0)
    return -r;
  r = pthread_attr_getstacksize (&attr, &size);
  if (r == 0 && size > HARDEN_THREAD_STACK) {
    r = pthread_attr_setstacksize (&attr, HARDEN_THREAD_STACK);
    if (r == 0)
      r = pthread_setattr_default_np (&attr);
  }
  pthread_attr_destroy (&attr);
  return -r;
}

int
harden_mlock (void)
{
  if (mlockall (MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) == -1)
    return -errno;
  return 0;
}

int
harden_oom_exempt (void)
{
  int fd = open ("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  int r = 0;

  if (fd == -1)
    return -errno;
  if (write (fd, "-1000", 5) != 5)
    r = -errno;
  close (fd);
  return r;
}

int
harden_io_flusher (void)
{
  if (prctl (PR_SET_IO_FLUSHER, 1, 0, 0, 0) == -1)
    return -errno;
  return 0;
}

int
harden_serving_process (bool lock, const char *unlocked_fix)
{
  int r;

  if (lock && (r = harden_mlock ()) < 0) {
    log_error ("mlockall: %s: the swap server must not be paged out; "
               "raise RLIMIT_MEMLOCK (ulimit -l unlimited, or "
               "LimitMEMLOCK=infinity in its systemd unit) or grant "
               "CAP_IPC_LOCK%s", strerror (-r),
               unlocked_fix ? unlocked_fix : "");
    return -1;
  }
  if ((r = harden_oom_exempt ()) < 0)
    log_warning ("oom_score_adj -1000: %s: the OOM killer may pick this "
                 "server, and every client swapping through it would lose "
                 "its pages; it needs CAP_SYS_RESOURCE", strerror (-r));
  /* The task flags are inherited by every thread created afterwards
   * (copy_process keeps PF_MEMALLOC_NOIO and PF_LOCAL_THROTTLE): so
   * nbdkit's threads, the native server's and io_uring's workers are
   * flushers from birth, before their first allocation.  Marking each
   * thread at its first request left that request's own allocation
   * unmarked: nbdkit grows a thread's request buffer (threadlocal_buffer)
   * as it reads the request, before the plugin sees it, and under global
   * memory pressure that is the moment it faults the pages in. */
  harden_serving_thread ();
  return 0;
}

void
harden_serving_thread (void)
{
  static atomic_bool warned;
  int r = harden_io_flusher ();

  if (r < 0 && !atomic_exchange (&warned, true))
    log_warning ("PR_SET_IO_FLUSHER: %s: serving threads are not marked "
                 "as I/O flushers (it needs CAP_SYS_RESOURCE), so they may "
                 "be throttled or recurse into reclaim while the client "
                 "swaps; run the server as root with that capability",
                 strerror (-r));
}
