#!/bin/bash
# nbdswap status for a server of a directory, per export, for both
# front ends (serve --native --dir, and nbdkit with the plugin's dir=,
# through dir_serve): three exports, nbdsh doing a known number of reads
# and writes on two of them (different amounts) and none on the third,
# whose name holds a quote and a backslash.  The table, --json and
# --prometheus each give every export's counts exactly (zero for the
# third), the sum beside them, the connections open now and the client's
# address.  An export whose file is removed while a client uses it
# leaves the list, but its counts stay in the sum, while the client
# holds it and after it let go.  With TLS-PSK, the native server shows
# the client's identity; nbdkit's plugin is not told it (nbdkit 1.32),
# and status says so instead of showing none.  TCP on 127.0.0.1 only.
source "$(dirname "$0")/functions.sh"
requires nbdsh python3-libnbd

ODD='c"harlie\z'                        # no I/O; escaped everywhere

# nbdsh_on URI CODE: run CODE with h connected to URI; ready/go files
# in $READY/$GO let a client hold its connection (hold).
nbdsh_on ()
{
  PATH=/usr/bin:$PATH nbdsh -c 'h.set_uri_allow_local_file(True)' \
    -c "h.connect_uri('$1')" -c "$2"
}

# hold URI TAG: a client that connects to URI and waits, doing no I/O,
# until $WORK/TAG.go exists; $WORK/TAG.ready once it transmits.
hold ()
{
  nbdsh_on "$1" "import os, time
open('$WORK/$2.ready', 'w').close()
while not os.path.exists('$WORK/$2.go'):
    time.sleep(0.05)" >"$WORK/$2.out" 2>&1 &
  HELD=$!
  for _ in $(seq 100); do [ -e "$WORK/$2.ready" ] && return 0; sleep 0.1; done
  fail "the client holding $1 did not connect: $(cat "$WORK/$2.out")"
}

# check_json WHAT PYTHON: status --json into $WORK/status.json, then
# PYTHON (st: the one server, of front end $KIND) asserts on it.
check_json ()
{
  nbdswap status --json "$WORK/fleet" >"$WORK/status.json" ||
    fail "$1: status --json failed"
  python3 - "$WORK/status.json" "$SERVER" "$WORK/fleet" "$ODD" "$2" "$KIND" \
    <<'PY' && ok "$KIND: $1" || fail "$KIND: $1: $(cat "$WORK/status.json")"
import json, sys
doc = json.load(open(sys.argv[1]))
assert len(doc["served"]) == 1, doc["served"]
st = doc["served"][0]
assert st["pid"] == int(sys.argv[2]) and st["file"] == sys.argv[3], st
assert st["directory"] is True and st["stats_fresh"] is True, st
assert st["server"] == {"native": "native", "plugin": "nbdkit"}[sys.argv[6]]
assert st["identities_known"] is True, st
odd = sys.argv[4]
ex = {e["name"]: e for e in st["exports"]}
def counts(c):
    return (c["reads"], c["writes"], c["read_bytes"], c["write_bytes"],
            c["errors"])
exec(sys.argv[5])
PY
}

# check_prom WHAT PYTHON: status --prometheus, parsed into samples
# {(name, frozenset of label pairs): value}, then PYTHON asserts on it.
check_prom ()
{
  nbdswap status --prometheus "$WORK/metrics.prom" "$WORK/fleet" ||
    fail "$1: status --prometheus failed"
  python3 - "$WORK/metrics.prom" "$WORK/fleet" "$ODD" "$2" <<'PY' &&
import re, sys
text = open(sys.argv[1]).read()
helps, types, samples = set(), set(), {}
label = r'([a-z_]+)="((?:[^"\\\n]|\\[\\"n])*)"'
for line in text.splitlines():
    if line.startswith("# HELP "):
        helps.add(line.split()[2])
        continue
    if line.startswith("# TYPE "):
        name, kind = line.split()[2:4]
        assert kind in ("counter", "gauge"), line
        types.add(name)
        continue
    m = re.fullmatch(r'([a-z_]+)\{((?:%s,?)*)\} ([0-9]+)' % label, line)
    assert m, "bad sample line: " + line
    assert m.group(1) in types, "sample before its TYPE: " + line
    labels = frozenset((k, re.sub(r'\\(.)', lambda e: {"n": "\n"}.get(
        e.group(1), e.group(1)), v)) for k, v in re.findall(label, m.group(2)))
    key = (m.group(1), labels)
    assert key not in samples, "duplicate series: " + line
    samples[key] = int(m.groups()[-1])
assert helps == types, (helps, types)
f, odd = sys.argv[2], sys.argv[3]
def get(name, export=None, **kw):
    kw["file"] = f
    if export is not None:
        kw["export"] = export
    return samples.get((name, frozenset(kw.items())))
R, B = "nbdswap_server_requests_total", "nbdswap_server_bytes_total"
exec(sys.argv[4])
PY
    ok "$KIND: $1" || fail "$KIND: $1: $(cat "$WORK/metrics.prom")"
}

# status_cases KIND: the cases for front end KIND (dir_serve's): the
# exports' counts, connections and clients in the three forms, then a
# dropped export's counts kept in the sum.
status_cases ()
{
  KIND=$1
  # status's words for a loopback client's file I/O: the native
  # server's choice; nothing for nbdkit's plugin.
  FILE_IO_TEXT=
  [ "$KIND" != native ] || FILE_IO_TEXT=", file I/O through io_uring's workers"
  fleet alpha bravo "$ODD"
  LOG=$WORK/$KIND.log
  port=$(free_port)
  dir_serve "$KIND" "$LOG" "tcp:$port" "$WORK/fleet"
  SERVER=$LAST_PID
  log_wait "$LOG" "$SERVER" "$(dir_serving "$KIND" 3)" ||
    { cat "$LOG" >&2; fail "the $KIND server did not start"; return; }

  # alpha: 3 writes of 4 KiB, 2 reads of 64 KiB.  bravo: 1 write of
  # 64 KiB, 5 reads of 4 KiB.
  nbdsh_on "nbd://127.0.0.1:$port/alpha" '
for i in range(3):
    h.pwrite(b"a" * 4096, i * 4096)
for i in range(2):
    h.pread(65536, 0)' || fail "I/O on alpha"
  nbdsh_on "nbd://127.0.0.1:$port/bravo" '
h.pwrite(b"b" * 65536, 0)
for i in range(5):
    h.pread(4096, i * 4096)' || fail "I/O on bravo"
  hold "nbd://127.0.0.1:$port/alpha" alpha
  alpha_holder=$HELD
  # The server's threads of the clients that left may still be ending:
  # wait until the holder's is the one connection.
  for _ in $(seq 50); do
    nbdswap status --json "$WORK/fleet" | python3 -c '
import json, sys
e = json.load(sys.stdin)["served"][0]["exports"]
sys.exit([x["connections"] for x in e] != [1, 0, 0])' 2>/dev/null && break
    sleep 0.1
  done

  # The table: the server's row holds the sum, then a row per export
  # with its connections, and a line per client.
  expect_status 0 "^$SERVER +$WORK/fleet +tcp:127.0.0.1:$port +7 +4 " \
    status "$WORK/fleet"
  for want in "^ +export alpha +1 connection +2 +3 +128.0 KiB +12.0 KiB +0 " \
              "^ +export bravo +0 connections +5 +1 +20.0 KiB +64.0 KiB +0 " \
              '^ +export c"harlie\\x5cz +0 connections +0 +0 +0 B +0 B +0 +0$' \
              "^ +client 127\.0\.0\.1:[0-9]+$FILE_IO_TEXT$"; do
    grep -qE -- "$want" "$WORK/out" ||
      fail "$KIND: status table: no line /$want/: $(cat "$WORK/out")"
  done
  ok "$KIND: status table: each export's counts, connections and client"
  # A file of the directory selects its server; another file does not.
  expect_status 0 "^$SERVER +$WORK/fleet " status "$WORK/fleet/bravo"
  expect_status 0 "^Served: none" status "$WORK/elsewhere"

  check_json "status --json: each export's counts, clients, the sum" '
assert [e["name"] for e in st["exports"]] == ["alpha", "bravo", odd], ex
assert counts(ex["alpha"]["counters"]) == (2, 3, 131072, 12288, 0), ex["alpha"]
assert counts(ex["bravo"]["counters"]) == (5, 1, 20480, 65536, 0), ex["bravo"]
assert counts(ex[odd]["counters"]) == (0, 0, 0, 0, 0), ex[odd]
assert ex[odd]["counters"]["latency_us"] == {"p50": 0, "p99": 0, "p999": 0}
assert counts(st["counters"]) == (7, 4, 151552, 77824, 0), st["counters"]
assert ex["alpha"]["path"] == sys.argv[3] + "/alpha", ex["alpha"]
assert ex["alpha"]["size"] == 16 << 20, ex["alpha"]
assert (ex["alpha"]["connections"], ex["alpha"]["connections_total"]) == (1, 2)
assert (ex["bravo"]["connections"], ex["bravo"]["connections_total"]) == (0, 1)
assert (ex[odd]["connections"], ex[odd]["connections_total"]) == (0, 0)
c = ex["alpha"]["clients"]
assert len(c) == 1 and c[0]["address"] == "127.0.0.1" and c[0]["port"] > 0 \
    and c[0]["identity"] is None, c
# Loopback: the native server gives it the io_uring workers; the plugin
# under nbdkit has no such choice.
assert c[0]["file_io"] == ("worker" if sys.argv[6] == "native" else None), c
assert ex["bravo"]["clients"] == [] and ex[odd]["clients"] == []'

  check_prom "status --prometheus: an export label per export, the sum without" '
assert get(R, "alpha", op="read") == 2 and get(R, "alpha", op="write") == 3
assert get(B, "alpha", op="read") == 131072 and get(B, "alpha", op="write") == 12288
assert get(R, "bravo", op="read") == 5 and get(R, "bravo", op="write") == 1
assert get(B, "bravo", op="read") == 20480 and get(B, "bravo", op="write") == 65536
assert get(R, odd, op="read") == 0 and get(R, odd, op="write") == 0
assert get("nbdswap_server_errors_total", odd) == 0
assert get("nbdswap_server_latency_microseconds", odd, quantile="0.99") == 0
assert get(R, op="read") == 7 and get(R, op="write") == 4
assert get(B, op="write") == 77824
assert get("nbdswap_server_connections", "alpha") == 1
assert get("nbdswap_server_connections", odd) == 0
assert get("nbdswap_server_connections_total", "bravo") == 1
assert get("nbdswap_server_client_connections", "alpha",
           address="127.0.0.1", identity="") == 1'
  grep -qF 'export="c\"harlie\\z"' "$WORK/metrics.prom" ||
    fail "the odd name is not escaped as the textfile format wants: $(grep -m1 harlie "$WORK/metrics.prom")"

  # bravo's file removed while a client holds bravo: it leaves the
  # list, its counts stay in the sum, while held and once let go.
  hold "nbd://127.0.0.1:$port/bravo" bravo
  bravo_holder=$HELD
  rm "$WORK/fleet/bravo"
  kill -HUP "$SERVER"
  log_wait "$LOG" "$SERVER" "export 'bravo': its file was removed: no longer served; the 1 connection" ||
    fail "bravo was not dropped: $(tail -3 "$LOG")"
  dropped='
assert [e["name"] for e in st["exports"]] == ["alpha", odd], ex
assert counts(st["counters"]) == (7, 4, 151552, 77824, 0), st["counters"]'
  check_json "a dropped export still in use: its counts stay in the sum" "$dropped"
  touch "$WORK/bravo.go"
  wait "$bravo_holder" || fail "the client of bravo: $(cat "$WORK/bravo.out")"
  # Freed once its client has gone, silently: the server closes the file.
  for _ in $(seq 50); do
    ls -l "/proc/$SERVER/fd" | grep -q "/bravo (deleted)" || break
    sleep 0.1
  done
  ! ls -l "/proc/$SERVER/fd" | grep -q "/bravo (deleted)" ||
    fail "the server still holds bravo's removed file after its client left"
  check_json "a dropped export let go: its counts stay in the sum" "$dropped"
  check_prom "status --prometheus: the sum keeps a dropped export's counts" '
assert get(R, op="read") == 7 and get(B, op="write") == 77824
assert get(R, "bravo", op="read") is None'
  touch "$WORK/alpha.go"
  wait "$alpha_holder" || fail "the client of alpha: $(cat "$WORK/alpha.out")"
  stop_clean "$SERVER" "the $KIND server of a directory"
  rm -r "$WORK/fleet" "$WORK"/*.ready "$WORK"/*.go
}

# psk_case KIND SHOWN IDENTITY: TLS-PSK, a client with identity alice
# holding the export alice of front end KIND: the table's client line
# ends in (SHOWN), --json and --prometheus give IDENTITY (empty: null
# and "").  The native server knows the identity; nbdkit 1.32 does not
# tell the plugin (TLS is GnuTLS in nbdkit: no kTLS needed), and status
# says that it is unknown rather than show none.  nbdkit is started in
# $WORK with dir= and stats-file= relative, as an operator in that
# directory would: status still names the directory as the kernel does
# (the plugin holds it open), selects the server by a file in it, and
# reads the stats file from where nbdkit started.
psk_case ()
{
  local tag=
  KIND=$1
  # status's words for a loopback client's file I/O: the native
  # server's choice; nothing for nbdkit's plugin.
  FILE_IO_TEXT=
  [ "$KIND" != native ] || FILE_IO_TEXT=", file I/O through io_uring's workers"
  # The native case's lines as the VM scenario tls looks for them.
  [ "$KIND" = native ] || tag="$KIND: "
  mkdir "$WORK/psk"
  "$NBDSWAP" create --quiet "$WORK/psk/alice" 16M
  port=$(free_port)
  if [ "$KIND" = native ]; then
    serve_fg "$WORK/psk.log" --native --dir "$WORK/psk" --bind 127.0.0.1 \
      --port "$port" --tls-psk "$WORK/keys.psk"
    SERVER=$LAST_PID
  else
    (cd "$WORK" && exec "${NBDKIT[@]}" -i 127.0.0.1 -p "$port" \
       --tls=require --tls-psk=keys.psk "$PLUGIN" dir=psk \
       stats-file=psk.stats) >"$WORK/psk.log" 2>&1 &
    SERVER=$!
    PIDS+=("$SERVER")
  fi
  log_wait "$WORK/psk.log" "$SERVER" "$(dir_serving "$KIND" 1)" ||
    { cat "$WORK/psk.log" >&2; fail "the $KIND PSK server did not start"; return; }
  hold "nbds://alice@127.0.0.1:$port/alice?tls-psk-file=$WORK/keys.psk" alice
  expect_status 0 "^ +client 127\.0\.0\.1:[0-9]+ \($2\)$FILE_IO_TEXT$" status "$WORK/psk/alice"
  grep -qE "^$SERVER +$WORK/psk +tcp:127.0.0.1:$port +0 +0 " "$WORK/out" ||
    fail "${tag}status table: no row for the PSK server: $(cat "$WORK/out")"
  nbdswap status --json "$WORK/psk" | python3 -c '
import json, sys
st = json.load(sys.stdin)["served"][0]
known = sys.argv[1] == "native"
assert st["identities_known"] is known and st["stats_fresh"], st
assert known or st["stats_file"] == sys.argv[3] + "/psk.stats", st
c = st["exports"][0]["clients"]
assert len(c) == 1 and c[0]["identity"] == (sys.argv[2] or None), c' \
    "$KIND" "$3" "$WORK" && ok "${tag}status --json: the PSK identity" ||
    fail "${tag}status --json: no PSK identity: $(nbdswap status --json "$WORK/psk")"
  nbdswap status --prometheus "$WORK/psk.prom" "$WORK/psk"
  grep -qE "^nbdswap_server_client_connections\{file=\"[^\"]*\",export=\"alice\",address=\"127.0.0.1\",identity=\"$3\"\} 1$" \
    "$WORK/psk.prom" && ok "${tag}status --prometheus: the PSK identity" ||
    fail "${tag}status --prometheus: no PSK identity: $(grep client_conn "$WORK/psk.prom")"
  touch "$WORK/alice.go"
  wait "$HELD" || fail "the $KIND PSK client: $(cat "$WORK/alice.out")"
  stop_clean "$SERVER" "the $KIND server of a directory with TLS-PSK"
  rm -r "$WORK/psk" "$WORK"/alice.*
}

for kind in native plugin; do
  status_cases "$kind"
done
if ! command -v psktool >/dev/null; then
  echo "$TEST_NAME: psktool not found (gnutls-bin): the PSK identity cases are not run"
  finish
fi
psktool -u alice -p "$WORK/keys.psk" >/dev/null
# The native server's TLS is kTLS: without the tls module (this host),
# the VM scenario 'tls' runs its case.
if [ -e /proc/net/tls_stat ] || modprobe tls 2>/dev/null; then
  psk_case native "PSK identity 'alice'" alice
else
  echo "$TEST_NAME: no kTLS in this kernel: the native PSK identity case runs in the VM scenario 'tls'"
fi
psk_case plugin "PSK identity unknown: nbdkit does not tell the plugin" ""
finish
