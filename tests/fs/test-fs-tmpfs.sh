#!/bin/bash
# nbdswap on tmpfs: no FIEMAP, so no file there can be verified (and swap
# on a filesystem that itself lives in swappable memory makes no sense).
source "${srcdir:-.}/fs/functions.sh"

make_tmpfs 32

# create makes the file but cannot make it fit: exit 2 with the report.
rc=0
"$NBDSWAP" create --quiet "$MNT/swap" 8M 2>"$WORK/create.err" || rc=$?
[ "$rc" -eq 2 ] || fail "create on tmpfs: exit $rc, not 2"
grep -q "^error \[no-extent-map\]: $MNT/swap: the filesystem (tmpfs) cannot report the file's extents" \
  "$WORK/create.err" || fail "create on tmpfs: $(cat "$WORK/create.err")"
expect "$MNT/swap" 2 "no-extent-map"
grep -q '"extents_checked":false' "$WORK/verify.json" ||
  fail "tmpfs: extents_checked is not false"

finish
