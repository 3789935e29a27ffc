# shellcheck shell=bash
# nbdswap VM tests: the native server (`nbdswap serve`'s default, issue
# 6) under the kernel's nbd client: the swap cycle on
# ext4 with every word verified, after the checks of issue 4 on its
# threads (IO flushers, OOM exemption, locked memory), and the local swap
# file baseline for the swap-level figure of make bench.  Sourced by
# guest-scenario after guest-lib.sh.

# The native server's tasks, every one of which carries
# PF_MEMALLOC_NOIO|PF_LOCAL_THROTTLE after serving I/O (the main thread
# marks itself before it starts any other: inherited), its OOM score and
# VmLck (guest-scenario's hardening_checks).
native_hardening_checks ()
{
  dd if="$NBD" of=/dev/null bs=64k count=256 iflag=direct status=none
  hardening_checks native-
}

# A server on CPU 0 only (taskset, as systemd's CPUAffinity= would) keeps
# its io_uring workers there too: Linux 6.1 gives a ring's workers every
# CPU whatever the submitting thread's affinity, so the server registers
# its own for them (engine_uring_workers_follow).  $1: the check's name;
# server_start's settings (SERVER_KIND...) are the caller's.  The native
# server on a unix socket issues every file operation through the workers;
# the plugin's reads and writes run inline unless one would block, but a
# flush (dd's fsync: the client's NBD_CMD_FLUSH) always goes to a worker.
workers_cpus_check ()
{
  local name=$1 backing=$2 sock=$SOCKDIR/cpus.sock t cpus n=0 bad=
  SERVER_CPUS=0
  server_start "$backing" "$sock" "$RESULTS/server-$name.log"
  local started=$?
  SERVER_CPUS=
  [ "$started" = 0 ] || {
    fail "$name" "server: $(tail -n 3 "$RESULTS/server-$name.log" | tr '\n' ' ')"
    return
  }
  if client_attach "$sock"; then
    dd if=/dev/zero of="$NBD" bs=64k count=256 oflag=direct conv=fsync status=none
    dd if="$NBD" of=/dev/null bs=64k count=256 iflag=direct status=none
    # Idle workers live on for 5 s: read them now.
    for t in /proc/"$SERVER_PID"/task/*; do
      [[ "$(cat "$t/comm" 2>/dev/null)" == iou-wrk* ]] || continue
      cpus=$(awk '/^Cpus_allowed_list:/ { print $2 }' "$t/status" 2>/dev/null) || continue
      n=$((n + 1))
      [ "$cpus" = 0 ] || bad+=" ${t##*/}:$cpus"
    done
    nbd-client -d "$NBD" > /dev/null 2>&1
    if [ -n "$bad" ]; then
      fail "$name" "server on CPU 0, io_uring workers elsewhere:$bad"
    elif [ "$n" -gt 0 ]; then
      pass "$name" "$n io_uring worker(s), all on CPU 0"
    else
      fail "$name" "no io_uring worker seen: the file I/O (a flush at least) should go through them"
    fi
  else
    fail "$name" "attach failed"
  fi
  server_stop
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
  workers_cpus_check native-workers-cpus "$backing"
  SERVER_KIND=plugin
  workers_cpus_check plugin-workers-cpus "$backing"
  SERVER_KIND=native
  # The swap cycle proper, in a fresh server, then the same workload on
  # a local swap file on the same disk (the swap-level ratio).
  nbd_swap_cycle "$backing" || return
  rm -f "$backing"
  local_baseline native
  umount "$SCRATCH"
}
