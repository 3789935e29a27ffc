# nbdswap: the cases of one server of a whole directory, sourced by
# test-serve-dir.sh (serve --dir) and test-plugin-dir.sh (the
# plugin's dir=) so that both front ends pass the same test (KIND:
# native or plugin, see dir_serve in functions.sh).  Fit files
# (nbdswap create) are served under their names, a sparse one among
# them and one another server holds are refused with their causes while
# the rest serve; NBD_OPT_LIST names them; eight clients each write and
# read back their own export, concurrently, and the bytes land in their
# own file only; an unknown name (and the default export, "") is refused
# with NBD_REP_ERR_UNKNOWN and logged with the client; a file added, the
# sparse one recreated fit, and the held one once its server stopped are
# served after SIGHUP; a file removed makes its client's requests fail
# with EIO while another client goes on.  Unix sockets: no traffic
# leaves the host.

CLIENTS=(alpha bravo charlie foxtrot golf hotel india juliet)
fleet "${CLIENTS[@]}" echo
truncate -s 16M "$WORK/fleet/sparse"
chmod 600 "$WORK/fleet/sparse"
mkdir "$WORK/fleet/subdir"                      # not an export
"$NBDSWAP" create --quiet "$WORK/fleet/.hidden" 4M  # not an export
SOCK=$WORK/fleet.sock
LOG=$WORK/serve.log

# Another server holds echo.
serve_bg "$WORK/fleet/echo" --socket "$WORK/echo.sock"
HOLDER=$LAST_PID

dir_serve "$KIND" "$LOG" "unix:$SOCK" "$WORK/fleet"
SERVER=$LAST_PID
# How this front end names its directory in its log lines.
[ "$KIND" = native ] && DIR_OPT="--dir " || DIR_OPT="dir="

wait_log () { log_wait "$LOG" "$SERVER" "$1"; }

wait_log "$(dir_serving "$KIND" 8)" ||
  { cat "$LOG" >&2; fail "the server did not start with 8 exports"; finish; }
ok "8 exports served, the sparse and the held file left out"
grep -q "warning: $DIR_OPT$WORK/fleet: every client that connects may open every export" "$LOG" ||
  fail "no warning that every client may open every export: $(cat "$LOG")"
grep -q "sparse: bytes 0-16777215 (16.0 MiB) are a hole" "$LOG" &&
  grep -q "export 'sparse': not served (the lines above say why)" "$LOG" ||
  fail "the sparse file's refusal does not say its cause: $(cat "$LOG")"
grep -q "echo: already served by another process (PID $HOLDER)" "$LOG" &&
  grep -q "export 'echo': not served" "$LOG" ||
  fail "the held file's refusal does not name its server: $(cat "$LOG")"

client () { dir_client "unix:$SOCK" "$@"; }

# The list: the eight fit files, sorted; not the sparse, held, hidden
# or directory entries.
names=$(client list)
[ "$names" = "${CLIENTS[*]}" ] && ok "NBD_OPT_LIST: $names" ||
  fail "NBD_OPT_LIST answered '$names', expected '${CLIENTS[*]}'"

# Each client its own export, all at once; then each file holds exactly
# its own client's bytes.
pids=()
for n in "${CLIENTS[@]}"; do
  client rw "$n" >"$WORK/rw.$n" 2>&1 & pids+=($!)
done
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || fail "client of ${CLIENTS[$i]}: $(cat "$WORK/rw.${CLIENTS[$i]}")"
done
for n in "${CLIENTS[@]}"; do
  client check-file "$n" "$WORK/fleet/$n" || fail "file $n"
done
ok "eight clients wrote and read back their own exports, into their own files"

# An unknown name: NBD_REP_ERR_UNKNOWN (libnbd: ENOENT), logged with
# the client and the name.
got=$(client open nope)
[ "$got" = ENOENT ] && ok "an unknown export is refused (ENOENT)" ||
  fail "an unknown export: got '$got'"
wait_log "client a local client asked for export 'nope': refused \(no such export\)" ||
  fail "the refusal is not logged: $(tail -3 "$LOG")"
# A name that would forge a log line is logged escaped, on one line.
got=$(client open $'nope\nnbdswap: forged')
[ "$got" = ENOENT ] || fail "a name with a newline: got '$got'"
wait_log "asked for export 'nope\\\\x0anbdswap: forged': refused" ||
  fail "the name with a newline is not logged escaped: $(tail -3 "$LOG")"
! grep -q "^nbdswap: forged" "$LOG" ||
  fail "a client's export name started a log line of its own"
# The sparse file is no export either.
got=$(client open sparse)
[ "$got" = ENOENT ] || fail "the unfit file's name: got '$got', expected ENOENT"
# Nor is the default export: a directory's are asked for by name.
got=$(client open "")
[ "$got" = ENOENT ] && ok "the default export is refused (ENOENT)" ||
  fail "the default export: got '$got', expected ENOENT"
wait_log "client a local client asked for export '': refused \(no such export\)" ||
  fail "the default export's refusal is not logged: $(tail -3 "$LOG")"

# A file added, the sparse file recreated fit, the held one let go:
# served after SIGHUP.
"$NBDSWAP" create --quiet "$WORK/fleet/delta" 16M
"$NBDSWAP" create --quiet --force "$WORK/fleet/sparse" 16M
stop "$HOLDER"
kill -HUP "$SERVER"
wait_log "export 'delta': serving" && wait_log "export 'sparse': serving" &&
  wait_log "export 'echo': serving" ||
  fail "SIGHUP did not serve the new, fixed and freed files: $(tail -5 "$LOG")"
client rw delta && client rw sparse && client rw echo &&
  ok "after SIGHUP the new file, the recreated one and the freed one are served" ||
  fail "I/O on the files served after SIGHUP"
names=$(client list)
[ "$names" = "alpha bravo charlie delta echo foxtrot golf hotel india juliet sparse" ] ||
  fail "NBD_OPT_LIST after SIGHUP: '$names'"

# A file removed under its client: its requests fail with EIO; another
# client is unaffected; the server goes on.
client hold charlie "$WORK/c.ready" "$WORK/c.go" >"$WORK/hold.out" 2>&1 &
holder=$!
for _ in $(seq 100); do [ -e "$WORK/c.ready" ] && break; sleep 0.1; done
rm "$WORK/fleet/charlie"
kill -HUP "$SERVER"
wait_log "export 'charlie': its file was removed: no longer served; the 1 connection still using it get EIO" ||
  fail "the removal is not logged: $(tail -3 "$LOG")"
touch "$WORK/c.go"
wait "$holder" || true
[ "$(cat "$WORK/hold.out")" = "$(printf 'read EIO\nwrite EIO')" ] &&
  ok "the client of a removed file gets EIO" ||
  fail "the client of the removed file got: $(cat "$WORK/hold.out")"
client rw alpha && ok "another client is unaffected" ||
  fail "another client failed after a removal"
names=$(client list)
[ "$names" = "alpha bravo delta echo foxtrot golf hotel india juliet sparse" ] ||
  fail "NBD_OPT_LIST after the removal: '$names'"
kill -0 "$SERVER" 2>/dev/null || fail "the server died"

stop_clean "$SERVER" "the $KIND server of a directory"
grep -q "stats: export 'alpha': reads=" "$LOG" ||
  fail "no per-export stats line at exit"
finish
