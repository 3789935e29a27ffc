# shellcheck shell=bash
# nbdswap VM tests: scenario 8 of issue 7, storage faults.
#
# The scratch filesystem sits on a device-mapper device made of linear
# segments of the virtio disk.  For a fault window the table is swapped
# for one that maps only the backing file's extents (found with FIEMAP)
# to the "error" target, so the file's data blocks fail with EIO while the
# filesystem's metadata and journal stay healthy (failing the whole
# device aborts the ext4 journal, after which nothing can recover).  The
# server retries EIO for retry-timeout=FLAKEY_RETRY seconds:
#  - windows shorter than that, while the workload swaps out and while it
#    swaps in: nothing reaches the kernel, every word verifies;
#  - a window longer than that: the client gets EIO, the server logs it
#    and keeps running, and once the storage is back a new mkswap and
#    swapon work and swap again.
# Sourced by guest-scenario after guest-lib.sh.

FLAKEY_DM=nbdswap-flakey
FLAKEY_DEV=/dev/mapper/$FLAKEY_DM
FLAKEY_RETRY=10         # the server's retry-timeout=, seconds
FLAKEY_SHORT=4          # a window well inside the budget, seconds
FLAKEY_LONG_MAX=40      # the long window's I/O is given up after this
FLAKEY_NBD_TIMEOUT=60   # kernel request timeout: longer than any window
FLAKEY_EXTENTS=/tmp/flakey-extents
FLAKEY_EIO_RETRY='Input/output error: transient error, retrying'

# Print the table for mode $1: linear (the whole disk), or error (the
# extents in $FLAKEY_EXTENTS, "first last" sectors each, fail).
flakey_table ()
{
  local size
  size=$(blockdev --getsz "$VM_DISK") || return 1
  if [ "$1" = linear ]; then
    echo "0 $size linear $VM_DISK 0"
    return
  fi
  sort -n "$FLAKEY_EXTENTS" | awk -v size="$size" -v dev="$VM_DISK" '
    function linear(to) {
      if (to > pos) printf "%.0f %.0f linear %s %.0f\n", pos, to - pos, dev, pos
    }
    { linear($1); printf "%.0f %.0f error\n", $1, $2 - $1 + 1; pos = $2 + 1 }
    END { linear(size) }'
}

# Switch the device to table mode $1 without freezing the filesystem
# (a freeze would wait for the very writes that are failing).
flakey_switch ()
{
  dmsetup suspend --nolockfs "$FLAKEY_DM" || return 1
  flakey_table "$1" | dmsetup load "$FLAKEY_DM" || return 1
  dmsetup resume "$FLAKEY_DM"
}

# The dm device over the disk, ext4 on it, mounted at $SCRATCH.
flakey_fs_make ()
{
  modprobe dm_mod 2> /dev/null
  flakey_table linear | dmsetup create "$FLAKEY_DM" || return 1
  mkfs.ext4 -F -q "$FLAKEY_DEV" || return 1
  mkdir -p "$SCRATCH" && mount -o lazytime "$FLAKEY_DEV" "$SCRATCH"
}

# Record the backing file $1's extents as "first last" device sectors
# (xfs_io reports FIEMAP in 512-byte units; the filesystem starts at
# sector 0 of the dm device, and the linear table maps it 1:1).
flakey_extents ()
{
  xfs_io -r -c fiemap "$1" \
    | sed -n 's/^[[:space:]]*[0-9]*: \[[0-9]*\.\.[0-9]*\]: \([0-9]*\)\.\.\([0-9]*\)$/\1 \2/p' \
    > "$FLAKEY_EXTENTS"
  [ -s "$FLAKEY_EXTENTS" ]
}

# How many lines of the server's log match $1.
server_log_count ()
{
  grep -c -- "$1" "$RESULTS/server.log"
}

# Wait (up to 120 s) until /proc/vmstat counter $1 has moved $2 MiB past
# $3 pages.
vmstat_wait ()
{
  local end=$((SECONDS + 120))
  while [ $(( ($(vmstat_get "$1") - $3) * PAGE_KIB / 1024 )) -lt "$2" ]; do
    [ "$SECONDS" -lt "$end" ] || return 1
    sleep 0.2
  done
}

# A short fault window named $1: the file's data fails for FLAKEY_SHORT
# seconds; the server must have retried EIO in it.
short_window ()
{
  local n0 n1 lines ops
  n0=$(server_log_count "$FLAKEY_EIO_RETRY")
  if ! flakey_switch error; then
    fail "$1-window" "dmsetup could not switch to the error table"
    return
  fi
  sleep "$FLAKEY_SHORT"
  flakey_switch linear || fail "$1-restore" "dmsetup could not switch back"
  sleep 1                       # the log line of the last retries
  n1=$(server_log_count "$FLAKEY_EIO_RETRY")
  # This window's lines only, and which operations they name.
  lines=$(grep -- "$FLAKEY_EIO_RETRY" "$RESULTS/server.log" | tail -n +$((n0 + 1)))
  ops=$(echo "$lines" | grep -o -E '(read|write): offset' | cut -d: -f1 \
          | sort -u | tr '\n' ' ')
  if [ "$n1" -gt "$n0" ]; then
    pass "$1-window" "$FLAKEY_SHORT s of EIO on the file's extents: $((n1 - n0)) rate-limited retry lines (${ops% }), the first: $(echo "$lines" | head -n 1 | sed 's/.*warning: //')"
  else
    fail "$1-window" "no EIO was retried in the window: the workload did no I/O, or the table did not fail the file"
  fi
}

# Direct I/O ($1 read or write) of one block of /dev/nbd0 in the
# background; its exit status, seconds and last message go to file $2.
timed_dd ()
{
  local t0=$SECONDS rc out
  if [ "$1" = read ]; then
    out=$(timeout "$FLAKEY_LONG_MAX" dd if="$NBD" of=/dev/null bs=4k \
            count=1 skip=4096 iflag=direct 2>&1)
  else
    out=$(timeout "$FLAKEY_LONG_MAX" dd if=/dev/zero of="$NBD" bs=4k \
            count=1 seek=8192 oflag=direct 2>&1)
  fi
  rc=$?
  echo "$rc $((SECONDS - t0)) $(echo "$out" | grep -m 1 -i error)" > "$2"
}

# Check the result file $2 of timed_dd for $1: failed with EIO, after
# the server had retried for its budget.
long_dd_check ()
{
  local rc secs msg
  read -r rc secs msg < "$2"
  if [ "$rc" != 0 ] && [[ $msg == *"Input/output error"* ]] \
     && [ "$secs" -ge $((FLAKEY_RETRY - 1)) ]; then
    pass "long-$1-eio" "failed after $secs s: $msg"
  else
    fail "long-$1-eio" "exit $rc after $secs s (want EIO after about $FLAKEY_RETRY s): $msg"
  fi
}

# The long window: a read and a write of /dev/nbd0 fail with EIO after
# the retry budget; the server says so and keeps running.
long_window ()
{
  local rpid wpid line
  check_cmd long-window-open flakey_switch error || return 1
  timed_dd read /tmp/flakey-read & rpid=$!
  timed_dd write /tmp/flakey-write & wpid=$!
  # The dd's pids, not a bare wait: that would wait for the server too.
  wait "$rpid" "$wpid"
  check_cmd long-window-close flakey_switch linear || return 1
  long_dd_check read /tmp/flakey-read
  long_dd_check write /tmp/flakey-write
  line=$(grep -m 1 'persisted for .*(retry-timeout): reporting EIO' \
           "$RESULTS/server.log")
  if [[ $line == *"Input/output error persisted for $FLAKEY_RETRY s"* ]]
  then
    pass long-server-log "${line#*error: }"
  else
    fail long-server-log "no 'reporting EIO' line: $(tail -n 2 "$RESULTS/server.log" | tr '\n' ' ')"
  fi
  server_alive_check long-server-alive "the server exited after reporting EIO"
}

# Fail check $1 if the kernel log shows swap or nbd errors, OOM kills, or
# a filesystem error: the dm device's own errors are expected.
flakey_dmesg_check ()
{
  local bad
  bad=$(dmesg | grep -E -i "$2" | head -n 3 | tr '\n' ' ')
  if [ -z "$bad" ]; then
    pass "$1"
  else
    fail "$1" "kernel log: $bad"
  fi
}

# The workload of phase A in the background, with a window while it
# swaps out and another while it swaps in.
short_windows_workload ()
{
  local wl out0 in0
  rm -f "$RESULTS/wl-flakey.vars"
  out0=$(vmstat_get pswpout) in0=$(vmstat_get pswpin)
  ( workload_run flakey
    declare -p WL_RC WL_SECS WL_OUT_MIB WL_IN_MIB WL_OOM \
      > "$RESULTS/wl-flakey.vars" ) &
  wl=$!
  if vmstat_wait pswpout 128 "$out0"; then
    short_window short-swapout
  else
    fail short-swapout-window "the workload never swapped out 128 MiB"
  fi
  if vmstat_wait pswpin 64 "$in0"; then
    short_window short-swapin
  else
    fail short-swapin-window "the workload never swapped in 64 MiB"
  fi
  wait "$wl"
  # shellcheck source=/dev/null
  . "$RESULTS/wl-flakey.vars" || WL_RC=99
  workload_checks flakey
}

# 8: storage faults on the backing file's data blocks.
scenario_flakey ()
{
  local sock=$SOCKDIR/flakey.sock backing=$SCRATCH/nbdswap-backing.img
  export DM_DISABLE_UDEV=1
  check_cmd dm-ext4 flakey_fs_make || return
  check_cmd create-backing backing_create "$backing" "$VM_SWAP_MIB" || return
  check_cmd backing-extents flakey_extents "$backing" || return
  log "backing file extents (sectors): $(tr '\n' ' ' < "$FLAKEY_EXTENTS")"
  if ! server_start "$backing" "$sock" "$RESULTS/server.log" \
       retry-timeout="$FLAKEY_RETRY"; then
    fail server-start "$(tail -n 3 "$RESULTS/server.log" | tr '\n' ' ')"
    return
  fi
  pass server-start "retry-timeout=$FLAKEY_RETRY"
  modprobe nbd nbds_max=4
  check_cmd attach nbd-client -unix "$sock" "$NBD" -b 4096 \
    -t "$FLAKEY_NBD_TIMEOUT" || { server_stop; return; }
  check_cmd mkswap mkswap "$NBD" || return
  check_cmd swapon swapon "$NBD" || return

  short_windows_workload
  flakey_dmesg_check short-kernel-log 'Write-error on swap|Read-error on swap|nbd[0-9]+:.*(error|timed out|dead)|I/O error, dev nbd|Out of memory|Killed process|EXT4-fs (error|warning)|Aborting journal|JBD2'
  if ! grep -q 'reporting EIO' "$RESULTS/server.log"; then
    pass short-no-eio-reported
  else
    fail short-no-eio-reported "$(grep -m 1 'reporting EIO' "$RESULTS/server.log")"
  fi
  check_cmd swapoff swapoff "$NBD" || return

  long_window || return
  # The storage is back: a new swap area on the same device swaps again.
  check_cmd recovered-mkswap mkswap "$NBD" || return
  check_cmd recovered-swapon swapon "$NBD" || return
  workload_run recovered 256
  workload_checks recovered 64
  check_cmd recovered-swapoff swapoff "$NBD"
  check_cmd detach nbd-client -d "$NBD"
  server_stop_check server-stop
  log "server counters: $(grep -m 1 'stats:' "$RESULTS/server.log")"
  flakey_dmesg_check fs-kernel-log 'EXT4-fs (error|warning)|Aborting journal|JBD2'
  umount "$SCRATCH"
  check_cmd fs-clean e2fsck -f -n "$FLAKEY_DEV"
  dmsetup remove "$FLAKEY_DM"
}

# 8 again with the native server (nbdswap serve -- retry-timeout=):
# the same windows, retried by its connection threads.
scenario_native-flakey ()
{
  SERVER_KIND=native
  scenario_flakey
}
