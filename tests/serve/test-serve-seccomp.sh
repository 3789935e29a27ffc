#!/bin/bash
# The sidecar case (docs/sidecar.md): io_uring denied by a seccomp filter
# the way container runtimes deny it.  nbdswap serve must still serve and
# say why it serves slower, for both servers, in the foreground and in
# the background: --nbdkit through the plugin's pread/pwrite fallback;
# the native server (the default, also when --native says so) hands over
# to nbdkit and the plugin (FALLING BACK to nbdkit), which falls back the
# same way, and status lists nbdkit; --dry-run says so.  With
# engine=io_uring after "--", no fallback: exit status 3.  Where nbdkit
# would lose what was asked for (--dir --tls-psk's identity rule, one
# FILE's --allow NAME=CIDR), no fallback either: exit status 3 with the
# reason.  --dir falls back to the plugin's dir=.  All stop cleanly on
# SIGTERM, taking their socket.
source "$(dirname "$0")/functions.sh"

deny=$PWD/integration/seccomp-deny-uring
[ -x "$deny" ] || skip "integration/seccomp-deny-uring not built"

backing side.img 16M
rc=0
"$deny" true 2>"$WORK/deny.err" || rc=$?
[ "$rc" -eq 77 ] && skip "cannot install a seccomp filter: $(cat "$WORK/deny.err")"

# The native server's warning: cause, what serves instead, the fix.
handover="^nbdswap: warning: the native server needs io_uring, and io_uring_setup was denied \(EPERM\).*: FALLING BACK to nbdkit with the swapfile plugin and its pread/pwrite engine \(more CPU per request\); to serve with the native server, allow io_uring \(the container's seccomp profile, sysctl kernel.io_uring_disabled\), or add --nbdkit to choose nbdkit$"

for server in "${SERVERS[@]}" native-flag; do
  server_opts "$server"
  [ "$server" = native-flag ] && OPTS=(--native)
  sock=$WORK/side-$server.sock
  rm -f "$NBDSWAP_RUNTIME_DIR/side.pid"
  "$deny" "${SERVE[@]}" --foreground --socket "$sock" "$WORK/side.img" \
    "${OPTS[@]}" >"$WORK/side.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  for _ in $(seq 50); do
    [ -f "$NBDSWAP_RUNTIME_DIR/side.pid" ] && break
    sleep 0.1
  done
  io "nbd+unix:///?socket=$sock"
  grep -q "^nbdkit: swapfile: warning: io_uring is unavailable: io_uring_setup was denied (EPERM).*FALLING BACK to the pread/pwrite engine" \
    "$WORK/side.log" || fail "$server: no fallback warning: $(cat "$WORK/side.log")"
  if [ "$server" = plugin ]; then
    ! grep -q "FALLING BACK to nbdkit" "$WORK/side.log" ||
      fail "--nbdkit: a warning about the native server it did not try"
  else
    grep -qE "$handover" "$WORK/side.log" ||
      fail "$server: no warning that it hands over to nbdkit: $(cat "$WORK/side.log")"
    [ "$(grep -c "FALLING BACK to nbdkit" "$WORK/side.log")" = 1 ] ||
      fail "$server: not one hand-over warning: $(cat "$WORK/side.log")"
  fi
  [ "$(cat "/proc/$pid/comm")" = nbdkit ] ||
    fail "$server: serve did not exec nbdkit: $(cat "/proc/$pid/comm")"
  stop_clean "$pid" "$server with io_uring denied"
  [ ! -e "$sock" ] || fail "$server: the socket outlived the server"

  # In the background (the filter is inherited by nbdkit): serve under
  # the filter, for this once.  status names the server that serves.
  plain=("${SERVE[@]}")
  SERVE=("$deny" "${plain[@]}")
  if serve_bg --socket "$sock" "$WORK/side.img" "${OPTS[@]}"; then
    io "nbd+unix:///?socket=$sock"
    [ "$server" = plugin ] || grep -qE "$handover" "$WORK/serve.out" ||
      fail "$server in the background: no fallback warning: $(cat "$WORK/serve.out")"
    expect_status 0 "\"pid\":$LAST_PID,\"server\":\"nbdkit\",\"file\":\"$WORK/side.img\"" \
      status --json "$WORK/side.img"
    stop "$LAST_PID"
    [ ! -e "$sock" ] || fail "$server in the background: the socket outlived the server"
  fi
  SERVE=("${plain[@]}")

  # engine=io_uring: serving without io_uring is not wanted.
  rc=0
  "$deny" "${SERVE[@]}" --foreground --socket "$sock" "$WORK/side.img" \
    "${OPTS[@]}" -- engine=io_uring >"$WORK/strict.log" 2>&1 || rc=$?
  [ "$rc" -eq 3 ] && grep -q "engine=io_uring forbids" "$WORK/strict.log" ||
    fail "$server: engine=io_uring with io_uring denied: exit $rc: $(cat "$WORK/strict.log")"
done

# --dry-run says which server would serve, and why.
rc=0
"$deny" "${SERVE[@]}" --dry-run --poll-us 10 "$WORK/side.img" \
  >"$WORK/dry.out" 2>"$WORK/dry.err" || rc=$?
[ "$rc" -eq 0 ] &&
  grep -q "^# nbdswap serve: nbdkit with the swapfile plugin, in the native server's place (the warning says why)$" "$WORK/dry.out" &&
  grep -q "^nbdkit .* file=$WORK/side.img " "$WORK/dry.out" &&
  grep -q "FALLING BACK to nbdkit .* (--poll-us does not apply); " "$WORK/dry.err" ||
  fail "--dry-run with io_uring denied: exit $rc: $(cat "$WORK/dry.out" "$WORK/dry.err")"
rc=0
"$deny" "${SERVE[@]}" --dry-run --file-io inline "$WORK/side.img" \
  >"$WORK/dry.out" 2>"$WORK/dry.err" || rc=$?
[ "$rc" -eq 0 ] &&
  grep -q "FALLING BACK to nbdkit .* (--file-io does not apply); " "$WORK/dry.err" ||
  fail "--dry-run --file-io with io_uring denied: exit $rc: $(cat "$WORK/dry.out" "$WORK/dry.err")"

# What nbdkit cannot do is not silently dropped: refused, exit 3.
mkdir "$WORK/fleet"
psktool -u alpha -p "$WORK/keys.psk" >/dev/null 2>&1 || : >"$WORK/keys.psk"
PLAIN=("${SERVE[@]}")
SERVE=("$deny" "${PLAIN[@]}")
expect_status 3 "^nbdswap: error: the native server needs io_uring, and io_uring_setup was denied .*; nbdkit cannot serve in its place, since --dir with --tls-psk: each PSK identity opens only the export of its name.*; to serve, allow io_uring" \
  serve --dir "$WORK/fleet" --port "$(free_port)" --tls-psk "$WORK/keys.psk"
expect_status 3 "nbdkit cannot serve in its place, since --allow NAME=CIDR with one FILE: the plugin takes per-export allow lists with --dir only" \
  serve "$WORK/side.img" --port "$(free_port)" --allow side=127.0.0.1
SERVE=("${PLAIN[@]}")
[ ! -e "$NBDSWAP_RUNTIME_DIR/fleet.sock" ] && [ ! -e "$NBDSWAP_RUNTIME_DIR/side.sock" ] ||
  fail "a refused command line left a socket"

# --dir falls back to the plugin's dir=: its exports are served.
if /usr/bin/python3 -c 'import nbd' 2>/dev/null; then
  "$NBDSWAP" create --quiet "$WORK/fleet/alpha" 16M
  "$deny" "${SERVE[@]}" --foreground --dir "$WORK/fleet" \
    --socket "$WORK/fleet.sock" >"$WORK/dir.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  if log_wait "$WORK/dir.log" "$pid" "swapfile: serving 1 export from "; then
    grep -qE "$handover" "$WORK/dir.log" ||
      fail "--dir: no warning that it hands over to nbdkit: $(cat "$WORK/dir.log")"
    dir_client "unix:$WORK/fleet.sock" rw alpha &&
      ok "--dir with io_uring denied: nbdkit's dir= serves the export" ||
      fail "--dir with io_uring denied: I/O on export alpha"
  else
    fail "--dir with io_uring denied did not serve: $(cat "$WORK/dir.log")"
  fi
  stop_clean "$pid" "--dir with io_uring denied"
else
  echo "$TEST_NAME: the nbd Python module is missing: --dir's fallback not served"
fi
finish
