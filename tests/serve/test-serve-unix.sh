#!/bin/bash
# nbdswap serve on a unix socket, for both servers: default paths and
# modes, small thread stacks, data through the socket, a second server
# refused, status in its three forms, a stale socket replaced, a
# relative --socket, the socket removed when the server stops.
source "$(dirname "$0")/functions.sh"

backing host1.img 16M
backing other.img 1M

for server in "${SERVERS[@]}"; do
server_opts "$server"
cd "$WORK"
serve_bg "$WORK/host1.img" "${OPTS[@]}"
pid=$LAST_PID
sock=$NBDSWAP_RUNTIME_DIR/host1.sock

[ "$(stat -c %a "$NBDSWAP_RUNTIME_DIR")" = 700 ] ||
  fail "runtime directory mode $(stat -c %a "$NBDSWAP_RUNTIME_DIR"), not 700"
[ -S "$sock" ] || fail "no socket at $sock"
[ "$(stat -c %a "$sock")" = 600 ] ||
  fail "socket mode $(stat -c %a "$sock"), not 600"
[ "$(cat "$NBDSWAP_RUNTIME_DIR/host1.pid")" = "$pid" ] ||
  fail "pidfile does not name PID $pid"
ok "socket 0600 in a 0700 directory, pidfile"
noatime "$pid" "$WORK/host1.img" ||
  fail "$server: the server does not hold the file with O_NOATIME|O_DIRECT"
io "nbd+unix:///?socket=$sock"

# The data reached the file itself.
cmp <(dd if="$WORK/host1.img" bs=4096 skip=1 count=16 status=none) \
  <(head -c 65536 /dev/zero | tr '\0' '\132') ||
  fail "the written pattern is not in the backing file"

# One server per file: the second is refused by the verification.
expect_status 2 "already served by another process" \
  serve "$WORK/host1.img" "${OPTS[@]}" --socket "$WORK/second.sock"
[ ! -e "$WORK/second.sock" ] || fail "$server: the refused server left its socket"

# status: the table, JSON, Prometheus; only this test's server.
expect_status 0 "^$pid +$WORK/host1.img +unix:$sock +1 +1 " \
  status "$WORK/host1.img"
nbdswap status --json "$WORK/host1.img" >"$WORK/status.json"
python3 -m json.tool "$WORK/status.json" >/dev/null ||
  fail "status --json is not JSON: $(cat "$WORK/status.json")"
python3 - "$WORK/status.json" "$pid" "$sock" "$server" <<'PY' || fail "$server: status --json content"
import json, sys
st = json.load(open(sys.argv[1]))
s = st["served"]
assert len(s) == 1, s
s = s[0]
assert s["pid"] == int(sys.argv[2]), s
assert s["socket"] == sys.argv[3], s
assert s["server"] == {"plugin": "nbdkit", "native": "native"}[sys.argv[4]], s
assert s["stats_fresh"] is True, s
c = s["counters"]
assert c["reads"] >= 1 and c["writes"] >= 1 and c["write_bytes"] >= 65536, c
assert set(c["latency_us"]) == {"p50", "p99", "p999"}, c
assert isinstance(st["attached"], list)
PY
ok "$server: status --json"
nbdswap status --prometheus "$WORK/metrics.prom" "$WORK/host1.img" ||
  fail "$server: status --prometheus failed"
[ ! -e "$WORK/metrics.prom.tmp" ] || fail "status left metrics.prom.tmp"
python3 - "$WORK/metrics.prom" "$WORK/host1.img" <<'PY' || fail "$server: status --prometheus format"
import re, sys
text = open(sys.argv[1]).read()
helps, types, samples = set(), set(), {}
for line in text.splitlines():
    if line.startswith("# HELP "):
        helps.add(line.split()[2])
    elif line.startswith("# TYPE "):
        name, kind = line.split()[2:4]
        assert kind in ("counter", "gauge"), line
        types.add(name)
    else:
        m = re.fullmatch(r'([a-z_]+)(\{[^}]*\})? ([0-9]+)', line)
        assert m, "bad sample line: " + line
        assert m.group(1) in types, "sample before its TYPE: " + line
        samples[m.group(1) + (m.group(2) or "")] = int(m.group(3))
assert helps == types, (helps, types)
f = sys.argv[2]
assert samples['nbdswap_server_requests_total{file="%s",op="write"}' % f] >= 1
assert samples['nbdswap_server_bytes_total{file="%s",op="read"}' % f] >= 65536
assert 'nbdswap_server_latency_microseconds{file="%s",quantile="0.99"}' % f in samples
PY
ok "$server: status --prometheus"

# Threads get small stacks (locked address space stays small): nbdkit's
# from serve's RLIMIT_STACK, and both from harden_thread_stacks.  The
# connection's thread exists while a client is connected.
if [ "$server" = plugin ]; then
  grep -q "^Max stack size  *524288 " "/proc/$pid/limits" ||
    fail "nbdkit's stack limit is not 512 KiB: $(grep stack "/proc/$pid/limits")"
fi
qemu-io -f raw -c 'sleep 1000' "nbd+unix:///?socket=$sock" >/dev/null 2>&1 &
client=$!
sleep 0.5
kib=$(thread_stack_kib "$pid")
wait "$client" || true
if [ -z "$kib" ]; then
  fail "$server: no thread stack measured"
elif [ "$kib" -gt 1024 ]; then
  fail "$server: a thread's stack is $kib KiB, over 1 MiB"
else
  ok "$server: thread stacks at most $kib KiB"
fi

# A server killed without cleanup leaves its socket: the next serve
# removes the stale one.
kill -KILL "$pid"
for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
[ -S "$sock" ] || fail "$server: expected a stale socket after SIGKILL"
serve_bg "$WORK/host1.img" "${OPTS[@]}"
io "nbd+unix:///?socket=$sock"
# A socket someone listens on is not taken over.
expect_status 3 "$sock: another server is listening there" \
  serve "$WORK/other.img" "${OPTS[@]}" --socket "$sock"
stop "$LAST_PID"
[ ! -e "$sock" ] || fail "$server: the socket outlived the server"
[ ! -e "$NBDSWAP_RUNTIME_DIR/host1.pid" ] ||
  fail "$server: the pidfile outlived the server"
expect_status 0 "^Served: none" status "$WORK/host1.img"

# A relative --socket is named whole: by serve, and by status run from
# elsewhere (the server left the directory it was given in).
cd "$WORK"
serve_bg host1.img "${OPTS[@]}" --socket rel.sock
pid=$LAST_PID
grep -q "on $WORK/rel.sock (PID" "$WORK/serve.out" ||
  fail "$server: serve did not name the whole socket path: $(cat "$WORK/serve.out")"
cd /
expect_status 0 "^$pid +$WORK/host1.img +unix:$WORK/rel.sock " \
  status "$WORK/host1.img"
stop "$pid"
[ ! -e "$WORK/rel.sock" ] || fail "$server: a relative --socket outlived the server"
done

finish
