#!/bin/bash
# The plugin's dir= (nbdkit swapfile dir=DIR): one nbdkit, one export
# per file of a directory, through the native server's export set: the
# cases of serve-dir-cases.sh, the same as serve --dir's
# (test-serve-dir.sh).  First its parameters: file= and dir= exclude
# each other, a missing directory or a file given as dir= is refused
# with what to do, a per-export allow list needs dir=.
source "$(dirname "$0")/functions.sh"

# plugin_refuses REGEX PARAMS...: nbdkit with the plugin and PARAMS
# exits 1 before serving, saying REGEX.
plugin_refuses ()
{
  local regex=$1 rc=0
  shift
  timeout 60 "${NBDKIT[@]}" -U "$WORK/refused.sock" "$PLUGIN" "$@" \
    >"$WORK/refused.out" 2>&1 || rc=$?
  if [ "$rc" -ne 1 ]; then
    fail "plugin $*: exit $rc, expected 1: $(cat "$WORK/refused.out")"
  elif ! grep -qE -- "$regex" "$WORK/refused.out"; then
    fail "plugin $*: output does not match /$regex/: $(cat "$WORK/refused.out")"
  else
    ok "plugin $* refused"
  fi
}

fleet alpha
plugin_refuses "file=$WORK/fleet/alpha and dir=$WORK/fleet exclude each other" \
  file="$WORK/fleet/alpha" dir="$WORK/fleet"
plugin_refuses "dir=$WORK/none: no such directory: make it with its files" \
  dir="$WORK/none"
plugin_refuses "dir=$WORK/fleet/alpha: not a directory" dir="$WORK/fleet/alpha"
plugin_refuses "allow=alpha=127.0.0.1: a per-export list is for the exports of dir=" \
  file="$WORK/fleet/alpha" allow=alpha=127.0.0.1
plugin_refuses "allow=alpha=x: 'x' is not an address" dir="$WORK/fleet" \
  allow=alpha=x
rm -r "$WORK/fleet"

KIND=plugin
source "$(dirname "$0")/serve-dir-cases.sh"
