#!/bin/bash
# nbdswap serve's default, the native server, runs in the background: it
# returns once the server serves, naming its PID; what stops the server
# from starting is printed by serve, which exits with the server's
# status; the socket goes with the server.  --foreground keeps it in
# this process.  --native, the default, changes nothing.
source "$(dirname "$0")/functions.sh"

backing nat.img 16M
sock=$NBDSWAP_RUNTIME_DIR/nat.sock

# A server that stayed in the foreground would be cut off by timeout.
# FILE relative: the server leaves the working directory.
rc=0
(cd "$WORK" && timeout 60 "${SERVE[@]}" nat.img) >"$WORK/bg.out" 2>&1 ||
  rc=$?
pid=$(sed -n 's/^nbdswap: serving .* (PID \([0-9]*\))$/\1/p' "$WORK/bg.out")
[ -z "$pid" ] || PIDS+=("$pid")
grep -q "FALLING BACK to nbdkit" "$WORK/bg.out" &&
  skip "io_uring is denied here: serve hands over to nbdkit"
if [ "$rc" -ne 0 ] || [ -z "$pid" ]; then
  fail "serve did not return serving (exit $rc): $(cat "$WORK/bg.out")"
  finish
fi
[ "$(cat "$NBDSWAP_RUNTIME_DIR/nat.pid")" = "$pid" ] ||
  fail "the pidfile does not name PID $pid"
[ "$(ps -o sid= -p "$pid" | tr -d ' ')" = "$pid" ] ||
  fail "server $pid does not lead a session of its own"
for fd in 0 1 2; do
  [ "$(readlink "/proc/$pid/fd/$fd")" = /dev/null ] ||
    fail "server $pid kept serve's fd $fd: $(readlink "/proc/$pid/fd/$fd")"
done
[ "$(readlink "/proc/$pid/cwd")" = / ] ||
  fail "server $pid keeps $(readlink "/proc/$pid/cwd") busy, not /"
[ "$(stat -c %a "$sock" 2>/dev/null)" = 600 ] ||
  fail "no socket of mode 0600 at $sock"
ok "in the background: PID $pid, its own session, stdio let go, in /"
# --dry-run: the parameters that would apply (defaults, then given).
expect_status 0 "^# nbdswap serve: the native server: $WORK/nat.img on $NBDSWAP_RUNTIME_DIR/nat.sock, recheck=300 retry-timeout=60 retry-eio=true mlock=true$" \
  serve --dry-run "$WORK/nat.img"
expect_status 0 "^# nbdswap serve: the native server: .*, recheck=0 retry-timeout=5 retry-eio=false mlock=true$" \
  serve --native --dry-run "$WORK/nat.img" -- recheck=0 retry-timeout=5 retry-eio=no
expect_status 0 "^# nbdswap serve: the native server: $WORK/nat.img on tcp:127.0.0.1:10809, " \
  serve --dry-run --port 10809 "$WORK/nat.img"
noatime "$pid" "$WORK/nat.img" ||
  fail "the native server does not hold the file with O_NOATIME|O_DIRECT"
io "nbd+unix:///?socket=$sock"
expect_status 0 "^$pid +$WORK/nat.img +unix:$sock " status "$WORK/nat.img"
# The default is the native server, and status says so.
expect_status 0 "\"pid\":$pid,\"server\":\"native\",\"file\":\"$WORK/nat.img\"" \
  status --json "$WORK/nat.img"
grep -q "native: serving" "$WORK/bg.out" && ! grep -q "nbdkit" "$WORK/bg.out" ||
  fail "serve's default did not start the native server: $(cat "$WORK/bg.out")"

# One server per file, and the refusal is printed by the second serve.
expect_status 2 "already served by another process \(PID $pid\)" \
  serve "$WORK/nat.img" --socket "$WORK/second.sock"
[ ! -e "$WORK/second.sock" ] || fail "the refused server left its socket"

stop "$pid"
[ ! -e "$sock" ] || fail "the socket outlived the server"

# An unfit file: the reason, then serve's own line, exit status 2.
truncate -s 16M "$WORK/sparse.img"
chmod 600 "$WORK/sparse.img"
expect_status 2 "the server stopped before it served \(exit status 2\)" \
  serve "$WORK/sparse.img"
grep -q "are a hole" "$WORK/out" ||
  fail "the server's reason did not reach serve's output: $(cat "$WORK/out")"
[ ! -e "$NBDSWAP_RUNTIME_DIR/sparse.sock" ] ||
  fail "the refused server left its socket"

# While the server starts, serve waits for it with the same command
# line: status lists the server once, as the child, not serve.  A FIFO
# as the pidfile holds the child at its start until the FIFO is read
# (and the child writes its PID into it).  Paths relative: the server
# leaves the working directory, and must still remove its socket.
mkfifo "$WORK/slow.pid"
(cd "$WORK" &&
   exec "${SERVE[@]}" nat.img --native --socket slow.sock --pidfile slow.pid) \
  >"$WORK/slow.out" 2>&1 &
starter=$!
sleep 1
nbdswap status "$WORK/nat.img" >"$WORK/slow.status" 2>&1 || true
pid=$(timeout 20 cat "$WORK/slow.pid") || true
if [ -z "$pid" ]; then
  fail "the starting server never wrote its pidfile: $(cat "$WORK/slow.out")"
else
  PIDS+=("$pid")
  n=$(grep -c "^[0-9]* *$WORK/nat.img " "$WORK/slow.status" || true)
  [ "$n" = 1 ] && grep -q "^$pid " "$WORK/slow.status" ||
    fail "status while server $pid starts: $(cat "$WORK/slow.status")"
  wait "$starter" || fail "serve --native ...: $(cat "$WORK/slow.out")"
  cd /
  expect_status 0 "^$pid +$WORK/nat.img +unix:$WORK/slow.sock " \
    status "$WORK/nat.img"
  cd "$OLDPWD" || fail "cd $OLDPWD"
  stop "$pid"
  [ ! -e "$WORK/slow.sock" ] || fail "a relative --socket outlived the server"
fi

# status reads a native server's command line with serve's own option
# table, as getopt does: abbreviated long options, --opt=value, a
# short option's value glued on, FILE before the options.
rc=0
"${SERVE[@]}" "$WORK/nat.img" --nat --sock="$WORK/abbr.sock" -eswapx \
  >"$WORK/abbr.out" 2>&1 || rc=$?
pid=$(sed -n 's/^nbdswap: serving .* (PID \([0-9]*\))$/\1/p' "$WORK/abbr.out")
if [ "$rc" -ne 0 ] || [ -z "$pid" ]; then
  fail "serve --nat --sock=...: exit $rc: $(cat "$WORK/abbr.out")"
else
  PIDS+=("$pid")
  expect_status 0 "\"pid\":$pid,\"server\":\"native\",\"file\":\"$WORK/nat.img\",\"socket\":\"$WORK/abbr.sock\",.*\"export\":\"swapx\"" \
    status --json "$WORK/nat.img"
  stop "$pid"
fi

# A relative NBDSWAP_RUNTIME_DIR: its socket, pidfile and counters are
# where it says from serve's directory, and the server removes that
# socket (not one under / of the same relative name) at exit.
(cd "$WORK" && NBDSWAP_RUNTIME_DIR=rel-run "${SERVE[@]}" nat.img) \
  >"$WORK/rel.out" 2>&1 || fail "relative runtime directory: $(cat "$WORK/rel.out")"
pid=$(cat "$WORK/rel-run/nat.pid" 2>/dev/null) || true
if [ -z "$pid" ]; then
  fail "no pidfile in the relative runtime directory: $(cat "$WORK/rel.out")"
else
  PIDS+=("$pid")
  grep -q "on $WORK/rel-run/nat.sock (PID $pid)" "$WORK/rel.out" ||
    fail "serve did not name the whole socket path: $(cat "$WORK/rel.out")"
  io "nbd+unix:///?socket=$WORK/rel-run/nat.sock"
  stop "$pid"
  [ ! -e "$WORK/rel-run/nat.sock" ] ||
    fail "the socket in a relative runtime directory outlived the server"
fi

# --foreground: this process serves.  The plugin's parameters after
# "--" apply: the start says so, and recheck=1 re-verifies every second.
serve_fg "$WORK/fg.log" "$WORK/nat.img" --socket "$WORK/fg.sock" \
  -- recheck=1 retry-timeout=7 retry-eio=false mlock=false
for _ in $(seq 100); do
  [ -s "$NBDSWAP_RUNTIME_DIR/nat.pid" ] && break
  sleep 0.1
done
[ "$(cat "$NBDSWAP_RUNTIME_DIR/nat.pid" 2>/dev/null)" = "$LAST_PID" ] ||
  fail "--foreground: the pidfile does not name the process started"
io "nbd+unix:///?socket=$WORK/fg.sock"
grep -q "native: recheck=1 retry-timeout=7 retry-eio=false mlock=false" \
  "$WORK/fg.log" || fail "the parameters after -- did not apply: $(cat "$WORK/fg.log")"
# Counters on SIGUSR1 until two re-verifications show (at most 15 s).
n=0
for _ in $(seq 30); do
  kill -USR1 "$LAST_PID"
  sleep 0.5
  n=$(sed -n 's/.*"rechecks": *\([0-9]*\).*/\1/p' "$NBDSWAP_RUNTIME_DIR/nat.stats" \
        2>/dev/null)
  [ "${n:-0}" -ge 2 ] && break
done
[ "${n:-0}" -ge 2 ] ||
  fail "recheck=1: ${n:-no} re-verifications in 15 s: $(cat "$NBDSWAP_RUNTIME_DIR/nat.stats")"
stop "$LAST_PID"

finish
