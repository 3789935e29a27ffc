#!/bin/bash
# The systemd units: systemd-analyze verify accepts them (syntax, known
# settings, no ordering cycle between serve, socket and attach), with
# @bindir@ filled in as make install does.
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
finish
