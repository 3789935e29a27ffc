# shellcheck shell=bash
# nbdswap VM tests: nbdkit-crash.  One client that sends a few hundred
# writes without reading the replies and then resets its connection makes
# nbdkit 1.32.5 abort in its own core (docs/remote-swap.md).  With the
# server (`nbdswap serve --nbdkit`) restarted as its systemd unit would
# restart it, `nbdswap attach` must ride through that crash with nothing
# lost; the native server (serve's default) must shrug the same client
# off without a restart.  Sourced by guest-scenario
# after guest-lib.sh and scenario-attach.sh, whose attach helpers it uses.

CRASH_SOCK=$SOCKDIR/swap.sock
CRASH_STOP=$SOCKDIR/serve-loop.stop
# Each half's workload: half the usual, so that the scenario takes
# minutes, not ten (two workloads under TCG); it still swaps out most
# of its pages, and each half's check wants a quarter of them each way.
CRASH_MIB=$((VM_WORKLOAD_MIB / 2))
CRASH_MIN_MIB=$((CRASH_MIB / 4))
# What glibc prints when nbdkit 1.32.5's connections.c aborts.
CRASH_ASSERTION="raw_send_socket: Assertion .sock >= 0. failed"

# Runs `nbdswap serve $1 --socket $CRASH_SOCK --foreground $2...` as
# systemd runs the nbdswap-serve@ unit (Restart=on-failure,
# RestartSec=1s; there is no systemd in this guest): again one second
# after every exit but a clean one, until $CRASH_STOP exists.  Appends
# "start PID T" and "exit PID STATUS T" lines ($SECONDS) to
# $SERVE_LOOP_LOG, the servers' output to $RESULTS/server$SERVE_LABEL.log.
# serve --nbdkit execs nbdkit, so PID and STATUS are nbdkit's (134:
# SIGABRT); the native server serves in serve's own process.  Run it
# with &: the servers are this subshell's children and live only as long
# as it does (nbdkit, handed its socket, dies with its parent).
serve_loop ()
{
  local pid rc
  ulimit -c 0
  while :; do
    "$NBDSWAP_CMD" serve "$1" --socket "$CRASH_SOCK" --foreground "${@:2}" \
      >> "$RESULTS/server${SERVE_LABEL:-}.log" 2>&1 &
    pid=$!
    echo "start $pid $SECONDS" >> "$SERVE_LOOP_LOG"
    wait "$pid"
    rc=$?
    echo "exit $pid $rc $SECONDS" >> "$SERVE_LOOP_LOG"
    { [ "$rc" = 0 ] || [ -e "$CRASH_STOP" ]; } && return
    sleep 1
  done
}

# Prints the pid of the server serve_loop started last.
serve_loop_pid ()
{
  awk '$1 == "start" { p = $2 } END { print p }' "$SERVE_LOOP_LOG"
}

# Starts serve_loop on backing file $1 with serve arguments $2...
# (SERVE_LOOP_PID), its log $RESULTS/serve-loop$SERVE_LABEL.log
# (SERVE_LOOP_LOG), waits up to 60 s for the socket and sets SERVER_PID
# to the server's pid; check serve-loop-start$SERVE_LABEL.
serve_loop_start ()
{
  local end=$((SECONDS + 60)) name=serve-loop-start${SERVE_LABEL:-}
  rm -f "$CRASH_STOP" "$CRASH_SOCK"
  SERVE_LOOP_LOG=$RESULTS/serve-loop${SERVE_LABEL:-}.log
  : > "$SERVE_LOOP_LOG"
  mkdir -p "$SOCKDIR"
  serve_loop "$@" &
  SERVE_LOOP_PID=$!
  while [ "$SECONDS" -lt "$end" ] && [ ! -S "$CRASH_SOCK" ]; do
    sleep 0.2
  done
  SERVER_PID=$(serve_loop_pid)
  if [ -S "$CRASH_SOCK" ] && server_running; then
    pass "$name" "nbdswap serve ${*:2} as pid $SERVER_PID"
    return 0
  fi
  fail "$name" "$(tail -n 3 "$RESULTS/server${SERVE_LABEL:-}.log" | tr '\n' ' ')"
  serve_loop_stop
  return 1
}

# Stops serve_loop: no more restarts, SIGTERM to the server, then waits
# (15 s at most, then SIGKILL) for the loop to end.
serve_loop_stop ()
{
  local end=$((SECONDS + 15))
  touch "$CRASH_STOP"
  SERVER_PID=$(serve_loop_pid)
  kill -TERM "$SERVER_PID" 2>/dev/null
  while [ "$SECONDS" -lt "$end" ] && pid_running "$SERVE_LOOP_PID"; do
    sleep 0.2
  done
  if pid_running "$SERVE_LOOP_PID"; then
    kill -KILL "$SERVER_PID" 2>/dev/null
  fi
  wait "$SERVE_LOOP_PID"
}

# The reset client, built by make check, else compiled here.
reset_client ()
{
  local c=/tmp/nbd-reset-client
  if [ -x "${VM_RESET_CLIENT:-}" ]; then
    "$VM_RESET_CLIENT" "$@"
    return
  fi
  # shellcheck disable=SC2046 # pkg-config's flags, one word each
  [ -x "$c" ] || cc -O2 -o "$c" "$VM_SRCDIR/nbd-reset-client.c" \
                   $(pkg-config --cflags --libs libnbd) || return 2
  "$c" "$@"
}

# Runs the reset client against $CRASH_SOCK up to $2 times, 2 s apart,
# while the server SERVER_PID runs; its output in
# $RESULTS/reset-client-$1.log.  Sets RESET_RUNS (runs made) and
# RESET_FAILED (runs that did not get as far as the reset).
reset_client_runs ()
{
  local logf=$RESULTS/reset-client-$1.log
  RESET_RUNS=0 RESET_FAILED=0
  : > "$logf"
  while [ "$RESET_RUNS" -lt "$2" ] && server_running; do
    RESET_RUNS=$((RESET_RUNS + 1))
    reset_client "$CRASH_SOCK" >> "$logf" 2>&1 \
      || RESET_FAILED=$((RESET_FAILED + 1))
    sleep 2
  done
  log "reset client $1: $RESET_RUNS runs, $RESET_FAILED failed:" \
      "$(tr '\n' ' ' < "$logf")"
}

# Check nbdkit-abort: the server $1 died of SIGABRT on nbdkit's
# assertion; if the reset client could not make it, kill -ABRT it
# instead (a FAIL, so labelled) so that the ride-through is still tested.
nbdkit_crash_check ()
{
  local st end=$((SECONDS + 5))
  # serve_loop logs the exit once it has reaped the server.
  while :; do
    st=$(awk -v p="$1" '$1 == "exit" && $2 == p { print $3 }' "$SERVE_LOOP_LOG")
    if [ -n "$st" ] || pid_running "$1" || [ "$SECONDS" -ge "$end" ]; then
      break
    fi
    sleep 0.2
  done
  if [ "$st" = 134 ] && grep -q "$CRASH_ASSERTION" "$RESULTS/server.log"
  then
    pass nbdkit-abort "nbdkit $1 exit 134 (SIGABRT) after $RESET_RUNS reset client(s): $(grep -m 1 "$CRASH_ASSERTION" "$RESULTS/server.log")"
    return
  fi
  if [ -z "$st" ]; then
    fail nbdkit-abort "nbdkit $(nbdkit --version | cut -d' ' -f2) outlived $RESET_RUNS reset clients ($RESET_FAILED failed): FALLBACK, killed with SIGABRT to test the ride-through"
    kill -ABRT "$1"
    sleep 1
  else
    fail nbdkit-abort "nbdkit $1 exited with status $st, want 134 and the assertion: $(tail -n 2 "$RESULTS/server.log" | tr '\n' ' ')"
  fi
}

# Check $1: serve_loop started a server after server $2 died, and it runs.
restarted_check ()
{
  local t_exit t_start pid
  t_exit=$(awk -v p="$2" '$1 == "exit" && $2 == p { print $4 }' "$SERVE_LOOP_LOG")
  # A here-string: this guest has no /dev/fd for <(...).
  read -r pid t_start <<< "$(awk -v p="$2" '
    $1 == "start" && seen { print $2, $3; exit }
    $1 == "start" && $2 == p { seen = 1 }' "$SERVE_LOOP_LOG")"
  SERVER_PID=$pid
  if [ -n "$pid" ] && server_running; then
    pass "$1" "pid $pid started $((t_start - t_exit)) s after $2 died"
  else
    fail "$1" "$(tr '\n' ' ' < "$SERVE_LOOP_LOG")"
  fi
}

# The nbdkit half: the reset client crashes nbdkit while the workload
# swaps; serve_loop restarts it, the supervisor reconnects, every word
# verifies.
nbdkit_crash_half ()
{
  local pid1 out_mib
  SERVE_LABEL=''
  serve_loop_start "$BACKING" --nbdkit -- retry-timeout=3 || return 1
  pid1=$SERVER_PID
  log "$(nbdkit --version)"
  attach_foreground attach-foreground "$CRASH_SOCK" --timeout 5 \
    || { serve_loop_stop; return 1; }
  workload_bg_start crash "$CRASH_MIB"
  swapped_out_wait 64
  out_mib=$(( $(vmstat_get pswpout) * PAGE_KIB / 1024 ))
  reset_client_runs nbdkit 5
  nbdkit_crash_check "$pid1"
  workload_bg_wait crash
  workload_checks crash "$CRASH_MIN_MIB"
  restarted_check nbdkit-restarted "$pid1"
  reconnect_check supervisor-reconnected
  log "swapped out since boot: $out_mib MiB at the crash, now $(( $(vmstat_get pswpout) * PAGE_KIB / 1024 )) MiB out, $(( $(vmstat_get pswpin) * PAGE_KIB / 1024 )) MiB in"
  swap_errors_check crash-no-io-error
  log "$(dmesg | grep -i nbd0 | tail -n 8)"
  detach_foreground detach
  serve_loop_stop
}

# The native half: the same reset client, three times while the workload
# swaps; the native server stays (no restart), the supervisor never
# sees a dead connection, every word verifies.
native_crash_half ()
{
  local pid mark
  mark=$(dmesg | wc -l)
  SERVE_LABEL=-native
  serve_loop_start "$BACKING" -- retry-timeout=3 || return 1
  pid=$SERVER_PID
  SV_LOG_NAME=supervisor-native.log \
    attach_foreground native-attach-foreground "$CRASH_SOCK" --timeout 5 \
    || { serve_loop_stop; return 1; }
  workload_bg_start native-crash "$CRASH_MIB"
  swapped_out_wait 64
  reset_client_runs native 3
  workload_bg_wait native-crash
  workload_checks native-crash "$CRASH_MIN_MIB"
  if [ "$RESET_FAILED" = 0 ] && [ "$RESET_RUNS" = 3 ] \
     && [ "$(serve_loop_pid)" = "$pid" ] && server_running; then
    pass native-survives-reset "pid $pid served 3 reset clients and the workload, no restart: $(tail -n 1 "$RESULTS/reset-client-native.log")"
  else
    fail native-survives-reset "$RESET_RUNS runs, $RESET_FAILED failed; serve loop: $(tr '\n' ' ' < "$SERVE_LOOP_LOG")"
  fi
  if grep -q -E 'dead connection|reconnect' "$SV_LOG"; then
    fail native-no-reconnect "$(grep -m 1 -E 'dead connection|reconnect' "$SV_LOG")"
  else
    pass native-no-reconnect "the supervisor saw no dead connection"
  fi
  swap_errors_check native-no-io-error "$mark"
  detach_foreground native-detach
  serve_loop_stop
}

# nbdkit 1.32.5's abort, provoked by a client, ridden through by attach;
# then the native server under the same client.
scenario_nbdkit-crash ()
{
  BACKING=$SCRATCH/nbdswap-backing.img
  check_cmd ext4-mkfs fs_make ext4 || return
  check_cmd create-backing backing_create "$BACKING" "$VM_SWAP_MIB" || return
  nbdkit_crash_half || return
  native_crash_half
  umount "$SCRATCH"
}
