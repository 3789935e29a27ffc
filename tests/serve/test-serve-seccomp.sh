#!/bin/bash
# The sidecar case (docs/sidecar.md): io_uring denied by a seccomp filter
# the way container runtimes deny it.  nbdswap serve --foreground must
# still serve, through the plugin's pread fallback, and say so.
source "$(dirname "$0")/functions.sh"

deny=$PWD/integration/seccomp-deny-uring
[ -x "$deny" ] || skip "integration/seccomp-deny-uring not built"

backing side.img 16M
sock=$WORK/side.sock
cmd=("${SERVE[@]}" --foreground --socket "$sock" "$WORK/side.img")
rc=0
"$deny" true 2>"$WORK/deny.err" || rc=$?
[ "$rc" -eq 77 ] && skip "cannot install a seccomp filter: $(cat "$WORK/deny.err")"
"$deny" "${cmd[@]}" >"$WORK/side.log" 2>&1 &
pid=$!
PIDS+=("$pid")
for _ in $(seq 50); do
  [ -f "$NBDSWAP_RUNTIME_DIR/side.pid" ] && break
  sleep 0.1
done
io "nbd+unix:///?socket=$sock"
grep -q "^nbdkit: swapfile: warning: io_uring is unavailable: io_uring_setup was denied (EPERM).*FALLING BACK to the pread/pwrite engine" \
  "$WORK/side.log" || fail "no fallback warning: $(cat "$WORK/side.log")"
stop "$pid"
finish
