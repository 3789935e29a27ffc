#!/bin/bash
# Both servers start through the same backing-file module (lib/backing.c)
# and refuse alike: a file locked by a process they cannot see (another
# PID namespace) is "already served", its holder's PID "not visible from
# here", never "PID 0"; something that is neither a regular file nor a
# block device (a FIFO, a character device) is named so.
source "$(dirname "$0")/functions.sh"

OFD_LOCK=${OFD_LOCK:-$PWD/fs/ofd-lock}
[ -x "$OFD_LOCK" ] || { echo "$OFD_LOCK not built" >&2; exit 99; }
requires unshare util-linux

# run_refused WANT REGEX LOG CMD...: CMD exits WANT, its output (in LOG)
# matches REGEX and never names "PID 0".
run_refused ()
{
  local want=$1 regex=$2 log=$3 rc=0
  shift 3
  timeout 60 "$@" >"$log" 2>&1 || rc=$?
  if [ "$rc" -ne "$want" ]; then
    fail "$*: exit $rc, expected $want: $(cat "$log")"
  elif ! grep -qE -- "$regex" "$log"; then
    fail "$*: output does not match /$regex/: $(cat "$log")"
  elif grep -q "PID 0\b" "$log"; then
    fail "$*: names PID 0: $(cat "$log")"
  else
    ok "$* -> $rc"
  fi
}

# Neither a regular file nor a block device: both servers say so (open
# refuses O_DIRECT on these before anything else).
mkfifo "$WORK/fifo"
notreg="is neither a regular file nor a block device: give a swap"
notreg+=" backing file made by 'nbdswap create'"
run_refused 2 "$WORK/fifo: $notreg" "$WORK/fifo.out" \
  "${SERVE[@]}" --foreground --socket "$WORK/f.sock" "$WORK/fifo"
run_refused 2 "/dev/null: $notreg" "$WORK/null.out" \
  "${SERVE[@]}" --foreground --socket "$WORK/n.sock" /dev/null
run_refused 1 "$WORK/fifo: $notreg" "$WORK/pfifo.out" \
  "${NBDKIT[@]}" -U "$WORK/pf.sock" "$PLUGIN" file="$WORK/fifo"

# A holder in this PID namespace, the servers in a child one, where
# /proc shows none of this namespace's processes.
unshare --pid --fork --mount-proc true 2>/dev/null ||
  skip "cannot make a PID namespace here (unshare --pid --mount-proc)"
backing held.img 16M
# The helper says "locked" once it holds the lock.
exec {lock_out}< <(exec "$OFD_LOCK" "$WORK/held.img")
PIDS+=($!)
said=
read -r -t 10 said <&"$lock_out" || true
[ "$said" = locked ] || { fail "ofd-lock did not lock: '$said'"; finish; }

unseen="$WORK/held.img: already served by another process \(its PID is not"
unseen+=" visible from here: another PID namespace\?\): one swap file must"
unseen+=" have one server; stop that one first"
run_refused 2 "$unseen" "$WORK/native.out" \
  unshare --pid --fork --mount-proc \
  "${SERVE[@]}" --foreground --socket "$WORK/h.sock" "$WORK/held.img"
# The plugin itself, in nbdkit (serve's own verification, run before
# nbdkit, would refuse the file first).
run_refused 1 "$unseen" "$WORK/plugin.out" \
  unshare --pid --fork --mount-proc \
  "${NBDKIT[@]}" -U "$WORK/p.sock" "$PLUGIN" file="$WORK/held.img"
finish
