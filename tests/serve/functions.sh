# nbdswap: helpers for the serve and status tests (sourced, bash).
#
# Each test works in its own directory under /var/tmp (a filesystem with
# O_DIRECT: tmpfs has none) with NBDSWAP_RUNTIME_DIR pointing inside it,
# so nothing touches /run/nbdswap.  The EXIT trap stops only the servers
# this test started, by the PIDs it recorded.

set -euo pipefail

NBDSWAP=${NBDSWAP:-$PWD/../server/nbdswap}
TEST_NAME=$(basename "$0")
WORK=$(mktemp -d "${NBDSWAP_TEST_TMP:-/var/tmp}/nbdswap-serve.XXXXXX")
export NBDSWAP_RUNTIME_DIR=$WORK/run
PIDS=()
FAILURES=0

cleanup ()
{
  local p
  set +e
  for p in "${PIDS[@]}"; do
    kill "$p" 2>/dev/null
  done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 50); do
      kill -0 "$p" 2>/dev/null || break
      sleep 0.1
    done
    # Still there after 5 s (nbdkit can hang at exit under the
    # sanitizers): it is ours, and must not outlive the test.
    kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

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

ok ()
{
  echo "$TEST_NAME: ok: $*"
}

requires ()
{
  command -v "$1" >/dev/null 2>&1 ||
    skip "$1 not found (install the Debian package $2)"
}

[ -x "$NBDSWAP" ] || { echo "$NBDSWAP not built" >&2; exit 99; }
requires nbdkit nbdkit
requires qemu-io qemu-utils

# nbdswap serve, as a command: with the sanitizer runtime preloaded into
# the nbdkit it execs (build-asan: the plugin needs it; see
# tests/Makefile.am).  Leak checks stay on for status and the other
# commands; for serve they would also run in nbdkit, whose own
# allocations at exit are not ours.  An array, not a function, so that
# "${SERVE[@]}" ... & gives the server's own PID (serve execs nbdkit).
#
# intercept_send=0: nbdkit 1.32.5 with TLS races in its own code when a
# client drops the connection while a reply is being sent (one of the
# connection's threads frees GnuTLS's record buffer that another is
# sending from: gnutls_record_uncork in sendmsg, a heap use after free
# found by the interceptor; seen in test-serve-tls.sh on 2026-12-04).
# That is nbdkit's, not the plugin's, and stopped every later case of
# the test.  The plugin sends nothing itself; the native server's data
# path sends through io_uring, out of the interceptor's sight anyway,
# so only its handshake's send checks are lost.
SAN_SERVER_OPTS=detect_leaks=0:intercept_send=0
SERVE=("$NBDSWAP" serve)
if [ -n "${NBDSWAP_SERVER_PRELOAD:-}" ]; then
  SERVE=(env "LD_PRELOAD=$NBDSWAP_SERVER_PRELOAD" "ASAN_OPTIONS=$SAN_SERVER_OPTS"
         "${SERVE[@]}")
fi

# nbdkit with the built plugin, as serve runs it (the sanitizer runtime
# preloaded as above), for the tests that give the plugin parameters
# serve does not pass (dir=).
PLUGIN=${NBDSWAP_PLUGIN:-$PWD/../plugin/.libs/nbdkit-swapfile-plugin.so}
NBDKIT=(nbdkit -f)
if [ -n "${NBDSWAP_SERVER_PRELOAD:-}" ]; then
  NBDKIT=(env "LD_PRELOAD=$NBDSWAP_SERVER_PRELOAD" "ASAN_OPTIONS=$SAN_SERVER_OPTS"
          "${NBDKIT[@]}")
fi

nbdswap ()
{
  if [ "$1" = serve ]; then
    shift
    "${SERVE[@]}" "$@"
  else
    "$NBDSWAP" "$@"
  fi
}

# expect_status WANT REGEX ARGS...: nbdswap ARGS exits WANT and its
# output (stdout and stderr) matches REGEX.
expect_status ()
{
  local want=$1 regex=$2 rc=0
  shift 2
  nbdswap "$@" >"$WORK/out" 2>&1 || rc=$?
  if [ "$rc" -ne "$want" ]; then
    fail "nbdswap $*: exit $rc, expected $want: $(cat "$WORK/out")"
  elif ! grep -qE -- "$regex" "$WORK/out"; then
    fail "nbdswap $*: output does not match /$regex/: $(cat "$WORK/out")"
  else
    ok "nbdswap $* -> $rc"
  fi
}

# noatime PID FILE: PID holds FILE open with O_NOATIME (and O_DIRECT):
# its reads never update the access time.
noatime ()
{
  local fd flags
  for fd in /proc/"$1"/fd/*; do
    [ "$(readlink "$fd")" = "$2" ] || continue
    flags=$(awk '/^flags:/ { print $2 }' "/proc/$1/fdinfo/${fd##*/}")
    (( (8#$flags & 8#1000000) && (8#$flags & 8#40000) )) && return 0
  done
  return 1
}

# thread_stack_kib PID: the largest stack of PID's threads but the
# first, in KiB: the size of the mapping that holds each thread's stack
# pointer (the one /proc/PID/task/TID/syscall shows for a thread waiting
# in a system call).  Under mlockall every stack is locked address
# space, so the servers keep them small (harden.h).  Empty if no thread
# could be measured.
thread_stack_kib ()
{
  python3 - "$1" <<'PY'
import os, sys
pid = sys.argv[1]
maps = []
for line in open("/proc/%s/maps" % pid):
    lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
    maps.append((lo, hi))
sizes = []
for tid in os.listdir("/proc/%s/task" % pid):
    if tid == pid:
        continue
    try:
        f = open("/proc/%s/task/%s/syscall" % (pid, tid)).read().split()
    except OSError:
        continue
    if len(f) < 9:
        continue                        # running: no stack pointer shown
    sp = int(f[7], 16)
    sizes += [(hi - lo) // 1024 for lo, hi in maps if lo <= sp < hi]
if sizes:
    print(max(sizes))
PY
}

# backing NAME SIZE: a fit backing file made by nbdswap create.
backing ()
{
  "$NBDSWAP" create --quiet "$WORK/$1" "$2"
}

# serve_bg ARGS...: nbdswap serve in the background mode (it returns once
# nbdkit serves); records nbdkit's PID from the pidfile given or the
# default one.  Fails the test if serve fails.
serve_bg ()
{
  local rc=0 pidfile
  nbdswap serve "$@" >"$WORK/serve.out" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    cat "$WORK/serve.out" >&2
    fail "nbdswap serve $*: exit $rc"
    return 1
  fi
  pidfile=$(sed -n 's/.*(PID \([0-9]*\)).*/\1/p' "$WORK/serve.out")
  [ -n "$pidfile" ] || { fail "serve printed no PID"; return 1; }
  PIDS+=("$pidfile")
  LAST_PID=$pidfile
}

# serve_fg LOG ARGS...: nbdswap serve --foreground ARGS in the
# background of this shell, its output in LOG; LAST_PID is the server's
# own PID, stopped at exit.  Not through the nbdswap function: a function
# started with & runs in a subshell whose PID is not the server's, and
# killing that subshell left nbdkit running.
serve_fg ()
{
  local log=$1
  shift
  "${SERVE[@]}" --foreground "$@" >"$log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

# fleet NAME...: $WORK/fleet, a directory of fit 16 MiB backing files
# named NAME... (the exports of serve --dir), and the nbd Python
# module that dir_client needs (or skip).
fleet ()
{
  /usr/bin/python3 -c 'import nbd' 2>/dev/null ||
    skip "the nbd Python module is missing (install python3-libnbd)"
  mkdir "$WORK/fleet"
  for n in "$@"; do
    "$NBDSWAP" create --quiet "$WORK/fleet/$n" 16M
  done
}

# dir_client unix:PATH|tcp:HOST:PORT COMMAND ARGS...: serve/dir-client.py
# (its header says the commands).
dir_client ()
{
  /usr/bin/python3 "$(dirname "$0")/dir-client.py" "$@"
}

# dir_serve KIND LOG WHERE DIR [ALLOW...] [-- PARAM...]: a server of
# every file of DIR in the background of this shell, its output in LOG,
# LAST_PID its own PID (stopped at exit): KIND native (serve --dir),
# nbdkit (serve --nbdkit --dir: nbdkit with the plugin's dir=, as serve
# makes its command line) or plugin (that nbdkit started here), on WHERE
# (unix:PATH, or tcp:PORT on 127.0.0.1), each ALLOW (CIDR or NAME=CIDR)
# as --allow or allow=, each PARAM (KEY=VALUE: retry-timeout=3) a
# plugin parameter (serve's after "--").  The plugin started here writes
# its counters to $WORK/NAME.stats (stats-file=, which it has no default
# for), as serve's servers do to the runtime directory's, so that nbdswap
# status shows all.
dir_serve ()
{
  local kind=$1 log=$2 where=$3 dir=$4 a args=() allow=() params=()
  shift 4
  while [ $# -gt 0 ] && [ "$1" != -- ]; do
    allow+=("$1")
    shift
  done
  [ $# -gt 0 ] && shift && params=("$@")
  if [ "$kind" != plugin ]; then
    [ "$kind" = nbdkit ] && args=(--nbdkit)
    case $where in
      unix:*) args+=(--socket "${where#unix:}") ;;
      *) args+=(--bind 127.0.0.1 --port "${where#tcp:}") ;;
    esac
    for a in "${allow[@]}"; do args+=(--allow "$a"); done
    [ ${#params[@]} -gt 0 ] && args+=(-- "${params[@]}")
    serve_fg "$log" --dir "$dir" "${args[@]}"
    return
  fi
  case $where in
    unix:*) args=(-U "${where#unix:}") ;;
    *) args=(-i 127.0.0.1 -p "${where#tcp:}") ;;
  esac
  args+=("$PLUGIN" dir="$dir" stats-file="$WORK/${dir##*/}.stats")
  for a in "${allow[@]}"; do args+=(allow="$a"); done
  "${NBDKIT[@]}" "${args[@]}" "${params[@]}" >"$log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

# dir_serving KIND N: the start-up line of dir_serve's server serving N
# exports (a regex).
dir_serving ()
{
  if [ "$1" = native ]; then
    echo "native: serving $2 exports? from "
  else
    echo "swapfile: serving $2 exports? from "
  fi
}

# log_wait LOG PID REGEX: wait up to 10 s for the log of server PID
# (serve_fg's) to match REGEX; false if it does not, or the server ends.
log_wait ()
{
  for _ in $(seq 100); do
    grep -qE -- "$3" "$1" && return 0
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  grep -qE -- "$3" "$1"
}

# stop PID: stop one server this test started and wait for it.  An
# nbdkit with the sanitizer runtimes preloaded can deadlock in p11-kit's
# exit handler after the plugin is gone (see integration/harness.c):
# there a server still stuck after 3 s is killed, not failed.
stop ()
{
  local p kept=()

  # Stopped here: the exit trap must not signal its PID again (by then
  # it may be another process's).
  for p in "${PIDS[@]}"; do
    [ "$p" = "$1" ] || kept+=("$p")
  done
  PIDS=("${kept[@]}")
  kill "$1" 2>/dev/null || true
  for i in $(seq 100); do
    kill -0 "$1" 2>/dev/null || return 0
    if [ "$i" -eq 30 ] && [ -n "${NBDSWAP_SERVER_PRELOAD:-}" ]; then
      echo "$TEST_NAME: server $1 stuck at exit under the sanitizers: SIGKILL"
      kill -KILL "$1" 2>/dev/null || true
    fi
    sleep 0.1
  done
  PIDS+=("$1")                  # the exit trap tries again
  fail "server $1 did not stop"
}

# The servers serve runs: the native server (the default) and nbdkit
# with the plugin (--nbdkit).  A parity test runs its cases for each:
#   for server in "${SERVERS[@]}"; do server_opts "$server"; ...
# and passes "${OPTS[@]}" to serve.
SERVERS=(plugin native)

# server_opts NAME: OPTS, serve's options that select server NAME: none
# for the native server, serve's default.
server_opts ()
{
  OPTS=()
  if [ "$1" = plugin ]; then
    OPTS=(--nbdkit)
  fi
}

# stop_clean PID WHAT: stop a server this shell started with & (serve_fg)
# and check that SIGTERM ended it with exit status 0 (under the
# sanitizers, stop may have had to kill a stuck nbdkit: not failed).
stop_clean ()
{
  local rc=0

  stop "$1"
  wait "$1" 2>/dev/null || rc=$?
  if [ "$rc" -ne 0 ] && ! { [ -n "${NBDSWAP_SERVER_PRELOAD:-}" ] &&
                              [ "$rc" -eq 137 ]; }; then
    fail "$2: exit status $rc after SIGTERM, not 0"
  fi
}

# io URI: write a pattern and read it back through qemu-io.
io ()
{
  local out
  if out=$(qemu-io -f raw -c 'write -P 0x5a 4096 64k' \
             -c 'read -P 0x5a 4096 64k' "$1" 2>&1) &&
     ! grep -q "Pattern verification failed" <<<"$out"; then
    ok "write and read back through $1"
  else
    fail "I/O through $1: $out"
  fi
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on now.
free_port ()
{
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# strays: the processes still running whose command line names this
# test's directory but whose PIDs were never recorded in PIDS, so that
# the exit trap would leave them running (a server started in a way that
# hid its PID), one "PID command" a line.
strays ()
{
  local p cmd

  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    case " ${PIDS[*]} " in *" $p "*) continue ;; esac
    cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline") || continue
    case $cmd in *"$WORK/"*) echo "$p $cmd" ;; esac
  done
}

finish ()
{
  local left

  left=$(strays)
  if [ -n "$left" ]; then
    fail "left running, never recorded to be stopped: $left"
    for p in $(cut -d' ' -f1 <<<"$left"); do
      PIDS+=("$p")               # ours: the exit trap stops them
    done
  fi
  if [ "$FAILURES" -ne 0 ]; then
    echo "$TEST_NAME: $FAILURES failure(s)" >&2
    exit 1
  fi
  echo "$TEST_NAME: all cases passed"
}
