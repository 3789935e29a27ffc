# nbdswap: per-export allow lists over TCP (127.0.0.1 only), sourced by
# test-serve-dir-allow.sh (--allow NAME=CIDR) and test-plugin-dir-allow.sh
# (--nbdkit: allow=NAME=CIDR) so that both front ends pass the same test
# (KIND, see dir_serve in functions.sh): a client opens only the exports
# whose lists admit it (and those without a list); NBD_OPT_LIST names
# only those; another's export is refused exactly as a name that does
# not exist (NBD_REP_ERR_UNKNOWN), with one log line naming the client
# and the export.  The caller made $WORK/fleet: alpha, bravo, charlie.

LOG=$WORK/serve.log
port=$(free_port)
dir_serve "$KIND" "$LOG" "tcp:$port" "$WORK/fleet" 127.0.0.0/8 \
  alpha=127.0.0.1 bravo=192.0.2.0/24,2001:db8::/32
SERVER=$LAST_PID
client () { dir_client "tcp:127.0.0.1:$port" "$@"; }

log_wait "$LOG" "$SERVER" "$(dir_serving "$KIND" 3)" ||
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

stop_clean "$SERVER" "the $KIND server of a directory with allow lists"
finish
