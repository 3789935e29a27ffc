/* nbdswap: the pool of workers (see include/engine.h). */
#include <config.h>

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "harden.h"
#include "log.h"

static const struct engine *pool_engine;
static struct worker_params pool_params;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct worker *free_list;        /* protected by pool_lock */
static struct worker *all;              /* every worker made (all_next) */
static unsigned made;                   /* protected by pool_lock */
static pthread_key_t worker_key;
static bool key_made;

/* The calling thread's worker, for a lock-free fast path. */
static __thread struct worker *current;

/* Make one worker: its bounce buffer and its engine resources. */
static struct worker *
worker_new (void)
{
  struct worker *w = calloc (1, sizeof *w);
  int r;

  if (w == NULL)
    return NULL;
  w->fd = pool_params.fd;
  w->queue_depth = pool_params.queue_depth;
  w->bounce_size = pool_params.bounce_size;
  r = posix_memalign ((void **) &w->bounce, pool_params.buf_align,
                      w->bounce_size + pool_params.scratch_size);
  if (r != 0) {
    free (w);
    errno = r;
    return NULL;
  }
  w->scratch = w->bounce + w->bounce_size;
  r = pool_engine->worker_init (w);
  if (r < 0) {
    free (w->bounce);
    free (w);
    errno = -r;
    return NULL;
  }
  w->all_next = all;
  all = w;
  return w;
}

static void
worker_free (struct worker *w)
{
  pool_engine->worker_fini (w);
  free (w->bounce);
  free (w);
}

/* Thread exit: the worker goes back to the pool for the next thread. */
static void
worker_release (void *wv)
{
  struct worker *w = wv;

  pthread_mutex_lock (&pool_lock);
  w->next = free_list;
  free_list = w;
  pthread_mutex_unlock (&pool_lock);
}

int
worker_pool_init (const struct engine *e, const struct worker_params *wp,
                  unsigned n)
{
  int r;

  pool_engine = e;
  pool_params = *wp;
  if (!key_made) {
    r = pthread_key_create (&worker_key, worker_release);
    if (r != 0)
      return -r;
    key_made = true;
  }
  pthread_mutex_lock (&pool_lock);
  for (unsigned i = 0; i < n; i++) {
    struct worker *w = worker_new ();
    if (w == NULL) {
      r = -errno;
      pthread_mutex_unlock (&pool_lock);
      worker_pool_fini ();
      return r;
    }
    w->next = free_list;
    free_list = w;
    made++;
  }
  pthread_mutex_unlock (&pool_lock);
  return 0;
}

/* At unload, no thread serves any more, but some may still hold their
 * worker (with --threads=1 or -s nbdkit serves on a thread that outlives
 * the connection): free every worker made, not only the free ones, so
 * that every ring lets go of the backing file now.  Deleting the key
 * first keeps the destructor from running after the plugin is gone. */
void
worker_pool_fini (void)
{
  pthread_mutex_lock (&pool_lock);
  if (key_made) {
    pthread_key_delete (worker_key);
    key_made = false;
  }
  while (all) {
    struct worker *w = all;
    all = w->all_next;
    worker_free (w);
  }
  free_list = NULL;
  made = 0;
  pthread_mutex_unlock (&pool_lock);
}

unsigned
worker_count (void)
{
  unsigned n;

  pthread_mutex_lock (&pool_lock);
  n = made;
  pthread_mutex_unlock (&pool_lock);
  return n;
}

/* Slow path: take a prepared worker, or make one if none is left. */
static struct worker *
worker_take (void)
{
  struct worker *w;
  static bool warned;

  pthread_mutex_lock (&pool_lock);
  w = free_list;
  if (w)
    free_list = w->next;
  else {
    w = worker_new ();
    if (w) {
      made++;
      if (!warned)
        log_warning ("more threads are serving than workers= prepared "
                     "(now %u): made another at run time; raise workers= "
                     "so that nothing is allocated while serving", made);
      warned = true;
    }
  }
  pthread_mutex_unlock (&pool_lock);
  return w;
}

struct worker *
worker_get (void)
{
  struct worker *w = current;
  int r;

  if (w)
    return w;
  w = worker_take ();
  if (w == NULL)
    return NULL;
  r = pthread_setspecific (worker_key, w);
  if (r != 0) {
    worker_release (w);
    errno = r;
    return NULL;
  }
  current = w;
  /* First request of this thread: it serves I/O from now on. */
  harden_serving_thread ();
  if (pool_engine->worker_bind)
    pool_engine->worker_bind (w);
  return w;
}

int
worker_run (struct req_target *t, int fd, struct worker *w, struct req *r)
{
  enum req_next next;

  /* A registered file is the pool's one file; else each request names
   * its own (one thread serves one connection, so this rarely moves). */
  assert (!w->fixed_file || w->fd == fd);
  w->fd = fd;
  r->bounce = w->bounce;
  r->bounce_size = w->bounce_size;
  r->scratch = w->scratch;
  r->in_place = false;
  r->may_block = true;
  next = req_start (t, r);
  while (next == REQ_IO)
    next = req_io_done (t, r, pool_engine->io (w, &r->io));
  assert (next == REQ_DONE);
  return r->err;
}
