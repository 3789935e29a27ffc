#!/bin/sh
# nbdswap: set up, build, and run the main job or the tests.
#
#   ./build.sh run [FILE]   install what is missing, build, then serve FILE
#                           (default: a 256 MiB backing file made under
#                           build/) on a unix socket, in the foreground,
#                           printing the NBD URI and the attach commands.
#   ./build.sh test         install what is missing, build, and run every
#                           test: unit, integration, filesystem and kernel
#                           VM tests, then again under ASan+UBSan, and the
#                           unit tests under valgrind.  Ends with one line
#                           "N passed, N failed".
#   ./build.sh build        install what is missing and build only.
#
# Builds go to build/ (and build-asan/ for the sanitizer pass), never in
# the source tree.
set -eu

top=$(cd "$(dirname "$0")" && pwd)
cd "$top"
jobs=$(nproc 2>/dev/null || echo 2)

# Configure (once) and build in directory $1 with configure flags $2...
build_in () {
  dir=$1; shift
  [ -x configure ] || autoreconf -fi >/dev/null
  mkdir -p "$dir"
  if [ ! -f "$dir/Makefile" ] || [ configure -nt "$dir/Makefile" ]; then
    (cd "$dir" && "$top/configure" -q "$@")
  fi
  make -s -C "$dir" -j"$jobs" >/dev/null
}

# Totals from automake's test-suite.log files.
passed=0
failed=0
count_results () {
  log=$1/tests/test-suite.log
  [ -f "$log" ] || return 0
  p=$(sed -n 's/^# PASS: *//p' "$log" | head -1)
  f=$(sed -n 's/^# FAIL: *//p' "$log" | head -1)
  e=$(sed -n 's/^# ERROR: *//p' "$log" | head -1)
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0} + ${e:-0}))
}

# The failing tests' logs, shown once more at the end: CI shows the tail
# of the output, so the reason for a red run must be there.
collect_failures () {
  for trs in $(find "$1/tests" -name '*.trs' -newer "$2" 2>/dev/null | sort); do
    grep -q '^:test-result: \(FAIL\|ERROR\)' "$trs" || continue
    log=${trs%.trs}.log
    {
      echo "== $log: its FAIL lines, then its last 40 lines"
      grep -a '^ *FAIL' "$log" | head -n 20
      echo "   --"
      tail -n 40 "$log"
    } >> "$failures"
  done
}

# make check in $1 with extra make arguments; never stops the script.
check_in () {
  dir=$1; shift
  echo "== make check in $dir $*" >&2
  touch "$stamp"
  make -s -C "$dir" -j"$jobs" check "$@" >&2 || true
  count_results "$dir"
  collect_failures "$dir" "$stamp"
}

# Serve FILE (default: build/default-swap.img, made by nbdswap create)
# in the foreground.  NBDSWAP_BUILD_DIR names another build directory
# (the test of this command uses the one under test).
cmd_run () {
  file=${1:-}
  bdir=${NBDSWAP_BUILD_DIR:-$top/build}
  if [ -z "$file" ]; then
    file=$bdir/default-swap.img
    if [ ! -f "$file" ]; then
      echo "nbdswap: making a 256 MiB backing file: $file" >&2
      "$bdir/server/nbdswap" create --quiet "$file" 256M
    fi
  fi
  sock=$bdir/nbdswap.sock
  plugin=$bdir/plugin/.libs/nbdkit-swapfile-plugin.so
  cat <<MSG
nbdswap: serving $file
  NBD URI:  nbd+unix:///?socket=$sock
  attach:   modprobe nbd && nbd-client -unix $sock /dev/nbd0 -b 4096
            mkswap /dev/nbd0 && swapon /dev/nbd0
  stop:     Ctrl-C (swapoff /dev/nbd0 && nbd-client -d /dev/nbd0 first)
MSG
  exec nbdkit -f -U "$sock" "$plugin" file="$file"
}

cmd_test () {
  failures=$(mktemp)
  stamp=$(mktemp)
  trap 'rm -f "$failures" "$stamp" "$stamp.asan"' EXIT
  build_in build
  # The sanitizer build compiles while the first checks run (the VM run
  # leaves a core idle much of the time).
  build_in build-asan --enable-sanitizers > "$stamp.asan" 2>&1 &
  asan_pid=$!
  check_in build
  if ! wait "$asan_pid"; then
    cat "$stamp.asan" >&2
    echo "nbdswap: the sanitizer build failed" >&2
    failed=$((failed + 1))
  fi
  rm -f "$stamp.asan"
  # Sanitizers: the plugin is loaded into an uninstrumented nbdkit, so
  # the server gets the runtimes preloaded (and leak checks off: nbdkit's
  # own allocations at exit are not ours); tests themselves are checked
  # in full.  The VM tests are not repeated there.
  preload="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
  check_in build-asan TESTS="$(make -s -C build-asan print-fast-tests)" \
    NBDSWAP_SERVER_PRELOAD="$preload"
  # valgrind on the unit tests (no fork, so valgrind sees the test body).
  check_in build TESTS="$(make -s -C build print-unit-tests)" \
    LOG_COMPILER="valgrind" \
    AM_LOG_FLAGS="-q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite" \
    CK_FORK=no
  [ -s "$failures" ] && cat "$failures" >&2
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}

case ${1:-} in
  run)   shift
         if [ -z "${NBDSWAP_BUILD_DIR:-}" ]; then
           "$top/scripts/deps.sh"
           build_in build
         fi
         cmd_run "$@" ;;
  test)  "$top/scripts/deps.sh"; cmd_test ;;
  build) "$top/scripts/deps.sh"; build_in build ;;
  *)     sed -n '2,17s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
esac
