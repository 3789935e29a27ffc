#!/bin/bash
# nbdswap serve under socket activation (LISTEN_FDS), for both servers:
# systemd's systemd-socket-activate binds the socket and execs serve on
# the first connection.  serve --nbdkit passes nbdkit neither -U nor -p;
# the native server (the default) serves the socket it was given; both stay in the
# foreground, write their pidfile, are listed by status, exit 0 on
# SIGTERM and leave the socket in place (it is systemd's, kept for the
# next activation) but remove their pidfile.  Also --foreground without
# activation: serve binds the socket (0600), and it goes with the
# server.
source "$(dirname "$0")/functions.sh"
command -v systemd-socket-activate >/dev/null 2>&1 ||
  skip "systemd-socket-activate not found (install the Debian package systemd)"

backing act.img 16M
pidfile=$NBDSWAP_RUNTIME_DIR/act.pid

for server in "${SERVERS[@]}"; do
  server_opts "$server"
  sock=$WORK/act-$server.sock
  rm -f "$pidfile"
  # It hands the server a fresh environment: -E keeps the runtime
  # directory in $WORK (else the pidfile and stats land in /run/nbdswap).
  systemd-socket-activate -l "$sock" -E NBDSWAP_RUNTIME_DIR \
    "${SERVE[@]}" "$WORK/act.img" "${OPTS[@]}" >"$WORK/act.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
  io "nbd+unix:///?socket=$sock"
  tr '\0' ' ' </proc/"$pid"/cmdline >"$WORK/cmdline"
  if [ "$server" = plugin ]; then
    grep -q "^nbdkit -f -t 32 " "$WORK/cmdline" ||
      fail "activated server's command line: $(cat "$WORK/cmdline")"
    grep -qE -- " (-U|-p) " "$WORK/cmdline" &&
      fail "activated server got -U or -p: $(cat "$WORK/cmdline")"
  else
    grep -q " serve $WORK/act.img $" "$WORK/cmdline" ||
      fail "activated native server's command line: $(cat "$WORK/cmdline")"
    grep -q "native: serving $WORK/act.img" "$WORK/act.log" ||
      fail "the native server did not serve: $(cat "$WORK/act.log")"
  fi
  expect_status 0 "^$pid +$WORK/act.img +unix:$sock " status "$WORK/act.img"
  [ "$(cat "$pidfile" 2>/dev/null)" = "$pid" ] ||
    fail "$server: no pidfile naming $pid in $NBDSWAP_RUNTIME_DIR"
  stop_clean "$pid" "$server, socket-activated"
  [ -S "$sock" ] ||
    fail "$server: the activated socket was removed (it is systemd's)"
  [ ! -e "$pidfile" ] || fail "$server: the pidfile outlived the server"

  # --foreground: serve binds the socket itself (0600) and stays.
  rm -f "$pidfile"
  serve_fg "$WORK/fg.log" "$WORK/act.img" "${OPTS[@]}"
  pid=$LAST_PID
  sock=$NBDSWAP_RUNTIME_DIR/act.sock
  for _ in $(seq 50); do [ -s "$pidfile" ] && break; sleep 0.1; done
  [ "$(stat -c %a "$sock")" = 600 ] ||
    fail "$server: --foreground socket mode $(stat -c %a "$sock")"
  io "nbd+unix:///?socket=$sock"
  expect_status 0 "^$pid +$WORK/act.img +unix:$sock " status "$WORK/act.img"
  stop_clean "$pid" "$server in the foreground"
  [ ! -e "$sock" ] || fail "$server: the socket outlived the server"
  [ ! -e "$pidfile" ] || fail "$server: the pidfile outlived the server"
done

finish
