# shellcheck shell=bash
# nbdswap VM tests: attach --encrypt --integrity (issue 14, part 2).
# dm-integrity (direct mode, no journal) under dm-crypt with
# authenc(hmac(sha256),xts(aes)) and a random IV per 4 KiB sector, built
# by attach from device-mapper tables alone.  First, with nothing
# tampered, the workload verifies every word.  Then a second workload
# stamps its pages and holds them swapped out while bytes are flipped in
# the backing file on the server's side: when it verifies, the pages that
# come back changed must reach it as an error (SIGBUS, the kernel naming
# the sector), never as wrong data.  Sourced by guest-scenario after
# scenario-attach.sh.

# The dm stack under swap: swap is the crypt mapping, whose table is
# AEAD with integrity tags, over an integrity device over /dev/nbd0.
integrity_stack_checks ()
{
  local crypt integ
  # Without --showkeys dmsetup prints no key.
  crypt=$(dmsetup table nbdswap-nbd0)
  integ=$(dmsetup table nbdswap-nbd0-integrity)
  log "crypt: $crypt"
  log "integrity: $integ"
  if grep -qE '^/dev/(dm-|mapper/nbdswap-nbd0)' /proc/swaps &&
     [[ $crypt == *"authenc(hmac(sha256),xts(aes))-random"*"integrity:48:aead"*"sector_size:4096"* ]] &&
     [[ $integ == *" integrity "*" 48 D "*"block_size:4096"* ]]; then
    pass integrity-stack "swap on dm-crypt AEAD over dm-integrity (D, 48-byte tags, 4 KiB)"
  else
    fail integrity-stack "swaps: $(tail -n +2 /proc/swaps | tr '\n' ' '); integrity: $integ"
  fi
}

# Attach itself must read no sector it has not written: one never
# written since the integrity device was made has no valid tag, and its
# read fails (mkswap's libblkid probe, near the end of the device, did
# so on every attach).  The kernel log was cleared just before attach.
integrity_attach_log_checks ()
{
  local bad
  bad=$(dmesg | grep -iE 'AEAD ERROR|checksum failed|I/O error|integrity.*(error|fail)')
  if [ -z "$bad" ]; then
    pass integrity-attach-clean "no integrity or I/O error logged by attach"
  else
    fail integrity-attach-clean "$(echo "$bad" | head -n 3 | tr '\n' ' ')"
  fi
}

# Flip one byte in $1 non-zero 4 KiB blocks spread evenly over the
# backing file past its first MiB (written swap pages, or their tags):
# the held workload's pages are somewhere in the swap area, so the flips
# must cover all of it.
integrity_tamper ()
{
  python3 - "$BACKING" "$1" <<'EOF'
import os, sys
path, want = sys.argv[1], int(sys.argv[2])
fd = os.open(path, os.O_RDWR)
size = os.fstat(fd).st_size
flipped = []
off = 1 << 20
stride = max(4096, ((size - off) // want) & ~4095)
while off < size and len(flipped) < want:
    block = os.pread(fd, 4096, off)
    if block.count(0) < 4096:
        b = bytearray(os.pread(fd, 1, off + 100))
        os.pwrite(fd, bytes([b[0] ^ 0x5a]), off + 100)
        flipped.append(off)
    off += stride
os.fsync(fd)
print("flipped %d blocks, the first at %d" % (len(flipped), flipped[0] if flipped else -1))
EOF
}

scenario_integrity ()
{
  local wpid rc out
  attach_setup || return
  dmesg -c > /dev/null
  check_cmd attach-integrity "$NBDSWAP_CMD" attach "$ATTACH_SOCK" \
    --encrypt --integrity || { server_stop; return; }
  integrity_stack_checks
  integrity_attach_log_checks
  workload_run integrity
  workload_checks integrity
  # Pages out, bytes changed under them, then read back.
  cgroup_setup || { fail integrity-cgroup; return; }
  SWAP_WORKLOAD_HOLD=1 bash -c 'echo $$ > "$0" && exec "$@"' \
    /sys/fs/cgroup/workload/cgroup.procs "$VM_WORKLOAD" 384 \
    > "$RESULTS/workload-tamper.log" 2>&1 &
  wpid=$!
  for _ in $(seq 600); do
    grep -q stamped "$RESULTS/workload-tamper.log" && break
    sleep 0.5
  done
  dmesg -c > /dev/null
  out=$(integrity_tamper 512)
  log "tamper: $out"
  kill -USR1 "$wpid"
  wait "$wpid"
  rc=$?
  log "tampered workload: exit $rc: $(tail -n 3 "$RESULTS/workload-tamper.log" | tr '\n' ' ')"
  if [ "$rc" = $((128 + 7)) ]; then
    pass integrity-tamper-sigbus "the workload got SIGBUS ($out)"
  elif [ "$rc" = 1 ]; then
    fail integrity-tamper-sigbus "WRONG DATA reached the workload: $(grep -m 2 MISMATCH "$RESULTS/workload-tamper.log" | tr '\n' ' ')"
  else
    fail integrity-tamper-sigbus "exit $rc, want SIGBUS (135) ($out)"
  fi
  if dmesg | grep -qiE 'integrity.*(AEAD ERROR|checksum failed)|AEAD ERROR'; then
    pass integrity-tamper-logged "$(dmesg | grep -m 1 -iE 'AEAD ERROR|checksum failed')"
  else
    fail integrity-tamper-logged "no integrity error in the kernel log: $(dmesg | tail -n 3 | tr '\n' ' ')"
  fi
  detach_checks
  server_stop
}
