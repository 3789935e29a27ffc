#!/bin/bash
# Other NBD clients read back exactly what they wrote, from both
# servers: nbdcopy and nbdinfo (libnbd), qemu-img and qemu-io (QEMU's
# client), fio's nbd engine with verification.  They all ask for
# structured replies: nbdkit gives them, the native server answers
# NBD_REP_ERR_UNSUP, and each client must go on with simple replies
# (nbdinfo says which it got).  Also: nbdkit --dump-plugin reports the
# version and whether io_uring is usable; make install puts the plugin
# where nbdkit looks for plugins.
set -euo pipefail

plugin=${NBDSWAP_PLUGIN:-$PWD/../plugin/.libs/nbdkit-swapfile-plugin.so}
nbdswap=${NBDSWAP:-$PWD/../server/nbdswap}
for tool in nbdcopy nbdinfo qemu-img qemu-io fio; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done
work=$(mktemp -d "$PWD/tmp-clients-XXXXXX")
pid=
cleanup () {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
fail=0
bad () { echo "FAIL: $*"; fail=1; }

# --dump-plugin
dump=$(nbdkit --dump-plugin "$plugin")
echo "$dump" | grep -qx "swapfile_version=[0-9.]*" || bad "no version in --dump-plugin"
echo "$dump" | grep -qx "swapfile_io_uring=yes" || bad "io_uring not reported usable"

# make install into a staging directory: the plugin lands in nbdkit's
# plugin directory (from nbdkit.pc) under the stage, and loads.
plugindir=$(pkg-config --variable=plugindir nbdkit)
make -s -C .. install DESTDIR="$work/stage" >/dev/null
inst=$work/stage$plugindir/nbdkit-swapfile-plugin.so
[ -f "$inst" ] || bad "make install did not put the plugin in $plugindir"
[ -f "$inst" ] && { nbdkit --dump-plugin "$inst" | grep -q swapfile_version ||
  bad "the installed plugin does not load"; }

# A backing file, served by each server in turn.
dd if=/dev/zero of="$work/swap.img" bs=1M count=64 status=none conv=fsync
chmod 0600 "$work/swap.img"
sock=$work/sock
uri="nbd+unix:///?socket=$sock"
export NBDSWAP_RUNTIME_DIR=$work/run

# start_server NAME: nbdkit with the plugin, or the native server, in
# the foreground on $sock; returns once a client can connect.
start_server ()
{
  rm -f "$sock"
  if [ "$1" = plugin ]; then
    nbdkit -f -U "$sock" "$plugin" file="$work/swap.img" \
      2>"$work/server.log" &
  else
    "$nbdswap" serve --native --foreground --socket "$sock" \
      "$work/swap.img" >"$work/server.log" 2>&1 &
  fi
  pid=$!
  for _ in $(seq 200); do
    [ -S "$sock" ] && nbdinfo --size "$uri" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  bad "$1: the server did not start: $(cat "$work/server.log")"
  return 1
}

# clients NAME: every client against the server running on $sock.
clients ()
{
  local out packets

  # nbdinfo: the reply kind negotiated.
  packets=structured
  [ "$1" = native ] && packets=simple
  out=$(nbdinfo "$uri" 2>&1) || bad "$1: nbdinfo: $out"
  echo "$out" | grep -q "using $packets packets" ||
    bad "$1: nbdinfo did not get $packets replies: $out"

  # nbdcopy: a random 16 MiB (plus an odd tail) in and out.
  head -c $((16 * 1024 * 1024 + 12345)) /dev/urandom >"$work/in.bin"
  truncate -s 64M "$work/in.bin"
  nbdcopy "$work/in.bin" "$uri" || bad "$1: nbdcopy in"
  nbdcopy "$uri" "$work/out.bin" || bad "$1: nbdcopy out"
  cmp "$work/in.bin" "$work/out.bin" || bad "$1: nbdcopy round trip differs"

  # qemu-img: convert in and compare.
  head -c $((8 * 1024 * 1024)) /dev/urandom >"$work/q.bin"
  truncate -s 64M "$work/q.bin"
  qemu-img convert -n -f raw -O raw "$work/q.bin" "$uri" ||
    bad "$1: qemu-img convert"
  qemu-img compare -f raw -F raw "$work/q.bin" "$uri" >/dev/null ||
    bad "$1: qemu-img compare differs"

  # qemu-io: unaligned pattern writes and reads.
  out=$(qemu-io -f raw -c "write -P 0x3c 1000 7777" \
          -c "read -P 0x3c 1000 7777" "$uri" 2>&1 || true)
  echo "$out" | grep -q "read 7777/7777" || bad "$1: qemu-io: $out"

  # fio: random 4 KiB writes at QD16 with crc32c verification on read
  # back.
  fio --name=verify --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k \
      --iodepth=16 --size=16M --verify=crc32c --do_verify=1 \
      --verify_fatal=1 --output="$work/fio.out" >/dev/null 2>&1 ||
    bad "$1: fio verification failed: $(tail -5 "$work/fio.out")"
}

for server in plugin native; do
  start_server "$server" || continue
  clients "$server"
  kill "$pid"
  wait "$pid" || bad "$server: exit status $? after SIGTERM"
  pid=
  echo "test-clients: $server done"
done
[ "$fail" -eq 0 ] && echo "test-clients: ok"
exit "$fail"
