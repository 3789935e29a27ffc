#!/bin/bash
# The fuzz targets' committed inputs, each run once: the seed corpus
# (made by make-corpus.py) and the regression inputs (what fuzzing found,
# kept once fixed), through both targets as built here (fuzz-replay.c's
# main(), under ASan+UBSan in build.sh's sanitizer pass).  Fails on a
# crash, a sanitizer report, a leak, a hang, or a broken check of the
# target (a write outside the export, a lock left held).
set -euo pipefail
shopt -s nullglob

src=$(cd "$(dirname "$0")" && pwd)
skipped=

for t in native-handshake native-conn; do
  inputs=("$src/corpus/$t"/* "$src/regress/$t"/*)
  if [ ${#inputs[@]} -eq 0 ]; then
    echo "test-fuzz-replay: no inputs for $t in $src" >&2
    exit 1
  fi
  rc=0
  "./fuzz/fuzz-$t" "${inputs[@]}" || rc=$?
  case $rc in
    0)  ;;
    77) skipped="$skipped $t" ;;
    *)  echo "test-fuzz-replay: fuzz-$t failed (exit $rc) on one of its" \
          "${#inputs[@]} inputs: the last one named above" >&2
        exit 1 ;;
  esac
done
if [ -n "$skipped" ]; then
  echo "test-fuzz-replay: SKIP: could not run:$skipped (reason above)" >&2
  exit 77
fi
