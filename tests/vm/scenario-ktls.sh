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

# `nbdswap serve` (the native server) on KTLS_BACKING in the server
# namespace, its output in $1, with the serve options after it (none: no
# TLS) and the plugin parameters retry-timeout=3 and KTLS_PARAMS;
# SERVER_PID.
ktls_serve ()
{
  local log=$1 end=$((SECONDS + 60))
  shift
  # shellcheck disable=SC2086 # plugin parameters, one word each
  ip netns exec "$TCP_SRV_NS" "$NBDSWAP_CMD" serve "$KTLS_BACKING" \
    --port "$KTLS_PORT" --bind "$TCP_SRV_ADDR" --allow "$TCP_CLI_ADDR/32" \
    "$@" --foreground -- retry-timeout=3 ${KTLS_PARAMS:-} > "$log" 2>&1 &
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

# The native server with TLS (the key file of ktls_setup), output in $1.
ktls_server_start ()
{
  ktls_serve "$1" --tls-psk "$KTLS_DIR/server.psk"
}

# The network of scenario-tcp.sh, the nbd and tls modules, and in
# KTLS_DIR the server's key file, client1's line of it and a wrong key
# for the same identity.
ktls_setup ()
{
  KTLS_DIR=$SCRATCH/ktls
  check_cmd tcp-net-setup tcp_net_setup || return 1
  modprobe nbd nbds_max=4 || { fail nbd-module; return 1; }
  check_cmd tls-module modprobe tls || return 1
  mkdir -p "$KTLS_DIR"
  psktool -u client1 -p "$KTLS_DIR/server.psk" > /dev/null
  grep '^client1:' "$KTLS_DIR/server.psk" > "$KTLS_DIR/client1.psk"
  psktool -u client1 -p "$KTLS_DIR/wrong.psk" > /dev/null
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

# /proc/net/tls_stat's counter $2 in the namespace of $1 ("" root).
ktls_stat ()
{
  local -a pre=()
  [ -n "$1" ] && pre=(ip netns exec "$1")
  # shellcheck disable=SC2016 # awk's fields
  "${pre[@]}" awk -v k="$2" '$1 == k { v = $2 } END { print v + 0 }' \
    /proc/net/tls_stat
}

# Check $1: the kTLS sessions open now, at least one for each direction
# at both ends (the client in the root namespace, the server in its own).
ktls_in_kernel_check ()
{
  local c="" s="" k
  for k in TlsCurrTxSw TlsCurrRxSw; do
    c="$c $(ktls_stat "" "$k")" s="$s $(ktls_stat "$TCP_SRV_NS" "$k")"
  done
  if [[ " $c $s " != *" 0 "* ]]; then
    pass "$1" "tls_stat TlsCurrTxSw/RxSw: client$c, server$s"
  else
    fail "$1" "tls_stat TlsCurrTxSw/RxSw: client$c, server$s"
  fi
}

# Keep the TCP payload to and from KTLS_PORT on the client's veth in $1,
# up to $2 bytes or $3 seconds (wire-capture.py, its output in $4), in the
# background (CAP_PID); return once its socket is bound.
ktls_capture ()
{
  python3 "$VM_SRCDIR/wire-capture.py" tcp-cli "$KTLS_PORT" "$1" "$2" "$3" \
    > "$4" 2>&1 &
  CAP_PID=$!
  for _ in $(seq 120); do
    grep -q capturing "$4" && return 0
    sleep 0.25
  done
  return 1
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

# The capture and the scan find plaintext on the real wire: the synthetic
# stream of ktls_scanner_selfcheck written with O_DIRECT through the
# kernel's nbd client to the server without TLS, captured on the same link
# and port as the TLS run (so its clean capture means something).
ktls_capture_selfcheck ()
{
  local out
  if ! ktls_serve "$RESULTS/server-plain.log"; then
    fail ktls-capture-selfcheck "the server without TLS did not start: $(tail -n 2 "$RESULTS/server-plain.log" | tr '\n' ' ')"
    return 1
  fi
  ktls_capture "$KTLS_DIR/plain-wire.bin" $((16 << 20)) 120 \
    "$RESULTS/capture-plain.log"
  if nbd-client "$TCP_SRV_ADDR" "$KTLS_PORT" /dev/nbd2 -b 4096 \
       > "$RESULTS/nbd-client-plain.log" 2>&1; then
    dd if="$KTLS_DIR/selfcheck.bin" of=/dev/nbd2 bs=64k conv=sync \
       oflag=direct status=none
    nbd-client -d /dev/nbd2 > /dev/null 2>&1
  fi
  kill "$CAP_PID" 2>/dev/null
  wait "$CAP_PID"
  server_stop
  out=$(/tmp/plaintext-scan --stream "$KTLS_DIR/plain-wire.bin" 0x5eed)
  case $out in
    pattern_runs=0\ *|"")
      fail ktls-capture-selfcheck "no plaintext found in the capture of a run without TLS: $out; $(cat "$RESULTS/capture-plain.log" "$RESULTS/nbd-client-plain.log" | tr '\n' ' ')"
      return 1 ;;
    *) pass ktls-capture-selfcheck "without TLS, the capture on tcp-cli:$KTLS_PORT holds the pattern: $out ($(tail -n 1 "$RESULTS/capture-plain.log"))" ;;
  esac
}

scenario_ktls ()
{
  local out seed
  KTLS_BACKING=$SCRATCH/nbdswap-backing.img
  # kill_and_restart (scenario-attach.sh) restarts through server_start.
  check_cmd ext4-mkfs fs_make ext4 || return
  check_cmd create-backing backing_create "$KTLS_BACKING" "$VM_SWAP_MIB" || return
  ktls_setup || return
  scan_build || { fail ktls-scanner "cannot build plaintext-scan"; return; }
  ktls_scanner_selfcheck || return
  ktls_capture_selfcheck || return
  if ! ktls_server_start "$RESULTS/server.log"; then
    fail ktls-server-start "$(tail -n 3 "$RESULTS/server.log" | tr '\n' ' ')"
    return
  fi
  pass ktls-server-start "native, --tls-psk, $TCP_SRV_ADDR:$KTLS_PORT"
  ktls_refused ktls-wrong-key "is not the one in" --tls-psk "$KTLS_DIR/wrong.psk"
  ktls_refused ktls-plaintext-refused "without TLS: refused"

  attach_foreground ktls-attach "$TCP_SRV_ADDR:$KTLS_PORT" --timeout 5 \
    --tls-psk "$KTLS_DIR/client1.psk" || { server_stop; return; }
  ktls_in_kernel_check ktls-in-kernel
  # The first 64 MiB of the swap traffic, as it crosses the wire.
  ktls_capture "$KTLS_DIR/wire.bin" $((64 << 20)) 600 "$RESULTS/capture.log"
  # Mid-swap: SIGKILL, and a new server on the same file.
  rm -f "$RESULTS/server2.pid"
  workload_during ktls 384 kill_and_restart 64 ktls_server_again
  kill "$CAP_PID" 2>/dev/null
  wait "$CAP_PID"
  workload_checks ktls 128
  reconnect_check ktls-reconnected
  if grep -q "TLS with client 'client1'" "$RESULTS/server2.log"; then
    pass ktls-new-handshake "$(grep -m 1 "TLS with client" "$RESULTS/server2.log" | sed 's/^nbdswap: //')"
  else
    fail ktls-new-handshake "the restarted server saw no TLS client: $(tail -n 2 "$RESULTS/server2.log" | tr '\n' ' ')"
  fi
  seed=$(workload_seed ktls)
  out=$(/tmp/plaintext-scan --stream "$KTLS_DIR/wire.bin" "${seed:-0}")
  log "capture: $(tail -n 1 "$RESULTS/capture.log"); scan: $out"
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
