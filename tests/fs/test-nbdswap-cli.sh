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

cli_done
