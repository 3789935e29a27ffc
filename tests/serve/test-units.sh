#!/bin/bash
# The systemd units: systemd-analyze verify accepts them (syntax, known
# settings, no ordering cycle between serve, socket and attach), with
# @bindir@ filled in as make install does.  And what the serve unit runs,
# as systemd would run it, serves with both servers: its ExecStart with
# NBDSWAP_SERVE_ARGS empty (the native server) and "--nbdkit".  The
# fleet unit's ExecStart serves every file of its directory, its
# ExecReload makes it serve a file added since, and status shows them.
source "$(dirname "$0")/functions.sh"
command -v systemd-analyze >/dev/null 2>&1 ||
  skip "systemd-analyze not found (install the Debian package systemd)"

units=${srcdir:-$(dirname "$0")/..}/../systemd
mkdir "$WORK/units"
for u in "$units"/*; do
  sed "s|@bindir@|$WORK/units|" "$u" >"$WORK/units/$(basename "$u")"
done
cp "$NBDSWAP" "$WORK/units/nbdswap"
grep -q '@bindir@' "$WORK"/units/*@* && fail "@bindir@ left in a unit"
cd "$WORK/units"
if systemd-analyze verify --man=no nbdswap-serve@t.socket \
     nbdswap-serve@t.service nbdswap-attach@t.service \
     nbdswap-attach-net@t.service nbdswap-serve-dir@t.service \
     >"$WORK/verify.out" 2>&1 &&
   [ ! -s "$WORK/verify.out" ]; then
  ok "systemd-analyze verify"
else
  fail "systemd-analyze verify: $(cat "$WORK/verify.out")"
fi
grep -q '^Before=swap.target' nbdswap-attach@.service ||
  fail "nbdswap-attach@ is not ordered before swap.target"

# The service's ExecStart, its variables filled in (NBDSWAP_DIR is this
# test's directory), run socket-activated on the .socket unit's socket
# (here in this test's directory), with INVOCATION_ID set and umask
# 0077 as systemd sets them.
command -v systemd-socket-activate >/dev/null 2>&1 ||
  skip "systemd-socket-activate not found (install the Debian package systemd)"
line=$(sed -n 's/^ExecStart=//p' nbdswap-serve@.service)
[ "${line%% *}" = "$WORK/units/nbdswap" ] ||
  fail "ExecStart does not run nbdswap: $line"
grep -q '^ListenStream=/run/nbdswap/%i.sock$' nbdswap-serve@.socket ||
  fail "nbdswap-serve@.socket does not listen on /run/nbdswap/%i.sock"
backing t.img 16M
sock=$WORK/t.sock
for server in "${SERVERS[@]}"; do
  server_opts "$server"
  rest=${line#* serve }
  rest=${rest//%i/t}
  rest=${rest//'${NBDSWAP_DIR}'/$WORK}
  rest=${rest//'$NBDSWAP_SERVE_ARGS'/${OPTS[*]}}
  read -ra words <<<"$rest"
  # The last round's socket stays (systemd's, as it should): gone now, so
  # that the wait below sees this round's.
  rm -f "$NBDSWAP_RUNTIME_DIR/t.pid" "$sock"
  (umask 0077 && INVOCATION_ID=0123456789abcdef exec systemd-socket-activate \
     -l "$sock" -E NBDSWAP_RUNTIME_DIR -E INVOCATION_ID \
     "${SERVE[@]}" "${words[@]}") >"$WORK/unit.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
  io "nbd+unix:///?socket=$sock"
  expect_status 0 "^$pid +$WORK/t.img +unix:$sock " status "$WORK/t.img"
  if [ "$server" = native ]; then
    grep -q "native: serving $WORK/t.img" "$WORK/unit.log" ||
      fail "NBDSWAP_SERVE_ARGS empty: not the native server: $(cat "$WORK/unit.log")"
  else
    [ "$(cat "/proc/$pid/comm")" = nbdkit ] ||
      fail "NBDSWAP_SERVE_ARGS=--nbdkit: not nbdkit: $(cat "$WORK/unit.log")"
  fi
  stop_clean "$pid" "the serve unit's command, $server"
done

# nbdswap-serve-dir@t: its ExecStart (NBDSWAP_DIR this test's directory,
# NBDSWAP_SERVE_DIR_ARGS empty) serves $WORK/t's files on the runtime
# directory's t.sock, in the foreground as under systemd.
line=$(sed -n 's/^ExecStart=//p' nbdswap-serve-dir@.service)
reload=$(sed -n 's/^ExecReload=//p' nbdswap-serve-dir@.service)
[ "${line%% *}" = "$WORK/units/nbdswap" ] ||
  fail "nbdswap-serve-dir@: ExecStart does not run nbdswap: $line"
[[ $line == *" serve --dir \${NBDSWAP_DIR}/%i "* ]] ||
  fail "nbdswap-serve-dir@ does not serve \${NBDSWAP_DIR}/%i with --dir: $line"
mkdir "$WORK/t"
"$NBDSWAP" create --quiet "$WORK/t/a" 16M
"$NBDSWAP" create --quiet "$WORK/t/b" 16M
rest=${line#* serve }
rest=${rest//%i/t}
rest=${rest//'${NBDSWAP_DIR}'/$WORK}
rest=${rest//'$NBDSWAP_SERVE_DIR_ARGS'/}
read -ra words <<<"$rest"
(umask 0077 && INVOCATION_ID=0123456789abcdef exec "${SERVE[@]}" "${words[@]}") \
  >"$WORK/dir-unit.log" 2>&1 &
pid=$!
PIDS+=("$pid")
log_wait "$WORK/dir-unit.log" "$pid" "native: serving 2 exports from $WORK/t" ||
  fail "the fleet unit's command did not serve: $(cat "$WORK/dir-unit.log")"
sock=$NBDSWAP_RUNTIME_DIR/t.sock
io "nbd+unix:///b?socket=$sock"
# ExecReload, $MAINPID the server: a file added since is served.
"$NBDSWAP" create --quiet "$WORK/t/c" 16M
read -ra words <<<"${reload//'$MAINPID'/$pid}"
"${words[@]}" || fail "the fleet unit's ExecReload failed: $reload"
log_wait "$WORK/dir-unit.log" "$pid" "export 'c': serving" ||
  fail "ExecReload did not make the server re-scan: $(tail -3 "$WORK/dir-unit.log")"
expect_status 0 "^$pid +$WORK/t +unix:$sock " status "$WORK/t"
grep -qE "^ +export b +0 connections +1 +1 " "$WORK/out" &&
  grep -qE "^ +export c +0 connections +0 +0 " "$WORK/out" ||
  fail "status of the fleet unit's server: no row per export: $(cat "$WORK/out")"
stop_clean "$pid" "the fleet unit's command"
finish
