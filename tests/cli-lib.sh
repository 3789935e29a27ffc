# shellcheck shell=bash
# Checks of the nbdswap command's exit status and output, for the shell
# tests: source it after setting NBDSWAP (the command), WORK (a scratch
# directory) and TEST (the test's name, for its messages).  End the test
# with cli_done.

failures=0

fail ()
{
  echo "$TEST: FAIL: $*" >&2
  failures=$((failures + 1))
}

# status WANT REGEX ARGS...: nbdswap ARGS exits WANT (within 30 s) and
# its output (stdout and stderr) matches REGEX.
status ()
{
  local want=$1 regex=$2 rc=0
  shift 2
  timeout 30 "$NBDSWAP" "$@" >"$WORK/out" 2>&1 || rc=$?
  if [ "$rc" -ne "$want" ]; then
    fail "nbdswap $*: exit $rc, expected $want"
    cat "$WORK/out" >&2
  elif ! grep -qE -- "$regex" "$WORK/out"; then
    fail "nbdswap $*: output does not match /$regex/"
    cat "$WORK/out" >&2
  else
    echo "ok: nbdswap $* -> $rc"
  fi
}

# Exit 1 if any check failed.
cli_done ()
{
  [ "$failures" -eq 0 ] || { echo "$TEST: $failures failure(s)" >&2; exit 1; }
}
