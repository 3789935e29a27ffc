# nbdswap: helpers for the real-filesystem tests (sourced, bash).
#
# Each test builds one small filesystem image on a loop device under
# /var/tmp, creates good and bad backing files on it for real and checks
# the exact reason codes `nbdswap verify --json` reports.  The EXIT trap
# stops helper processes, swapoffs, unmounts and detaches the loop device
# even when an assertion fails.

set -euo pipefail

# Run from tests/ in the build tree (automake's test harness does that).
NBDSWAP=${NBDSWAP:-$PWD/../server/nbdswap}
OFD_LOCK=${OFD_LOCK:-$PWD/fs/ofd-lock}
TEST_NAME=$(basename "$0")

WORK=
LOOP=
MNT=
MOUNTS=()
PIDS=()
SWAPS=()
EXTRA_LOOPS=()                  # loop devices a test attaches itself
FAILURES=0

skip ()
{
  echo "$TEST_NAME: SKIP: $*" >&2
  exit 77
}

fail ()
{
  echo "$TEST_NAME: FAIL: $*" >&2
  FAILURES=$((FAILURES + 1))
}

cleanup ()
{
  local i
  set +e
  for i in "${PIDS[@]}"; do
    kill "$i" 2>/dev/null
    wait "$i" 2>/dev/null
  done
  for i in "${SWAPS[@]}"; do
    swapoff "$i" 2>/dev/null
  done
  # A test's own cleanup (volume groups on its loop devices...), after its
  # processes and swaps are gone and before its loop devices are.
  if declare -F test_cleanup >/dev/null; then
    test_cleanup
  fi
  for i in "${EXTRA_LOOPS[@]}"; do
    losetup -d "$i" 2>/dev/null
  done
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
    umount "${MOUNTS[i]}" || umount -l "${MOUNTS[i]}"
  done
  [ -n "$LOOP" ] && losetup -d "$LOOP"
  [ -n "$WORK" ] && rm -rf "$WORK"
}
trap cleanup EXIT
# A signal (make check timeout, Ctrl-C) must still run the cleanup.
trap 'exit 130' INT TERM HUP

# requires CMD PACKAGE: skip when a tool is missing.
requires ()
{
  command -v "$1" >/dev/null 2>&1 ||
    skip "$1 not found (install the Debian package $2)"
}

# make_fs TYPE SIZE_MIB [MKFS OPTIONS...]: a fresh filesystem on a loop
# device, mounted on $MNT.
make_fs ()
{
  local type=$1 size=$2
  shift 2

  [ "$(id -u)" -eq 0 ] || skip "needs root (loop devices, mount)"
  [ -x "$NBDSWAP" ] || { echo "$NBDSWAP not built" >&2; exit 99; }
  requires losetup util-linux
  requires "mkfs.$type" "$( case $type in
      ext4) echo e2fsprogs ;; xfs) echo xfsprogs ;; btrfs) echo btrfs-progs ;;
    esac)"
  grep -qw "$type" /proc/filesystems || modprobe "$type" 2>/dev/null ||
    skip "the kernel has no $type support"
  WORK=$(mktemp -d /var/tmp/nbdswap-fs.XXXXXX)
  truncate -s "${size}M" "$WORK/image"
  LOOP=$(losetup -f --show "$WORK/image" 2>"$WORK/losetup.err") ||
    skip "cannot attach a loop device: $(cat "$WORK/losetup.err")"
  "mkfs.$type" "$@" "$LOOP" >"$WORK/mkfs.log" 2>&1 || {
    cat "$WORK/mkfs.log" >&2
    echo "$TEST_NAME: mkfs.$type failed" >&2
    exit 99
  }
  MNT=$WORK/mnt
  mkdir "$MNT"
  # lazytime, as docs/verify.md asks for a swap backing file's
  # filesystem (else every file gets the no-lazytime warning).
  mount -o lazytime "$LOOP" "$MNT" \
    2>"$WORK/mount.err" ||
    skip "cannot mount $type: $(cat "$WORK/mount.err")"
  MOUNTS+=("$MNT")
}

# make_tmpfs SIZE_MIB: a tmpfs mounted on $MNT (no loop device).
make_tmpfs ()
{
  [ "$(id -u)" -eq 0 ] || skip "needs root (mount)"
  [ -x "$NBDSWAP" ] || { echo "$NBDSWAP not built" >&2; exit 99; }
  WORK=$(mktemp -d /var/tmp/nbdswap-fs.XXXXXX)
  MNT=$WORK/mnt
  mkdir "$MNT"
  mount -t tmpfs -o "size=${1}M,mode=0700" tmpfs "$MNT" \
    2>"$WORK/mount.err" || skip "cannot mount tmpfs: $(cat "$WORK/mount.err")"
  MOUNTS+=("$MNT")
}

# codes_of JSON_FILE: the sorted reason codes in a verify --json output.
codes_of ()
{
  { grep -o '"code":"[a-z-]*"' "$1" || true; } | sed 's/"code":"\(.*\)"/\1/' |
    sort -u | tr '\n' ' ' | sed 's/ $//'
}

# expect FILE EXIT_STATUS "CODES": verify FILE exits with EXIT_STATUS and
# reports exactly the (sorted) reason codes CODES ("" for none), both in
# JSON and in the text report.
expect ()
{
  local file=$1 status=$2 want=$3 got rc code out=$WORK/verify
  rc=0
  "$NBDSWAP" verify --json "$file" >"$out.json" 2>"$out.err" || rc=$?
  got=$(codes_of "$out.json")
  if [ "$rc" -ne "$status" ] || [ "$got" != "$want" ]; then
    fail "$file: expected exit $status codes [$want], got exit $rc codes [$got]"
    cat "$out.json" "$out.err" >&2
    return 0
  fi
  rc=0
  "$NBDSWAP" verify "$file" >"$out.txt" 2>&1 || rc=$?
  [ "$rc" -eq "$status" ] ||
    fail "$file: text mode exit $rc, JSON mode exit $status"
  for code in $want; do
    grep -q "^\(error\|warning\) \[$code\]: $file: " "$out.txt" ||
      fail "$file: no '[$code]' line naming the file in the text report"
  done
  if [ "$status" -eq 0 ]; then
    grep -q '"verdict":"fit"' "$out.json" || fail "$file: verdict not fit"
  else
    grep -q '"verdict":"unfit"' "$out.json" || fail "$file: verdict not unfit"
  fi
  echo "$TEST_NAME: ok: $(basename "$file"): exit $rc [$want]"
}

# expect_text FILE REGEX: the text report of FILE matches REGEX.
expect_text ()
{
  "$NBDSWAP" verify "$1" >"$WORK/verify.txt" 2>&1 || true
  grep -qE -- "$2" "$WORK/verify.txt" || {
    fail "$1: report does not match /$2/"
    cat "$WORK/verify.txt" >&2
  }
}

# create_refused MESSAGE CREATE-ARGS...: nbdswap create exits 3 (system
# error) with MESSAGE on stderr.
create_refused ()
{
  local msg=$1 rc=0
  shift
  "$NBDSWAP" create --quiet "$@" 2>"$WORK/create.err" || rc=$?
  [ "$rc" -eq 3 ] && grep -q -- "$msg" "$WORK/create.err" ||
    fail "create $*: exit $rc, not 3 with '$msg': $(cat "$WORK/create.err")"
}

# good FILE SIZE: nbdswap create, which must succeed quietly.
good ()
{
  "$NBDSWAP" create --quiet "$1" "$2" ||
    fail "nbdswap create $1 $2 failed (exit $?)"
}

# nocow_if_btrfs FILE: on btrfs, make FILE empty with NOCOW, so that a
# test case shows only the problem it is about.
nocow_if_btrfs ()
{
  : >"$1"
  if [ "$(stat -f -c %T "$1")" = btrfs ]; then
    chattr +C "$1"
  fi
}

# written FILE BYTES: a file with every byte written (dd, fsync), 0600.
written ()
{
  nocow_if_btrfs "$1"
  head -c "$2" /dev/zero | dd of="$1" bs=1M iflag=fullblock conv=fsync status=none
  chmod 0600 "$1"
}

# The cases every filesystem shares.
common_cases ()
{
  # A file made by nbdswap create passes, 0600 and all.
  good "$MNT/good" 16M
  expect "$MNT/good" 0 ""
  [ "$(stat -c %a "$MNT/good")" = 600 ] || fail "good: mode is not 0600"
  # An existing file is not replaced without --force.
  create_refused "already exists: not overwriting it without --force" \
    "$MNT/good" 16M
  "$NBDSWAP" create --quiet --force "$MNT/good" 32M ||
    fail "create --force failed"
  [ "$(stat -c %s "$MNT/good")" = 33554432 ] || fail "--force: wrong size"
  expect "$MNT/good" 0 ""

  # Sparse: a hole over the whole file.
  nocow_if_btrfs "$MNT/sparse"
  truncate -s 16M "$MNT/sparse"
  chmod 0600 "$MNT/sparse"
  expect "$MNT/sparse" 2 "hole"
  expect_text "$MNT/sparse" \
    "^error \[hole\]: $MNT/sparse: bytes 0-16777215 \(16\.0 MiB\) are a hole"
  expect_text "$MNT/sparse" \
    "^    fix: recreate the file fully written \(nbdswap create $MNT/sparse 16M --force\)"

  # A hole in the middle of a written file.
  written "$MNT/holey" 16M
  fallocate --punch-hole --offset 4M --length 1M "$MNT/holey"
  expect "$MNT/holey" 2 "hole"
  expect_text "$MNT/holey" \
    "^error \[hole\]: $MNT/holey: bytes 4194304-5242879 \(1\.0 MiB\) are a hole"

  # fallocate only: allocated, never written.
  nocow_if_btrfs "$MNT/falloc"
  fallocate -l 16M "$MNT/falloc"
  chmod 0600 "$MNT/falloc"
  expect "$MNT/falloc" 2 "unwritten"
  expect_text "$MNT/falloc" \
    "^error \[unwritten\]: $MNT/falloc: bytes 0-16777215 \(16\.0 MiB\) are allocated but unwritten"

  # Sizes: 0, not a multiple of 4096, below 40 KiB.
  : >"$MNT/empty"
  chmod 0600 "$MNT/empty"
  expect "$MNT/empty" 2 "size-zero"
  written "$MNT/odd" $((16 * 1048576 + 100))
  expect "$MNT/odd" 2 "size-unaligned"
  expect_text "$MNT/odd" \
    "^error \[size-unaligned\]: $MNT/odd: size 16777316 is not a multiple of 4096 bytes"
  written "$MNT/small" 32768
  expect "$MNT/small" 2 "size-too-small"

  # Mounted without lazytime: a warning naming the mount, still fit;
  # not on btrfs, where lazytime changes nothing (docs/verify.md).
  mount -o remount,nolazytime "$MNT" || fail "remount $MNT nolazytime"
  if [ "$(stat -f -c %T "$MNT")" = btrfs ]; then
    expect "$MNT/good" 0 ""
  else
    expect "$MNT/good" 0 "no-lazytime"
    expect_text "$MNT/good" \
      "^warning \[no-lazytime\]: $MNT/good: $MNT is mounted without lazytime"
    expect_text "$MNT/good" \
      "^    fix: mount -o remount,lazytime $MNT \(and add lazytime to its /etc/fstab entry\)"
  fi
  mount -o remount,lazytime "$MNT" || fail "remount $MNT lazytime"

  # Group-readable: a warning, still fit.
  good "$MNT/readable" 16M
  chmod 0640 "$MNT/readable"
  expect "$MNT/readable" 0 "permissions"
  expect_text "$MNT/readable" "^warning \[permissions\]: .*insecure permissions 0640"

  # Served by another process: an OFD write lock on the whole file.
  good "$MNT/locked" 16M
  "$OFD_LOCK" "$MNT/locked" >"$WORK/lock.out" &
  PIDS+=($!)
  for _ in $(seq 50); do
    grep -q locked "$WORK/lock.out" && break
    sleep 0.1
  done
  grep -q locked "$WORK/lock.out" || fail "ofd-lock helper did not lock"
  expect "$MNT/locked" 2 "locked"
  expect_text "$MNT/locked" "is already served by another process"
  # --force does not replace a file that is being served.
  create_refused "is being served by another process" --force \
    "$MNT/locked" 16M
  [ -e "$MNT/locked" ] || fail "create --force removed a served file"
  kill "${PIDS[-1]}"
  wait "${PIDS[-1]}" 2>/dev/null || true
  unset 'PIDS[-1]'
  expect "$MNT/locked" 0 ""

  # Not a file.
  mkdir "$MNT/dir"
  expect "$MNT/dir" 2 "not-regular"
}

# avail_bytes PATH: the bytes available on PATH's filesystem.
avail_bytes ()
{
  df -B1 --output=avail "$1" | tail -1 | tr -d ' '
}

# whole_or_absent DIR SIZE NAMES...: each DIR/NAME is either absent or a
# whole file of SIZE bytes that verifies fit (a stopped batch leaves no
# partial file); prints the names present.
whole_or_absent ()
{
  local dir=$1 size=$2 name
  shift 2
  for name in "$@"; do
    [ -e "$dir/$name" ] || continue
    [ "$(stat -c %s "$dir/$name")" = "$size" ] ||
      fail "$dir/$name: a partial file ($(stat -c %s "$dir/$name") bytes)"
    "$NBDSWAP" verify "$dir/$name" >/dev/null 2>&1 ||
      fail "$dir/$name: left behind unfit"
    echo "$name"
  done
}

# stopped_batch SIGNAL DIR NAMES...: nbdswap create --dir DIR NAMES
# --size 32M, stopped (SIGSTOP) as soon as the first file appears, then
# sent SIGNAL (or, for ENOSPC, the filesystem filled), then continued.
# Sets rc; its stderr is in $WORK/batch.err.  rc 0 means the batch won
# the race and finished first.
stopped_batch ()
{
  local sig=$1 dir=$2 pid i
  shift 2
  rc=0
  "$NBDSWAP" create --dir "$dir" "$@" --size 32M >"$WORK/batch.out" \
    2>"$WORK/batch.err" &
  pid=$!
  PIDS+=("$pid")
  for _ in $(seq 500); do
    [ -e "$dir/$1" ] && break
    sleep 0.01
  done
  kill -STOP "$pid" 2>/dev/null || true
  if [ "$sig" = ENOSPC ]; then
    # All the space: the file being written has its blocks already, or
    # fails to get them; the next one cannot have them.  btrfs's free
    # space is an estimate: top up in 4 MiB pieces until it is full.
    fallocate -l $(($(avail_bytes "$dir") - 8 * 1048576)) "$MNT/filler" \
      2>/dev/null || true
    for i in $(seq 64); do
      fallocate -l 4M "$MNT/filler.$i" 2>/dev/null || break
    done
  else
    kill "-$sig" "$pid" 2>/dev/null || true
  fi
  kill -CONT "$pid" 2>/dev/null || true
  wait "$pid" || rc=$?
  unset 'PIDS[-1]'
  rm -f "$MNT"/filler*
  sync                          # btrfs frees the space at its commit
}

# stopped_batch_check CASE STATUS REGEX DIR NAMES...: after stopped_batch,
# exit STATUS, not every name made, a summary line matching REGEX, and
# each file left whole and listed as created.
stopped_batch_check ()
{
  local what=$1 status=$2 regex=$3 dir=$4 made name
  shift 4
  made=$(whole_or_absent "$dir" 33554432 "$@" | tr '\n' ' ')
  if [ "$rc" -eq 0 ]; then
    echo "$TEST_NAME: SKIP case create --dir $what: the batch finished first"
    return 0
  fi
  if [ "$rc" -ne "$status" ] || [ "$made" = "$* " ] ||
      ! grep -qE -- "$regex" "$WORK/batch.err"; then
    fail "create --dir $what: exit $rc, made [$made]: $(cat "$WORK/batch.err")"
    return 0
  fi
  for name in $made; do
    grep -q "^  created  $dir/$name$" "$WORK/batch.err" ||
      fail "create --dir $what: $name made, not said"
  done
  echo "$TEST_NAME: ok: create --dir $what: made [$made]"
}

# nbdswap create --dir: many files at once, on this filesystem.  Run on a
# fresh filesystem; removes what it made.
create_dir_cases ()
{
  local d=$MNT/fleet rc name
  mkdir "$d"

  # Four files, one progress over all of them (a line per 10% of the
  # total when stderr is not a terminal), each fit, a summary.
  rc=0
  "$NBDSWAP" create --dir "$d" c1 c2 c3 c4 --size 8M >"$WORK/dir.out" \
    2>"$WORK/dir.err" || rc=$?
  [ "$rc" -eq 0 ] || fail "create --dir: exit $rc: $(cat "$WORK/dir.err")"
  [ "$(grep -c '100%' "$WORK/dir.err")" -eq 1 ] &&
    grep -q '^nbdswap: create: 100% (32.0 of 32.0 MiB)' "$WORK/dir.err" ||
    fail "create --dir: not one progress over 32 MiB: $(cat "$WORK/dir.err")"
  grep -q "^nbdswap: create: made 4 of 4 files of 8.0 MiB in $d:" \
    "$WORK/dir.out" || fail "create --dir: summary: $(cat "$WORK/dir.out")"
  for name in c1 c2 c3 c4; do
    grep -q "^  created  $d/$name$" "$WORK/dir.out" ||
      fail "create --dir: $name not in the summary"
    expect "$d/$name" 0 ""
  done

  # Again with one more name: the existing ones are skipped, untouched,
  # the new one made; exit 3 says not every name was made.
  stat -c %i:%Y "$d/c1" >"$WORK/c1.before"
  rc=0
  "$NBDSWAP" create --quiet --dir "$d" c1 c5 --size 8M \
    >"$WORK/dir.out" 2>"$WORK/dir.err" || rc=$?
  [ "$rc" -eq 3 ] &&
    grep -q "^nbdswap: error: $d/c1: already exists: skipped; remove it, or add --force to replace it" "$WORK/dir.err" &&
    grep -q "^  skipped  $d/c1: already exists" "$WORK/dir.err" &&
    grep -q "^  created  $d/c5$" "$WORK/dir.err" ||
    fail "create --dir over an existing name: exit $rc: $(cat "$WORK/dir.err")"
  [ "$(stat -c %i:%Y "$d/c1")" = "$(cat "$WORK/c1.before")" ] ||
    fail "create --dir replaced an existing file without --force"
  expect "$d/c5" 0 ""
  rm -f "$d"/c*
  sync

  # No room for all of them: refused before anything is written.
  rc=0
  "$NBDSWAP" create --dir "$d" n1 n2 n3 \
    --size $(($(avail_bytes "$d") / 2 / 1048576 + 4))M \
    >"$WORK/dir.out" 2>"$WORK/dir.err" || rc=$?
  [ "$rc" -eq 3 ] &&
    grep -q "^nbdswap: error: $d: not enough free space for 3 files of" \
      "$WORK/dir.err" &&
    grep -q "^nbdswap: create: nothing was made in $d$" "$WORK/dir.err" ||
    fail "create --dir without room: exit $rc: $(cat "$WORK/dir.err")"
  [ -z "$(ls -A "$d")" ] || fail "create --dir without room made: $(ls "$d")"

  # The filesystem fills up during the batch: the file that fails is
  # removed, the ones made stay whole, the summary says which is which.
  stopped_batch ENOSPC "$d" f1 f2 f3
  stopped_batch_check "on a full filesystem" 3 "^  failed   $d/f[123]: " \
    "$d" f1 f2 f3
  rm -f "$d"/f*
  sync

  # Interrupted: exit 130, only whole files left, the summary says so.
  stopped_batch INT "$d" i1 i2 i3
  stopped_batch_check interrupted 130 \
    "^  (failed   $d/i[123]: interrupted \(the partial file was removed\)|not made $d/i[23]: interrupted before it)$" \
    "$d" i1 i2 i3
  rm -rf "$d"
}

# finish: the test's exit status.
finish ()
{
  if [ "$FAILURES" -ne 0 ]; then
    echo "$TEST_NAME: $FAILURES failure(s)" >&2
    exit 1
  fi
  echo "$TEST_NAME: all cases passed"
}
