#!/bin/bash
# nbdswap serve --native --dir with per-export allow lists (--allow
# NAME=CIDR): first the options, then the cases of
# serve-dir-allow-cases.sh, the same as the plugin's allow=NAME=CIDR
# (test-plugin-dir-allow.sh).  (The TLS-PSK identity rule needs kTLS,
# which the VM has: here it is tests/unit/test-exports.)
source "$(dirname "$0")/functions.sh"

fleet alpha bravo charlie

# The options first: a per-export list needs a name, addresses, the
# native server and TCP.
expect_status 1 "--allow alpha=: give NAME=CIDR" serve --native \
  --dir "$WORK/fleet" --port 1 --allow alpha=
expect_status 1 "--allow =127.0.0.1: give NAME=CIDR" serve --native \
  --dir "$WORK/fleet" --port 1 --allow =127.0.0.1
expect_status 1 "--allow alpha=x: x is not an address" serve --native \
  --dir "$WORK/fleet" --port 1 --allow alpha=x
# An export's file name may hold '=': the list starts after the last one.
expect_status 1 "--allow a=b=x: x is not an address" serve --native \
  --dir "$WORK/fleet" --port 1 --allow a=b=x
expect_status 1 "a per-export allow list is the --native server's" serve \
  "$WORK/fleet/alpha" --port 1 --allow alpha=127.0.0.1
expect_status 1 "--allow applies to TCP" serve --native --dir "$WORK/fleet" \
  --allow alpha=127.0.0.1
# The grants of PSK identities belong to --dir with --tls-psk.
expect_status 1 "--tls-psk-exports says which exports of --dir each PSK" \
  serve --native --dir "$WORK/fleet" --port 1 --tls-psk-exports /dev/null

KIND=native
source "$(dirname "$0")/serve-dir-allow-cases.sh"
