#!/bin/bash
# The README's first command, ./build.sh run, on its built-in default: it
# makes the default backing file with nbdswap create, serves it, prints
# the NBD URI and the attach command, really serves (a write and a read
# back through the URI), and stops cleanly on Ctrl-C (SIGINT).
set -euo pipefail

top=$(cd "${srcdir:-.}/.." && pwd)
bdir=$(cd .. && pwd)
command -v qemu-io >/dev/null || { echo "SKIP: qemu-io (qemu-utils) missing"; exit 77; }
work=$(mktemp -d "$PWD/tmp-run-XXXXXX")
pid=
cleanup () {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# A build directory of its own, sharing the built binaries, so that the
# default file and socket land in the test's directory.
mkdir -p "$work/plugin/.libs" "$work/server"
ln -s "$bdir/plugin/.libs/nbdkit-swapfile-plugin.so" "$work/plugin/.libs/"
ln -s "$bdir/server/nbdswap" "$work/server/"

NBDSWAP_BUILD_DIR=$work setsid "$top/build.sh" run >"$work/out" 2>&1 &
pid=$!
for _ in $(seq 300); do
  grep -q "NBD URI" "$work/out" && [ -S "$work/nbdswap.sock" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/out"; echo "FAIL: exited"; exit 1; }
  sleep 0.1
done
cat "$work/out"
fail=0
grep -q "NBD URI:  nbd+unix:///?socket=$work/nbdswap.sock" "$work/out" ||
  { echo "FAIL: no NBD URI line"; fail=1; }
grep -q "nbd-client -unix $work/nbdswap.sock /dev/nbd0 -b 4096" "$work/out" ||
  { echo "FAIL: no nbd-client command"; fail=1; }
[ "$(stat -c %s "$work/default-swap.img")" = $((256 << 20)) ] ||
  { echo "FAIL: default file is not 256 MiB"; fail=1; }
sleep 0.5
out=$(qemu-io -f raw -c "write -P 0x5a 1M 64k" -c "read -P 0x5a 1M 64k" \
        "nbd+unix:///?socket=$work/nbdswap.sock" 2>&1 || true)
echo "$out"
echo "$out" | grep -q "read 65536/65536" || { echo "FAIL: I/O through the URI"; fail=1; }
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
pid=
[ "$rc" -eq 0 ] || { echo "FAIL: exit status $rc after Ctrl-C"; fail=1; }
[ "$fail" -eq 0 ] && echo "test-run: ok"
exit "$fail"
