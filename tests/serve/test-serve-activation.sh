#!/bin/bash
# nbdswap serve under socket activation (LISTEN_FDS): systemd's
# systemd-socket-activate binds the socket and execs serve on the first
# connection; serve must pass neither -U nor -p and run in the
# foreground.  Also --foreground without activation.
source "$(dirname "$0")/functions.sh"
command -v systemd-socket-activate >/dev/null 2>&1 ||
  skip "systemd-socket-activate not found (install the Debian package systemd)"

backing act.img 16M
sock=$WORK/act.sock
serve_cmd=("${SERVE[@]}" "$WORK/act.img")
# It hands the server a fresh environment: -E keeps the runtime directory
# in $WORK (else the pidfile and stats land in /run/nbdswap).
systemd-socket-activate -l "$sock" -E NBDSWAP_RUNTIME_DIR \
  "${serve_cmd[@]}" >"$WORK/act.log" 2>&1 &
pid=$!
PIDS+=("$pid")
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
io "nbd+unix:///?socket=$sock"
tr '\0' ' ' </proc/"$pid"/cmdline >"$WORK/cmdline"
grep -q "^nbdkit -f -t 32 " "$WORK/cmdline" ||
  fail "activated server's command line: $(cat "$WORK/cmdline")"
grep -qE -- " (-U|-p) " "$WORK/cmdline" &&
  fail "activated server got -U or -p: $(cat "$WORK/cmdline")"
expect_status 0 "^$pid +$WORK/act.img +unix:$sock " status "$WORK/act.img"
[ "$(cat "$NBDSWAP_RUNTIME_DIR/act.pid" 2>/dev/null)" = "$pid" ] ||
  fail "no pidfile naming $pid in $NBDSWAP_RUNTIME_DIR"
stop "$pid"
rm -f "$NBDSWAP_RUNTIME_DIR/act.pid"

# --foreground: serve binds the socket itself (0600) and stays.
"${serve_cmd[@]}" --foreground >"$WORK/fg.log" 2>&1 &
pid=$!
PIDS+=("$pid")
sock=$NBDSWAP_RUNTIME_DIR/act.sock
for _ in $(seq 50); do [ -f "$NBDSWAP_RUNTIME_DIR/act.pid" ] && break; sleep 0.1; done
[ "$(stat -c %a "$sock")" = 600 ] || fail "--foreground socket mode $(stat -c %a "$sock")"
io "nbd+unix:///?socket=$sock"
expect_status 0 "^$pid +$WORK/act.img +unix:$sock " status "$WORK/act.img"
stop "$pid"

finish
