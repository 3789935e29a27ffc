#!/bin/bash
# nbdswap attach/detach on the host: usage errors, an unreachable server,
# unfit exports (read-only, too small, no multi-conn) and their exit
# codes; --netns connects from the namespace it names.  All of these fail before the kernel's nbd driver is touched, so
# they run on a host without nbd.  The real attach runs in the VM tests.
set -euo pipefail

NBDSWAP=${NBDSWAP:-$PWD/../server/nbdswap}
WORK=$(mktemp -d /tmp/nbdswap-attach.XXXXXX)
SERVER_PID=
NETNS=
cleanup ()
{
  [ -n "$SERVER_PID" ] && kill -KILL "$SERVER_PID" 2>/dev/null || :
  [ -n "$NETNS" ] && ip netns delete "$NETNS" 2>/dev/null || :
  rm -rf "$WORK"
}
trap cleanup EXIT
TEST=test-attach-args.sh
# shellcheck source=../cli-lib.sh
. "$(dirname "$0")/../cli-lib.sh"

# Starts nbdkit with ARGS on $WORK/sock in the background.
serve ()
{
  rm -f "$WORK/sock"
  nbdkit -f -U "$WORK/sock" "$@" > "$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 100); do
    [ -S "$WORK/sock" ] && return 0
    sleep 0.05
  done
  echo "test-attach-args.sh: nbdkit $* did not start" >&2
  cat "$WORK/server.log" >&2
  exit 99
}

stop ()
{
  kill -KILL "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null || :
  SERVER_PID=
}

status 0 '^ nbdswap attach SOCKET\|HOST\[:PORT\]' attach --help
status 0 'without it, the wire is plaintext' attach --help
status 0 '--page-cluster N +set vm.page-cluster to N' attach --help
status 0 'system-wide; 4 is advised for NBD' attach --help
status 1 "--page-cluster: '11' is not 0-10 \\(4 is advised\\)" \
  attach /a/sock --page-cluster 11
status 1 "--page-cluster: 'x' is not 0-10" attach /a/sock --page-cluster x
status 0 '--max-sectors-kb N +the device.s largest request, KiB \(1024 advised' attach --help
status 1 "--max-sectors-kb: '2' is not 0 or a multiple of 4 in 4-32768 \\(1024 is advised\\)" \
  attach /a/sock --max-sectors-kb 2
status 1 "--max-sectors-kb: '1030' is not 0 or a multiple of 4" \
  attach /a/sock --max-sectors-kb 1030
status 1 "--max-sectors-kb: '40000' is not 0 or a multiple of 4 in 4-32768" \
  attach /a/sock --max-sectors-kb 40000
status 1 "--max-sectors-kb: 'big' is not 0 or a multiple of 4" \
  attach /a/sock --max-sectors-kb big
status 1 '--integrity authenticates what --encrypt encrypts' \
  attach /a/sock --integrity
status 1 '--tls-psk and --tls-certificates exclude each other' \
  attach 127.0.0.1 --tls-psk /a/k --tls-certificates /a
status 1 '--tls-identity picks a key of --tls-psk FILE' \
  attach 127.0.0.1 --tls-identity me
status 1 'TLS to a unix socket: .*kTLS.*needs TCP' attach /a/sock --tls-psk /a/k
# Without kTLS attach stops before anything, naming the fix; with it, a
# missing key file is what stops it.
if [ -e /proc/net/tls_stat ] || modprobe tls 2>/dev/null; then
  status 1 'TLS credentials: /nonexistent/k: No such file' \
    attach 127.0.0.1:1 --tls-psk /nonexistent/k
else
  status 3 "no kTLS.*'modprobe tls'.*never falls back to plaintext" \
    attach 127.0.0.1:1 --tls-psk /nonexistent/k
fi
status 0 '^ nbdswap detach /dev/nbdN\|all' detach --help
status 0 '^ attach ' --help
status 0 '^   5  attach: the server cannot be reached' --help
status 1 'no server given' attach
status 1 'too many arguments' attach /a/sock /dev/nbd0 extra
status 1 "'/dev/sda' is not an nbd device" attach /a/sock /dev/sda
status 1 "'nbd' is not an nbd device" attach /a/sock nbd
status 1 'neither a socket path' attach 'host:port'
status 1 'neither a socket path' attach '::1'
status 1 'neither a socket path' attach '[::1'
status 1 '--priority' attach /a/sock --priority -1
status 1 '--priority' attach /a/sock --priority 40000
status 1 '--connections' attach /a/sock --connections 0
status 1 '--connections' attach /a/sock --connections 17
status 1 '--timeout' attach /a/sock --timeout 0
status 1 '--dead-timeout' attach /a/sock --dead-timeout x
status 1 'unrecognized option' attach /a/sock --bogus
status 1 '--netns is for TCP' attach /a/sock --netns x
status 1 'no device given' detach
status 1 'too many arguments' detach /dev/nbd0 /dev/nbd1
status 1 "'/dev/vda' is not an nbd device" detach /dev/vda

if [ "$(id -u)" -ne 0 ]; then
  status 3 'must run as root' attach "$WORK/sock"
  echo "SKIP: the rest needs root (attach checks the server as root)"
  [ "$failures" -eq 0 ] && exit 77 || exit 1
fi
status 5 "cannot connect to $WORK/nosuch.sock: .*nbdswap serve" \
  attach "$WORK/nosuch.sock"
# A port on loopback where nothing listens: 1 is reserved (tcpmux).
status 5 'cannot connect to 127.0.0.1' attach 127.0.0.1:1
status 1 '/dev/nbd7 is not attached' detach /dev/nbd7

if ! nbdkit --version > /dev/null 2>&1; then
  echo "SKIP: nbdkit is not installed: the unfit-export checks did not run"
  [ "$failures" -eq 0 ] && exit 77 || exit 1
fi
serve -r memory 1M
status 2 'read-only' attach "$WORK/sock"
stop
serve memory 1000
status 2 'whole number of 4 KiB pages' attach "$WORK/sock"
stop
serve --filter=multi-conn memory 1M multi-conn-mode=disable
status 2 'does not offer multi-conn' attach "$WORK/sock" --connections 2
stop
serve --filter=exportname memory 1M exportname=swap exportname-strict=true
status 5 "cannot connect .*export.*\\(no such export, or not one this client may open" \
  attach "$WORK/sock" --export nosuch
if [ ! -d /sys/module/nbd ] && ! modprobe -n nbd 2>/dev/null; then
  # The server is fine, the kernel has no nbd: one line, exit 3.
  status 3 "^nbdswap attach: no nbd driver" attach "$WORK/sock" --export swap
fi
stop

# --netns: the handshake is made from the namespace named, the rest of
# attach stays here.  The only server is a read-only export inside a new
# namespace, on a port of its loopback that nothing uses out here: from
# here attach cannot reach it (exit 5), from the namespace it is reached
# and found unfit (exit 2), before any kernel device is touched.
NETNS=nbdswap-attach-$$
if ip netns add "$NETNS" 2>"$WORK/netns.err"; then
  ip -n "$NETNS" link set lo up
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  ip netns exec "$NETNS" nbdkit -f -r -i 127.0.0.1 -p "$port" memory 1M \
    > "$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 100); do
    ip netns exec "$NETNS" nbdinfo --size "nbd://127.0.0.1:$port" \
      > /dev/null 2>&1 && break
    sleep 0.05
  done
  status 5 "cannot connect to 127.0.0.1: " attach "127.0.0.1:$port"
  status 2 'read-only' attach "127.0.0.1:$port" --netns "$NETNS"
  status 2 'read-only' attach "127.0.0.1:$port" \
    --netns "/run/netns/$NETNS"
  stop
  status 5 "cannot connect to 127.0.0.1 from network namespace $NETNS: " \
    attach "127.0.0.1:$port" --netns "$NETNS"
  status 1 "--netns nbdswap-no-such-ns: /run/netns/nbdswap-no-such-ns: No such file" \
    attach "127.0.0.1:$port" --netns nbdswap-no-such-ns
  : > "$WORK/plain-file"
  status 1 "--netns $WORK/plain-file: $WORK/plain-file: not a network namespace" \
    attach "127.0.0.1:$port" --netns "$WORK/plain-file"
else
  echo "SKIP: the --netns checks: ip netns add: $(cat "$WORK/netns.err")"
fi

cli_done
