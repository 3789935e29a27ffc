# shellcheck shell=bash
# nbdswap VM tests: `nbdswap detach` when the pages cannot come back into
# memory (issue 5: "swapoff (reports if it cannot: not enough memory to
# take the pages back)").  Sourced by guest-scenario after guest-lib.sh
# and scenario-attach.sh (attach_setup, detach_checks, ATTACH_SOCK).

DETACH_CG=/sys/fs/cgroup/workload

# Start the workload of $2 MiB in hold mode in cgroup $3 (default the
# workload cgroup), in the background, its output in
# $RESULTS/workload-$1.log; set HOLD_PID and wait until it has stamped
# every word and waits (its pages then sit in swap).
hold_start ()
{
  local logf=$RESULTS/workload-$1.log cg=${3:-$DETACH_CG}
  local end=$((SECONDS + 300))
  cgroup_setup || return 1
  mkdir -p "$cg" && echo max > "$cg/memory.swap.max" || return 1
  SWAP_WORKLOAD_HOLD=1 bash -c 'echo $$ > "$0" && exec "$@"' \
    "$cg/cgroup.procs" "$VM_WORKLOAD" "$2" > "$logf" 2>&1 &
  HOLD_PID=$!
  while [ "$SECONDS" -lt "$end" ]; do
    grep -q stamped "$logf" && return 0
    [ -d "/proc/$HOLD_PID" ] || return 1
    sleep 1
  done
  return 1
}

# Release the held workload $1 (pid $2) and check that it verifies every
# word: check $1-verify.
hold_release ()
{
  local rc
  kill -USR1 "$2"
  wait "$2"
  rc=$?
  if [ "$rc" = 0 ]; then
    pass "$1-verify" "$(tail -n 1 "$RESULTS/workload-$1.log")"
  else
    fail "$1-verify" "exit $rc: $(grep -m 3 -E 'MISMATCH|bad words|FAILED|rror|Killed' \
      "$RESULTS/workload-$1.log" | tr '\n' ' ')"
  fi
}

# Log swap use and the workload cgroup's figures under label $1.
detach_state ()
{
  log "$1: swaps: $(tail -n +2 /proc/swaps | tr '\n' ' ')"
  log "$1: cgroup current $(cat "$DETACH_CG/memory.current") max $(cat "$DETACH_CG/memory.max") swap $(cat "$DETACH_CG/memory.swap.current"); $(tr '\n' ' ' < "$DETACH_CG/memory.events")"
}

# Run `nbdswap detach /dev/nbd0 $2` that must fail for lack of memory:
# check $1 wants exit 6 and one line that contains $3; then nothing may
# have changed: check $1-nothing-lost wants swap still on /dev/nbd0, the
# supervisor alive, the workload alive and no OOM kill.
detach_refused ()
{
  local name=$1 opt=$2 want=$3 rc=0 out oom0 sv
  oom0=$(vmstat_get oom_kill)
  sv=$(cat "$PIDFILE" 2>/dev/null)
  detach_state "before $name"
  out=$(timeout 180 "$NBDSWAP_CMD" detach /dev/nbd0 ${opt:+"$opt"} 2>&1) || rc=$?
  detach_state "after $name"
  if [ "$rc" = 6 ] && [ "$(echo "$out" | wc -l)" = 1 ] \
     && [[ $out == *"$want"* ]]; then
    pass "$name" "exit 6: $out"
  else
    fail "$name" "exit $rc, want 6 and one line about '$want': $out"
  fi
  if grep -q '^/dev/nbd0' /proc/swaps && [ -n "$sv" ] && [ -d "/proc/$sv" ] \
     && [ -d "/proc/$HOLD_PID" ] && [ "$(vmstat_get oom_kill)" = "$oom0" ]
  then
    pass "$name-nothing-lost" "swap on /dev/nbd0, supervisor $sv and workload alive, no OOM kill"
  else
    fail "$name-nothing-lost" "swaps: $(tail -n +2 /proc/swaps | tr '\n' ' '), supervisor ${sv:-?} $( [ -d "/proc/$sv" ] && echo alive || echo gone), workload $( [ -d "/proc/$HOLD_PID" ] && echo alive || echo gone), $(( $(vmstat_get oom_kill) - oom0 )) OOM kills"
  fi
}

# detach with a workload's pages swapped out and its cgroup's memory.max
# far below them: refused by detach's own check, then (with --force) by
# the kernel's ENOMEM, both with exit 6 and nothing lost; once the limit
# is raised, detach succeeds while the workload still holds its pages,
# and the workload verifies every word that swapoff brought back.
scenario_detach ()
{
  local held out_mib out pc0
  attach_setup || return
  # Attach as in a container whose /proc/sys is read-only (a read-only
  # bind mount of the file, in a mount namespace of its own): asked for
  # --page-cluster, it warns with the reason and the fix, and swaps.
  pc0=$(cat /proc/sys/vm/page-cluster)
  if out=$(unshare -m sh -c 'f=/proc/sys/vm/page-cluster
             mount --bind "$f" "$f" && mount -o remount,bind,ro "$f" "$f" &&
             exec "$0" attach "$1" /dev/nbd0 --page-cluster 5' \
             "$NBDSWAP_CMD" "$ATTACH_SOCK" 2>&1); then
    pass attach "$out"
  else
    fail attach "exit $?: $out"
    server_stop
    return
  fi
  if [[ $out == *"--page-cluster 5: writing /proc/sys/vm/page-cluster: Read-only file system (a read-only /proc/sys"*"swap is on"* ]] \
     && [ "$(cat /proc/sys/vm/page-cluster)" = "$pc0" ]; then
    pass attach-page-cluster-ro "warned, swap on, vm.page-cluster still $pc0"
  else
    fail attach-page-cluster-ro "vm.page-cluster $(cat /proc/sys/vm/page-cluster) (was $pc0): $out"
  fi

  if ! hold_start held 256; then
    fail hold-start "$(tail -n 3 "$RESULTS/workload-held.log" | tr '\n' ' ')"
    server_stop
    return
  fi
  held=$HOLD_PID
  out_mib=$(( $(cat "$DETACH_CG/memory.swap.current") / 1048576 ))
  if [ "$out_mib" -ge 64 ]; then
    pass hold-swapped "$out_mib MiB of the workload in swap"
  else
    fail hold-swapped "only $out_mib MiB of the workload in swap"
  fi
  # Exempt from the OOM killer, so that the kernel's swapoff fails with
  # ENOMEM (the cgroup has no task it may kill) instead of killing it.
  echo -1000 > "/proc/$held/oom_score_adj"
  echo 32M > "$DETACH_CG/memory.max"

  detach_refused detach-no-room "" "memory.max"
  detach_refused detach-enomem --force "not enough memory"

  # The limit raised, detach works while the workload still holds: its
  # pages come back through swapoff, and then it verifies them.
  echo max > "$DETACH_CG/memory.max"
  detach_checks
  detach_state "after the second detach"
  hold_release held "$held"

  server_stop
  detach_no_io_error
}

# Check that the kernel logged no swap or nbd I/O error (OOM reports are
# expected here: the kernel's cgroup OOM killer ran and found no victim).
detach_no_io_error ()
{
  local bad
  bad=$(dmesg | grep -E -i 'Write-error on swap|Read-error on swap|nbd[0-9]+: .*(error|timed out|dead)|I/O error|Killed process' \
        | head -n 3 | tr '\n' ' ')
  if [ -z "$bad" ]; then
    pass detach-no-io-error "$(dmesg | grep -c 'no killable processes') cgroup OOM reports without a victim, no I/O error, nothing killed"
  else
    fail detach-no-io-error "kernel log: $bad"
  fi
}
