# shellcheck shell=bash
# nbdswap VM tests: helpers for the guest's scenario scripts (bash).
#
# Sourced by guest-scenario after /results/config.sh.  Every check ends in
# pass or fail, which append one "ok NAME: detail" or "FAIL NAME: detail"
# line to /results/checks; the host prints them and derives the verdict.

RESULTS=/results
SCRATCH=/mnt/scratch
SOCKDIR=/run/nbdswap
NBD=/dev/nbd0
PAGE_KIB=4

log () { echo "nbdswap-guest: $*"; }

# Record a passed check.
pass ()
{
  echo "ok $1${2:+: $2}" >> "$RESULTS/checks"
  log "ok $1${2:+: $2}"
}

# Record a failed check.
fail ()
{
  echo "FAIL $1${2:+: $2}" >> "$RESULTS/checks"
  log "FAIL $1${2:+: $2}"
}

# Record check $1 as passed if the command after it succeeds, else failed
# with the command's last line of output as the reason.
check_cmd ()
{
  local name=$1 out rc
  shift
  if out=$("$@" 2>&1); then
    pass "$name"
  else
    rc=$?
    fail "$name" "$* failed (exit $rc): $(echo "$out" | tail -n 1)"
    return 1
  fi
}

# Record a benchmark figure (not a pass/fail condition).
bench ()
{
  echo "$1 $2" >> "$RESULTS/bench"
  log "bench $1 = $2"
}

# Make a filesystem of type $1 on the scratch disk and mount it at $SCRATCH.
fs_make ()
{
  local fs=$1
  modprobe "$fs" || return 1
  case "$fs" in
    ext4) mkfs.ext4 -F -q "$VM_DISK" ;;
    xfs) mkfs.xfs -f -q "$VM_DISK" ;;
    btrfs) mkfs.btrfs -f -q "$VM_DISK" ;;
    *) log "unknown filesystem $fs"; return 1 ;;
  esac || return 1
  # lazytime: without it every write of the server also journals the
  # file's times, and with the guest swapping through its own server
  # that can deadlock (docs/verify.md, no-lazytime).
  mkdir -p "$SCRATCH" && mount -o lazytime "$VM_DISK" "$SCRATCH"
}

# Create a backing file $1 of $2 MiB with `nbdswap create` (on btrfs it
# is NOCOW and uncompressed; every block written; verified).
backing_create ()
{
  rm -f "$1"
  "$NBDSWAP_CMD" create "$1" "$2M" --quiet
}

# Create a fully written local swap file $1 of $2 MiB the usual way, for
# the baseline: on btrfs the file is made NOCOW while still empty, which
# is the only time chattr +C takes effect.
local_file_create ()
{
  local path=$1 mib=$2
  rm -f "$path"
  : > "$path" || return 1
  chmod 600 "$path" || return 1
  if [ "$(stat -f -c %T "$(dirname "$path")")" = btrfs ]; then
    chattr +C "$path" || return 1
  fi
  dd if=/dev/zero of="$path" bs=1M count="$mib" oflag=direct conv=fsync \
     status=none
}

# Start the server on backing file $1 in the foreground (as a child of this
# shell) with its socket at $2, its output in $3 and plugin parameters
# $4...; set SERVER_PID.  The plugin under nbdkit (NBDSWAP_PLUGIN, which
# may also name another nbdkit plugin such as "file"), with
# SERVER_KIND=native `nbdswap serve -- $4...` (its default server), or with
# SERVER_KIND=qemu-nbd the peer `qemu-nbd --cache=none --aio=io_uring`
# (the benchmark's; $4... are qemu-nbd options then).  With SERVER_CPUS
# set, the server runs on those CPUs only (taskset -c).
# Wait until the socket exists; return 1 if the server exits first.
server_start ()
{
  local file=$1 sock=$2 logf=$3 end=$((SECONDS + 30))
  local -a on=(--socket "$sock") qon=(-k "$sock") kon=(-U "$sock")
  mkdir -p "$(dirname "$sock")"
  rm -f "$sock"
  # With SERVER_TCP_PORT set, on 127.0.0.1 and that port instead (the
  # guest's own loopback: client_attach connects there).
  if [ -n "${SERVER_TCP_PORT:-}" ]; then
    ip link set lo up || return 1
    on=(--port "$SERVER_TCP_PORT" --bind 127.0.0.1)
    qon=(-b 127.0.0.1 -p "$SERVER_TCP_PORT")
    kon=(-i 127.0.0.1 -p "$SERVER_TCP_PORT")
  fi
  case "${SERVER_KIND:-plugin}" in
    native)
      # nbdswap's own event-loop server, serve's default, kept in the
      # foreground, with serve's options in the array NATIVE_SERVE_OPTS
      # if set; the plugin parameters after "--" as serve takes them for
      # it.
      ${SERVER_CPUS:+taskset -c "$SERVER_CPUS"} \
      "$NBDSWAP_CMD" serve "$file" --foreground "${on[@]}" \
        ${NATIVE_SERVE_OPTS[@]+"${NATIVE_SERVE_OPTS[@]}"} \
        -- "${@:4}" > "$logf" 2>&1 & ;;
    qemu-nbd)
      # -t: keep serving after the client's first connection closes.
      ${SERVER_CPUS:+taskset -c "$SERVER_CPUS"} \
      qemu-nbd "${qon[@]}" -t -f raw --cache=none --aio=io_uring "${@:4}" \
        "$file" > "$logf" 2>&1 & ;;
    *)
      ${SERVER_CPUS:+taskset -c "$SERVER_CPUS"} \
      nbdkit -f "${kon[@]}" "$NBDSWAP_PLUGIN" file="$file" "${@:4}" \
        > "$logf" 2>&1 & ;;
  esac
  SERVER_PID=$!
  while [ "$SECONDS" -lt "$end" ]; do
    if [ -n "${SERVER_TCP_PORT:-}" ]; then
      tcp_listening "$SERVER_TCP_PORT" && return 0
    else
      [ -S "$sock" ] && return 0
    fi
    server_running || return 1
    sleep 0.1
  done
  return 1
}

# True when a socket listens on TCP port $1 of this namespace (builtins
# only: /proc/net/tcp, local address and port in hex, state 0A).
tcp_listening ()
{
  local sl local rem st _
  local want
  printf -v want ':%04X' "$1"
  while read -r sl local rem st _; do
    [ "$st" = 0A ] && [ "${local#*:}" = "${want#:}" ] && return 0
  done < /proc/net/tcp
  return 1
}

# True while process $1 runs.  A child that has exited stays a zombie
# until this shell waits for it, so look at its state rather than asking
# kill -0.
pid_running ()
{
  local stat state
  # Builtins only: under TCG every fork costs a good part of a second.
  read -r stat 2>/dev/null < "/proc/$1/stat" || return 1
  state=${stat##*) }
  [ "${state%% *}" != Z ]
}

# True while the server started by server_start runs.
server_running () { pid_running "$SERVER_PID"; }

# Check NAME: the server still runs (else fail with WHY, $2).
server_alive_check ()
{
  if server_running; then
    pass "$1"
  else
    fail "$1" "$2"
  fi
}

# Check NAME: the server stops on SIGTERM (server_stop).
server_stop_check ()
{
  if server_stop; then
    pass "$1"
  else
    fail "$1" "the server ignored SIGTERM for 10 s"
  fi
}

# Print the CPU time, in clock ticks, that the server started by
# server_start has used so far: utime + stime of its process, which sum
# all its threads, io_uring workers included, live and exited.
server_cpu_ticks ()
{
  local stat
  local -a f
  # Builtins only, as server_running.
  read -r stat 2>/dev/null < "/proc/$SERVER_PID/stat" || return 1
  read -ra f <<< "${stat##*) }"
  # f[0] is the state (stat field 3): utime and stime are fields 14, 15.
  echo $((f[11] + f[12]))
}

# Print the context switches of each of the server's threads (io_uring's
# workers among them) as TID=COUNT words: voluntary and not, as their
# status files count them, a sleep and a wake-up each.  Builtins only.
server_ctxsw ()
{
  local t l n
  for t in "/proc/$SERVER_PID"/task/*; do
    n=0
    while read -r l; do
      case $l in
        *ctxt_switches:*) n=$((n + ${l##*[[:space:]]})) ;;
      esac
    done 2>/dev/null < "$t/status" || continue
    printf '%s=%s ' "${t##*/}" "$n"
  done
}

# Print the server's context switches since $1 (a server_ctxsw reading):
# each thread's own change, a thread new since then whole (one that
# ended meanwhile is lost); nothing when the server is gone.
server_ctxsw_delta ()
{
  local -A was=()
  local w now sum=0
  for w in $1; do
    was[${w%=*}]=${w#*=}
  done
  now=$(server_ctxsw)
  [ -n "$now" ] || return 1
  for w in $now; do
    sum=$((sum + ${w#*=} - ${was[${w%=*}]:-0}))
  done
  echo "$sum"
}

# Print the guest's context switches so far, every task's (/proc/stat).
guest_ctxt ()
{
  local k v
  while read -r k v _; do
    [ "$k" != ctxt ] || { echo "$v"; return; }
  done < /proc/stat
}

# Print the server's CPU ticks since $1 (a server_cpu_ticks figure);
# nothing if either reading failed (the server is gone).
server_cpu_delta ()
{
  local now
  now=$(server_cpu_ticks) && [ -n "$1" ] && echo $((now - $1))
}

# Stop the server started by server_start (call it directly, not in a
# subshell, which could not reap it); return 1 if it needed SIGKILL.
server_stop ()
{
  local end=$((SECONDS + 10))
  kill -TERM "$SERVER_PID" 2>/dev/null
  while [ "$SECONDS" -lt "$end" ]; do
    server_running || { wait "$SERVER_PID"; return 0; }
    sleep 0.1
  done
  kill -KILL "$SERVER_PID"
  wait "$SERVER_PID"
  return 1
}

# Attach the kernel nbd device to the server's socket $1 (or with
# SERVER_TCP_PORT set, to 127.0.0.1 and that port).
client_attach ()
{
  local -a conn=()
  modprobe nbd nbds_max=4 || return 1
  [ "${VM_NBD_CONNECTIONS:-1}" -gt 1 ] && conn=(-connections "$VM_NBD_CONNECTIONS")
  if [ -n "${SERVER_TCP_PORT:-}" ]; then
    nbd-client 127.0.0.1 "$SERVER_TCP_PORT" "$NBD" -b 4096 "${conn[@]}" ||
      return
  else
    nbd-client -unix "$1" "$NBD" -b 4096 "${conn[@]}" || return
  fi
  # A scenario's settings of the new device (kbench's levers).
  ! declare -F client_tune > /dev/null || client_tune
}

# Print the /proc/vmstat counter $1.
vmstat_get ()
{
  awk -v k="$1" '$1 == k { print $2 }' /proc/vmstat
}

# Create the memory cgroup the workload runs in (once per boot).
cgroup_setup ()
{
  local cg=/sys/fs/cgroup/workload
  [ -d "$cg" ] && return 0
  echo +memory > /sys/fs/cgroup/cgroup.subtree_control || return 1
  mkdir "$cg" || return 1
  echo "${VM_CGROUP_MIB}M" > "$cg/memory.max" || return 1
  echo max > "$cg/memory.swap.max"
}

# Run the workload of $2 MiB (default VM_WORKLOAD_MIB) inside the memory
# cgroup, or with $3 = global outside it, its output in
# $RESULTS/workload-$1.log.  With $4 = N > 1, N workload processes of
# $2/N MiB each run at once (N page faults in flight: the swap device
# sees a queue, not one request at a time).  Sets WL_RC (the worst exit
# status), WL_SECS (wall time), WL_OUT_MIB and WL_IN_MIB (pswpout/pswpin
# moved), WL_MAJFLT (major page faults), WL_OOM (OOM kills) and
# WL_CTXSW (context switches, every task's), all guest-wide.  With
# WORKLOAD_CPUS set, the workload runs on those CPUs only (taskset -c).
workload_run ()
{
  local label=$1 mib=${2:-$VM_WORKLOAD_MIB} where=${3:-cgroup} jobs=${4:-1}
  local out0 in0 oom0 maj0 ctx0 t0 t1 i rc procs=/sys/fs/cgroup/workload/cgroup.procs
  local -a pids=()
  if [ "$where" = global ]; then
    procs=/sys/fs/cgroup/cgroup.procs
  else
    cgroup_setup || { WL_RC=2; return; }
  fi
  out0=$(vmstat_get pswpout) in0=$(vmstat_get pswpin)
  oom0=$(vmstat_get oom_kill) maj0=$(vmstat_get pgmajfault)
  ctx0=$(guest_ctxt)
  t0=$(date +%s.%N)
  for ((i = 1; i <= jobs; i++)); do
    bash -c 'echo $$ > "$0" && exec "$@"' "$procs" \
      ${WORKLOAD_CPUS:+taskset -c "$WORKLOAD_CPUS"} "$VM_WORKLOAD" \
      "$((mib / jobs))" > "$RESULTS/workload-$label.log.$i" 2>&1 &
    pids+=($!)
  done
  WL_RC=0
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}"
    rc=$?
    [ "$rc" -gt "$WL_RC" ] && WL_RC=$rc
  done
  t1=$(date +%s.%N)
  WL_CTXSW=$(( $(guest_ctxt) - ctx0 ))
  for ((i = 1; i <= jobs; i++)); do
    cat "$RESULTS/workload-$label.log.$i"
    rm -f "$RESULTS/workload-$label.log.$i"
  done > "$RESULTS/workload-$label.log"
  WL_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  WL_OUT_MIB=$(( ($(vmstat_get pswpout) - out0) * PAGE_KIB / 1024 ))
  WL_IN_MIB=$(( ($(vmstat_get pswpin) - in0) * PAGE_KIB / 1024 ))
  WL_OOM=$(( $(vmstat_get oom_kill) - oom0 ))
  WL_MAJFLT=$(( $(vmstat_get pgmajfault) - maj0 ))
  log "workload $label: exit $WL_RC in ${WL_SECS}s ($jobs process(es))," \
      "swapped out $WL_OUT_MIB MiB, in $WL_IN_MIB MiB, $WL_OOM OOM kills"
}

# Check the results of the last workload_run, for checks named $1-*.
workload_checks ()
{
  local p=$1 min=${2:-$VM_MIN_SWAP_MIB}
  if [ "$WL_RC" = 0 ]; then
    pass "$p-verify" "every word verified in ${WL_SECS}s"
  else
    fail "$p-verify" "workload exit $WL_RC: $(grep -m 3 -E 'MISMATCH|bad words|FAILED|rror' \
      "$RESULTS/workload-$p.log" | tr '\n' ' ')"
  fi
  if [ "$WL_OUT_MIB" -ge "$min" ]; then
    pass "$p-pswpout" "$WL_OUT_MIB MiB >= $min MiB"
  else
    fail "$p-pswpout" "only $WL_OUT_MIB MiB swapped out, want >= $min MiB"
  fi
  if [ "$WL_IN_MIB" -ge "$min" ]; then
    pass "$p-pswpin" "$WL_IN_MIB MiB >= $min MiB"
  else
    fail "$p-pswpin" "only $WL_IN_MIB MiB swapped in, want >= $min MiB"
  fi
  if [ "$WL_OOM" = 0 ]; then
    pass "$p-no-oom"
  else
    fail "$p-no-oom" "$WL_OOM processes OOM-killed"
  fi
}

# Workload $1 at half VM_WORKLOAD_MIB, its checks scaled alike: for the
# scenarios whose point is a transport or a layer (tcp, encrypt, sidecar,
# xfs, btrfs) while ext4, attach and integrity swap the whole workload;
# it keeps make check's VM run within its time.
workload_half ()
{
  workload_run "$1" $((VM_WORKLOAD_MIB / 2))
  workload_checks "$1" $((VM_MIN_SWAP_MIB / 2))
}

TRACEFS=/sys/kernel/tracing

# Count the kernel's calls of inode_dio_wait from now on (a kprobe).  A
# direct write that ext4 or xfs finds unaligned (in offset, length or, on
# Linux 6.1, memory) makes it wait for every direct I/O in flight on the
# file with the inode lock held: all swap traffic then queues behind the
# slowest request (docs/design.md, "The plan").
#
# The probe is armed once, as a plain int3 (jump optimization off), and
# never disarmed: counts are differences of its hit counter.  Under TCG,
# disarming it after a swap workload (the kernel rewrites its own code and
# waits for the other CPU) once left the guest with a CPU stuck for good
# (soft lockups, then the scenario's time limit).
dio_wait_probe ()
{
  SRV_DIRTY_OK=1
  SRV_XFS_OK=1
  mountpoint -q "$TRACEFS" || mount -t tracefs nodev "$TRACEFS" || return 1
  [ -d "$TRACEFS/events/kprobes/dio_wait" ] ||
    echo 0 2> /dev/null > /proc/sys/debug/kprobes-optimization
  kprobe_arm dio_wait inode_dio_wait || return 1
  kprobe_arm srv_dirty '__mark_inode_dirty flags=%si:u32' \
    "(flags & 3) && ($SERVER_COMMS)"
  SRV_DIRTY_OK=$?
  if grep -q '^xfs ' /proc/modules; then
    kprobe_arm srv_xfs xfs_trans_alloc "$SERVER_COMMS"
    SRV_XFS_OK=$?
  fi
  echo > "$TRACEFS/trace"
  DIO_WAIT_BASE=$(dio_wait_hits) && [ -n "$DIO_WAIT_BASE" ]
}

# The server's threads and their io_uring workers, for a trace filter.
SERVER_COMMS='comm ~ "nbdkit*" || comm ~ "nbdswap*" || comm ~ "iou-wrk*"'

# Define kprobe event $1 as "$2" (the probe point and its arguments) if
# it is not yet, give it filter $3 (every time: a filter that failed once
# must not leave the event open; none if $3 is empty) and enable it.
# Enabling an enabled event changes nothing (no code is rewritten).
kprobe_arm ()
{
  local ev=$TRACEFS/events/kprobes/$1
  if [ ! -d "$ev" ]; then
    echo "p:$1 $2" >> "$TRACEFS/kprobe_events" || return 1
  fi
  if [ -n "${3:-}" ]; then
    echo "$3" > "$ev/filter" || return 1
  fi
  echo 1 > "$ev/enable"
}

# Besides dio_wait, dio_wait_probe arms the probes of server_dirty_check,
# counted as lines of the trace (their filters drop the rest):
# - srv_dirty: __mark_inode_dirty with I_DIRTY_SYNC or I_DIRTY_DATASYNC
#   (flags & 3) from the server's threads or their io_uring workers.  On
#   ext4 a write's mtime update is one unless the filesystem is mounted
#   lazytime: ext4_dirty_inode then starts a journal handle in the middle
#   of the server's write (docs/verify.md, no-lazytime); with lazytime
#   the times are I_DIRTY_TIME, and nothing is journaled.
# - srv_xfs (once the xfs module is loaded): xfs_trans_alloc from the same
#   threads; xfs logs the times of a write in a transaction of its own
#   (xfs_vn_update_time) unless mounted lazytime.
# All armed once and never disarmed, as dio_wait.

# Check $1 for filesystem $2 (ext4 or xfs; btrfs journals the times
# whatever the mount options, see docs/verify.md): the server's writes
# started no metadata transaction since dio_wait_probe.
server_dirty_check ()
{
  local n first ev=srv_dirty ok=${SRV_DIRTY_OK:-1} what="__mark_inode_dirty"
  if [ "$2" = xfs ]; then
    ev=srv_xfs ok=${SRV_XFS_OK:-1} what=xfs_trans_alloc
  fi
  if [ "$ok" != 0 ]; then
    fail "$1" "the $what kprobe could not be set up"
    return
  fi
  n=$(grep -c " $ev:" "$TRACEFS/trace")
  first=$(grep -m 1 " $ev:" "$TRACEFS/trace" | sed 's/^ *//')
  if [ "$n" = 0 ]; then
    pass "$1" "the server's writes started no metadata transaction ($what kprobe)"
  else
    fail "$1" "$n metadata transactions from the server's threads ($what; mounted without lazytime?); the first: $first"
  fi
}

# Print the probe's hit counter.
dio_wait_hits ()
{
  awk '$1 == "dio_wait" { print $2 }' "$TRACEFS/kprobe_profile"
}

# DIO_WAIT_N gets how many calls the probe saw since dio_wait_probe, and
# DIO_WAIT_FIRST the first caller's line of the trace.
dio_wait_count ()
{
  DIO_WAIT_N=$(( $(dio_wait_hits) - DIO_WAIT_BASE ))
  DIO_WAIT_FIRST=$(grep -m 1 ' dio_wait:' "$TRACEFS/trace" | sed 's/^ *//')
}

# Check $1: no inode_dio_wait since dio_wait_probe (which must have
# started: its status is $2).
dio_wait_check ()
{
  if [ "$2" != 0 ]; then
    fail "$1" "the inode_dio_wait kprobe could not be set up"
    return
  fi
  dio_wait_count
  if [ "$DIO_WAIT_N" = 0 ]; then
    pass "$1" "no direct write made the filesystem wait for all direct I/O (inode_dio_wait kprobe)"
  else
    fail "$1" "$DIO_WAIT_N calls of inode_dio_wait: direct writes the filesystem found unaligned; the first: $DIO_WAIT_FIRST"
  fi
}

# Fail check $1 if the kernel log has swap or nbd I/O errors or OOM kills.
dmesg_checks ()
{
  local bad
  bad=$(dmesg | grep -E -i 'Write-error on swap|Read-error on swap|nbd[0-9]+: .*(error|timed out|dead)|blk_update_request|I/O error|Out of memory|Killed process|hung_task|blocked for more than' \
        | head -n 3 | tr '\n' ' ')
  if [ -z "$bad" ]; then
    pass "$1"
  else
    fail "$1" "kernel log: $bad"
  fi
}

# Swap through nbdswap with the backing file $1 (already created): start
# the server, attach, mkswap, swapon, workload with its checks, swapoff,
# detach, stop; the workload stamps $2 MiB (default VM_WORKLOAD_MIB) and
# must swap out and in VM_MIN_SWAP_MIB in that proportion.  Sets NBD_SECS to the workload's time and
# NBD_CPU_TICKS to the server's CPU time during it.  Returns 1 if the cycle could not get as
# far as the workload.  With SWAP_PROBES=0 the kprobe checks are left out
# (the benchmark: a probe costs time on every hit, and the buffered peers
# it measures wait in inode_dio_wait by design).
nbd_swap_cycle ()
{
  local backing=$1 mib=${2:-$VM_WORKLOAD_MIB} sock=$SOCKDIR/swap.sock
  local probe='' ticks0 cs0
  NBD_SECS= NBD_CPU_TICKS= NBD_CTXSW=
  if ! server_start "$backing" "$sock" "$RESULTS/server.log"; then
    fail server-start "$(tail -n 3 "$RESULTS/server.log" | tr '\n' ' ')"
    return 1
  fi
  pass server-start
  check_cmd attach client_attach "$sock" || { server_stop; return 1; }
  check_cmd mkswap mkswap "$NBD" || return 1
  check_cmd swapon swapon "$NBD" || return 1
  log "$(cat /proc/swaps)"

  # Not on NFS: there the guest's own NFS server writes the exported
  # file buffered, and ext4_buffered_write_iter calls inode_dio_wait on
  # every write (thousands per run, nfsd's stacks: nfsd4_write ->
  # nfsd_vfs_write -> ext4_buffered_write_iter), none of it ours.
  if [ "${SWAP_PROBES:-1}" = 1 ] && [ "$(stat -f -c %T "$backing")" != nfs ]
  then
    dio_wait_probe
    probe=$?
  fi
  ticks0=$(server_cpu_ticks) cs0=$(server_ctxsw)
  workload_run nbd "$mib"
  NBD_CPU_TICKS=$(server_cpu_delta "$ticks0")
  [ -z "$cs0" ] || NBD_CTXSW=$(server_ctxsw_delta "$cs0")
  workload_checks nbd $((VM_MIN_SWAP_MIB * mib / VM_WORKLOAD_MIB))
  [ -z "$probe" ] || dio_wait_check nbd-no-dio-wait "$probe"
  case "$(stat -f -c %T "$backing")" in
    ext2/ext3) [ -z "$probe" ] || server_dirty_check nbd-no-journal ext4 ;;
    xfs) [ -z "$probe" ] || server_dirty_check nbd-no-journal xfs ;;
  esac
  NBD_SECS=$WL_SECS
  server_alive_check server-alive "the server exited during the workload"
  check_cmd swapoff swapoff "$NBD"
  check_cmd detach nbd-client -d "$NBD"
  server_stop_check server-stop
  dmesg_checks nbd-kernel-log
}

# The workload with the local swap file $1 (already created) as the swap
# device: mkswap, swapon, workload with its checks (named local-*),
# swapoff.  Sets WL_* as workload_run; returns 1 if it could not swap on.
local_swap_workload ()
{
  check_cmd local-mkswap mkswap "$1" || return
  check_cmd local-swapon swapon "$1" || return
  workload_run local
  workload_checks local
  check_cmd local-swapoff swapoff "$1"
}

# Records NBD_SECS for filesystem label $1; with VM_LOCAL_BASELINE=1 also
# the same workload against a local swap file on the scratch filesystem,
# and the time ratio (bench/run's swap-level table).
local_baseline ()
{
  local label=$1 local_swap=$SCRATCH/local.swap
  bench "$label-nbd-seconds" "$NBD_SECS"
  # Off by default: kbench measures the same through the kernel, and the
  # five runs cost make check five minutes under TCG.
  [ "${VM_LOCAL_BASELINE:-0}" = 1 ] || return 0
  check_cmd local-create local_file_create "$local_swap" "$VM_SWAP_MIB" || return
  local_swap_workload "$local_swap" || return
  rm -f "$local_swap"

  bench "$label-local-seconds" "$WL_SECS"
  bench "$label-ratio" "$(awk -v a="$NBD_SECS" -v b="$WL_SECS" \
    'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "n/a" }')"
}

# Scenarios 1-3: the swap cycle with the backing file on filesystem $1
# (the workload $2 MiB, default VM_WORKLOAD_MIB), then the local-swap-file
# baseline on the same disk.
swap_cycle ()
{
  local fs=$1 backing=$SCRATCH/nbdswap-backing.img

  check_cmd "$fs-mkfs" fs_make "$fs" || return
  check_cmd create-backing backing_create "$backing" "$VM_SWAP_MIB" || return
  if [ "$fs" = btrfs ]; then
    if lsattr "$backing" | cut -d' ' -f1 | grep -q C; then
      pass backing-nocow
    else
      fail backing-nocow "$(lsattr "$backing")"
    fi
  fi
  nbd_swap_cycle "$backing" "${2:-}" || return
  rm -f "$backing"
  local_baseline "$fs"
  umount "$SCRATCH"
}
