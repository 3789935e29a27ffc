/* nbdswap status: the exports of a directory's server, read from the
 * "exports" array of its stats file (status.h; the server writes it in
 * lib/exports-report.c).
 *
 * The file is one JSON object that nbdswap itself wrote, but status
 * reads it as untrusted text all the same (a sidecar's file is under
 * another root): a small reader that walks only what it needs, bounds
 * its nesting, and gives up on anything malformed.
 */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

/* Deeper nesting than the server writes is not its file. */
#define JSON_DEPTH_MAX 8

static const char *
skip_space (const char *p)
{
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
    p++;
  return p;
}

/* Past the closing quote of the string at p, or NULL. */
static const char *
skip_string (const char *p)
{
  for (p++; *p != '"'; p++) {
    if (*p == '\0' || (*p == '\\' && *++p == '\0'))
      return NULL;
  }
  return p + 1;
}

/* Past the value at p (any JSON value), or NULL. */
static const char *
skip_value (const char *p, int depth)
{
  char close;

  p = skip_space (p);
  if (*p == '"')
    return skip_string (p);
  if (*p != '{' && *p != '[') {
    const char *start = p;

    while (*p && strchr (",]} \t\r\n", *p) == NULL)
      p++;
    return p > start ? p : NULL;
  }
  if (depth >= JSON_DEPTH_MAX)
    return NULL;
  close = *p == '{' ? '}' : ']';
  p = skip_space (p + 1);
  while (p != NULL && *p != close) {
    if (close == '}') {
      if (*p != '"' || (p = skip_string (p)) == NULL)
        return NULL;
      p = skip_space (p);
      if (*p++ != ':')
        return NULL;
    }
    p = skip_value (p, depth + 1);
    if (p == NULL)
      return NULL;
    p = skip_space (p);
    if (*p == ',')
      p = skip_space (p + 1);
    else if (*p != close)
      return NULL;
  }
  return p ? p + 1 : NULL;
}

/* The value of key in the object at p, or NULL. */
static const char *
member (const char *p, const char *key)
{
  size_t kl = strlen (key);
  const char *k;

  p = p ? skip_space (p) : NULL;
  if (p == NULL || *p != '{')
    return NULL;
  p = skip_space (p + 1);
  while (*p == '"') {
    k = p + 1;
    if ((p = skip_string (p)) == NULL)
      return NULL;
    p = skip_space (p);
    if (*p++ != ':')
      return NULL;
    p = skip_space (p);
    if (strncmp (k, key, kl) == 0 && k[kl] == '"')
      return p;
    if ((p = skip_value (p, 1)) == NULL)
      return NULL;
    p = skip_space (p);
    if (*p == ',')
      p = skip_space (p + 1);
  }
  return NULL;
}

/* Four hex digits at p into *v. */
static bool
hex4 (const char *p, unsigned *v)
{
  *v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    unsigned d = c >= '0' && c <= '9' ? (unsigned) (c - '0')
      : c >= 'a' && c <= 'f' ? (unsigned) (c - 'a' + 10)
      : c >= 'A' && c <= 'F' ? (unsigned) (c - 'A' + 10) : 16;

    if (d == 16)
      return false;
    *v = *v << 4 | d;
  }
  return true;
}

/* Code point u as UTF-8 at out; the bytes written. */
static size_t
put_utf8 (char *out, unsigned u)
{
  if (u < 0x80) {
    out[0] = (char) u;
    return 1;
  }
  if (u < 0x800) {
    out[0] = (char) (0xc0 | u >> 6);
    out[1] = (char) (0x80 | (u & 0x3f));
    return 2;
  }
  if (u < 0x10000) {
    out[0] = (char) (0xe0 | u >> 12);
    out[1] = (char) (0x80 | (u >> 6 & 0x3f));
    out[2] = (char) (0x80 | (u & 0x3f));
    return 3;
  }
  out[0] = (char) (0xf0 | u >> 18);
  out[1] = (char) (0x80 | (u >> 12 & 0x3f));
  out[2] = (char) (0x80 | (u >> 6 & 0x3f));
  out[3] = (char) (0x80 | (u & 0x3f));
  return 4;
}

/* The \u escape at p (after the backslash and 'u'), a surrogate pair
 * taken whole, as one code point; *p moved past it.  U+FFFD for what is
 * no character (a lone surrogate, NUL). */
static unsigned
unicode_escape (const char **p)
{
  unsigned u, lo;

  if (!hex4 (*p, &u))
    return 0xfffd;
  *p += 4;
  if (u >= 0xd800 && u < 0xdc00 && (*p)[0] == '\\' && (*p)[1] == 'u'
      && hex4 (*p + 2, &lo) && lo >= 0xdc00 && lo < 0xe000) {
    *p += 6;
    return 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
  }
  return u == 0 || (u >= 0xd800 && u < 0xe000) ? 0xfffd : u;
}

/* The string at p, unescaped, malloc'd; NULL if p is no string (null)
 * or out of memory. */
static char *
string_value (const char *p)
{
  static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
  const char *end = p && *p == '"' ? skip_string (p) : NULL;
  char *out, *w;

  if (end == NULL || (out = w = malloc ((size_t) (end - p))) == NULL)
    return NULL;
  for (p++; p < end - 1; p++) {
    const char *esc;

    if (*p != '\\')
      *w++ = *p;
    else if (*++p == 'u') {
      p++;
      w += put_utf8 (w, unicode_escape (&p));
      p--;
    }
    else if ((esc = strchr (from, *p)) != NULL)
      *w++ = to[esc - from];
  }
  *w = '\0';
  return out;
}

/* The number at p, 0 if p is no number (null). */
static uint64_t
number_value (const char *p)
{
  return p && *p >= '0' && *p <= '9' ? strtoull (p, NULL, 10) : 0;
}

/* The object at p's counters (the stats file's keys) into counters. */
static bool
counters_value (const char *p, uint64_t *counters)
{
  const char *end = p && *p == '{' ? skip_value (p, 1) : NULL;
  char *obj;
  bool ok;

  if (end == NULL || (obj = strndup (p, (size_t) (end - p))) == NULL)
    return false;
  ok = status_parse_stats (obj, counters);
  free (obj);
  return ok;
}

/* Calls fn with each element of the array at p, until it fails:
 * 0, -EINVAL (not an array, malformed) or fn's error. */
static int
each_element (const char *p, int (*fn) (const char *el, void *arg),
              void *arg)
{
  int r;

  if (p == NULL || *p != '[')
    return -EINVAL;
  p = skip_space (p + 1);
  while (*p != ']') {
    if ((r = fn (p, arg)) < 0)
      return r;
    if ((p = skip_value (p, 2)) == NULL)
      return -EINVAL;
    p = skip_space (p);
    if (*p == ',')
      p = skip_space (p + 1);
    else if (*p != ']')
      return -EINVAL;
  }
  return 0;
}

/* each_element's: one client into the export arg. */
static int
add_client (const char *el, void *arg)
{
  struct served_export *e = arg;
  struct served_client *c = realloc (e->clients,
                                     (e->nr_clients + 1) * sizeof *c);

  if (c == NULL)
    return -ENOMEM;
  e->clients = c;
  c += e->nr_clients++;
  c->address = string_value (member (el, "address"));
  c->port = (unsigned) number_value (member (el, "port"));
  c->identity = string_value (member (el, "identity"));
  c->file_io = string_value (member (el, "file_io"));
  return 0;
}

/* The growing array each_element fills with exports. */
struct export_list {
  struct served_export *e;
  size_t n;
};

/* each_element's: one export into the list arg. */
static int
add_export (const char *el, void *arg)
{
  struct export_list *l = arg;
  struct served_export *e = realloc (l->e, (l->n + 1) * sizeof *e);

  if (e == NULL)
    return -ENOMEM;
  l->e = e;
  e += l->n;
  memset (e, 0, sizeof *e);
  e->name = string_value (member (el, "name"));
  if (e->name == NULL)
    return -EINVAL;
  l->n++;
  e->path = string_value (member (el, "path"));
  e->size = number_value (member (el, "size"));
  e->connections = number_value (member (el, "connections"));
  e->connections_total = number_value (member (el, "connections_total"));
  if (!counters_value (member (el, "counters"), e->counters))
    return -EINVAL;
  return each_element (member (el, "clients"), add_client, e);
}

int
status_parse_exports (const char *json, struct served_export **out,
                      size_t *n)
{
  struct export_list l = { NULL, 0 };
  int r = each_element (member (json, "exports"), add_export, &l);

  if (r < 0) {
    status_exports_free (l.e, l.n);
    l.e = NULL;
    l.n = 0;
  }
  *out = l.e;
  *n = l.n;
  return r;
}

void
status_exports_free (struct served_export *e, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    for (size_t j = 0; j < e[i].nr_clients; j++) {
      free (e[i].clients[j].address);
      free (e[i].clients[j].identity);
      free (e[i].clients[j].file_io);
    }
    free (e[i].clients);
    free (e[i].name);
    free (e[i].path);
  }
  free (e);
}
