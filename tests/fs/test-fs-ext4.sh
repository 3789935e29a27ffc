#!/bin/bash
# nbdswap verify/create on ext4: the common cases, a block device, and an
# active kernel swap file.
source "${srcdir:-.}/fs/functions.sh"

# mke2fs picks 1 KiB blocks for a filesystem this small: extents are
# then not 4 KiB-aligned on disk, which nbdswap accepts (see
# lib/verify-extents.c, problem_flags).
make_fs ext4 256 -q
create_dir_cases
common_cases

# A block device is accepted without extent checks; not the one this
# filesystem is mounted from (tests/fs/test-blockdev.sh has the rest).
good "$MNT/blk" 16M
BLK=$(losetup -f --show --direct-io=on "$MNT/blk")
EXTRA_LOOPS+=("$BLK")
expect "$BLK" 0 ""
expect_text "$BLK" "^Extents: +not checked \(a block device has no extents\)"
expect "$LOOP" 2 "device-in-use"
expect_text "$LOOP" "^error \[device-in-use\]: $LOOP: is mounted on $MNT \(ext4\)"
losetup -d "$BLK"
EXTRA_LOOPS=()
rm "$MNT/blk"

# A fragmented file: more extents than one FIEMAP batch (256).  600
# punched 4 KiB holes first (16 reported, the rest counted), then the
# holes written again: 1198 extents, no hole, fit.
requires xfs_io xfsprogs
requires filefrag e2fsprogs
punch=(-c "pwrite -S 0 0 4800k" -c fsync)
refill=()
for i in $(seq 0 599); do
  punch+=(-c "fpunch $((i * 8 + 4))k 4k")
  refill+=(-c "pwrite -S 0 $((i * 8 + 4))k 4k")
done
xfs_io -f "${punch[@]}" -c fsync "$MNT/frag" >/dev/null
chmod 0600 "$MNT/frag"
expect "$MNT/frag" 2 "hole"
[ "$(grep -o '"code":"hole"' "$WORK/verify.json" | wc -l)" -eq 16 ] &&
  grep -q '"omitted":584' "$WORK/verify.json" ||
  fail "frag: not 16 holes reported and 584 omitted"
expect_text "$MNT/frag" "^\(584 more problems of the same kinds not shown\)$"
xfs_io "${refill[@]}" -c fsync "$MNT/frag" >/dev/null
expect "$MNT/frag" 0 ""
extents=$(grep -o '"logical"' "$WORK/verify.json" | wc -l)
frag=$(filefrag "$MNT/frag" | sed 's/.*: \([0-9]*\) extents\? found/\1/')
[ "$extents" -gt 256 ] && [ "$extents" -eq "$frag" ] ||
  fail "frag: $extents extents in the map, filefrag says $frag"
rm "$MNT/frag"

# An active kernel swap file (skipped alone if swapon is refused here).
good "$MNT/swap" 16M
if mkswap "$MNT/swap" >/dev/null 2>&1 && swapon "$MNT/swap" 2>"$WORK/swapon.err"; then
  SWAPS+=("$MNT/swap")
  expect "$MNT/swap" 2 "kernel-swap"
  expect_text "$MNT/swap" "^error \[kernel-swap\]: $MNT/swap: is an active kernel swap area"
  create_refused "is an active kernel swap area: swapoff it first" \
    --force "$MNT/swap" 16M
  swapoff "$MNT/swap"
  SWAPS=()
  expect "$MNT/swap" 0 ""
else
  echo "$TEST_NAME: SKIP case kernel-swap: swapon refused: $(cat "$WORK/swapon.err" 2>/dev/null)"
fi

# Interrupted creation: SIGINT removes the partial file, exit 130.  The
# process is stopped as soon as the file appears so that the signal lands
# mid-write; if creation won the race anyway, say so rather than pass.
rm -rf "${MNT:?}"/*
rc=0
"$NBDSWAP" create "$MNT/interrupted" 192M 2>"$WORK/int.err" &
pid=$!
PIDS+=($pid)
for _ in $(seq 500); do
  [ -e "$MNT/interrupted" ] && break
  sleep 0.01
done
kill -STOP "$pid" 2>/dev/null || true
kill -INT "$pid" 2>/dev/null || true
kill -CONT "$pid" 2>/dev/null || true
wait "$pid" || rc=$?
unset 'PIDS[-1]'
if [ "$rc" -eq 0 ]; then
  echo "$TEST_NAME: SKIP case interrupt: creation finished before the signal"
elif [ "$rc" -ne 130 ]; then
  fail "interrupted create: exit $rc, not 130: $(cat "$WORK/int.err")"
elif [ -e "$MNT/interrupted" ]; then
  fail "interrupted create left the partial file"
elif ! grep -q "interrupted: removed the partial file $MNT/interrupted" \
    "$WORK/int.err"; then
  fail "interrupted create: no message"
else
  echo "$TEST_NAME: ok: interrupted create removed the partial file"
fi

finish
