#!/bin/bash
# nbdswap serve --tls-psk / --tls-certificates, against real clients
# doing real TLS: nbdcopy, nbdsh and qemu-img/qemu-io write and read back
# exact data; a wrong key, an unknown identity, an untrusted certificate
# and a client that skips STARTTLS are each refused, with a line in the
# server's log.  The same cases run against each server in TLS_SERVERS
# (default "nbdkit native"): nbdkit with the plugin (--nbdkit, TLS in
# user space) and the native server (serve's default: handshake by
# GnuTLS, records in the kernel: kTLS).  Where the native server cannot
# have kTLS (a unix socket; no tls module in this kernel: this host),
# serve says so and falls back to nbdkit, or refuses where nbdkit would
# lose the per-identity rule of --dir --tls-psk; the VM scenario "tls"
# runs this script again in a guest whose kernel has kTLS.  Traffic
# stays on 127.0.0.1.
source "$(dirname "$0")/functions.sh"
requires python3 python3
requires nbdsh python3-libnbd
requires nbdcopy libnbd-bin
requires qemu-img qemu-utils
requires psktool gnutls-bin
requires certtool gnutls-bin

TLS_SERVERS=${TLS_SERVERS:-nbdkit native}
backing tls.img 16M
head -c 4M /dev/urandom > "$WORK/data"

# Keys: the server's file knows alice; mallory is unknown; eve has
# alice's name with another key.
psktool -u alice -p "$WORK/server.psk" >/dev/null
grep '^alice:' "$WORK/server.psk" > "$WORK/alice.psk"
psktool -u mallory -p "$WORK/mallory.psk" >/dev/null
psktool -u alice -p "$WORK/eve.psk" >/dev/null
mkdir -p "$WORK/qpsk" && cp "$WORK/alice.psk" "$WORK/qpsk/keys.psk"

# Certificates: a CA, the server's (for 127.0.0.1), a client's; a client
# certificate from another CA.
certs ()
{
  local d=$WORK/pki w
  mkdir -p "$d" "$WORK/srv" "$WORK/cli" "$WORK/rogue"
  printf 'cn = nbdswap test CA\nca\ncert_signing_key\nexpiration_days = 2\n' > "$d/ca.t"
  printf 'cn = localhost\ndns_name = localhost\nip_address = 127.0.0.1\ntls_www_server\nencryption_key\nsigning_key\nexpiration_days = 2\n' > "$d/srv.t"
  printf 'cn = client-one\ntls_www_client\nencryption_key\nsigning_key\nexpiration_days = 2\n' > "$d/cli.t"
  for w in good rogue; do
    certtool -p --outfile "$d/$w-ca-key.pem" 2>/dev/null
    certtool -s --load-privkey "$d/$w-ca-key.pem" --template "$d/ca.t" \
      --outfile "$d/$w-ca.pem" 2>/dev/null
  done
  certtool -p --outfile "$WORK/srv/server-key.pem" 2>/dev/null
  certtool -c --load-privkey "$WORK/srv/server-key.pem" \
    --load-ca-certificate "$d/good-ca.pem" --load-ca-privkey "$d/good-ca-key.pem" \
    --template "$d/srv.t" --outfile "$WORK/srv/server-cert.pem" 2>/dev/null
  for w in cli rogue; do
    local ca=good
    [ "$w" = rogue ] && ca=rogue
    certtool -p --outfile "$WORK/$w/client-key.pem" 2>/dev/null
    certtool -c --load-privkey "$WORK/$w/client-key.pem" \
      --load-ca-certificate "$d/$ca-ca.pem" --load-ca-privkey "$d/$ca-ca-key.pem" \
      --template "$d/cli.t" --outfile "$WORK/$w/client-cert.pem" 2>/dev/null
    cp "$d/good-ca.pem" "$WORK/$w/ca-cert.pem"
  done
  cp "$d/good-ca.pem" "$WORK/srv/ca-cert.pem"
}
certs

# wait_listen PORT PID: the server listens (or has died).
wait_listen ()
{
  for _ in $(seq 300); do
    ss -ltnH "sport = :$1" 2>/dev/null | grep -q . && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# The kernel's kTLS counters (sockets that got keys), or 0 0.
ktls_count ()
{
  awk '$1 == "TlsTxSw" { t = $2 } $1 == "TlsRxSw" { r = $2 }
       END { print t + 0, r + 0 }' /proc/net/tls_stat 2>/dev/null || echo 0 0
}

# nbdsh_uri URI SCRIPT...: nbdsh connected to URI (its key files are
# local files, which libnbd allows only when asked).  /usr/bin first: the
# Debian python3 has the nbd module, a python3 earlier in PATH may not.
nbdsh_uri ()
{
  local uri=$1
  shift
  PATH=/usr/bin:$PATH nbdsh -c 'h.set_uri_allow_local_file(True)' \
    -c "h.connect_uri('$uri')" "$@"
}

# refused WHAT LOG REGEX CMD...: CMD fails, and LOG gets a line matching
# REGEX (the server's words for it).  An empty REGEX: the server has no
# words for it (nbdkit 1.32.5 logs nothing when it refuses a TLS client,
# unless --verbose).
refused ()
{
  local what=$1 log=$2 regex=$3
  shift 3
  if "$@" >"$WORK/client.out" 2>&1; then
    fail "$SRV: $what: the client got in: $(tail -n 2 "$WORK/client.out")"
    return
  fi
  if [ -z "$regex" ]; then
    ok "$SRV: $what refused (client: $(tail -n 1 "$WORK/client.out"); the server logs nothing)"
    return
  fi
  for _ in $(seq 30); do
    grep -qiE -- "$regex" "$log" && break
    sleep 0.1
  done
  if grep -qiE -- "$regex" "$log"; then
    ok "$SRV: $what refused: $(grep -iE -m1 -- "$regex" "$log")"
  else
    fail "$SRV: $what: refused, but no server log line /$regex/: $(tail -n 3 "$log" | tr '\n' ' ')"
  fi
}

# exact_io URI QEMU_OBJECT QEMU_OPTS: nbdcopy writes the data, nbdsh
# writes and reads a block, qemu-io writes a pattern, qemu-img reads it
# all back: every byte as written.
exact_io ()
{
  local uri=$1 obj=$2 qopts=$3
  rm -f "$WORK/back" "$WORK/qback"
  if ! nbdcopy "$WORK/data" "$uri" 2>"$WORK/client.out" ||
     ! nbdcopy "$uri" "$WORK/back" 2>>"$WORK/client.out" ||
     ! cmp -s -n 4194304 "$WORK/data" "$WORK/back"; then
    fail "$SRV: nbdcopy over TLS: $(tail -n 2 "$WORK/client.out")"
  else
    ok "$SRV: nbdcopy wrote and read back 4 MiB over TLS"
  fi
  if nbdsh_uri "$uri" -c '
assert h.get_tls_negotiated(), "TLS not negotiated"
buf = bytes(range(256)) * 16
h.pwrite(buf, 8 << 20)
assert h.pread(4096, 8 << 20) == buf, "read back differs"
' 2>"$WORK/client.out"; then
    ok "$SRV: nbdsh: TLS negotiated, 4 KiB written and read back"
  else
    fail "$SRV: nbdsh over TLS: $(tail -n 3 "$WORK/client.out")"
  fi
  if qemu-io --object "$obj" --image-opts "$qopts" \
       -c 'write -P 0x3c 10M 64k' -c 'read -P 0x3c 10M 64k' \
       >"$WORK/client.out" 2>&1 &&
     ! grep -q "verification failed\|error" "$WORK/client.out" &&
     qemu-img convert --object "$obj" --image-opts "$qopts" -O raw \
       "$WORK/qback" 2>>"$WORK/client.out" &&
     cmp -s -n 4194304 "$WORK/data" "$WORK/qback" &&
     [ "$(dd if="$WORK/qback" bs=64k skip=160 count=1 2>/dev/null | tr -d '<' | wc -c)" = 0 ]; then
    ok "$SRV: qemu-io wrote, qemu-img read back the whole export over TLS"
  else
    fail "$SRV: qemu-io/qemu-img over TLS: $(tail -n 3 "$WORK/client.out")"
  fi
}

# start LOG ARGS...: serve in the foreground on a fresh port (PORT).
start ()
{
  local log=$1
  shift
  PORT=$(free_port)
  serve_fg "$log" "$WORK/tls.img" --port "$PORT" "${CHOICE[@]}" "$@"
  if ! wait_listen "$PORT" "$LAST_PID"; then
    fail "$SRV: serve $*: not listening: $(tail -n 3 "$log" | tr '\n' ' ')"
    return 1
  fi
}

# The native server's TLS on a unix socket: kTLS needs TCP, so nbdkit
# serves in its place, loudly; not where that would lose --dir
# --tls-psk's rule that an identity opens only its own export.
fallback="the native server does TLS in the kernel \(kTLS\), which needs TCP, and this is a unix socket: FALLING BACK to nbdkit with the swapfile plugin and TLS in user space; to serve with the native server, serve on --port/--bind, or add --nbdkit"
expect_status 0 "$fallback" serve --dry-run "$WORK/tls.img" \
  --socket "$WORK/tls.sock" --tls-psk "$WORK/server.psk"
grep -q "^# nbdswap serve: nbdkit with the swapfile plugin, in the native server's place" \
  "$WORK/out" && grep -q "^nbdkit .* --tls=require --tls-psk $WORK/server.psk " "$WORK/out" ||
  fail "dry run of the TLS fallback: $(cat "$WORK/out")"
mkdir "$WORK/fleet"
expect_status 3 "kTLS.*unix socket; nbdkit cannot serve in its place, since --dir with --tls-psk: each PSK identity opens only the export of its name.*; to serve, serve on --port/--bind" \
  serve --dir "$WORK/fleet" --tls-psk "$WORK/server.psk" --foreground
[ ! -e "$NBDSWAP_RUNTIME_DIR/fleet.sock" ] || fail "a refused --dir left its socket"

for SRV in $TLS_SERVERS; do
  CHOICE=()
  [ "$SRV" = nbdkit ] && CHOICE=(--nbdkit)
  # The native server's TLS is kTLS: without it, nbdkit serves in its
  # place, loudly; --dir --tls-psk is refused instead.
  if [ "$SRV" = native ] && [ ! -e /proc/net/tls_stat ] &&
     ! modprobe tls 2>/dev/null; then
    if start "$WORK/no-ktls.log" --tls-psk "$WORK/server.psk"; then
      grep -q "^nbdswap: warning: the native server does TLS in the kernel (kTLS), and this kernel has no kTLS.*modprobe tls.*FALLING BACK to nbdkit" \
        "$WORK/no-ktls.log" ||
        fail "no kTLS: no warning that nbdkit serves instead: $(cat "$WORK/no-ktls.log")"
      [ "$(cat "/proc/$LAST_PID/comm")" = nbdkit ] ||
        fail "no kTLS: serve did not hand over to nbdkit: $(cat "/proc/$LAST_PID/comm")"
      exact_io "nbds://alice@127.0.0.1:$PORT/?tls-psk-file=$WORK/alice.psk" \
        "tls-creds-psk,id=tls0,endpoint=client,dir=$WORK/qpsk,username=alice" \
        "driver=nbd,host=127.0.0.1,port=$PORT,tls-creds=tls0"
      stop "$LAST_PID"
    fi
    expect_status 3 "this kernel has no kTLS.*; nbdkit cannot serve in its place, since --dir with --tls-psk" \
      serve --dir "$WORK/fleet" --port "$(free_port)" --tls-psk "$WORK/server.psk" --foreground
    echo "$TEST_NAME: native: no kTLS in this kernel: its TLS cases run in the VM scenario 'tls'"
    continue
  fi

  # PSK.
  log=$WORK/$SRV-psk.log
  before=$(ktls_count)
  if start "$log" --tls-psk "$WORK/server.psk"; then
    exact_io "nbds://alice@127.0.0.1:$PORT/?tls-psk-file=$WORK/alice.psk" \
      "tls-creds-psk,id=tls0,endpoint=client,dir=$WORK/qpsk,username=alice" \
      "driver=nbd,host=127.0.0.1,port=$PORT,tls-creds=tls0"
    if [ "$SRV" = native ]; then
      after=$(ktls_count)
      if [ "${after% *}" -gt "${before% *}" ] && [ "${after#* }" -gt "${before#* }" ]; then
        ok "native: the sessions ran in the kernel (tls_stat TlsTxSw/TlsRxSw $before -> $after)"
      else
        fail "native: kTLS counters did not move ($before -> $after)"
      fi
      grep -q "TLS with client 'alice'" "$log" ||
        fail "native: no 'TLS with client' line in the log"
    fi
    wrong='' unknown='' plain=''
    if [ "$SRV" = native ]; then
      wrong="key for PSK identity 'alice' is not the one in"
      unknown="unknown PSK identity 'mallory'"
      plain="asked for NBD_OPT_[A-Z_]* \([0-9]+\) without TLS: refused \(TLS is required"
    fi
    refused "a wrong key" "$log" "$wrong" \
      nbdsh_uri "nbds://alice@127.0.0.1:$PORT/?tls-psk-file=$WORK/eve.psk" -c 'h.pread(512, 0)'
    refused "an unknown identity" "$log" "$unknown" \
      nbdsh_uri "nbds://mallory@127.0.0.1:$PORT/?tls-psk-file=$WORK/mallory.psk" -c 'h.pread(512, 0)'
    refused "a client that skips STARTTLS" "$log" "$plain" \
      nbdsh_uri "nbd://127.0.0.1:$PORT/" -c 'h.pread(512, 0)'
    refused "qemu-io without TLS" "$log" "$plain" \
      qemu-io -f raw -c 'read 0 512' "nbd://127.0.0.1:$PORT/"
    stop "$LAST_PID"
  fi

  # X.509, client certificates checked.
  log=$WORK/$SRV-x509.log
  if start "$log" --tls-certificates "$WORK/srv" --tls-verify-peer; then
    exact_io "nbds://127.0.0.1:$PORT/?tls-certificates=$WORK/cli" \
      "tls-creds-x509,id=tls0,endpoint=client,dir=$WORK/cli" \
      "driver=nbd,host=127.0.0.1,port=$PORT,tls-creds=tls0"
    untrusted=''
    [ "$SRV" = native ] && untrusted="certificate is not trusted"
    refused "a client certificate from another CA" "$log" "$untrusted" \
      nbdsh_uri "nbds://127.0.0.1:$PORT/?tls-certificates=$WORK/rogue" -c 'h.pread(512, 0)'
    stop "$LAST_PID"
  fi
done

finish
