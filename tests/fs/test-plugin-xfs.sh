#!/bin/bash
# The plugin on xfs: it refuses bad files at start with the verifier's
# reason, serves a good one, and when a reflink copy makes the served
# file's extents shared, SIGHUP re-verification makes writes fail with
# EIO (reads still work, the server keeps running).
source "${srcdir:-.}/fs/functions.sh"
source "${srcdir:-.}/fs/plugin-functions.sh"

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
wait_log "extent map CHANGED while serving" 20 ||
  fail "the changed map was not reported: $(tail -5 "$SERVER_LOG")"
out=$(nbd_io "write -P 0x57 0 4k")
echo "$out" | grep -q "Input/output error" ||
  fail "write after the change did not fail with EIO: $out"
out=$(nbd_io "read -P 0x55 0 64k")
echo "$out" | grep -q "read 65536/65536" ||
  fail "read after the change failed: $out"
stop_server
finish
