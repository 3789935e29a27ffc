#!/bin/bash
# nbdswap serve --dir (the native server) with per-export allow lists
# (--allow NAME=CIDR): first the options, then the cases of
# serve-dir-allow-cases.sh, the same as the plugin's allow=NAME=CIDR
# (test-plugin-dir-allow.sh).  (The TLS-PSK identity rule needs kTLS,
# which the VM has: here it is tests/unit/test-exports.)
source "$(dirname "$0")/functions.sh"

fleet alpha bravo charlie

# The options first: a per-export list needs a name, addresses and TCP;
# with --nbdkit, --dir (the plugin's allow=NAME=CIDR).
expect_status 1 "--allow alpha=: give NAME=CIDR" serve --native \
  --dir "$WORK/fleet" --port 1 --allow alpha=
expect_status 1 "--allow =127.0.0.1: give NAME=CIDR" serve \
  --dir "$WORK/fleet" --port 1 --allow =127.0.0.1
expect_status 1 "--allow alpha=x: x is not an address" serve \
  --dir "$WORK/fleet" --port 1 --allow alpha=x
# An export's file name may hold '=': the list starts after the last one.
expect_status 1 "--allow a=b=x: x is not an address" serve \
  --dir "$WORK/fleet" --port 1 --allow a=b=x
expect_status 1 "--nbdkit: --allow NAME=CIDR with one FILE: the plugin takes per-export allow lists with --dir only: drop --nbdkit" \
  serve --nbdkit "$WORK/fleet/alpha" --port 1 --allow alpha=127.0.0.1
expect_status 0 " dir=$WORK/fleet .* allow=127.0.0.0/8 allow=alpha=127.0.0.1,::1 allow=a=b=10.0.0.0/8$" \
  serve --nbdkit --dry-run --dir "$WORK/fleet" --port 1 \
  --allow alpha=127.0.0.1,::1 --allow 127.0.0.0/8 --allow a=b=10.0.0.0/8
expect_status 1 "--allow applies to TCP" serve --dir "$WORK/fleet" \
  --allow alpha=127.0.0.1
# The grants of PSK identities belong to --dir with --tls-psk.
expect_status 1 "--tls-psk-exports says which exports of --dir each PSK" \
  serve --dir "$WORK/fleet" --port 1 --tls-psk-exports /dev/null

KIND=native
source "$(dirname "$0")/serve-dir-allow-cases.sh"
