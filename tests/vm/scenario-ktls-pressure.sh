# shellcheck shell=bash
# nbdswap VM tests: the memory-pressure scenario over kTLS (issue 14, not
# in "all": the CI run's time is spent).  pressure's global memory
# pressure (guest-scenario: pressure_prepare and pressure_rounds, the
# hung-task panic at 30 s) with the swap going over ktls's network and
# TLS (scenario-ktls.sh): `nbdswap serve --tls-psk` (native) in the server
# namespace, `nbdswap attach HOST:PORT --tls-psk` from the root namespace,
# the records encrypted and decrypted by the kernel at both ends, on the
# swap-out path itself.  Checks, besides pressure's: the sessions are in
# the kernel before and after, no record failed to decrypt, the
# supervisor never had to reconnect (any non-data record or failed
# receive kills the kernel client's connection), no swap or nbd error in
# the kernel log.  tcp-pressure is the control: the same network, server
# and attach without TLS.

# Global memory pressure with swap over TCP to `serve --native` in the
# server namespace, with TLS if $1 is "tls" (checks named ktls-*), else
# plaintext (tcp-*).
net_pressure ()
{
  local p=tcp k c s
  local -a tls=()
  pressure_prepare || return
  ktls_setup || return
  # ktls_serve's file, and as pressure's server re-verification under the
  # pressure.
  # shellcheck disable=SC2034
  KTLS_BACKING=$PRESSURE_BACKING KTLS_PARAMS=recheck=${VM_PRESSURE_RECHECK:-20}
  [ "$1" = tls ] && p=ktls tls=(--tls-psk "$KTLS_DIR/client1.psk")
  if ! ktls_serve "$RESULTS/server.log" \
       ${tls:+--tls-psk "$KTLS_DIR/server.psk"}; then
    fail $p-server-start "$(tail -n 3 "$RESULTS/server.log" | tr '\n' ' ')"
    return
  fi
  pass $p-server-start "native, ${tls:+--tls-psk, }$TCP_SRV_ADDR:$KTLS_PORT"
  attach_foreground $p-attach "$TCP_SRV_ADDR:$KTLS_PORT" "${tls[@]}" \
    || { server_stop; return; }
  [ "$1" = tls ] && ktls_in_kernel_check ktls-in-kernel
  PRESSURE_NS=$TCP_SRV_NS pressure_rounds
  log "PFMemallocDrop: server $(pfmemalloc_drops "$TCP_SRV_NS"), client $(pfmemalloc_drops "")"
  if [ "$1" = tls ]; then
    ktls_in_kernel_check ktls-in-kernel-after
    for k in TlsDecryptError TlsRxNoPadViolation; do
      c=$(ktls_stat "" "$k") s=$(ktls_stat "$TCP_SRV_NS" "$k")
      if [ "$c" = 0 ] && [ "$s" = 0 ]; then
        pass "ktls-no-$k" "client 0, server 0"
      else
        fail "ktls-no-$k" "client $c, server $s"
      fi
    done
  fi
  if grep -q reconnected "$SV_LOG"; then
    fail $p-no-reconnect "the connection died under pressure: $(grep -m 1 -B 2 reconnected "$SV_LOG" | tr '\n' ' ')"
  else
    pass $p-no-reconnect "one connection for the whole run"
  fi
  detach_foreground $p-detach
  server_stop
  dmesg_checks pressure-kernel-log
  umount "$SCRATCH"
}

scenario_ktls-pressure () { net_pressure tls; }
scenario_tcp-pressure () { net_pressure plain; }
