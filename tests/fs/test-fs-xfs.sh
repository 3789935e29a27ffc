#!/bin/bash
# nbdswap verify/create on xfs with reflink: the common cases and shared
# extents from cp --reflink.
source "${srcdir:-.}/fs/functions.sh"

# mkfs.xfs refuses filesystems under 300 MiB.
make_fs xfs 320 -q -f -m reflink=1
create_dir_cases
common_cases

# A reflink copy: both the copy and the original share their blocks.
good "$MNT/orig" 16M
cp --reflink=always "$MNT/orig" "$MNT/copy"
chmod 0600 "$MNT/copy"
expect "$MNT/copy" 2 "shared"
expect "$MNT/orig" 2 "shared"
expect_text "$MNT/orig" \
  "^error \[shared\]: $MNT/orig: bytes 0-16777215 \(16\.0 MiB\) share their disk blocks"
# Once the copy is gone the original is fit again (the recheck after
# syncfs sees that the blocks are no longer shared).
rm "$MNT/copy"
expect "$MNT/orig" 0 ""

finish
