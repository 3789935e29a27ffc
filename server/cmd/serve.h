/* nbdswap: what serve and status share: addresses, the runtime
 * directory, and how a served nbdkit is recognised.
 */
#ifndef NBDSWAP_SERVE_H
#define NBDSWAP_SERVE_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>

/* Where sockets and stats files go unless told otherwise; the
 * environment variable NBDSWAP_RUNTIME_DIR overrides it. */
#define SERVE_RUNTIME_DIR "/run/nbdswap"

/* NBD's IANA port, used when --bind is given without --port. */
#define SERVE_DEFAULT_PORT "10809"

/* nbdkit threads per connection: the kernel's nbd client keeps many
 * requests in flight on one connection, and nbdkit serves one request
 * per thread (see nbdswap(8), "Threads"). */
#define SERVE_DEFAULT_THREADS 32

/* The plugin's file name and its short name for nbdkit. */
#define SERVE_PLUGIN_SO "nbdkit-swapfile-plugin.so"
#define SERVE_PLUGIN_NAME "swapfile"

/* The runtime directory: $NBDSWAP_RUNTIME_DIR or SERVE_RUNTIME_DIR. */
extern const char *serve_runtime_dir (void);

/* FILE's base name without its last extension ("host1.img" ->
 * "host1"), into buf; the name of its socket and stats file. */
extern void serve_instance_name (const char *file, char *buf, size_t len);

/* True when ADDR is a numeric loopback address (127.0.0.0/8, ::1,
 * ::ffff:127.x.x.x). */
extern bool netaddr_is_loopback (const char *addr);

/* True when ADDR is a numeric IPv4 or IPv6 address. */
extern bool netaddr_is_numeric (const char *addr);

/* True when S is ADDR or ADDR/PREFIX with a prefix length in range for
 * the address family. */
extern bool netaddr_is_cidr (const char *s);

/* The options of 'nbdswap serve' (cmd-serve.c), for getopt_long and for
 * status, which reads a native server's command line with them. */
extern const struct option serve_longopts[];
#define SERVE_SHORTOPTS "s:p:b:a:e:t:fP:nh"

/* True when the nbdkit command line argv (argc entries) loads the
 * swapfile plugin. */
extern bool serve_cmdline_is_ours (char **argv, size_t argc);

#endif /* NBDSWAP_SERVE_H */
