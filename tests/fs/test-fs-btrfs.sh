#!/bin/bash
# nbdswap verify/create on btrfs: the common cases, copy-on-write files,
# compression, inline data, reflink copies and snapshots.
source "${srcdir:-.}/fs/functions.sh"

requires btrfs btrfs-progs
requires chattr e2fsprogs
make_fs btrfs 256 -q -f
create_dir_cases
common_cases
# Room for what follows (btrfs keeps metadata twice on a small image).
rm -rf "${MNT:?}"/*
sync

# nbdswap create sets NOCOW.
good "$MNT/nocow" 16M
lsattr "$MNT/nocow" | grep -q '^[^ ]*C' || fail "create did not set NOCOW"

# A plain written file: copy-on-write.
head -c 16M /dev/zero >"$MNT/cow"
chmod 0600 "$MNT/cow"
expect "$MNT/cow" 2 "btrfs-cow"
expect_text "$MNT/cow" \
  "^error \[btrfs-cow\]: $MNT/cow: is on btrfs without the NOCOW attribute"

# Compression on the file before its data: compressed extents.
: >"$MNT/compressed"
chattr +c "$MNT/compressed"
head -c 16M /dev/zero | dd of="$MNT/compressed" bs=1M iflag=fullblock \
  conv=fsync status=none
chmod 0600 "$MNT/compressed"
expect "$MNT/compressed" 2 "btrfs-compression btrfs-cow encoded"

# A tiny file stored inline in the metadata.
printf 'tiny' >"$MNT/tiny"
chmod 0600 "$MNT/tiny"
sync
expect "$MNT/tiny" 2 "btrfs-cow inline size-too-small size-unaligned"

# A reflink copy of a copy-on-write file shares its extents.
cp --reflink=always "$MNT/cow" "$MNT/cow-copy"
chmod 0600 "$MNT/cow-copy"
expect "$MNT/cow-copy" 2 "btrfs-cow shared"

# A reflink copy between NOCOW files: shared only.
good "$MNT/src" 16M
: >"$MNT/nocow-copy"
chattr +C "$MNT/nocow-copy"
chmod 0600 "$MNT/nocow-copy"
if cp --reflink=always "$MNT/src" "$MNT/nocow-copy" 2>"$WORK/cp.err"; then
  expect "$MNT/nocow-copy" 2 "shared"
  expect "$MNT/src" 2 "shared"
  rm "$MNT/nocow-copy"
  sync
  expect "$MNT/src" 0 ""
else
  fail "cp --reflink of a NOCOW file: $(cat "$WORK/cp.err")"
fi

# A snapshot of the subvolume holding a good file.
btrfs -q subvolume create "$MNT/vol" >/dev/null
good "$MNT/vol/swap" 16M
expect "$MNT/vol/swap" 0 ""
btrfs -q subvolume snapshot "$MNT/vol" "$MNT/snap" >/dev/null
expect "$MNT/vol/swap" 2 "shared"
expect_text "$MNT/vol/swap" "share their disk blocks with another file"

# Compression from the mount option on a copy-on-write file: compressed
# extents, but no compression flag on the file itself.
mount -o remount,compress=zlib "$MNT"
head -c 8M /dev/zero >"$MNT/mount-compressed"
chmod 0600 "$MNT/mount-compressed"
expect "$MNT/mount-compressed" 2 "btrfs-cow encoded"
expect_text "$MNT/mount-compressed" \
  "^error \[encoded\]: $MNT/mount-compressed: bytes 0-8388607 \(8\.0 MiB\) are compressed"
# nbdswap create on that mount still makes a fit file (NOCOW wins).
good "$MNT/under-compress" 8M
expect "$MNT/under-compress" 0 ""

finish
