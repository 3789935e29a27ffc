#!/bin/bash
# nbdswap serve --native --dir with per-export allow lists (--allow
# NAME=CIDR): a client opens only the exports whose lists admit it (and
# those without a list); NBD_OPT_LIST names only those; another's export
# is refused exactly as a name that does not exist (NBD_REP_ERR_UNKNOWN),
# with one log line naming the client and the export.  TCP on 127.0.0.1
# only.  (The TLS-PSK identity rule needs kTLS, which the VM has: here it
# is tests/unit/test-exports.)
source "$(dirname "$0")/functions.sh"

fleet alpha bravo charlie
LOG=$WORK/serve.log

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

port=$(free_port)
serve_fg "$LOG" --native --dir "$WORK/fleet" --bind 127.0.0.1 --port "$port" \
  --allow 127.0.0.0/8 --allow alpha=127.0.0.1 \
  --allow bravo=192.0.2.0/24,2001:db8::/32
SERVER=$LAST_PID
client () { dir_client "tcp:127.0.0.1:$port" "$@"; }

log_wait "$LOG" "$SERVER" "native: serving 3 exports from " ||
  { cat "$LOG" >&2; fail "the server did not start"; finish; }

names=$(client list)
[ "$names" = "alpha charlie" ] && ok "NBD_OPT_LIST from 127.0.0.1: $names" ||
  fail "NBD_OPT_LIST from 127.0.0.1: '$names', expected 'alpha charlie'"
client rw alpha && client rw charlie &&
  ok "127.0.0.1 writes and reads back its exports" || fail "I/O on alpha, charlie"

got=$(client open bravo)
[ "$got" = ENOENT ] && ok "another network's export is refused as unknown" ||
  fail "bravo from 127.0.0.1: got '$got', expected ENOENT"
log_wait "$LOG" "$SERVER" \
  "client 127.0.0.1 asked for export 'bravo': refused \(not one this client may open\)" ||
  fail "the refusal is not logged with the client: $(tail -3 "$LOG")"
got=$(client open nope)
[ "$got" = ENOENT ] || fail "an unknown export: got '$got'"
log_wait "$LOG" "$SERVER" \
  "client 127.0.0.1 asked for export 'nope': refused \(no such export\)" ||
  fail "the unknown name is not logged: $(tail -3 "$LOG")"
# The refused export's file is untouched: its first MiB still zeroes.
cmp -n 1048576 "$WORK/fleet/bravo" /dev/zero ||
  fail "bravo's file changed although no client may open it"

stop_clean "$SERVER" "serve --native --dir --allow NAME="
finish
