# shellcheck shell=bash
# nbdswap VM tests: what the guest kernel does with a direct write whose
# memory is 512-aligned but not page-aligned (not in "all": it tests the
# kernel, and proves that the inode_dio_wait probe of the swap scenarios
# can see a wait).  fio writes 4 KiB at random offsets, QD32, to a file on
# ext4, once from page-aligned buffers and once from buffers 512 bytes
# into a page.  Linux 6.1's ext4 calls the second kind unaligned I/O:
# exclusive inode lock and inode_dio_wait on every write (seen: 17781
# waits, 1771 IOPS against 4834 with none).  Newer kernels (6.18 on the
# development host) let such overwrites share the lock.
# Sourced by guest-scenario after guest-lib.sh.

# fio with buffers $1 bytes past a page; check $2.
dio_align_run ()
{
  local log=$RESULTS/fio-$1.log probe iops
  dio_wait_probe
  probe=$?
  fio --name=dio-align --filename="$SCRATCH/dio-align.img" --rw=randwrite \
    --bs=4k --direct=1 --ioengine=io_uring --iodepth=32 --runtime=10 \
    --time_based --iomem_align="$1" --size=128M > "$log" 2>&1
  iops=$(grep -m 1 -o 'IOPS=[^,]*' "$log")
  if [ "$probe" != 0 ]; then
    fail "$2" "the inode_dio_wait kprobe could not be set up"
    return
  fi
  dio_wait_count
  case "$1,$DIO_WAIT_N" in
    0,0) pass "$2" "no inode_dio_wait, $iops" ;;
    0,*) fail "$2" "page-aligned buffers, yet $DIO_WAIT_N inode_dio_wait: $DIO_WAIT_FIRST" ;;
    *,0) fail "$2" "no inode_dio_wait seen ($iops): the probe is blind, or this kernel no longer serializes such writes" ;;
    *) pass "$2" "$DIO_WAIT_N inode_dio_wait, $iops" ;;
  esac
}

scenario_dio-align ()
{
  check_cmd ext4-mkfs fs_make ext4 || return
  check_cmd file dd if=/dev/zero of="$SCRATCH/dio-align.img" bs=1M count=128 \
    oflag=direct status=none || return
  dio_align_run 0 buffers-page-aligned
  dio_align_run 512 buffers-512-into-a-page
  umount "$SCRATCH"
}
