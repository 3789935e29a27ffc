#!/bin/bash
# nbdswap status, attached side, on a fake /sys/block and /proc/swaps
# (NBDSWAP_SYSROOT): this host has no nbd devices to connect.  A
# connected device (pid attribute), one under dm-crypt swapping through
# /dev/mapper, one swapping directly, one not connected.
source "$(dirname "$0")/functions.sh"

root=$WORK/root
mkdir -p "$root/sys/block/nbd0/holders/dm-3" "$root/sys/block/nbd1" \
  "$root/sys/block/nbd10" "$root/sys/block/dm-3/dm" "$root/proc"
echo 4242 >"$root/sys/block/nbd0/pid"
echo 2097152 >"$root/sys/block/nbd0/size"
echo 43:0 >"$root/sys/block/nbd0/dev"
echo swap_nbd0 >"$root/sys/block/dm-3/dm/name"
echo 253:3 >"$root/sys/block/dm-3/dev"
echo 4243 >"$root/sys/block/nbd10/pid"
echo 8192 >"$root/sys/block/nbd10/size"
echo 8192 >"$root/sys/block/nbd1/size"
printf 'Filename\tType\tSize\tUsed\tPriority\n' >"$root/proc/swaps"
printf '/dev/mapper/swap_nbd0 partition\t1048572\t2048\t10\n' >>"$root/proc/swaps"
printf '/dev/nbd10 partition\t4092\t0\t-2\n' >>"$root/proc/swaps"
export NBDSWAP_SYSROOT=$root

expect_status 0 "^/dev/nbd0 +4242 +1.0 GiB /dev/mapper/swap_nbd0 +1024.0 MiB +2.0 MiB +10$" \
  status "$WORK/none.img"
expect_status 0 "^/dev/nbd10 +4243 +4.0 MiB /dev/nbd10 " status "$WORK/none.img"
nbdswap status "$WORK/none.img" | grep -q nbd1\  && fail "unconnected nbd1 listed"
nbdswap status --json "$WORK/none.img" >"$WORK/s.json"
python3 - "$WORK/s.json" <<'PY' || fail "status --json attached: $(cat "$WORK/s.json")"
import json, sys
a = json.load(open(sys.argv[1]))["attached"]
assert [d["device"] for d in a] == ["/dev/nbd0", "/dev/nbd10"], a
assert a[0]["holder"] == "dm-3" and a[0]["size"] == 1 << 30, a[0]
assert a[0]["swap"] == {"name": "/dev/mapper/swap_nbd0", "size": 1048572 * 1024,
                        "used": 2048 * 1024, "priority": 10}, a[0]
assert a[1]["swap"]["priority"] == -2 and a[1]["holder"] is None, a[1]
PY
nbdswap status --prometheus "$WORK/m.prom" "$WORK/none.img"
grep -qx 'nbdswap_swap_used_bytes{device="/dev/nbd0"} 2097152' "$WORK/m.prom" ||
  fail "prometheus swap_used: $(cat "$WORK/m.prom")"
grep -qx 'nbdswap_device_size_bytes{device="/dev/nbd10"} 4194304' "$WORK/m.prom" ||
  fail "prometheus device size"
expect_status 3 "cannot write" status --prometheus "$WORK/nodir/m.prom"
finish
