/* nbdswap: parsing the plugin's key=value parameters. */
#include <config.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "align.h"
#include "swapfile-config.h"

const char config_help_text[] =
  "file=<FILENAME>     The swap backing file (or block device), served\n"
  "                    under any export name.\n"
  "dir=<DIRECTORY>     Or: every swap backing file in DIRECTORY, each an\n"
  "                    export named after its file (SIGHUP re-scans).\n"
  "                    One of file= and dir= is required.\n"
  "engine=auto|io_uring|pread\n"
  "                    I/O engine (default auto: io_uring, falling back to\n"
  "                    pread/pwrite with a warning if io_uring is denied).\n"
  "direct=true|false   O_DIRECT I/O (default true).  false serves through\n"
  "                    the server's page cache: not recommended for swap.\n"
  "queue-depth=N       io_uring entries per serving thread (default 8).\n"
  "workers=N           serving threads to prepare rings and buffers for\n"
  "                    before serving (default 64).\n"
  "recheck=SECONDS     re-verify the file's extent map this often, and on\n"
  "                    SIGHUP (default 300; 0: on SIGHUP only).  A changed\n"
  "                    map makes writes fail with EIO.\n"
  "retry-timeout=SECONDS\n"
  "                    how long a transient I/O error (EAGAIN, ENOMEM,\n"
  "                    ETIMEDOUT, EIO...) is retried before EIO (default 60).\n"
  "retry-eio=true|false\n"
  "                    retry EIO from the storage within retry-timeout\n"
  "                    (default true: a lost swap page kills a process).\n"
  "mlock=true|false    lock the serving process in memory (default true).\n"
  "stats-file=FILE     write the counters (JSON) here on SIGUSR1 and at exit;\n"
  "                    they are also logged then.\n"
  "allow=CIDR[,CIDR]   only TCP clients from these networks may connect\n"
  "                    (unix-socket clients always may; default: all).\n"
  "allow=NAME=CIDR[,CIDR]\n"
  "                    with dir=: only TCP clients from these networks\n"
  "                    may open (and list) the export NAME.";

static const char *const engine_names[] = {
  [ENGINE_AUTO] = "auto",
  [ENGINE_IO_URING] = "io_uring",
  [ENGINE_PREAD] = "pread",
};

void
config_init (struct swapfile_config *c)
{
  memset (c, 0, sizeof *c);
  c->engine = ENGINE_AUTO;
  c->direct = true;
  c->queue_depth = CONFIG_QUEUE_DEPTH_DEFAULT;
  c->workers = CONFIG_WORKERS_DEFAULT;
  c->recheck = CONFIG_RECHECK_DEFAULT;
  c->retry_timeout = CONFIG_RETRY_TIMEOUT_DEFAULT;
  c->retry_eio = true;
  c->mlock = true;
}

void
config_free (struct swapfile_config *c)
{
  free (c->file);
  free (c->dir);
  free (c->stats_file);
  c->file = c->dir = c->stats_file = NULL;
  acl_free (&c->allow);
  for (size_t i = 0; i < c->nr_export_allow; i++) {
    free (c->export_allow[i].name);
    free (c->export_allow[i].nets);
  }
  free (c->export_allow);
  c->export_allow = NULL;
  c->nr_export_allow = 0;
}

const char *
config_engine_name (enum engine_kind e)
{
  return engine_names[e];
}

/* Parse a boolean the way nbdkit does: true/false, yes/no, on/off, 1/0. */
static int
parse_bool (const char *value, bool *out)
{
  static const char *const yes[] = { "1", "true", "yes", "on" };
  static const char *const no[] = { "0", "false", "no", "off" };

  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
    if (strcasecmp (value, yes[i]) == 0) {
      *out = true;
      return 0;
    }
    if (strcasecmp (value, no[i]) == 0) {
      *out = false;
      return 0;
    }
  }
  return -EINVAL;
}

/* Parse a decimal unsigned integer in [min, max]; no sign, no suffix. */
static int
parse_uint (const char *value, unsigned min, unsigned max, unsigned *out)
{
  char *end;
  unsigned long v;

  if (value[0] < '0' || value[0] > '9')
    return -EINVAL;
  errno = 0;
  v = strtoul (value, &end, 10);
  if (errno != 0 || *end != '\0' || v < min || v > max)
    return -EINVAL;
  *out = (unsigned) v;
  return 0;
}

/* The boolean parameter named key (each defaults to true), or NULL. */
static bool *
bool_field (struct swapfile_config *c, const char *key)
{
  if (strcmp (key, "direct") == 0)
    return &c->direct;
  if (strcmp (key, "mlock") == 0)
    return &c->mlock;
  if (strcmp (key, "retry-eio") == 0)
    return &c->retry_eio;
  return NULL;
}

static int
set_engine (struct swapfile_config *c, const char *value)
{
  for (size_t i = 0; i < sizeof engine_names / sizeof engine_names[0]; i++) {
    if (strcmp (value, engine_names[i]) == 0) {
      c->engine = (enum engine_kind) i;
      return 0;
    }
  }
  return -EINVAL;
}

static int
set_queue_depth (struct swapfile_config *c, const char *value)
{
  unsigned v;

  if (parse_uint (value, 1, CONFIG_QUEUE_DEPTH_MAX, &v) < 0
      || !is_power_of_2 (v))
    return -EINVAL;
  c->queue_depth = v;
  return 0;
}

/* The string parameter named key, or NULL. */
static char **
path_field (struct swapfile_config *c, const char *key)
{
  if (strcmp (key, "file") == 0)
    return &c->file;
  if (strcmp (key, "dir") == 0)
    return &c->dir;
  if (strcmp (key, "stats-file") == 0)
    return &c->stats_file;
  return NULL;
}

/* allow=NAME=CIDR[,...], eq at the last '=' (a CIDR has none, a file
 * name may): the export NAME only from those networks. */
static int
add_export_allow (struct swapfile_config *c, const char *value,
                  const char *eq, char *err, size_t errlen)
{
  struct config_export_allow *a;
  struct acl check = { NULL, 0 };
  char why[256];
  int r;

  if (eq == value || eq[1] == '\0') {
    snprintf (err, errlen, "allow=%s: give NAME=CIDR[,CIDR...]: an "
              "export's name and the networks that may open it", value);
    return -EINVAL;
  }
  r = acl_parse (&check, eq + 1, why, sizeof why);
  acl_free (&check);
  /* acl.c says "allow=NETS: ...": the whole parameter instead. */
  if (r == -EINVAL)
    snprintf (err, errlen, "allow=%.*s=%s", (int) (eq - value), value,
              strncmp (why, "allow=", 6) == 0 ? why + 6 : why);
  if (r < 0)
    return r;
  a = realloc (c->export_allow, (c->nr_export_allow + 1) * sizeof *a);
  if (a == NULL)
    return -ENOMEM;
  c->export_allow = a;
  a += c->nr_export_allow;
  a->name = strndup (value, (size_t) (eq - value));
  a->nets = strdup (eq + 1);
  if (a->name == NULL || a->nets == NULL) {
    free (a->name);
    free (a->nets);
    return -ENOMEM;
  }
  c->nr_export_allow++;
  return 0;
}

int
config_set (struct swapfile_config *c, const char *key, const char *value,
            char *err, size_t errlen)
{
  char **path = path_field (c, key);

  if (path != NULL) {
    char *copy;

    if (value[0] == '\0') {
      snprintf (err, errlen, "%s: the %s name is empty: give a path, "
                "e.g. %s=/srv/swap/%s", key, key[0] == 'd' ? "directory"
                : "file", key, key[0] == 'f' ? "host1.img"
                : key[0] == 'd' ? "fleet" : "host1.stats");
      return -EINVAL;
    }
    copy = strdup (value);
    if (copy == NULL)
      return -ENOMEM;
    free (*path);
    *path = copy;
    return 0;
  }
  if (strcmp (key, "engine") == 0) {
    if (set_engine (c, value) == 0)
      return 0;
    snprintf (err, errlen, "engine=%s: unknown engine: "
              "use engine=auto, engine=io_uring or engine=pread", value);
    return -EINVAL;
  }
  if (bool_field (c, key) != NULL) {
    if (parse_bool (value, bool_field (c, key)) == 0)
      return 0;
    snprintf (err, errlen, "%s=%s: not a boolean: "
              "use %s=true (the default) or %s=false", key, value, key, key);
    return -EINVAL;
  }
  if (strcmp (key, "allow") == 0 && strrchr (value, '=') != NULL)
    return add_export_allow (c, value, strrchr (value, '='), err, errlen);
  if (strcmp (key, "allow") == 0)
    return acl_parse (&c->allow, value, err, errlen);
  if (strcmp (key, "queue-depth") == 0) {
    if (set_queue_depth (c, value) == 0)
      return 0;
    snprintf (err, errlen, "queue-depth=%s: must be a power of two "
              "from 1 to %d (default %d)", value,
              CONFIG_QUEUE_DEPTH_MAX, CONFIG_QUEUE_DEPTH_DEFAULT);
    return -EINVAL;
  }
  if (strcmp (key, "workers") == 0) {
    if (parse_uint (value, 1, CONFIG_WORKERS_MAX, &c->workers) == 0)
      return 0;
    snprintf (err, errlen, "workers=%s: must be a number from 1 to %d "
              "(default %d)", value, CONFIG_WORKERS_MAX,
              CONFIG_WORKERS_DEFAULT);
    return -EINVAL;
  }
  if (strcmp (key, "recheck") == 0 || strcmp (key, "retry-timeout") == 0) {
    unsigned *field = strcmp (key, "recheck") == 0
      ? &c->recheck : &c->retry_timeout;
    if (parse_uint (value, 0, CONFIG_SECONDS_MAX, field) == 0)
      return 0;
    snprintf (err, errlen, "%s=%s: must be a number of seconds from 0 to "
              "%d", key, value, CONFIG_SECONDS_MAX);
    return -EINVAL;
  }
  snprintf (err, errlen, "%s=%s: unknown parameter: "
            "see nbdkit swapfile --help for the parameters", key, value);
  return -ENOENT;
}

/* The parameters that govern serving, in the words that set them. */
void
config_format (const struct swapfile_config *c, char *buf, size_t len)
{
  snprintf (buf, len, "recheck=%u retry-timeout=%u retry-eio=%s mlock=%s",
            c->recheck, c->retry_timeout, c->retry_eio ? "true" : "false",
            c->mlock ? "true" : "false");
}

int
config_check (const struct swapfile_config *c, char *err, size_t errlen)
{
  if (c->file != NULL && c->dir != NULL) {
    snprintf (err, errlen, "file=%s and dir=%s exclude each other: serve "
              "one file (file=) or every file of a directory (dir=)",
              c->file, c->dir);
    return -EINVAL;
  }
  if (c->file == NULL && c->dir == NULL) {
    snprintf (err, errlen, "file=<FILENAME> is required: "
              "name the swap backing file, e.g. nbdkit swapfile "
              "file=/srv/swap/host1.img (or dir=DIRECTORY for every file "
              "of a directory)");
    return -EINVAL;
  }
  if (c->nr_export_allow > 0 && c->dir == NULL) {
    snprintf (err, errlen, "allow=%s=%s: a per-export list is for the "
              "exports of dir=: with file= there is one, restrict its "
              "clients with allow=CIDR", c->export_allow[0].name,
              c->export_allow[0].nets);
    return -EINVAL;
  }
  return 0;
}
