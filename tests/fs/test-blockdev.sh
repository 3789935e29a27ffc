#!/bin/bash
# Block devices as exports (the fleet case: LVM logical volumes, RBD,
# iSCSI LUNs), with both servers (the plugin under nbdkit, serve's
# native server): refused with its cause while mounted (also through a
# partition), swapped on, under a device-mapper device (an LVM physical
# volume) or held by another server (also through another device node),
# with logical blocks larger than a page or a size that is not whole
# pages; a fit device served with random data written and read back
# exactly.  On loop devices always, and on logical volumes of a
# loop-backed volume group where the kernel has device-mapper.
source "${srcdir:-.}/fs/functions.sh"
source "${srcdir:-.}/fs/plugin-functions.sh"

[ "$(id -u)" -eq 0 ] || skip "needs root (loop devices, mount, swapon)"
[ -x "$NBDSWAP" ] || { echo "$NBDSWAP not built" >&2; exit 99; }
requires losetup util-linux
requires mkfs.ext4 e2fsprogs
requires nbdcopy libnbd-bin
WORK=$(mktemp -d /var/tmp/nbdswap-bdev.XXXXXX)

VG=
PV=
MY_MOUNTS=()

# Unmounts what the test mounted and removes its volume group, before
# functions.sh detaches the loop devices.
test_cleanup ()
{
  local m
  for m in "${MY_MOUNTS[@]}"; do
    if mountpoint -q "$m"; then
      umount "$m" || umount -l "$m"
    fi
  done
  [ -n "$VG" ] && vgremove -q -f --devices "$PV" "$VG" >/dev/null
}

# new_loop NAME SIZE [LOSETUP OPTIONS...]: a loop device over a new image
# $WORK/NAME.img, in DEV.
new_loop ()
{
  local img=$WORK/$1.img
  truncate -s "$2" "$img"
  shift 2
  DEV=$(losetup -f --show --direct-io=on "$@" "$img" 2>"$WORK/losetup.err") ||
    return 1
  EXTRA_LOOPS+=("$DEV")
}

# refused_by_both DEV TEXT: the plugin and the native server refuse DEV,
# saying TEXT.
refused_by_both ()
{
  local kind
  for kind in plugin native; do
    SERVER_KIND=$kind refused "$1" "$2"
    echo "$TEST_NAME: ok: $kind refuses $1: $2"
  done
}

# served_exactly DEV: each server serves DEV; random data over the whole
# export is written and read back through NBD, then read from DEV itself.
served_exactly ()
{
  local dev=$1 kind size uri
  size=$(blockdev --getsize64 "$dev")
  for kind in plugin native; do
    head -c "$size" /dev/urandom >"$WORK/in.bin"
    SERVER_KIND=$kind serve "$dev" ||
      { fail "$kind refused a fit $dev: $(cat "$SERVER_LOG")"; continue; }
    uri="nbd+unix:///?socket=$SOCK"
    # The native server binds its socket before it verifies.
    for _ in $(seq 100); do
      nbdinfo --size "$uri" >/dev/null 2>&1 && break
      sleep 0.1
    done
    nbdcopy "$WORK/in.bin" "$uri" || fail "$kind: nbdcopy to $dev failed"
    rm -f "$WORK/out.bin"
    nbdcopy "$uri" "$WORK/out.bin" || fail "$kind: nbdcopy from $dev failed"
    cmp -s "$WORK/in.bin" "$WORK/out.bin" ||
      fail "$kind: $dev read back through NBD differs"
    stop_server
    # Not the filesystem of its node (devtmpfs) nor "0 extents".
    grep -q "$dev: fit to serve: block device, " "$SERVER_LOG" ||
      fail "$kind: no verdict line naming $dev a block device: $(grep 'fit to serve' "$SERVER_LOG")"
    cmp -s "$WORK/in.bin" "$dev" ||
      fail "$kind: $dev itself does not hold what was written"
    # Every device here is a loop device or made of one (LVM on one),
    # whose I/O goes to a file, and the nodes made with mknod are on
    # this test's filesystem, whose journal their times go through: its
    # I/O can wait for the pool this machine's swap-outs hold.  Each
    # server says so once, for this unix-socket client, with the reason
    # (the converse, a disk by its node in /dev: the VM's pressure-bdev).
    case $dev in
      /dev/loop*) why="is a loop device, whose I/O goes to a file: its I/O can wait for the kernel pool that this machine's swap-outs hold" ;;
      /dev/*) why="is a block device over loop[0-9]*, whose I/O goes to a file: its I/O can wait for the kernel pool that this machine's swap-outs hold" ;;
      *) why="is a block device node on [a-z0-9]*, where every read and write updates the node's times: its I/O can wait for the kernel pool that this machine's swap-outs hold" ;;
    esac
    n=$(grep -c "warning: .*export '': $dev $why" "$SERVER_LOG" || :)
    [ "$n" = 1 ] ||
      fail "$kind: $dev: the shared-pool warning $n times, want 1: $(grep -i 'warning' "$SERVER_LOG")"
    # And the native server keeps io_uring's workers for this client
    # (serve --file-io auto issues inline only for a device of its own
    # pool: the VM's native-pressure-1m-bdev).
    if [ "$kind" = native ] && ! grep -q "file operations through io_uring's workers (the client may be this machine: a unix socket)" "$SERVER_LOG"; then
      fail "native: $dev: not through the workers for a unix-socket client: $(grep 'file operations' "$SERVER_LOG")"
    fi
    echo "$TEST_NAME: ok: $kind serves $dev: $size bytes written and read back; $(grep -o "is a [a-z ]*device[^,]*" "$SERVER_LOG" | head -1)"
  done
}

# device_cases KIND FIT MOUNTED SWAP SERVED: the cases every kind of
# device shares, each on its own device.
device_cases ()
{
  local kind=$1 fit=$2 mounted=$3 swap=$4 served=$5 mnt=$WORK/mnt-$1
  local alias=$WORK/alias-$1 first

  # Mounted.
  mkfs.ext4 -q -F "$mounted" >/dev/null
  mkdir "$mnt"
  mount "$mounted" "$mnt" || fail "mount $mounted"
  MY_MOUNTS+=("$mnt")
  refused_by_both "$mounted" "$mounted: is mounted on $mnt (ext4): unmount it first"
  expect "$mounted" 2 "device-in-use"
  umount "$mnt"

  # Swapped on by the kernel.
  mkswap -q "$swap" >/dev/null
  if swapon "$swap" 2>"$WORK/swapon.err"; then
    SWAPS+=("$swap")
    refused_by_both "$swap" "$swap: is an active kernel swap area ("
    expect "$swap" 2 "kernel-swap"
    swapoff "$swap"
  else
    fail "swapon $swap: $(cat "$WORK/swapon.err")"
  fi

  # Held by another server, through its own node or another node of the
  # same device (the owner lock, on the node's inode, cannot see that).
  SERVER_KIND=native serve "$served" ||
    fail "the native server refused $served: $(cat "$SERVER_LOG")"
  first=$SERVER_PID
  wait_log "native: serving $served" 20 ||
    fail "the native server did not start on $served: $(cat "$SERVER_LOG")"
  mknod "$alias" b "$((0x$(stat -L -c %t "$served")))" \
    "$((0x$(stat -L -c %T "$served")))"
  SERVER_KIND=plugin refused "$alias" \
    "$alias: is held exclusively by another process (PID "
  SERVER_KIND=plugin refused "$served" \
    "$served: is held exclusively by another process (PID "
  grep -q "(PID $first, " "$SERVER_LOG" ||
    fail "the refusal does not name the first server, PID $first: $(cat "$SERVER_LOG")"
  echo "$TEST_NAME: ok: $kind: a second server is refused: $(grep -o 'is held.*' "$SERVER_LOG" | head -1)"
  SERVER_PID=$first
  stop_server

  served_exactly "$fit"
  # Through a node of its own on this test's filesystem (not devtmpfs):
  # still a block device, with the block layer's bio pool.
  mknod "$WORK/node-$1" b "$((0x$(stat -L -c %t "$fit")))" \
    "$((0x$(stat -L -c %T "$fit")))"
  chmod 0600 "$WORK/node-$1"
  served_exactly "$WORK/node-$1"
}

# Loop devices.
new_loop fit 32M -b 4096 || skip "cannot attach a loop device: $(cat "$WORK/losetup.err")"
fit=$DEV
new_loop mounted 32M && mounted=$DEV
new_loop swap 32M && swap=$DEV
new_loop served 32M && served=$DEV
device_cases loop "$fit" "$mounted" "$swap" "$served"

# A partition of the device mounted: an MBR with one partition (sectors
# 2048 to 67583), the loop device scanned for partitions (-P).
new_loop parted 64M -P
printf '\x00\x00\x00\x00\x83\x00\x00\x00\x00\x08\x00\x00\x00\x00\x01\x00' |
  dd of="$DEV" bs=1 seek=446 conv=notrunc status=none
printf '\x55\xaa' | dd of="$DEV" bs=1 seek=510 conv=notrunc status=none
blockdev --rereadpt "$DEV"
if [ -b "${DEV}p1" ]; then
  mkfs.ext4 -q -F "${DEV}p1" >/dev/null
  mkdir "$WORK/mnt-part"
  mount "${DEV}p1" "$WORK/mnt-part" || fail "mount ${DEV}p1"
  MY_MOUNTS+=("$WORK/mnt-part")
  refused_by_both "$DEV" \
    "$DEV: its partition $(basename "$DEV")p1 is mounted on $WORK/mnt-part (ext4)"
  expect "$DEV" 2 "device-in-use"
  umount "$WORK/mnt-part"
else
  echo "$TEST_NAME: SKIP case mounted partition: the kernel found no" \
    "partition on ${DEV} (no MBR partition support?)"
fi

# Logical blocks larger than a page: a swapped page would be a
# read-modify-write.
if new_loop lbs8k 32M -b 8192; then
  refused_by_both "$DEV" \
    "$DEV: logical block size 8192 is larger than a 4 KiB swap page"
else
  echo "$TEST_NAME: SKIP case 8 KiB logical blocks: $(cat "$WORK/losetup.err")"
fi

# A size that is not whole pages (a loop device is whole 512-byte
# sectors).
new_loop odd $((1048576 + 512))
refused_by_both "$DEV" "$DEV: size 1049088 is not a whole number of 4 KiB pages: resize the device"

# Logical volumes of a loop-backed volume group, where device-mapper is
# there (no udev needed: libdevmapper makes the nodes itself).
lvm_missing=
if ! command -v lvcreate >/dev/null; then
  lvm_missing="lvcreate not found (install the Debian package lvm2)"
elif ! grep -qw device-mapper /proc/misc; then
  lvm_missing="the kernel has no device-mapper"
fi
if [ -n "$lvm_missing" ]; then
  echo "$TEST_NAME: SKIP cases on LVM logical volumes: $lvm_missing"
else
  export DM_DISABLE_UDEV=1 LVM_SUPPRESS_FD_WARNINGS=1
  new_loop pv 192M
  PV=$DEV
  pvcreate -q --devices "$PV" "$PV" >/dev/null
  vgcreate -q --devices "$PV" "nbdswaptest$$" "$PV" >/dev/null &&
    VG=nbdswaptest$$
  for lv in fit mounted swap served; do
    lvcreate -q -y -W n -Z n --devices "$PV" -L 32M -n "$lv" "$VG" \
      >/dev/null || fail "lvcreate $lv"
  done
  device_cases lv "/dev/$VG/fit" "/dev/$VG/mounted" "/dev/$VG/swap" \
    "/dev/$VG/served"
  # The physical volume under them: device-mapper sits on it.
  refused_by_both "$PV" "$PV: is in use by dm-"
  expect "$PV" 2 "device-in-use"
fi

finish
