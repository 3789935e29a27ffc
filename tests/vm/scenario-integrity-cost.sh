# shellcheck shell=bash
# nbdswap VM tests: what --integrity costs (issue 14, part 2; not in "all":
# about 8 minutes a round, run it with VM_TIMEOUT raised; docs/benchmarks.md,
# "The cost of --integrity").  One backing file and one server (`serve
# --native` on a unix socket); in each of VM_KBENCH_ROUNDS rounds, three
# swap stacks on /dev/nbd0, one after the other (so that a slow minute of
# the host hits all alike):
#
#   encrypt  `attach --encrypt`: dm-crypt aes-xts-plain64, no tags
#   hmac     `attach --encrypt --integrity` (today's choice):
#            authenc(hmac(sha256),xts(aes)) with a random IV per 4 KiB
#            sector, 48-byte tags (16 IV + 32 HMAC) on dm-integrity
#   gcm      the alternative: a plain attach, then the same stack built
#            here with dmsetup but with gcm(aes) and a random 96-bit IV,
#            28-byte tags (12 IV + 16 GCM tag), what cryptsetup calls
#            aes-gcm-random; under attach's names, so detach takes it down
#
# The verifying swap workload (VM_WORKLOAD_MIB in its cgroup); then on
# the top device with swap off: a fill (dd, 1 MiB direct writes over its
# first INTEG_FIO_MIB, so that every read below finds a tag), fio
# (io_uring, direct, VM_KBENCH_RUNTIME s each, within the filled part)
# 4K random read and write at QD1 and QD32 and 128K sequential read QD4;
# detach.  No I/O error in the kernel log from the workload on.  The fio and record helpers are kbench's
# (scenario-kbench.sh): raw figures in /results/kbench.tsv and
# /results/kbench/*.json, medians in /results/integrity-cost.md
# (integrity-cost.py).

INTEG_CONFIGS="encrypt hmac gcm"
INTEG_JOBS="4k-randread-qd1:randread:4k:1 4k-randread-qd32:randread:4k:32
4k-randwrite-qd1:randwrite:4k:1 4k-randwrite-qd32:randwrite:4k:32
128k-seqread-qd4:read:128k:4"
INTEG_FIO_MIB=256
INTEG_TOP=/dev/mapper/nbdswap-nbd0

# Build on /dev/nbd0 (attached, not swap) the gcm stack: dm-integrity in
# direct mode with 28-byte tags under dm-crypt capi:gcm(aes)-random with
# a random 256-bit key, as attach builds its own (server/attach/
# integrity.c): zero the start so that the kernel formats a superblock,
# load one block to learn how many sectors the device provides, load
# that; the crypt device's first and last 2 MiB written (an unwritten
# sector fails its tag, and mkswap, which this stack is formatted with,
# reads both ends: it rewrites the first 1024 bytes of a 4 KiB sector,
# and libblkid probes as far as 1.5 MiB before the end; attach writes
# its own header and reads nothing).
integ_gcm_stack ()
{
  local iname=nbdswap-nbd0-integrity nr mm key
  local itable="integrity /dev/nbd0 0 28 D 1 block_size:4096"
  export DM_DISABLE_UDEV=1        # no udev in the guest
  modprobe dm_integrity && modprobe dm_crypt || return 1
  dd if=/dev/zero of=/dev/nbd0 bs=64k count=1 oflag=direct conv=fsync \
     status=none || return 1
  echo "0 8 $itable" | dmsetup create --noudevsync "$iname" || return 1
  nr=$(dmsetup status "$iname" | awk '{ print $5 }')
  echo "0 $nr $itable" | dmsetup reload --noudevsync "$iname" || return 1
  dmsetup resume --noudevsync "$iname" || return 1
  mm=$(dmsetup info -c --noheadings -o major,minor "$iname" | tr -d ' ')
  key=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
  echo "0 $nr crypt capi:gcm(aes)-random $key 0 $mm 0 2 integrity:28:aead sector_size:4096" |
    dmsetup create --noudevsync "${INTEG_TOP##*/}" || return 1
  dd if=/dev/zero of="$INTEG_TOP" bs=4k count=512 oflag=direct conv=fsync \
     status=none || return 1
  dd if=/dev/zero of="$INTEG_TOP" bs=4k count=512 seek=$((nr / 8 - 512)) \
     oflag=direct conv=fsync status=none
}

# Bring up configuration KB_CONFIG on /dev/nbd0, swapping on its top
# device INTEG_TOP.
integ_stack ()
{
  case "$KB_CONFIG" in
    encrypt) "$NBDSWAP_CMD" attach "$ATTACH_SOCK" /dev/nbd0 --encrypt ;;
    hmac) "$NBDSWAP_CMD" attach "$ATTACH_SOCK" /dev/nbd0 --encrypt --integrity ;;
    gcm)
      "$NBDSWAP_CMD" attach "$ATTACH_SOCK" /dev/nbd0 && swapoff /dev/nbd0 &&
        integ_gcm_stack && mkswap "$INTEG_TOP" && swapon "$INTEG_TOP" ;;
  esac
}

# The tables of the stack, keys left out (dmsetup prints none without
# --showkeys), in the log.
integ_log_tables ()
{
  log "$KB_CONFIG crypt: $(dmsetup table "${INTEG_TOP##*/}")"
  log "$KB_CONFIG integrity: $(dmsetup table nbdswap-nbd0-integrity 2>/dev/null)"
}

# One configuration of one round (KB_ROUND, KB_CONFIG): stack, the swap
# workload, swapoff, fill, fio, detach.  The workload first, so that
# swap needs no second mkswap after the fill: mkswap's probing (libblkid)
# reads sectors never written, and with integrity each such read is an
# error in the kernel log.  On a failure the stack is taken down
# as far as it came up, so that the next configuration finds /dev/nbd0
# free.
integ_config ()
{
  local label=integ-$KB_ROUND-$KB_CONFIG j t0 nbd0 cpu0 ticks0 mark
  if ! check_cmd "$label-stack" integ_stack; then
    "$NBDSWAP_CMD" detach /dev/nbd0 > /dev/null 2>&1
    return 1
  fi
  mark=$(dmesg | wc -l)
  [ "$KB_ROUND" = 1 ] && integ_log_tables
  kbench_drop_caches
  nbd0=$(kbench_devstat nbd0) cpu0=$(kbench_cpustat) ticks0=$(server_cpu_ticks)
  workload_run "$label"
  workload_checks "$label"
  kbench_busy_record swap "$cpu0" "$(kbench_cpustat)"
  kbench_devstat_record nbd0 "$nbd0" "$(kbench_devstat nbd0)"
  kbench_swap_record "$WL_SECS" "$(server_cpu_delta "$ticks0")"
  if ! check_cmd "$label-swapoff" swapoff "$INTEG_TOP"; then
    "$NBDSWAP_CMD" detach /dev/nbd0 > /dev/null 2>&1
    return 1
  fi
  kbench_drop_caches
  t0=$(date +%s.%N)
  if check_cmd "$label-fill" dd if=/dev/zero of="$INTEG_TOP" bs=1M \
       count="$INTEG_FIO_MIB" oflag=direct conv=fsync status=none; then
    kbench_record fill mib "$INTEG_FIO_MIB"
    kbench_record fill seconds "$(awk -v a="$t0" -v b="$(date +%s.%N)" \
      'BEGIN { printf "%.2f", b - a }')"
    for j in $INTEG_JOBS; do
      kbench_fio "$j" "$INTEG_TOP"
    done
  fi
  swap_errors_check "$label-no-io-error" "$mark"
  check_cmd "$label-detach" "$NBDSWAP_CMD" detach /dev/nbd0
}

scenario_integrity-cost ()
{
  local out
  # Read by server_start and kbench_fio.
  # shellcheck disable=SC2034
  SERVER_KIND=native KB_FIO_MIB=$INTEG_FIO_MIB
  mkdir -p "$RESULTS/kbench"
  : > "$RESULTS/kbench.tsv"
  attach_setup || return
  kbench_info
  for ((KB_ROUND = 1; KB_ROUND <= VM_KBENCH_ROUNDS; KB_ROUND++)); do
    for KB_CONFIG in $INTEG_CONFIGS; do
      log "integrity-cost round $KB_ROUND: $KB_CONFIG"
      integ_config
    done
  done
  server_stop
  if out=$(python3 "$VM_SRCDIR/integrity-cost.py" "$RESULTS" 2>&1); then
    pass integrity-cost-summary "$VM_KBENCH_ROUNDS round(s), medians in integrity-cost.md"
    echo "$out" | sed -n 's/^bench //p' >> "$RESULTS/bench"
  else
    fail integrity-cost-summary "$(echo "$out" | tail -n 2 | tr '\n' ' ')"
  fi
  umount "$SCRATCH"
}
