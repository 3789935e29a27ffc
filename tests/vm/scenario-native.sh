# shellcheck shell=bash
# nbdswap VM tests: the native server (`nbdswap serve`'s default, issue
# 6) under the kernel's nbd client: the swap cycle on
# ext4 with every word verified, after the checks of issue 4 on its
# threads (IO flushers, OOM exemption, locked memory), and the local swap
# file baseline for the swap-level figure of make bench.  Sourced by
# guest-scenario after guest-lib.sh.

# The native server's threads that carry PF_MEMALLOC_NOIO|PF_LOCAL_THROTTLE
# after serving I/O, its OOM score and VmLck.
native_hardening_checks ()
{
  local t flags flagged=0 nthreads=0 adj lck
  dd if="$NBD" of=/dev/null bs=64k count=256 iflag=direct status=none
  for t in /proc/"$SERVER_PID"/task/*; do
    flags=$(task_flags "$t/stat")
    nthreads=$((nthreads + 1))
    (( (flags & PF_MEMALLOC_NOIO) && (flags & PF_LOCAL_THROTTLE) )) \
      && flagged=$((flagged + 1))
  done
  if [ "$flagged" -gt 0 ]; then
    pass native-io-flusher "$flagged of $nthreads tasks are IO flushers"
  else
    fail native-io-flusher "none of the server's $nthreads tasks carries PF_MEMALLOC_NOIO|PF_LOCAL_THROTTLE"
  fi
  adj=$(cat "/proc/$SERVER_PID/oom_score_adj")
  if [ "$adj" = -1000 ]; then
    pass native-oom-score-adj "-1000"
  else
    fail native-oom-score-adj "oom_score_adj is $adj, want -1000"
  fi
  lck=$(awk '/^VmLck:/ { print $2 }' "/proc/$SERVER_PID/status")
  if [ "${lck:-0}" -gt 0 ]; then
    pass native-mlocked "VmLck $lck kB"
  else
    fail native-mlocked "VmLck is ${lck:-missing} kB, want > 0"
  fi
}

scenario_native ()
{
  local backing=$SCRATCH/nbdswap-backing.img sock=$SOCKDIR/native.sock
  SERVER_KIND=native
  check_cmd ext4-mkfs fs_make ext4 || return
  check_cmd create-backing backing_create "$backing" "$VM_SWAP_MIB" || return
  if ! server_start "$backing" "$sock" "$RESULTS/server.log"; then
    fail server-start "$(tail -n 3 "$RESULTS/server.log" | tr '\n' ' ')"
    return
  fi
  pass server-start
  check_cmd attach client_attach "$sock" || { server_stop; return; }
  native_hardening_checks
  check_cmd detach-probe nbd-client -d "$NBD"
  server_stop
  # The swap cycle proper, in a fresh server, then the same workload on
  # a local swap file on the same disk (the swap-level ratio).
  nbd_swap_cycle "$backing" || return
  rm -f "$backing"
  local_baseline native
  umount "$SCRATCH"
}
