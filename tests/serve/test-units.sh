#!/bin/bash
# The systemd units: systemd-analyze verify accepts them (syntax, known
# settings, no ordering cycle between serve, socket and attach), with
# @bindir@ filled in as make install does.  And what the serve unit runs,
# as systemd would run it, serves with both servers: its ExecStart with
# NBDSWAP_SERVE_ARGS empty (nbdkit and the plugin) and "--native".
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
     nbdswap-attach-net@t.service >"$WORK/verify.out" 2>&1 &&
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
      fail "NBDSWAP_SERVE_ARGS=--native: not the native server: $(cat "$WORK/unit.log")"
  fi
  stop_clean "$pid" "the serve unit's command, $server"
done
finish
