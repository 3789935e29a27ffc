#!/bin/bash
# The plugin on btrfs: it refuses a copy-on-write file at start; it serves
# a NOCOW file made by nbdswap create; a snapshot taken while serving
# shares the file's extents, and the periodic re-verification (recheck=1,
# no signal) makes writes fail with EIO.
source "${srcdir:-.}/fs/functions.sh"
source "${srcdir:-.}/fs/plugin-functions.sh"

make_fs btrfs 320 -q -f
requires btrfs btrfs-progs

# A plain (copy-on-write) file is refused.
head -c 16M /dev/zero >"$MNT/cow"
sync
chmod 0600 "$MNT/cow"
refused "$MNT/cow" "refusing to serve"
grep -q "btrfs-cow\|NOCOW" "$SERVER_LOG" || fail "cow: no NOCOW reason in the log"

btrfs subvolume create "$MNT/vol" >/dev/null
good "$MNT/vol/swap" 16M
serve "$MNT/vol/swap" recheck=1 ||
  fail "server refused a good file: $(cat "$SERVER_LOG")"
nbd_io "write -P 0x55 0 64k" | grep -q "wrote 65536/65536" ||
  fail "write before the snapshot failed"
sleep 2
nbd_io "write -P 0x56 64k 4k" | grep -q "wrote 4096/4096" ||
  fail "write after unchanged re-verifications failed"

btrfs subvolume snapshot "$MNT/vol" "$MNT/snap" >/dev/null
wait_log "extent map CHANGED while serving" 20 ||
  fail "the snapshot was not noticed: $(tail -5 "$SERVER_LOG")"
out=$(nbd_io "write -P 0x57 0 4k")
echo "$out" | grep -q "Input/output error" ||
  fail "write after the snapshot did not fail with EIO: $out"
stop_server
finish
