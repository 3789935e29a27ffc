# shellcheck shell=bash
# nbdswap VM tests: remote swap over TLS with the records in the kernel
# (issue 14, part 1).  The network of scenario-tcp.sh (the client in the
# root namespace, the server in nbdsrv); the native server with
# --tls-psk, `nbdswap attach --tls-psk`: attach negotiates STARTTLS
# itself and hands the kernel's nbd driver a kTLS socket.  Checks: a
# wrong key and a plaintext client are refused before any block is
# served, with the server naming why; swap through the TLS socket
# verifies every word; /proc/net/tls_stat shows the sessions in the
# kernel at both ends; the payload captured on the client's veth holds
# none of the workload's plaintext (the scanner is first shown to find
# it in a synthetic stream); the server killed with SIGKILL mid-swap and
# restarted: the supervisor reconnects with a new handshake and nothing
# is lost.  Sourced by guest-scenario after scenario-tcp.sh.

KTLS_PORT=10811

# The native server with TLS in the server namespace; SERVER_PID.
ktls_server_start ()
{
  local log=$1 end=$((SECONDS + 60))
  ip netns exec "$TCP_SRV_NS" "$NBDSWAP_CMD" serve "$KTLS_BACKING" --native \
    --port "$KTLS_PORT" --bind "$TCP_SRV_ADDR" --allow "$TCP_CLI_ADDR/32" \
    --tls-psk "$KTLS_DIR/server.psk" --foreground -- retry-timeout=3 \
    > "$log" 2>&1 &
  # shellcheck disable=SC2034 # server_running and server_stop use it
  SERVER_PID=$!
  while [ "$SECONDS" -lt "$end" ]; do
    ip netns exec "$TCP_SRV_NS" ss -Hltn "sport = :$KTLS_PORT" | grep -q . &&
      return 0
    server_running || return 1
    sleep 0.5
  done
  return 1
}

# attach with the given extra arguments must fail (exit 5) and leave
# /dev/nbd1 alone, and the server log must say $2.
ktls_refused ()
{
  local name=$1 want=$2 rc=0 out
  shift 2
  out=$(timeout 60 "$NBDSWAP_CMD" attach "$TCP_SRV_ADDR:$KTLS_PORT" \
          /dev/nbd1 "$@" 2>&1) || rc=$?
  sleep 1
  if [ "$rc" = 5 ] && [ "$(cat /sys/block/nbd1/size)" = 0 ] &&
     grep -q "$want" "$RESULTS/server.log"; then
    pass "$name" "exit 5 ($(echo "$out" | tail -n 1)); server: $(grep -m 1 "$want" "$RESULTS/server.log" | sed 's/^nbdswap: //')"
  else
    fail "$name" "exit $rc: $out; server log: $(tail -n 2 "$RESULTS/server.log" | tr '\n' ' ')"
  fi
}

# The kTLS sockets now open in the namespace of $1 ("" root).
ktls_current ()
{
  local -a pre=()
  [ -n "$1" ] && pre=(ip netns exec "$1")
  "${pre[@]}" awk '$1 == "TlsCurrTxSw" { t = $2 } $1 == "TlsCurrRxSw" { r = $2 }
                   END { print t + 0, r + 0 }' /proc/net/tls_stat
}

# The scanner finds the pattern in a stream at no particular alignment
# (else a clean capture would prove nothing).
ktls_scanner_selfcheck ()
{
  local out
  python3 - "$KTLS_DIR/selfcheck.bin" <<'EOF'
import os, struct, sys
K, seed, M = 0x9E3779B97F4A7C15, 0x5eed, (1 << 64) - 1
words = b"".join(struct.pack("<Q", ((((i + 1) * K) & M) | 1 << 63) ^ seed)
                 for i in range(512))
open(sys.argv[1], "wb").write(os.urandom(4093) + words + os.urandom(999))
EOF
  out=$(/tmp/plaintext-scan --stream "$KTLS_DIR/selfcheck.bin" 0x5eed)
  case $out in
    pattern_runs=0\ *) fail ktls-scanner-selfcheck "$out"; return 1 ;;
    *) pass ktls-scanner-selfcheck "$out in a synthetic unaligned stream" ;;
  esac
}

scenario_ktls ()
{
  local cap_pid out seed cli srv
  KTLS_DIR=$SCRATCH/ktls
  KTLS_BACKING=$SCRATCH/nbdswap-backing.img
  # kill_and_restart (scenario-attach.sh) restarts through server_start.
  check_cmd ext4-mkfs fs_make ext4 || return
  check_cmd create-backing backing_create "$KTLS_BACKING" "$VM_SWAP_MIB" || return
  check_cmd tcp-net-setup tcp_net_setup || return
  modprobe nbd nbds_max=4 || { fail nbd-module; return; }
  check_cmd tls-module modprobe tls || return
  mkdir -p "$KTLS_DIR"
  psktool -u client1 -p "$KTLS_DIR/server.psk" > /dev/null
  grep '^client1:' "$KTLS_DIR/server.psk" > "$KTLS_DIR/client1.psk"
  psktool -u client1 -p "$KTLS_DIR/wrong.psk" > /dev/null
  scan_build || { fail ktls-scanner "cannot build plaintext-scan"; return; }
  ktls_scanner_selfcheck || return
  if ! ktls_server_start "$RESULTS/server.log"; then
    fail ktls-server-start "$(tail -n 3 "$RESULTS/server.log" | tr '\n' ' ')"
    return
  fi
  pass ktls-server-start "native, --tls-psk, $TCP_SRV_ADDR:$KTLS_PORT"
  ktls_refused ktls-wrong-key "is not the one in" --tls-psk "$KTLS_DIR/wrong.psk"
  ktls_refused ktls-plaintext-refused "without TLS: refused"

  attach_foreground ktls-attach "$TCP_SRV_ADDR:$KTLS_PORT" --timeout 5 \
    --tls-psk "$KTLS_DIR/client1.psk" || { server_stop; return; }
  cli=$(ktls_current "") srv=$(ktls_current "$TCP_SRV_NS")
  if [ "${cli% *}" -ge 1 ] && [ "${cli#* }" -ge 1 ] &&
     [ "${srv% *}" -ge 1 ] && [ "${srv#* }" -ge 1 ]; then
    pass ktls-in-kernel "tls_stat TlsCurrTxSw/RxSw: client $cli, server $srv"
  else
    fail ktls-in-kernel "tls_stat TlsCurrTxSw/RxSw: client $cli, server $srv"
  fi
  # The first 64 MiB of the swap traffic, as it crosses the wire.
  python3 "$VM_SRCDIR/wire-capture.py" tcp-cli "$KTLS_PORT" \
    "$KTLS_DIR/wire.bin" $((64 << 20)) 600 > "$RESULTS/capture.log" 2>&1 &
  cap_pid=$!
  # Mid-swap: SIGKILL, and a new server on the same file.
  rm -f "$RESULTS/server2.pid"
  workload_during ktls 384 kill_and_restart 64 ktls_server_again
  kill "$cap_pid" 2>/dev/null
  wait "$cap_pid"
  workload_checks ktls 128
  reconnect_check ktls-reconnected
  if grep -q "TLS with client 'client1'" "$RESULTS/server2.log"; then
    pass ktls-new-handshake "$(grep -m 1 "TLS with client" "$RESULTS/server2.log" | sed 's/^nbdswap: //')"
  else
    fail ktls-new-handshake "the restarted server saw no TLS client: $(tail -n 2 "$RESULTS/server2.log" | tr '\n' ' ')"
  fi
  seed=$(workload_seed ktls)
  out=$(/tmp/plaintext-scan --stream "$KTLS_DIR/wire.bin" "${seed:-0}")
  log "capture: $(cat "$RESULTS/capture.log"); scan: $out"
  case $out in
    pattern_runs=0\ bytes=*)
      if [ "${out#*bytes=}" -ge $((8 << 20)) ]; then
        pass ktls-wire-no-plaintext "$out (seed $seed)"
      else
        fail ktls-wire-no-plaintext "captured too little to tell: $out"
      fi ;;
    *) fail ktls-wire-no-plaintext "workload plaintext on the wire: $out" ;;
  esac
  swap_errors_check ktls-no-io-error
  detach_foreground ktls-detach
  server_stop
}

# The TLS server again (kill_and_restart), its log server2.log.
ktls_server_again ()
{
  ktls_server_start "$RESULTS/server2.log"
}
