# nbdswap: helpers for the plugin's real-filesystem tests (sourced after
# functions.sh): start nbdkit with the built plugin on a file (or, with
# SERVER_KIND=native, nbdswap serve, whose default is the native server,
# with the same parameters after "--"), talk to it with qemu-io, read its
# log.

PLUGIN=${NBDSWAP_PLUGIN:-$PWD/../plugin/.libs/nbdkit-swapfile-plugin.so}
SERVER_PID=
SERVER_LOG=
SOCK=

# serve FILE [PARAMS...]: start the server; returns 1 if it exits instead.
serve ()
{
  local file=$1
  shift
  requires nbdkit nbdkit
  requires qemu-io qemu-utils
  SOCK=$WORK/sock
  SERVER_LOG=$WORK/server.log
  rm -f "$SOCK"
  if [ "${SERVER_KIND:-plugin}" = native ]; then
    NBDSWAP_RUNTIME_DIR=$WORK/run "$NBDSWAP" serve "$file" --foreground \
      --socket "$SOCK" -- "$@" >"$SERVER_LOG" 2>&1 &
  else
    nbdkit -f -v -U "$SOCK" "$PLUGIN" file="$file" "$@" >"$SERVER_LOG" 2>&1 &
  fi
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  for _ in $(seq 500); do
    [ -S "$SOCK" ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { wait "$SERVER_PID" || true; return 1; }
    sleep 0.02
  done
  fail "server did not start in 10 s"
  return 1
}

# nbd_io QEMU-IO-COMMAND: run one qemu-io command against the server;
# prints its output.
nbd_io ()
{
  qemu-io -f raw -c "$1" "nbd+unix:///?socket=$SOCK" 2>&1 || true
}

# wait_log TEXT SECONDS: wait until the server log contains TEXT.
wait_log ()
{
  for _ in $(seq $(($2 * 10))); do
    grep -qF -- "$1" "$SERVER_LOG" && return 0
    sleep 0.1
  done
  return 1
}

# stop_server: SIGTERM, and the exit status must be 0.
stop_server ()
{
  local rc=0
  kill "$SERVER_PID"
  wait "$SERVER_PID" || rc=$?
  [ "$rc" -eq 0 ] || fail "server exited with status $rc"
}

# refused FILE TEXT: the server must refuse to start on FILE, saying TEXT.
refused ()
{
  if serve "$1"; then
    # The native server binds its socket before it verifies the file:
    # a refusal ends it a moment after the socket appears.
    for _ in $(seq 500); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.02
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      fail "the server started on $1"
      stop_server
      return
    fi
    wait "$SERVER_PID" || true
  fi
  if ! grep -qF -- "$2" "$SERVER_LOG"; then
    fail "refusal of $1 does not say '$2':"
    cat "$SERVER_LOG" >&2
  fi
}

# map_changed SECONDS: within SECONDS the server reports the file's
# extent map changed; then a write fails with EIO and the 64 KiB written
# at 0 with pattern 0x55 still read back.
map_changed ()
{
  local out
  wait_log "extent map CHANGED while serving" "$1" ||
    fail "the changed map was not reported in $1 s: $(tail -5 "$SERVER_LOG")"
  out=$(nbd_io "write -P 0x57 0 4k")
  echo "$out" | grep -q "Input/output error" ||
    fail "write after the change did not fail with EIO: $out"
  out=$(nbd_io "read -P 0x55 0 64k")
  echo "$out" | grep -q "read 65536/65536" ||
    fail "read after the change failed: $out"
}
