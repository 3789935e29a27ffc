#!/bin/bash
# The native server (nbdswap serve's default) on xfs: the serving cases
# of serve-xfs-cases.sh, the same as the plugin's; then the plugin's
# recheck= parameter after "--" applies to it, and its periodic
# re-verification (no SIGHUP) finds that a reflink copy made the served
# file's extents shared: writes then fail with EIO, reads still work and
# the server keeps running.
source "${srcdir:-.}/fs/functions.sh"
source "${srcdir:-.}/fs/plugin-functions.sh"
SERVER_KIND=native
source "${srcdir:-.}/fs/serve-xfs-cases.sh"

rm -f "$MNT/copy" "$MNT/swap"
good "$MNT/swap" 16M
serve "$MNT/swap" recheck=1 ||
  fail "the native server refused a good file: $(cat "$SERVER_LOG")"
# The socket is bound before the server verifies and starts: wait for it.
wait_log "native: recheck=1 " 20 ||
  fail "recheck=1 did not reach the server: $(cat "$SERVER_LOG")"
nbd_io "write -P 0x55 0 64k" | grep -q "wrote 65536/65536" ||
  fail "write before the change failed"

cp --reflink=always "$MNT/swap" "$MNT/copy"
map_changed 10
kill -0 "$SERVER_PID" || fail "the server stopped after the change"
stop_server
finish
