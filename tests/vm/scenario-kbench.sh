# shellcheck shell=bash
# nbdswap VM tests: the kernel-client benchmark (`bench/run --kernel`; not
# in "all").  Swap never goes through libnbd: a page goes to the kernel's
# nbd driver, the socket, the server, the file.  This scenario measures
# that path in the guest, for each server on the same backing file made
# by `nbdswap create`, attached with nbd-client over a unix socket, and
# the same workloads with no NBD at all (fio on the file itself, the swap
# workload on a local swap file): fio jobs on /dev/nbd0, then the
# verifying swap workload (guest-lib.sh's nbd_swap_cycle) in its memory
# cgroup.  Configurations alternate within each of VM_KBENCH_ROUNDS
# rounds, so that a slow minute of the host hits all of them alike.
#
# Raw figures go to /results/kbench.tsv (round, config, job, key, value)
# and fio's JSON output to /results/kbench/; the host (bench/run
# --kernel) turns them into medians, ratios and targets.  Sourced by
# guest-scenario after guest-lib.sh.

# The configurations, in the order they run in a round; "local" is the
# limit (no NBD).  VM_KBENCH_CONFIGS (bench/run --kernel --only) may name
# others, and a server's name may carry levers of the client side, each
# "+LEVER" (kbench_select): "native+c2+sched=mq-deadline".
KBENCH_CONFIGS=${VM_KBENCH_CONFIGS:-"native plugin qemu-nbd nbdkit-file local"}

# fio jobs, NAME:RW:BS:IODEPTH, in the order they run in a configuration;
# VM_KBENCH_JOBS (bench/run --kernel --workloads) keeps only those named
# ("none": the swap workload alone, which always runs).
KBENCH_JOBS="4k-randread-qd1:randread:4k:1 4k-randread-qd32:randread:4k:32
4k-randwrite-qd1:randwrite:4k:1 4k-randwrite-qd32:randwrite:4k:32
64k-seqwrite-qd8:write:64k:8 128k-seqread-qd4:read:128k:4"
if [ -n "${VM_KBENCH_JOBS:-}" ]; then
  KBENCH_JOBS=$(for j in $KBENCH_JOBS; do
                  case " $VM_KBENCH_JOBS " in *" ${j%%:*} "*) echo "$j" ;; esac
                done)
fi

# Append one figure ($1 job, $2 key, $3 value) of the current round and
# configuration to kbench.tsv.
kbench_record ()
{
  printf '%s\t%s\t%s\t%s\t%s\n' "$KB_ROUND" "$KB_CONFIG" "$1" "$2" "$3" \
    >> "$RESULTS/kbench.tsv"
}

# Start every job cold: write back what a buffered server left dirty (so
# that it is not written during the next job) and drop the page cache.
kbench_drop_caches ()
{
  sync
  echo 3 > /proc/sys/vm/drop_caches
}

# Make server_start (and so nbd_swap_cycle) start configuration $1's
# server, and client_attach apply its levers: the settings they read are
# globals.  The levers (after the server's name, each "+LEVER"):
#   cN            N connections (nbd-client -connections N)
#   sched=NAME    /dev/nbd0's I/O scheduler (none, mq-deadline, ...)
#   maxkb=N       /dev/nbd0's max_sectors_kb (largest request, KiB)
#   pc=N          vm.page-cluster during the swap workload (swap-in
#                 readahead: 2^N pages; the kernel's default is 3)
#   inline        the native server issues file operations inline, not
#                 through io_uring's workers (serve --file-io inline, what
#                 a client on another machine gets; auto gives this one,
#                 on a unix socket, the workers, but on a block device)
#   worker        ... through io_uring's workers (serve --file-io worker:
#                 what auto gives a client here of a file)
#   iowq=N        at most N of io_uring's workers per native connection
#                 (NBDSWAP_NATIVE_IOWQ; the kernel's default, which the
#                 server keeps, is 4 per CPU)
#   poll=N        the native server's depth-1 spin (serve --poll-us N)
#   scpu=N        the server on CPU N only (nbdswap's io_uring workers
#                 with it; qemu-nbd's, on Linux 6.1, anywhere)
#   wcpu=N        the workload (fio, the swap workload) on CPU N only
#   tcp           the server on TCP 127.0.0.1:10809 (the guest's loopback)
#                 instead of a unix socket
# False for a name it does not know.
kbench_select ()
{
  local lever levers
  SERVER_KIND=plugin
  NBDSWAP_PLUGIN=$KB_PLUGIN
  VM_NBD_CONNECTIONS=1 KB_SCHED= KB_MAXKB= KB_PC=
  unset NBDSWAP_NATIVE_IOWQ
  NATIVE_SERVE_OPTS=() SERVER_CPUS= WORKLOAD_CPUS= SERVER_TCP_PORT=
  case "${1%%+*}" in
    native) SERVER_KIND=native ;;
    plugin) ;;
    qemu-nbd) SERVER_KIND=qemu-nbd ;;
    nbdkit-file) NBDSWAP_PLUGIN="file" ;;
    *) return 1 ;;
  esac
  IFS=+ read -ra levers <<< "${1#*+}"
  [ "$1" = "${1%%+*}" ] && levers=()
  for lever in "${levers[@]}"; do
    case "$lever" in
      c[1-9]|c1[0-6]) VM_NBD_CONNECTIONS=${lever#c} ;;
      sched=?*) KB_SCHED=${lever#sched=} ;;
      maxkb=[1-9]*) KB_MAXKB=${lever#maxkb=} ;;
      pc=[0-9]) KB_PC=${lever#pc=} ;;
      inline|worker) [ "$SERVER_KIND" = native ] || return 1
                     NATIVE_SERVE_OPTS+=(--file-io "$lever") ;;
      poll=[0-9]*) [ "$SERVER_KIND" = native ] || return 1
                   NATIVE_SERVE_OPTS+=(--poll-us "${lever#poll=}") ;;
      scpu=[0-9]) SERVER_CPUS=${lever#scpu=} ;;
      wcpu=[0-9]) WORKLOAD_CPUS=${lever#wcpu=} ;;
      tcp) SERVER_TCP_PORT=10809 ;;
      iowq=[0-9]*) [ "$SERVER_KIND" = native ] || return 1
                   export NBDSWAP_NATIVE_IOWQ=${lever#iowq=} ;;
      *) return 1 ;;
    esac
  done
}

# client_attach's hook: the selected levers of /dev/nbd0's queue, each
# read back (a lever the kernel refused is a failed check, not a
# silently unchanged figure).  The queue outlives a connection, so a
# configuration without a lever gets the value the device had before
# any lever (KB_SCHED0, KB_MAXKB0: kbench_queue_defaults), not the last
# configuration's.
client_tune ()
{
  local q=/sys/block/${NBD##*/}/queue sched maxkb
  # Every scenario file is sourced for any scenario: only kbench tunes.
  [ -n "${KB_MAXKB0:-}" ] && [ -n "${KB_SCHED0:-}" ] || return 0
  sched=${KB_SCHED:-$KB_SCHED0} maxkb=${KB_MAXKB:-$KB_MAXKB0}
  if ! grep -q "\[$sched\]" "$q/scheduler"; then
    echo "$sched" > "$q/scheduler" && grep -q "\[$sched\]" "$q/scheduler" || {
      fail "kbench-lever-$KB_CONFIG" "scheduler $sched: $(cat "$q/scheduler")"
      return 1
    }
  fi
  if [ "$(cat "$q/max_sectors_kb")" != "$maxkb" ]; then
    echo "$maxkb" > "$q/max_sectors_kb" && [ "$(cat "$q/max_sectors_kb")" = "$maxkb" ] || {
      fail "kbench-lever-$KB_CONFIG" "max_sectors_kb $maxkb: $(cat "$q/max_sectors_kb") (max_hw_sectors_kb $(cat "$q/max_hw_sectors_kb"))"
      return 1
    }
  fi
}

# Read /dev/nbd0's scheduler and largest request before any lever
# changes them (client_tune puts them back for the configurations
# without the lever; it runs in a subshell, so it cannot keep them).
kbench_queue_defaults ()
{
  local q=/sys/block/nbd0/queue
  modprobe nbd nbds_max=4 || return 1
  KB_SCHED0=$(sed -n 's/.*\[\(.*\)\].*/\1/p' "$q/scheduler")
  KB_MAXKB0=$(cat "$q/max_sectors_kb")
  echo "/dev/nbd0: scheduler $KB_SCHED0, max_sectors_kb $KB_MAXKB0"
  [ -n "$KB_SCHED0" ] && [ -n "$KB_MAXKB0" ]
}

# Print block device $1's completed reads, sectors read, completed writes,
# sectors written and time in queue (ms), from /sys/block/$1/stat.
kbench_devstat ()
{
  local -a f
  read -ra f < "/sys/block/$1/stat"
  echo "${f[0]} ${f[2]} ${f[4]} ${f[6]} ${f[10]}"
}

# Print the guest's busy and idle clock ticks so far, all CPUs (the first
# line of /proc/stat; iowait counts as idle), and its context switches
# (guest_ctxt, without a subshell).
kbench_cpustat ()
{
  local cpu u n s i w q sq st
  read -r cpu u n s i w q sq st _ < /proc/stat
  printf '%s %s ' "$((u + n + s + q + sq + st))" "$((i + w))"
  guest_ctxt
}

# Record for job $1 the share of the guest's CPU time that was busy
# between two kbench_cpustat readings $2 and $3: near 100 the job was
# bound by the (emulated) CPUs, not by the disk.
kbench_busy_record ()
{
  local -a a b
  read -ra a <<< "$2"
  read -ra b <<< "$3"
  kbench_record "$1" guest_busy_pct \
    $(( 100 * (b[0] - a[0]) / (b[0] - a[0] + b[1] - a[1] + 1) ))
}

# Record for fio job $1 the guest's context switches (every task's,
# /proc/stat ctxt) between two kbench_cpustat readings $2 and $3.  The
# swap job's are the workload's own (WL_CTXSW: kbench_swap_record).
kbench_ctxsw_record ()
{
  local -a a b
  read -ra a <<< "$2"
  read -ra b <<< "$3"
  kbench_record "$1" guest_ctxsw $((b[2] - a[2]))
}

# Record the difference between two kbench_devstat readings $2 and $3 of
# device $1 for the swap job: the request sizes the device was sent.
kbench_devstat_record ()
{
  kbench_deltas_record swap "$1_reads $1_read_sectors $1_writes \
$1_write_sectors $1_queue_ms" "$2" "$3"
}

# Record for job $1 each figure named in $2 as the difference between
# two readings $3 and $4 (as many numbers each as names; else nothing).
kbench_deltas_record ()
{
  local -a k a b
  local i
  read -ra k <<< "$2"
  read -ra a <<< "$3"
  read -ra b <<< "$4"
  [ "${#a[@]}" = "${#k[@]}" ] && [ "${#b[@]}" = "${#k[@]}" ] || return 0
  for ((i = 0; i < ${#k[@]}; i++)); do
    kbench_record "$1" "${k[i]}" $((b[i] - a[i]))
  done
}

# Run fio job $1 (NAME:RW:BS:IODEPTH) for VM_KBENCH_RUNTIME seconds on $2
# (/dev/nbd0, or the backing file for the limit), direct I/O through
# io_uring over its first KB_FIO_MIB (default VM_SWAP_MIB); record where
# its JSON output is and, when a server runs, the CPU time the server
# used meanwhile.
kbench_fio ()
{
  local name rw bs qd out ticks0= cpu0 cpu1 sums0= cs0= cs1
  IFS=: read -r name rw bs qd <<< "$1"
  out=$RESULTS/kbench/$KB_ROUND-$KB_CONFIG-$name.json
  kbench_drop_caches
  if [ "$KB_CONFIG" != local ]; then
    ticks0=$(server_cpu_ticks) cs0=$(server_ctxsw)
    sums0=$(kbench_server_sums)
  fi
  cpu0=$(kbench_cpustat)
  if ! fio --name="$name" --filename="$2" --rw="$rw" --bs="$bs" \
       --iodepth="$qd" --direct=1 --ioengine=io_uring --time_based=1 \
       --runtime="$VM_KBENCH_RUNTIME" --randrepeat=0 --norandommap=1 \
       --size="${KB_FIO_MIB:-$VM_SWAP_MIB}M" --output-format=json --output="$out" \
       ${WORKLOAD_CPUS:+--cpus_allowed="$WORKLOAD_CPUS"} \
       > "$RESULTS/kbench/fio.err" 2>&1; then
    fail "kbench-fio-$KB_ROUND-$KB_CONFIG-$name" \
      "$(tail -n 2 "$RESULTS/kbench/fio.err" | tr '\n' ' ')"
    return 1
  fi
  cpu1=$(kbench_cpustat)
  kbench_busy_record "$name" "$cpu0" "$cpu1"
  kbench_ctxsw_record "$name" "$cpu0" "$cpu1"
  kbench_record "$name" json "${out##*/}"
  [ -z "$ticks0" ] || kbench_record "$name" cpu_ticks "$(server_cpu_delta "$ticks0")"
  [ -z "$cs0" ] || { cs1=$(server_ctxsw_delta "$cs0") &&
    kbench_record "$name" srv_ctxsw "$cs1"; }
  [ -z "$sums0" ] || kbench_sums_record "$name" "$sums0" "$(kbench_server_sums)"
}

# Print nbdswap's counters of where requests' time went, as the server
# writes them on SIGUSR1 to KB_STATS: requests, engine_ns, turns,
# turn_ns (include/stats.h).  Nothing when the server is not nbdswap or
# the file does not come within 5 s.
kbench_server_sums ()
{
  local j k n=0
  local -a v=()
  [ -n "$KB_STATS" ] || return 0
  rm -f "$KB_STATS"
  kill -USR1 "$SERVER_PID" 2>/dev/null || return 0
  while [ ! -s "$KB_STATS" ]; do
    ((n++ < 100)) || return 0
    sleep 0.05
  done
  read -r j < "$KB_STATS"
  for k in reads writes zeroes flushes errors engine_ns turns turn_ns; do
    [[ "$j" =~ \"$k\":([0-9]+) ]] || return 0
    v[${#v[@]}]=${BASH_REMATCH[1]}
  done
  # The engine counts its time for every request it ran, failed or not.
  echo "$((v[0] + v[1] + v[2] + v[3] + v[4])) ${v[5]} ${v[6]} ${v[7]}"
}

# Record for job $1 the change between two kbench_server_sums readings
# $2 and $3: requests and engine time, replies and whole turns.
kbench_sums_record ()
{
  kbench_deltas_record "$1" "srv_requests srv_engine_ns srv_turns \
srv_turn_ns" "$2" "$3"
}

# The fio jobs through the kernel client: start the selected server on
# backing file $1, attach /dev/nbd0, run every job, detach, stop.  For
# nbdswap's servers KB_STATS is where its counters go (the native one's
# own path under serve's runtime directory; the plugin's stats-file=).
kbench_fio_nbd ()
{
  local sock=$SOCKDIR/kbench.sock j
  local -a params=()
  case "$SERVER_KIND:$NBDSWAP_PLUGIN" in
    native:*) j=${1##*/}      # serve's instance name: the file's, less
              KB_STATS=${NBDSWAP_RUNTIME_DIR:-/run/nbdswap}/${j%.*}.stats ;;
    plugin:file) KB_STATS= ;;
    plugin:*) KB_STATS=$SOCKDIR/kbench.stats
              params=("stats-file=$KB_STATS") ;;
    *) KB_STATS= ;;
  esac
  if ! server_start "$1" "$sock" "$RESULTS/server-$KB_CONFIG.log" "${params[@]}"; then
    fail "kbench-server-$KB_ROUND-$KB_CONFIG" \
      "$(tail -n 3 "$RESULTS/server-$KB_CONFIG.log" | tr '\n' ' ')"
    return 1
  fi
  if check_cmd "kbench-attach-$KB_ROUND-$KB_CONFIG" client_attach "$sock"; then
    for j in $KBENCH_JOBS; do
      kbench_fio "$j" "$NBD"
    done
    nbd-client -d "$NBD" > /dev/null 2>&1
  fi
  server_stop
}

# Record the swap workload's figures (the WL_* of its last run and the
# time $1, server CPU ticks $2).
kbench_swap_record ()
{
  kbench_record swap seconds "$1"
  kbench_record swap verified "$([ "$WL_RC" = 0 ] && echo 1 || echo 0)"
  kbench_record swap pswpout_mib "$WL_OUT_MIB"
  kbench_record swap pswpin_mib "$WL_IN_MIB"
  kbench_record swap majflt "$WL_MAJFLT"
  kbench_record swap guest_ctxsw "$WL_CTXSW"
  [ -z "$2" ] || kbench_record swap cpu_ticks "$2"
}

# Run command $@ (a swap workload) with vm.page-cluster at KB_PC if set,
# putting the value back after it; its status.
kbench_with_pc ()
{
  local pc0 rc
  pc0=$(cat /proc/sys/vm/page-cluster)
  [ -z "$KB_PC" ] || echo "$KB_PC" > /proc/sys/vm/page-cluster
  "$@"
  rc=$?
  echo "$pc0" > /proc/sys/vm/page-cluster
  return "$rc"
}

# Run command $@ (a swap workload); with VM_KBENCH_PROFILE=1 under a
# system-wide profile (perf, cpu-clock on both vCPUs: TCG has no PMU),
# summarised by task, by program or kernel, and by symbol in
# $RESULTS/kbench/profile-ROUND-CONFIG.txt with every context switch
# counted by the task switched out; and with the block layer's
# and the nbd driver's tracepoints on (every request's issue and
# completion, every header and payload the nbd client sends and
# receives), into the kernel's own trace buffer (no process has to keep
# up with it), copied to $RESULTS/kbench/trace-ROUND-CONFIG.txt for
# bench/ktrace.py.  Its status.
kbench_profiled ()
{
  local prof=/tmp/kbench-prof.data out trc pid pid2 rc s ev kb0
  local clock0
  local -a evs=(block/block_rq_issue block/block_rq_requeue
                block/block_rq_complete)
  if [ "${VM_KBENCH_PROFILE:-0}" != 1 ]; then
    "$@"
    return
  fi
  out=$RESULTS/kbench/profile-$KB_ROUND-$KB_CONFIG.txt
  trc=$RESULTS/kbench/trace-$KB_ROUND-$KB_CONFIG.txt
  # The nbd driver's events exist once its module is in (the first
  # configuration's swap cycle would load it only after this).
  modprobe nbd nbds_max=4 && evs+=(nbd/enable)
  if ! { mountpoint -q "$TRACEFS" || mount -t tracefs nodev "$TRACEFS"; }; then
    fail "kbench-profile-$KB_ROUND-$KB_CONFIG" "cannot mount tracefs on $TRACEFS"
    return 1
  fi
  # "7 (expanded: 1408)" before first use; the clock: one all CPUs agree
  # on, since a request is issued on one and completed on another.
  read -r kb0 _ < "$TRACEFS/buffer_size_kb"
  clock0=$(sed -n 's/.*\[\(.*\)\].*/\1/p' "$TRACEFS/trace_clock")
  echo 0 > "$TRACEFS/tracing_on"
  echo mono > "$TRACEFS/trace_clock"
  echo 32768 > "$TRACEFS/buffer_size_kb"
  : > "$TRACEFS/trace"
  for ev in "${evs[@]}"; do
    [ "${ev##*/}" = enable ] || ev=$ev/enable
    echo 1 > "$TRACEFS/events/$ev"
  done
  perf record -q -a -e cpu-clock -F 250 -o "$prof" \
    > /dev/null 2> "$RESULTS/kbench/perf.err" &
  pid=$!
  # Every context switch, by the task switched out (idle's "swapper"
  # when a task wakes on an idle CPU).
  perf record -q -a -e sched:sched_switch -o "$prof.sw" \
    > /dev/null 2>> "$RESULTS/kbench/perf.err" &
  pid2=$!
  sleep 1
  echo 1 > "$TRACEFS/tracing_on"
  "$@"
  rc=$?
  echo 0 > "$TRACEFS/tracing_on"
  kill -INT "$pid" "$pid2" 2>/dev/null
  wait "$pid" "$pid2"
  for ev in "${evs[@]}"; do
    [ "${ev##*/}" = enable ] || ev=$ev/enable
    echo 0 > "$TRACEFS/events/$ev"
  done
  cat "$TRACEFS/trace" > "$trc"
  cat "$TRACEFS"/per_cpu/cpu*/stats | awk '/^overrun:/ { n += $2 }
    END { print "overrun: " n + 0 }' >> "$trc"
  : > "$TRACEFS/trace"
  echo "$kb0" > "$TRACEFS/buffer_size_kb"
  echo "${clock0:-local}" > "$TRACEFS/trace_clock"
  echo 1 > "$TRACEFS/tracing_on"
  for s in comm dso sym; do
    echo "== by $s"
    perf report -i "$prof" --stdio --sort "$s" --percent-limit 0.5 \
      2>> "$RESULTS/kbench/perf.err" | grep -v -e '^#' -e '^$'
  done > "$out"
  {
    echo "== context switches by task switched out (samples: switches)"
    perf report -i "$prof.sw" --stdio --sort comm -n --percent-limit 0.5 \
      2>> "$RESULTS/kbench/perf.err" | grep -v -e '^#' -e '^$'
  } >> "$out"
  if grep -q '%' "$out" && grep -q block_rq_complete "$trc" &&
     grep -q '^overrun: 0$' "$trc"; then
    pass "kbench-profile-$KB_ROUND-$KB_CONFIG" "${out##*/}, ${trc##*/}"
  else
    fail "kbench-profile-$KB_ROUND-$KB_CONFIG" "$(tail -n 1 "$trc") $(tail -n 2 "$RESULTS/kbench/perf.err" | tr '\n' ' ')"
  fi
  rm -f "$prof" "$prof.sw"
  return "$rc"
}

# One configuration of one round: fio, then the swap workload.  $1 is the
# backing file, $2 the local swap file.
kbench_config ()
{
  local j nbd0 vda0 cpu0
  local -a levers
  if [ "${KB_CONFIG%%+*}" = local ]; then
    # The limit takes the levers of the conditions, pc=N and wcpu=N, so
    # that a server's figures under them are compared with the limit's
    # under the same ones; its fio jobs (no swap) run only without pc.
    local lever
    KB_PC= WORKLOAD_CPUS=
    IFS=+ read -ra levers <<< "${KB_CONFIG#local}"
    for lever in "${levers[@]}"; do
      case "$lever" in
        '') ;;
        pc=[0-9]) KB_PC=${lever#pc=} ;;
        wcpu=[0-9]) WORKLOAD_CPUS=${lever#wcpu=} ;;
        *) fail "kbench-config-$KB_CONFIG" "the limit takes pc=N and wcpu=N only"
           return 1 ;;
      esac
    done
    SERVER_PID=
    if [ -z "$KB_PC" ]; then
      for j in $KBENCH_JOBS; do
        kbench_fio "$j" "$1"
      done
    fi
    kbench_drop_caches
    vda0=$(kbench_devstat vda) cpu0=$(kbench_cpustat)
    kbench_with_pc kbench_profiled local_swap_workload "$2" || return
    kbench_busy_record swap "$cpu0" "$(kbench_cpustat)"
    kbench_devstat_record vda "$vda0" "$(kbench_devstat vda)"
    kbench_swap_record "$WL_SECS" ""
    return
  fi
  if ! kbench_select "$KB_CONFIG"; then
    fail "kbench-config-$KB_CONFIG" "no such configuration or lever"
    return 1
  fi
  # A page-cluster changes swap only: a configuration whose one lever it
  # is runs the swap workload alone (its fio jobs are the server's own).
  [[ "$KB_CONFIG" =~ ^[a-z-]+\+pc=[0-9]$ ]] || kbench_fio_nbd "$1"
  kbench_drop_caches
  nbd0=$(kbench_devstat nbd0) vda0=$(kbench_devstat vda) cpu0=$(kbench_cpustat)
  if ! kbench_with_pc kbench_profiled nbd_swap_cycle "$1"; then
    # It stops short without stopping the server when mkswap or swapon
    # fails: the next configuration needs the file and the device free.
    swapoff "$NBD" > /dev/null 2>&1
    nbd-client -d "$NBD" > /dev/null 2>&1
    ! server_running || server_stop
    return 1
  fi
  kbench_busy_record swap "$cpu0" "$(kbench_cpustat)"
  kbench_devstat_record nbd0 "$nbd0" "$(kbench_devstat nbd0)"
  kbench_devstat_record vda "$vda0" "$(kbench_devstat vda)"
  kbench_swap_record "$NBD_SECS" "$NBD_CPU_TICKS"
  [ -z "$NBD_CTXSW" ] || kbench_record swap srv_ctxsw "$NBD_CTXSW"
}

# What a round trip between two processes costs here (two context
# switches and a wake-up each way: the kind a request through NBD makes
# several of), with perf's pipe benchmark: the two on any CPU, then both
# on CPU 0.  The host's report has its own figure beside it.
kbench_pipe_rtt ()
{
  local any one
  command -v perf > /dev/null || { echo "no perf"; return; }
  any=$(perf bench sched pipe -l 20000 2>&1 | awk '/usecs\/op/ { print $1 }')
  one=$(taskset -c 0 perf bench sched pipe -l 20000 2>&1 | awk '/usecs\/op/ { print $1 }')
  echo "pipe round trip ${any:-?} us, ${one:-?} us on one CPU (perf bench sched pipe)"
}

# What the host reports about the guest: kernel, CPUs, memory, versions.
kbench_info ()
{
  {
    echo "guest kernel: $(uname -r), $(nproc) vCPUs, $(awk '/MemTotal/ { print int($2 / 1024) " MiB" }' /proc/meminfo)"
    echo "clock ticks per second: $(getconf CLK_TCK)"
    echo "versions: $(fio --version); $(nbdkit --version); $(qemu-nbd --version | head -n 1); $(nbd-client -V 2>&1 | head -n 1)"
    if [ "${VM_KBENCH_BACKING:-file}" = device ]; then
      echo "backing: block device $KB_BACKING (dm-linear, $VM_SWAP_MIB MiB of the virtio disk); the limit's swap on $KB_LOCAL beside it"
    else
      echo "backing file: $VM_SWAP_MIB MiB on $(findmnt -n -o FSTYPE,OPTIONS "$SCRATCH")"
    fi
    echo "swap workload: $VM_WORKLOAD_MIB MiB in a cgroup of $VM_CGROUP_MIB MiB"
    echo "rounds: $VM_KBENCH_ROUNDS, fio runtime $VM_KBENCH_RUNTIME s per job"
    echo "configs: $KBENCH_CONFIGS"
    echo "jobs:" $(for j in $KBENCH_JOBS; do echo "${j%%:*}"; done)
    echo "context switches: $(kbench_pipe_rtt)"
    [ "${VM_KBENCH_PROFILE:-0}" != 1 ] ||
      echo "profile: perf cpu-clock at 250 Hz and the block and nbd tracepoints (ftrace) during every swap run (times include their cost)"
  } > "$RESULTS/kbench-info"
}

# VM_KBENCH_BACKING=device (bench/run --kernel --backing device): two
# device-mapper linear volumes of VM_SWAP_MIB on the scratch disk, as LVM
# makes them, the first served, the second the limit's swap (KB_BACKING,
# KB_LOCAL, set by the caller): the backing docs/local-swap.md advises for
# swap of this machine, beside its own limit.  No udev in the guest:
# libdevmapper makes the /dev/mapper nodes (DM_DISABLE_UDEV).
kbench_volumes ()
{
  local n=$((VM_SWAP_MIB * 2048))
  modprobe dm_mod || return 1
  echo "0 $n linear $VM_DISK 2048" |
    DM_DISABLE_UDEV=1 dmsetup create --noudevsync "${KB_BACKING##*/}" || return 1
  echo "0 $n linear $VM_DISK $((2048 + n))" |
    DM_DISABLE_UDEV=1 dmsetup create --noudevsync "${KB_LOCAL##*/}" || return 1
  [ -b "$KB_BACKING" ] && [ -b "$KB_LOCAL" ] && return 0
  echo "no block devices $KB_BACKING, $KB_LOCAL: $(dmsetup ls 2>&1 | tr '\n' ' ')"
  return 1
}

scenario_kbench ()
{
  local c
  KB_BACKING=$SCRATCH/nbdswap-backing.img KB_LOCAL=$SCRATCH/local.swap
  KB_PLUGIN=$NBDSWAP_PLUGIN
  # No kprobes: nbd_swap_cycle's checks cost time on every hit.
  SWAP_PROBES=0
  mkdir -p "$RESULTS/kbench"
  : > "$RESULTS/kbench.tsv"
  if [ "${VM_KBENCH_BACKING:-file}" = device ]; then
    KB_BACKING=/dev/mapper/kb-backing KB_LOCAL=/dev/mapper/kb-local
    check_cmd kbench-volumes kbench_volumes || return
  else
    check_cmd ext4-mkfs fs_make ext4 || return
    check_cmd create-backing backing_create "$KB_BACKING" "$VM_SWAP_MIB" || return
    check_cmd local-create local_file_create "$KB_LOCAL" "$VM_SWAP_MIB" || return
  fi
  # Not through check_cmd: its subshell would keep the values.
  if kbench_queue_defaults > "$RESULTS/kbench/queue-defaults" 2>&1; then
    pass kbench-queue-defaults "$(cat "$RESULTS/kbench/queue-defaults")"
  else
    fail kbench-queue-defaults "$(tail -n 1 "$RESULTS/kbench/queue-defaults")"
    return
  fi
  kbench_info
  # The peer must really be the io_uring one: qemu-nbd also refuses to
  # start when the kernel refuses the ring (a FAIL of kbench-server-*).
  if qemu-nbd --help | grep -q 'io_uring'; then
    pass kbench-qemu-nbd-io-uring "$(qemu-nbd --version | head -n 1)"
  else
    fail kbench-qemu-nbd-io-uring "this qemu-nbd has no --aio=io_uring"
  fi
  for ((KB_ROUND = 1; KB_ROUND <= VM_KBENCH_ROUNDS; KB_ROUND++)); do
    for c in $KBENCH_CONFIGS; do
      KB_CONFIG=$c
      log "kbench round $KB_ROUND: $c"
      kbench_config "$KB_BACKING" "$KB_LOCAL"
    done
  done
  pass kbench-done "$VM_KBENCH_ROUNDS round(s)"
  if [ "${VM_KBENCH_BACKING:-file}" = device ]; then
    DM_DISABLE_UDEV=1 dmsetup remove --noudevsync "${KB_BACKING##*/}"
    DM_DISABLE_UDEV=1 dmsetup remove --noudevsync "${KB_LOCAL##*/}"
    return
  fi
  rm -f "$KB_LOCAL" "$KB_BACKING"
  umount "$SCRATCH"
}
