#!/bin/bash
# Re-verification must leave the served file's inode alone.  On a lazytime
# mount the file's times can be dirty in memory only (I_DIRTY_TIME); a
# re-verification (recheck=, SIGHUP) must not turn that into an inode
# update for the journal (I_DIRTY_SYNC or I_DIRTY_DATASYNC): where the
# machine swaps through its own server that is a metadata transaction on
# the swap-out path (docs/verify.md; the VM's pressure-no-journal check
# caught a full fsync doing it).
#
# Each server serves a file on ext4 with recheck=1 and takes some writes;
# then, with the times dirty in memory only, the
# writeback_mark_inode_dirty tracepoint on the file's inode must see no
# mark from the server through several re-verifications and the stop.
#
# The times are made dirty by a read of the test's own (relatime updates
# the access time once after a write), not by the server's writes: since
# Linux 6.6 ext4 bumps i_version with every change of a file's ctime, and
# that dirties the inode itself (I_DIRTY_SYNC) at each write, lazytime or
# not; an access time is still only I_DIRTY_TIME.
source "${srcdir:-.}/fs/functions.sh"
source "${srcdir:-.}/fs/plugin-functions.sh"

TRACEFS=/sys/kernel/tracing
EVENT=events/writeback/writeback_mark_inode_dirty
INSTANCE=

# The server's threads and their io_uring workers (as in tests/vm).
SERVER_COMMS='comm ~ "nbdkit*" || comm ~ "nbdswap*" || comm ~ "iou-wrk*"'

# trace_stop: remove the tracing instance (at exit too).
trace_stop ()
{
  [ -n "$INSTANCE" ] && rmdir "$INSTANCE" 2>/dev/null
  INSTANCE=
  return 0
}
trap 'trace_stop; cleanup' EXIT

# trace_setup: tracefs with the writeback tracepoints, or skip.
trace_setup ()
{
  mountpoint -q "$TRACEFS" || mount -t tracefs nodev "$TRACEFS" 2>/dev/null ||
    skip "tracefs is not mounted on $TRACEFS and cannot be"
  [ -d "$TRACEFS/$EVENT" ] ||
    skip "the kernel has no writeback:writeback_mark_inode_dirty tracepoint"
}

# trace_start FILE: in a tracing instance of our own, record with their
# kernel stacks the marks of FILE's inode: the time updates from anyone,
# and those that dirty the inode itself (flags & 3: I_DIRTY_SYNC,
# I_DIRTY_DATASYNC) from the server only (the flusher writes the times
# when something else on the machine runs sync).
trace_start ()
{
  local ino bdi
  ino=$(stat -c %i "$1")
  bdi=$(stat -c %Hd:%Ld "$1")
  INSTANCE=$TRACEFS/instances/nbdswap-$$
  mkdir "$INSTANCE" || skip "cannot make a tracing instance in $TRACEFS"
  echo "ino == $ino && name == \"$bdi\" && (!(flags & 3) || $SERVER_COMMS)" \
    > "$INSTANCE/$EVENT/filter" ||
    skip "the tracepoint refuses a filter on ino, name, flags and comm"
  echo 1 > "$INSTANCE/options/stacktrace"
  echo 1 > "$INSTANCE/$EVENT/enable"
}

# rechecks: the re-verifications counted by the server's last stats line.
rechecks ()
{
  { grep -o 'stats: .*rechecks=[0-9]*' "$SERVER_LOG" || true; } |
    tail -1 | sed 's/.*=//'
}

# check_kind KIND: the case above with the KIND server (plugin, native).
check_kind ()
{
  local before after n trace=$WORK/trace.$1
  SERVER_KIND=$1
  serve "$MNT/swap" recheck=1 ||
    { fail "$1: the server refused a good file: $(cat "$SERVER_LOG")"; return; }
  # The socket may be bound before the file is verified: wait for that.
  wait_log "extent map precached" 20 ||
    fail "$1: the file was not verified: $(tail -5 "$SERVER_LOG")"
  nbd_io "write -P 0x5a 0 1M" | grep -q "wrote 1048576/1048576" ||
    fail "$1: a write through the server failed"
  # Write back what the writes dirtied, so that the read below leaves the
  # times dirty in memory only.
  sync -f "$MNT/swap"
  kill -USR1 "$SERVER_PID"
  wait_log "stats: " 10 || fail "$1: no stats report on SIGUSR1"
  before=$(rechecks)
  trace_start "$MNT/swap"
  dd if="$MNT/swap" of=/dev/null bs=4k count=1 iflag=direct status=none
  sleep 4
  stop_server
  echo 0 > "$INSTANCE/$EVENT/enable"
  cp "$INSTANCE/trace" "$trace"
  trace_stop
  after=$(rechecks)
  [ $((after - before)) -ge 2 ] ||
    fail "$1: $((after - before)) re-verifications in 4 s with recheck=1"
  # The read's time update, on an inode that was clean: the state that
  # an fsync would write.
  grep -E ' state=[A-Z_|]* flags=I_DIRTY_TIME$' "$trace" |
    grep -qv 'state=[A-Z_|]*I_DIRTY_SYNC' ||
    fail "$1: the read did not leave the times dirty in memory only: cannot judge"
  n=$(grep -cE 'flags=[A-Z_|]*I_DIRTY_(SYNC|DATASYNC)' "$trace" || true)
  if [ "$n" -ne 0 ]; then
    fail "$1: $n marks from the server dirtied the file's inode in $((after - before)) re-verifications and the stop:"
    grep -v '^#' "$trace" | head -40 >&2
  else
    echo "$TEST_NAME: ok: $1: $((after - before)) re-verifications, the inode left alone"
  fi
}

[ "$(id -u)" -eq 0 ] || skip "needs root (loop devices, mount, tracefs)"
trace_setup
make_fs ext4 256 -q
good "$MNT/swap" 16M
check_kind plugin
check_kind native
finish
