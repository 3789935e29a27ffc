#!/bin/bash
# The sidecar case (docs/sidecar.md): io_uring denied by a seccomp filter
# the way container runtimes deny it.  nbdswap serve must still serve and
# say why it serves slower, for both servers, in the foreground and in
# the background: the plugin through its pread/pwrite fallback; --native
# hands over to nbdkit and the plugin (FALLING BACK to nbdkit), which
# falls back the same way; with engine=io_uring after "--", no fallback:
# exit status 3.  Both stop cleanly on SIGTERM, taking their socket.
source "$(dirname "$0")/functions.sh"

deny=$PWD/integration/seccomp-deny-uring
[ -x "$deny" ] || skip "integration/seccomp-deny-uring not built"

backing side.img 16M
rc=0
"$deny" true 2>"$WORK/deny.err" || rc=$?
[ "$rc" -eq 77 ] && skip "cannot install a seccomp filter: $(cat "$WORK/deny.err")"

for server in "${SERVERS[@]}"; do
  server_opts "$server"
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
  if [ "$server" = native ]; then
    grep -q "^nbdswap: warning: --native needs io_uring, and io_uring_setup was denied (EPERM).*FALLING BACK to nbdkit with the swapfile plugin" \
      "$WORK/side.log" ||
      fail "native: no warning that it hands over to nbdkit: $(cat "$WORK/side.log")"
  fi
  stop_clean "$pid" "$server with io_uring denied"
  [ ! -e "$sock" ] || fail "$server: the socket outlived the server"

  # In the background (the filter is inherited by nbdkit): serve under
  # the filter, for this once.
  plain=("${SERVE[@]}")
  SERVE=("$deny" "${plain[@]}")
  if serve_bg --socket "$sock" "$WORK/side.img" "${OPTS[@]}"; then
    io "nbd+unix:///?socket=$sock"
    [ "$server" = plugin ] ||
      grep -q "FALLING BACK to nbdkit" "$WORK/serve.out" ||
      fail "native in the background: no fallback warning: $(cat "$WORK/serve.out")"
    stop "$LAST_PID"
    [ ! -e "$sock" ] || fail "$server in the background: the socket outlived the server"
  fi
  SERVE=("${plain[@]}")

  # engine=io_uring: serving without io_uring is not wanted.
  rc=0
  "$deny" "${SERVE[@]}" --foreground --socket "$sock" "$WORK/side.img" \
    "${OPTS[@]}" -- engine=io_uring >"$WORK/strict.log" 2>&1 || rc=$?
  [ "$rc" -eq 3 ] && grep -q "engine=io_uring" "$WORK/strict.log" ||
    fail "$server: engine=io_uring with io_uring denied: exit $rc: $(cat "$WORK/strict.log")"
done
finish
