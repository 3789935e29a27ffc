# shellcheck shell=bash
# nbdswap VM tests: TLS with the records in the kernel (kTLS).  The host's
# kernel has no tls module, this guest's (Debian's 6.1) has: here the TLS
# module's unit test installs real keys on both ends of a loopback
# connection, and tests/serve/test-serve-tls.sh runs its cases against
# the native server (the host runs them against nbdkit), with nbdcopy,
# nbdsh and qemu-img doing real TLS over the guest's loopback; and
# tests/serve/test-status-dir.sh, whose PSK identity case needs kTLS.
# Sourced by guest-scenario after guest-lib.sh.

scenario_tls ()
{
  local build log
  build=$(dirname "$(dirname "$NBDSWAP_CMD")")
  log=$RESULTS/test-serve-tls.log
  check_cmd ext4-mkfs fs_make ext4 || return
  check_cmd tls-module modprobe tls || return
  check_cmd tls-unit "$build/tests/unit/test-tls"
  # The serve tests want O_DIRECT: their directory on the scratch disk.
  # nbdkit's TLS is tested on the host; here the native server's.
  if (cd "$build/tests" && NBDSWAP=$NBDSWAP_CMD NBDSWAP_TEST_TMP=$SCRATCH \
        TLS_SERVERS=native \
        bash "$VM_SRCDIR/../serve/test-serve-tls.sh") > "$log" 2>&1; then
    pass serve-tls "$(grep -c ': ok: ' "$log") cases passed"
  else
    fail serve-tls "$(grep -m 3 'FAIL' "$log" | tr '\n' ' ')"
  fi
  grep ': ok: \|FAIL' "$log" | sed 's/^/  /' >> "$RESULTS/checks"
  grep -q "native: the sessions ran in the kernel" "$log" &&
    pass ktls-native "$(grep -m 1 'native: the sessions ran in the kernel' "$log" | sed 's/.*ok: //')" ||
    fail ktls-native "the native server's TLS did not run in the kernel"
  # status names a PSK client's identity among its export's clients: the
  # case of tests/serve/test-status-dir.sh that needs kTLS, with the rest.
  log=$RESULTS/test-status-dir.log
  if (cd "$build/tests" && NBDSWAP=$NBDSWAP_CMD NBDSWAP_TEST_TMP=$SCRATCH \
        bash "$VM_SRCDIR/../serve/test-status-dir.sh") > "$log" 2>&1 &&
     grep -q "ok: status --json: the PSK identity" "$log"; then
    pass status-dir-psk "$(grep -c ': ok: ' "$log") cases passed"
  else
    fail status-dir-psk "$(grep -m 3 'FAIL\|no kTLS' "$log" | tr '\n' ' ')"
  fi
  grep ': ok: \|FAIL' "$log" | sed 's/^/  /' >> "$RESULTS/checks"
  umount "$SCRATCH"
}
