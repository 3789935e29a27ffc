#!/bin/bash
# nbdswap command line: help, version, usage errors and their exit codes.
# Needs no root and no loop device.
set -euo pipefail

NBDSWAP=${NBDSWAP:-$PWD/../server/nbdswap}
WORK=$(mktemp -d /var/tmp/nbdswap-cli.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
TEST=test-nbdswap-cli.sh
# shellcheck source=../cli-lib.sh
. "$(dirname "$0")/../cli-lib.sh"

status 0 '^ create FILE SIZE' --help
status 0 '^   2  the file is unfit to serve' -h
status 0 '^nbdswap [0-9]+\.[0-9]+' --version
status 0 '^nbdswap [0-9]+\.[0-9]+' -V
status 0 '^ nbdswap create FILE SIZE \[--force\] \[--quiet\]' create --help
status 0 '^ nbdswap create --dir DIR NAME\.\.\. --size SIZE' create --help
status 0 '^ create --dir DIR NAME\.\.\. --size SIZE' --help
status 0 '^ nbdswap verify FILE \[--json\]' verify --help
status 1 'no command given'
status 1 "unknown command 'frobnicate'" frobnicate
status 1 "Try 'nbdswap verify --help'" verify
status 1 "Try 'nbdswap verify --help'" verify a b
status 1 "Try 'nbdswap verify --help'" verify --bogus x
status 1 "expected FILE and SIZE" create "$WORK/f"
status 1 "'12Q' is not a size" create "$WORK/f" 12Q
status 1 "'1MB' is not a size" create "$WORK/f" 1MB
status 1 "'-5' is not a size" create -- "$WORK/f" -5
status 1 "^nbdswap create: invalid option -- '5'" create "$WORK/f" -5
status 1 "^nbdswap verify: unrecognized option '--bogus'" verify --bogus x
status 1 "must be a multiple of 4096 bytes and at least 40K" create "$WORK/f" 1000
status 1 "must be a multiple of 4096 bytes and at least 40K" create "$WORK/f" 36K
status 1 "must be a multiple of 4096 bytes and at least 40K" create "$WORK/f" 0
[ ! -e "$WORK/f" ] || fail "a refused create left $WORK/f behind"

# create --dir: usage errors and refusals before anything is written.
mkdir "$WORK/fleet"
status 1 "--dir needs --size SIZE" create --dir "$WORK/fleet" a
status 1 "--size goes with --dir; for one file give FILE SIZE" \
  create --size 1M "$WORK/f"
status 1 "--dir needs at least one NAME" create --dir "$WORK/fleet" --size 1M
status 1 "'12Q' is not a size" create --dir "$WORK/fleet" a --size 12Q
status 1 "SIZE 36K must be a multiple of 4096 bytes and at least 40K" \
  create --dir "$WORK/fleet" a --size 36K
status 1 "'a/b': contains '/': give plain file names; the files are made in $WORK/fleet" \
  create --dir "$WORK/fleet" ok a/b --size 1M
status 1 "'\.\.': names a directory" create --dir "$WORK/fleet" .. --size 1M
status 1 "'\.': names a directory" create --dir "$WORK/fleet" . --size 1M
status 1 "'': is empty" create --dir "$WORK/fleet" '' --size 1M
status 1 "'\.hidden': starts with '\.' \(serve --dir skips such names" create --dir "$WORK/fleet" .hidden --size 1M
status 1 "'x': given twice: give each name once" \
  create --dir "$WORK/fleet" x y x --size 1M
status 3 "$WORK/nodir: no such directory: create it first \(mkdir -p $WORK/nodir\)" \
  create --dir "$WORK/nodir" a --size 1M
: >"$WORK/plain"
status 3 "$WORK/plain: is not a directory" create --dir "$WORK/plain" a --size 1M
status 3 "not enough free space for 2 files of 1\.0 PiB: 2\.0 PiB needed" \
  create --dir "$WORK/fleet" a b --size 1048576G
[ -z "$(ls -A "$WORK/fleet")" ] || fail "a refused create --dir made files"
status 3 "$WORK/missing: cannot open: No such file or directory" \
  verify "$WORK/missing"
status 3 "$WORK/nodir.*: No such file or directory" \
  create "$WORK/nodir/f" 1M
mkdir "$WORK/d"
status 2 'error \[not-regular\]' verify "$WORK/d"
status 2 '"code":"not-regular"' verify --json "$WORK/d"
status 3 'exists and is not a regular file: refusing to replace it' \
  create --force "$WORK/d" 1M

# Progress: lines per 10% when stderr is not a terminal, a bar with
# MiB/s on a terminal (script(1) gives it one), nothing with --quiet.
# The file lands on /var/tmp's filesystem: the report may find it unfit
# there (exit 2); the progress is what is checked here.
rc=0
"$NBDSWAP" create "$WORK/p1" 8M >/dev/null 2>"$WORK/progress" || rc=$?
[ "$rc" -eq 0 ] || [ "$rc" -eq 2 ] || fail "create p1: exit $rc"
[ "$(grep -c '^nbdswap: create: ' "$WORK/progress")" -eq 1 ] &&
  grep -q '^nbdswap: create: 100% (8.0 of 8.0 MiB), [0-9.]* MiB/s$' \
    "$WORK/progress" || fail "plain progress: $(cat "$WORK/progress")"
rc=0
"$NBDSWAP" create --quiet "$WORK/p2" 8M >"$WORK/quiet.out" 2>&1 || rc=$?
if [ "$rc" -eq 0 ]; then
  [ ! -s "$WORK/quiet.out" ] || fail "--quiet printed: $(cat "$WORK/quiet.out")"
fi
if command -v script >/dev/null; then
  script -qec "$NBDSWAP create $WORK/p3 8M" /dev/null >"$WORK/tty" 2>&1 || true
  grep -qE '100% \[#{30}\] +[0-9.]+ MiB/s in [0-9]+:[0-9]{2}' "$WORK/tty" ||
    fail "terminal progress bar: $(cat -v "$WORK/tty")"
fi

# create --dir on a terminal: one bar over all the files, drawn to 100%
# once.
if command -v script >/dev/null; then
  script -qec "$NBDSWAP create --dir $WORK/fleet t1 t2 t3 --size 8M" \
    /dev/null >"$WORK/tty" 2>&1 || true
  [ "$(grep -oE '100% \[#{30}\]' "$WORK/tty" | wc -l)" -eq 1 ] &&
    grep -q 'made 3 of 3 files of 8.0 MiB' "$WORK/tty" ||
    fail "create --dir progress bar: $(cat -v "$WORK/tty")"
fi

cli_done
