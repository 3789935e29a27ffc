# shellcheck shell=bash
# nbdswap VM tests: scenarios for `nbdswap attach` and `nbdswap detach`
# (issue 7: the swap cycle through attach, 6 encrypted, 7 server restart).
# Sourced by guest-scenario after guest-lib.sh; each scenario_NAME is run
# in a fresh guest.

ATTACH_SOCK=$SOCKDIR/swap.sock
PIDFILE=/run/nbdswap/attach-nbd0.pid

# The plaintext scanner, compiled in the guest from the source tree.
scan_build ()
{
  [ -x /tmp/plaintext-scan ] \
    || cc -O2 -o /tmp/plaintext-scan "$VM_SRCDIR/plaintext-scan.c"
}

# The workload's seed from its log for label $1.
workload_seed ()
{
  sed -n 's/.*seed \(0x[0-9a-f]*\).*/\1/p' "$RESULTS/workload-$1.log" \
    | head -n 1
}

# An ext4 scratch filesystem, a backing file and a server on it.
attach_setup ()
{
  BACKING=$SCRATCH/nbdswap-backing.img
  check_cmd ext4-mkfs fs_make ext4 || return 1
  check_cmd create-backing backing_create "$BACKING" "$VM_SWAP_MIB" \
    || return 1
  # shellcheck disable=SC2086 # plugin parameters, one word each
  if ! server_start "$BACKING" "$ATTACH_SOCK" "$RESULTS/server.log" \
       ${ATTACH_SERVER_PARAMS:-}; then
    fail server-start "$(tail -n 3 "$RESULTS/server.log" | tr '\n' ' ')"
    return 1
  fi
  pass server-start
}

# Checks that the supervisor of /dev/nbd0 runs, memory-locked and
# OOM-exempt; prints its pid.
supervisor_checks ()
{
  local pid lck adj
  pid=$(cat "$PIDFILE" 2>/dev/null)
  if [ -z "$pid" ] || [ ! -d "/proc/$pid" ]; then
    fail supervisor-running "no live pid in $PIDFILE"
    return 1
  fi
  pass supervisor-running "pid $pid"
  lck=$(awk '/^VmLck:/ { print $2 }' "/proc/$pid/status")
  adj=$(cat "/proc/$pid/oom_score_adj")
  if [ "${lck:-0}" -gt 0 ] && [ "$adj" = -1000 ]; then
    pass supervisor-hardened "VmLck ${lck} kB, oom_score_adj $adj"
  else
    fail supervisor-hardened "VmLck ${lck:-?} kB, oom_score_adj $adj"
  fi
}

# Detaches /dev/nbd0 and checks that everything is gone: no swap, no
# kernel connection, no mapping, no supervisor.
detach_checks ()
{
  local pid rc=0 out
  pid=$(cat "$PIDFILE" 2>/dev/null)
  check_cmd detach "$NBDSWAP_CMD" detach /dev/nbd0
  if grep -qE '^/dev/(nbd0|dm-|mapper/)' /proc/swaps; then
    fail detach-swapoff "$(tail -n +2 /proc/swaps | tr '\n' ' ')"
  else
    pass detach-swapoff
  fi
  # The driver tears the configuration down when its last user lets go.
  for _ in $(seq 50); do
    [ -e /sys/block/nbd0/pid ] || [ "$(cat /sys/block/nbd0/size)" != 0 ] \
      || break
    sleep 0.1
  done
  if [ -e /sys/block/nbd0/pid ] \
     || [ "$(cat /sys/block/nbd0/size)" != 0 ]; then
    fail detach-disconnected "/dev/nbd0 still configured"
  else
    pass detach-disconnected
  fi
  if [ -n "$(ls /sys/block/nbd0/holders)" ]; then
    fail detach-no-mapping "holders: $(ls /sys/block/nbd0/holders)"
  else
    pass detach-no-mapping
  fi
  if [ -n "$pid" ] && [ -d "/proc/$pid" ] \
     && ! grep -q Z "/proc/$pid/stat"; then
    fail detach-supervisor-stopped "pid $pid still runs"
  else
    pass detach-supervisor-stopped
  fi
  out=$("$NBDSWAP_CMD" detach /dev/nbd0 2>&1) || rc=$?
  if [ "$rc" = 1 ] && [[ $out == *"not attached"* ]]; then
    pass detach-again "exit 1: $out"
  else
    fail detach-again "exit $rc: $out"
  fi
}

# The scan of the backing file after a run with label $1: sets
# PATTERN_PAGES and SIGNATURE_PAGES.
scan_backing ()
{
  local seed out
  seed=$(workload_seed "$1")
  if [ -z "$seed" ] || ! scan_build; then
    fail "$1-scan" "no seed in the workload log, or no scanner"
    return 1
  fi
  out=$(/tmp/plaintext-scan "$BACKING" "$seed")
  log "scan of the backing file: $out"
  PATTERN_PAGES=$(echo "$out" | sed -n 's/.*pattern_pages=\([0-9]*\).*/\1/p')
  SIGNATURE_PAGES=$(echo "$out" | sed -n 's/.*signature_pages=\([0-9]*\).*/\1/p')
}

# The swap cycle through nbdswap attach/detach, with the checks that a
# busy device is refused and that the scan finds plaintext (so the
# encrypted scenario's "none found" means something).
scenario_attach ()
{
  local rc=0 out pc0
  attach_setup || return
  # --page-cluster sets the sysctl and says so (and gives no hint); put
  # back afterwards.
  pc0=$(cat /proc/sys/vm/page-cluster)
  echo 3 > /proc/sys/vm/page-cluster
  if out=$("$NBDSWAP_CMD" attach "$ATTACH_SOCK" /dev/nbd0 --priority 7 \
             --page-cluster 4 --max-sectors-kb 1024 2>&1); then
    pass attach "$out"
  else
    fail attach "exit $?: $out"
    echo "$pc0" > /proc/sys/vm/page-cluster
    server_stop
    return
  fi
  if [ "$(cat /proc/sys/vm/page-cluster)" = 4 ] \
     && [[ $out == *"vm.page-cluster 3 -> 4 "* ]] && [[ $out != *hint* ]]; then
    pass attach-page-cluster "vm.page-cluster 4, said so, no hint"
  else
    fail attach-page-cluster "vm.page-cluster $(cat /proc/sys/vm/page-cluster): $out"
  fi
  echo "$pc0" > /proc/sys/vm/page-cluster
  # The device's largest request: raised from the driver's 128 KiB (Linux
  # 6.1) to 1024 (--max-sectors-kb) before swap went on it, and said so.
  if [ "$(cat /sys/block/nbd0/queue/max_sectors_kb)" -ge 1024 ] &&
     [[ $out == *"/dev/nbd0: requests of up to 1024 KiB (was 128)"* ]]; then
    pass attach-max-sectors "/dev/nbd0 takes requests of up to $(cat /sys/block/nbd0/queue/max_sectors_kb) KiB, said so"
  else
    fail attach-max-sectors "max_sectors_kb is $(cat /sys/block/nbd0/queue/max_sectors_kb), want >= 1024 (attach's default), and the line saying so: $out"
  fi
  log "$(cat /proc/swaps)"
  if awk '$1 == "/dev/nbd0" && $5 == 7 { f = 1 } END { exit !f }' \
       /proc/swaps; then
    pass attach-swapon "/dev/nbd0 is swap with priority 7"
  else
    fail attach-swapon "$(tail -n +2 /proc/swaps | tr '\n' ' ')"
  fi
  supervisor_checks
  out=$("$NBDSWAP_CMD" attach "$ATTACH_SOCK" /dev/nbd0 2>&1) || rc=$?
  if [ "$rc" = 4 ] && [[ $out == *"in use"* ]]; then
    pass attach-busy-refused "exit 4: $out"
  else
    fail attach-busy-refused "exit $rc: $out"
  fi

  workload_run attach
  workload_checks attach
  detach_checks
  server_stop
  dmesg_checks nbd-kernel-log
  scan_backing attach || return
  if [ "${PATTERN_PAGES:-0}" -gt 1000 ] && [ "${SIGNATURE_PAGES:-0}" -ge 1 ]; then
    pass plaintext-visible "unencrypted: $PATTERN_PAGES workload pages, $SIGNATURE_PAGES with the swap signature (the scan works)"
  else
    fail plaintext-visible "unencrypted, yet the scan found $PATTERN_PAGES workload pages and $SIGNATURE_PAGES signatures"
  fi
}

# 6: --encrypt (no device named: attach picks a free one): the workload
# verifies, and the backing file holds neither the workload's plaintext
# nor a swap signature.
scenario_encrypt ()
{
  local out pc0
  attach_setup || return
  # Without --page-cluster, the kernel's default 3 gets the hint.
  pc0=$(cat /proc/sys/vm/page-cluster)
  echo 3 > /proc/sys/vm/page-cluster
  if out=$("$NBDSWAP_CMD" attach "$ATTACH_SOCK" --encrypt 2>&1); then
    pass attach-encrypt "$out"
  else
    fail attach-encrypt "exit $?: $out"
    echo "$pc0" > /proc/sys/vm/page-cluster
    server_stop
    return
  fi
  echo "$pc0" > /proc/sys/vm/page-cluster
  if [[ $out == *"hint: vm.page-cluster is 3"*"--page-cluster 4"* ]]; then
    pass attach-page-cluster-hint "the hint names --page-cluster 4"
  else
    fail attach-page-cluster-hint "no hint at page-cluster 3: $out"
  fi
  log "$(cat /proc/swaps)"
  if [ -n "$(ls /sys/block/nbd0/holders)" ] \
     && grep -qE '^/dev/(dm-|mapper/nbdswap-nbd0)' /proc/swaps \
     && ! grep -q '^/dev/nbd0' /proc/swaps; then
    pass encrypt-swapon "swap is the dm-crypt mapping over /dev/nbd0"
  else
    fail encrypt-swapon "$(tail -n +2 /proc/swaps | tr '\n' ' ')"
  fi
  supervisor_checks
  workload_half encrypt
  detach_checks
  server_stop
  dmesg_checks nbd-kernel-log
  scan_backing encrypt || return
  if [ "${PATTERN_PAGES:-1}" = 0 ] && [ "${SIGNATURE_PAGES:-1}" = 0 ]; then
    pass encrypt-no-plaintext "no workload page and no swap signature in the backing file"
  else
    fail encrypt-no-plaintext "$PATTERN_PAGES workload pages and $SIGNATURE_PAGES signatures in the backing file"
  fi
}

# The unix-socket server of attach_setup again, its log server2.log.
attach_server_again ()
{
  # shellcheck disable=SC2086 # plugin parameters, one word each
  server_start "$BACKING" "$ATTACH_SOCK" "$RESULTS/server2.log" \
    ${ATTACH_SERVER_PARAMS:-}
}

# Check $1: `nbdswap attach $2 /dev/nbd0 --foreground` with the remaining
# arguments, in the background (SV_PID, its output in SV_LOG:
# $RESULTS/supervisor.log, or SV_LOG_NAME there), has /dev/nbd0 swapping
# within a minute; 1 if not.
attach_foreground ()
{
  local name=$1
  shift
  SV_LOG=$RESULTS/${SV_LOG_NAME:-supervisor.log}
  "$NBDSWAP_CMD" attach "$1" /dev/nbd0 --foreground "${@:2}" \
    > "$SV_LOG" 2>&1 &
  SV_PID=$!
  for _ in $(seq 300); do
    grep -q '^/dev/nbd0' /proc/swaps && break
    sleep 0.2
  done
  if grep -q '^/dev/nbd0' /proc/swaps; then
    pass "$name" "swap on /dev/nbd0, supervisor pid $SV_PID: $(head -n 1 "$SV_LOG")"
    return 0
  fi
  fail "$name" "$(tail -n 2 "$SV_LOG" | tr '\n' ' ')"
  return 1
}

# Detaches /dev/nbd0 (check $1) and checks that the foreground supervisor
# SV_PID stopped with it (check $1-supervisor-stopped).
detach_foreground ()
{
  check_cmd "$1" "$NBDSWAP_CMD" detach /dev/nbd0
  if pid_running "$SV_PID"; then
    fail "$1-supervisor-stopped" "the foreground supervisor still runs"
  else
    pass "$1-supervisor-stopped"
  fi
  wait "$SV_PID" 2>/dev/null
}

# Check $1: the supervisor's log $SV_LOG says it reconnected.
reconnect_check ()
{
  if grep -q reconnected "$SV_LOG"; then
    pass "$1" "$(grep -m 1 reconnected "$SV_LOG")"
  else
    fail "$1" "$(tail -n 3 "$SV_LOG" | tr '\n' ' ')"
  fi
}

# Runs workload_run $1 [$2...] in the background (WL_BG_PID);
# workload_bg_wait $1 waits for it and sets WL_* as workload_run does.
# Servers are started from the calling shell, never from the workload's
# subshell: an nbdkit started from a background subshell quits once that
# subshell has exited.
workload_bg_start ()
{
  rm -f "$RESULTS/wl-$1.vars"
  # Plain assignments: declare -p's lines, sourced in a function, would
  # make its locals.
  ( workload_run "$@"
    for v in WL_RC WL_SECS WL_OUT_MIB WL_IN_MIB WL_OOM WL_MAJFLT; do
      printf '%s=%q\n' "$v" "${!v}"
    done > "$RESULTS/wl-$1.vars" ) &
  WL_BG_PID=$!
}

# Waits for workload_bg_start $1 and sets its WL_* (WL_RC=99 if it left
# none).
workload_bg_wait ()
{
  wait "$WL_BG_PID"
  # shellcheck source=/dev/null disable=SC2034 # workload_checks reads WL_RC
  . "$RESULTS/wl-$1.vars" || WL_RC=99
}

# Runs workload $1 ($2 MiB) in the background while this shell runs the
# command after them, then waits for it and loads its WL_* results.
workload_during ()
{
  local label=$1 mib=$2
  shift 2
  workload_bg_start "$label" "$mib"
  "$@"
  workload_bg_wait "$label"
}

# Waits until the guest has swapped out $1 MiB more than when called;
# returns 1 after 240 s without.
swapped_out_wait ()
{
  local out0 limit=$((SECONDS + 240))
  out0=$(vmstat_get pswpout)
  while [ $(( ($(vmstat_get pswpout) - out0) * PAGE_KIB / 1024 )) -lt "$1" ]; do
    [ "$SECONDS" -lt "$limit" ] || { log "never swapped $1 MiB"; return 1; }
    sleep 0.5
  done
}

# Kills the server with SIGKILL once the workload has swapped out $1 MiB,
# then starts a new one with the command $2 (default attach_server_again:
# the same file and socket), retrying for 5 s (the killed server's file
# lock goes with its last descriptor).  Writes the new server's pid to
# $RESULTS/server2.pid.
kill_and_restart ()
{
  local again=${2:-attach_server_again} t0 end
  swapped_out_wait "$1" || return 1
  kill -KILL "$SERVER_PID"
  t0=$SECONDS
  log "server $SERVER_PID killed with SIGKILL while swapping"
  end=$((SECONDS + 5))
  sleep 1
  while [ "$SECONDS" -le "$end" ]; do
    if "$again"; then
      echo "$SERVER_PID" > "$RESULTS/server2.pid"
      log "server restarted as $SERVER_PID after $((SECONDS - t0)) s"
      return 0
    fi
    sleep 0.5
  done
  log "the server did not restart within 5 s: $(tail -n 2 "$RESULTS/server2.log")"
}

# Check $1: the kernel log from its line $2 on (default: all of it) has
# no swap or block I/O error and no OOM kill.  Lines about a dead
# connection and timed-out requests are expected when a server dies: the
# kernel requeues those requests.
swap_errors_check ()
{
  local bad
  bad=$(dmesg | tail -n +"$(( ${2:-0} + 1 ))" \
          | grep -E -i 'Write-error on swap|Read-error on swap|I/O error|blk_update_request|Killed process|Out of memory' \
          | head -n 3 | tr '\n' ' ')
  if [ -z "$bad" ]; then
    pass "$1" "$(dmesg | tail -n +"$(( ${2:-0} + 1 ))" | grep -c -i 'nbd0') nbd0 kernel lines, none an I/O error"
  else
    fail "$1" "kernel log: $bad"
  fi
}

# 7: kill -9 the server while swapping, start it again within 5 s: the
# supervisor reconnects and every word verifies, nothing is killed.  The
# server's retry-timeout stays below attach's --timeout (docs/attach.md).
scenario_restart ()
{
  local pid2
  ATTACH_SERVER_PARAMS="retry-timeout=3"
  attach_setup || return
  attach_foreground attach-foreground "$ATTACH_SOCK" --timeout 5 \
    || { server_stop; return; }
  rm -f "$RESULTS/server2.pid"
  workload_during restart "$VM_WORKLOAD_MIB" kill_and_restart 64
  workload_checks restart
  reconnect_check supervisor-reconnected
  pid2=$(cat "$RESULTS/server2.pid" 2>/dev/null)
  if [ -n "$pid2" ]; then
    pass server-restarted "pid $pid2"
  else
    fail server-restarted "no new server"
  fi
  swap_errors_check restart-no-io-error
  detach_foreground detach
  if [ -n "$pid2" ]; then
    SERVER_PID=$pid2
    kill -TERM "$pid2"
    for _ in $(seq 100); do server_running || break; sleep 0.1; done
  fi
}
