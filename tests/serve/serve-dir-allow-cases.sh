# nbdswap: per-export allow lists over TCP (127.0.0.1 only), sourced by
# test-serve-dir-allow.sh (--allow NAME=CIDR) and test-plugin-dir-allow.sh
# (--nbdkit: allow=NAME=CIDR) so that both front ends pass the same test
# (KIND, see dir_serve in functions.sh): a client opens only the exports
# whose lists admit it (and those without a list); NBD_OPT_LIST names
# only those; another's export is refused exactly as a name that does
# not exist (NBD_REP_ERR_UNKNOWN), with one log line naming the client
# and the export; an export in use by one client is refused to another
# (NBD_SOURCE: a client from 127.0.0.2).  The caller made $WORK/fleet: alpha, bravo, charlie.

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

# One client at a time: while 127.0.0.1 holds charlie, 127.0.0.2 (also
# allowed) is refused, with a line naming both; 127.0.0.1's own second
# connection (multi-conn) is not; once it left, 127.0.0.2 may.
client hold charlie "$WORK/c.ready" "$WORK/c.go" >"$WORK/hold.out" 2>&1 &
holder=$!
for _ in $(seq 100); do [ -e "$WORK/c.ready" ] && break; sleep 0.1; done
got=$(NBD_SOURCE=127.0.0.2 client open charlie)
[ "$got" != ok ] && ok "another client is refused an export in use ($got)" ||
  fail "127.0.0.2 opened charlie while 127.0.0.1 uses it"
log_wait "$LOG" "$SERVER" \
  "client 127.0.0.2 asked for export 'charlie': refused \(in use by 127.0.0.1; one client at a time writes to an export\)" ||
  fail "the refusal of an export in use is not logged: $(tail -3 "$LOG")"
got=$(client open charlie)
[ "$got" = ok ] && ok "the same client's second connection is welcome" ||
  fail "127.0.0.1's second connection to charlie: got '$got'"
touch "$WORK/c.go"
wait "$holder" || fail "the holding client: $(cat "$WORK/hold.out")"
[ "$(cat "$WORK/hold.out")" = "$(printf 'read ok\nwrite ok')" ] ||
  fail "the holding client's I/O: $(cat "$WORK/hold.out")"
got=$(NBD_SOURCE=127.0.0.2 client open charlie)
[ "$got" = ok ] && ok "once the first client left, another may open it" ||
  fail "127.0.0.2 after 127.0.0.1 left: got '$got'"

stop_clean "$SERVER" "the $KIND server of a directory with allow lists"
finish
