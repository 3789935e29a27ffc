#!/bin/bash
# make fuzz: build the native server's fuzz targets with clang and
# libFuzzer (ASan+UBSan), then fuzz each for FUZZ_SECONDS (default 60)
# from the committed corpus and regression inputs.
#
#   run-fuzz.sh SRCDIR BUILDDIR
#
# The instrumented build goes to BUILDDIR/fuzz-build (configured once
# with --enable-libfuzzer); inputs that found new coverage to
# BUILDDIR/fuzz-corpus/TARGET (kept between runs, never committed by
# this script); findings to BUILDDIR/fuzz-crashes/TARGET.  Environment:
# FUZZ_SECONDS, FUZZ_TARGETS (default: both), FUZZ_ARGS (more libFuzzer
# options, e.g. -jobs=2).  Exits 1 if a target found something.
set -euo pipefail

src=$1
build=$2
seconds=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-native-handshake native-conn}
fbuild=$build/fuzz-build

# libFuzzer's runtime: Debian's clang with libclang-rt-14-dev
# (scripts/deps.sh installs both).
if ! command -v clang >/dev/null ||
   ! echo 'int LLVMFuzzerTestOneInput (const char *d, long n) { return 0; }' |
     clang -x c -fsanitize=fuzzer,address,undefined -o /dev/null - 2>/dev/null
then
  echo "make fuzz: clang cannot link libFuzzer here: install the Debian" \
    "packages clang and libclang-rt-14-dev (scripts/deps.sh)" >&2
  exit 1
fi

mkdir -p "$fbuild"
if [ ! -f "$fbuild/Makefile" ] || [ "$src/configure" -nt "$fbuild/Makefile" ]
then
  (cd "$fbuild" && "$src/configure" -q CC=clang CFLAGS="-g -O1" \
     --enable-sanitizers --enable-libfuzzer)
fi
make -s -C "$fbuild/lib" libnbdswap.la
make -s -C "$fbuild/server" libnbdswap-native.la
progs=()
for t in $targets; do
  progs+=("fuzz/fuzz-$t")
done
make -s -C "$fbuild/tests" "${progs[@]}"

failed=
for t in $targets; do
  corpus=$build/fuzz-corpus/$t
  crashes=$build/fuzz-crashes/$t
  mkdir -p "$corpus" "$crashes"
  echo "make fuzz: fuzz-$t for $seconds s (new inputs: $corpus)" >&2
  dirs=("$corpus" "$src/tests/fuzz/corpus/$t")
  [ -d "$src/tests/fuzz/regress/$t" ] && dirs+=("$src/tests/fuzz/regress/$t")
  stamp=$crashes/.started
  touch "$stamp"
  rc=0
  # -timeout: a connection ends at the input's end of stream, within a
  # second or so; 30 s is a hang.  Leaks are checked at exit and after
  # each input that grew the coverage.  -error_exitcode: libFuzzer's
  # default is 77, which is the targets' own "cannot run here".
  # shellcheck disable=SC2086
  (cd "$fbuild/tests" &&
   "./fuzz/fuzz-$t" -max_total_time="$seconds" -timeout=30 \
     -rss_limit_mb=4096 -error_exitcode=1 -print_final_stats=1 \
     -artifact_prefix="$crashes/" \
     ${FUZZ_ARGS:-} "${dirs[@]}") || rc=$?
  new=$(find "$crashes" -type f ! -name .started -newer "$stamp")
  if [ "$rc" -eq 77 ]; then
    echo "make fuzz: fuzz-$t cannot run here (the reason is above)" >&2
    failed="$failed $t"
  elif [ "$rc" -ne 0 ] || [ -n "$new" ]; then
    failed="$failed $t"
    echo "make fuzz: fuzz-$t found a problem (exit $rc): the input:" \
      "${new:-(none saved)}" >&2
    echo "make fuzz: replay it with $fbuild/tests/fuzz/fuzz-$t FILE;" \
      "once fixed, keep it in tests/fuzz/regress/$t/" >&2
  fi
done
if [ -n "$failed" ]; then
  echo "make fuzz: failed:$failed" >&2
  exit 1
fi
echo "make fuzz: no findings in $seconds s per target" >&2
