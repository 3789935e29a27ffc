# nbdswap: the serving cases on xfs, sourced by test-plugin-xfs.sh and
# test-native-xfs.sh so that both servers pass the same test
# (SERVER_KIND: plugin or native, see plugin-functions.sh).  The server
# refuses bad files at start with the verifier's reason, serves a good
# one, and when a reflink copy makes the served file's extents shared,
# SIGHUP re-verification makes writes fail with EIO (reads still work,
# the server keeps running); a block device is served too.

make_fs xfs 320 -q -f -m reflink=1

# Refused at start: a sparse file, an fallocated (unwritten) one.
truncate -s 16M "$MNT/sparse"
chmod 0600 "$MNT/sparse"
refused "$MNT/sparse" "refusing to serve"
grep -q "hole" "$SERVER_LOG" || fail "sparse: no 'hole' in the log"
fallocate -l 16M "$MNT/unwritten"
chmod 0600 "$MNT/unwritten"
refused "$MNT/unwritten" "refusing to serve"
grep -q "unwritten" "$SERVER_LOG" || fail "fallocated: no 'unwritten' in the log"

# A good file is served; re-verification on SIGHUP only (recheck=0).
good "$MNT/swap" 16M
serve "$MNT/swap" recheck=0 || fail "server refused a good file: $(cat "$SERVER_LOG")"
nbd_io "write -P 0x55 0 64k" | grep -q "wrote 65536/65536" ||
  fail "write before the change failed"
kill -HUP "$SERVER_PID"
sleep 1
kill -0 "$SERVER_PID" || fail "SIGHUP stopped the server"
nbd_io "write -P 0x56 64k 4k" | grep -q "wrote 4096/4096" ||
  fail "write after an unchanged re-verification failed"

cp --reflink=always "$MNT/swap" "$MNT/copy"
kill -HUP "$SERVER_PID"
map_changed 20
stop_server

# A block device is served too (no extent checks apply): a loop device
# over a file on this filesystem, with O_DIRECT through the device.
good "$MNT/blk" 16M
BLK=$(losetup -f --show --direct-io=on "$MNT/blk")
EXTRA_LOOPS+=("$BLK")
serve "$BLK" recheck=0 || fail "server refused a block device: $(cat "$SERVER_LOG")"
out=$(nbd_io "write -P 0x61 12288 8k")
echo "$out" | grep -q "wrote 8192/8192" || fail "block device write: $out"
stop_server
cmp <(head -c 20480 "$BLK" | tail -c 8192) <(head -c 8192 /dev/zero | tr '\0' '\141') ||
  fail "the block device does not hold what was written"
