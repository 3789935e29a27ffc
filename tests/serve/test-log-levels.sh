#!/bin/bash
# The plugin's warnings and information (the counters) are logged where
# nbdkit logs, at their own level, not as nbdkit errors: on stderr as
# "nbdkit: swapfile: warning: ..." in the foreground (with "<4>" in front
# when stderr is systemd's journal, as for nbdswap's own lines), and in
# syslog at LOG_WARNING and LOG_INFO once nbdkit is in the background.  The syslog
# half runs in a private mount namespace whose /dev/log is this test's
# own datagram socket (the host's syslog is not touched).  Without
# CAP_SYS_RESOURCE the oom_score_adj warning comes after nbdkit's fork,
# so it reaches syslog; a 0644 backing file gives one before it.
source "$(dirname "$0")/functions.sh"
[ "$(id -u)" -eq 0 ] || skip "needs root (setpriv --bounding-set, unshare --mount)"
requires unshare util-linux
requires setpriv util-linux
requires python3 python3

backing loud.img 16M
chmod 0644 "$WORK/loud.img"
nocap=(setpriv --inh-caps=-sys_resource --bounding-set=-sys_resource)

# Foreground: stderr.
"${nocap[@]}" "${SERVE[@]}" --foreground "$WORK/loud.img" \
  --socket "$WORK/fg.sock" >"$WORK/fg.log" 2>&1 &
pid=$!
PIDS+=("$pid")
for _ in $(seq 100); do [ -S "$WORK/fg.sock" ] && break; sleep 0.1; done
io "nbd+unix:///?socket=$WORK/fg.sock"
stop "$pid"
grep -q "^nbdkit: swapfile: warning: .*insecure permissions 0644" "$WORK/fg.log" ||
  fail "no permissions warning on stderr: $(cat "$WORK/fg.log")"
grep -q "^nbdkit: swapfile: warning: oom_score_adj -1000" "$WORK/fg.log" ||
  fail "no oom_score_adj warning on stderr: $(cat "$WORK/fg.log")"
grep -q "^nbdkit: swapfile: stats: reads=1 writes=1 " "$WORK/fg.log" ||
  fail "no counters on stderr: $(cat "$WORK/fg.log")"
if grep -E "error: (warning|stats):" "$WORK/fg.log"; then
  fail "warnings or counters logged as errors"
fi
ok "foreground: warnings and counters on stderr, not as errors"

# Foreground under systemd: stderr is the journal (JOURNAL_STREAM names
# it), and each line starts with its syslog level for journald to keep:
# nbdswap's own lines and the plugin's.  A stats-file= in a missing
# directory makes an error at exit.
: >"$WORK/journal.log"
JOURNAL_STREAM=$(stat -c %d:%i "$WORK/journal.log") "${nocap[@]}" \
  "${SERVE[@]}" --foreground "$WORK/loud.img" --socket "$WORK/j.sock" \
  -- stats-file="$WORK/missing/loud.stats" >>"$WORK/journal.log" 2>&1 &
pid=$!
PIDS+=("$pid")
for _ in $(seq 100); do [ -S "$WORK/j.sock" ] && break; sleep 0.1; done
io "nbd+unix:///?socket=$WORK/j.sock"   # the plugin has started
stop "$pid"
for want in "<4>nbdswap: warning: oom_score_adj -1000" \
            "<4>nbdkit: swapfile: warning: .*insecure permissions 0644" \
            "<6>nbdkit: swapfile: .*: fit to serve" \
            "<6>nbdkit: swapfile: stats: reads=1 " \
            "<3>nbdkit: swapfile: error: stats-file: $WORK/missing/loud.stats: "; do
  grep -q "^$want" "$WORK/journal.log" ||
    fail "no line '$want' for the journal: $(cat "$WORK/journal.log")"
done
ok "journal: lines start with their syslog level"

# Background: syslog.  The inner script runs in the new mount namespace:
# /dev becomes a tmpfs holding the host's null, zero, random, urandom
# and a socket "log" bound by a small receiver that appends each message
# to $WORK/syslog.
cat >"$WORK/ns.sh" <<'NS'
set -u
work=$1
shift
mkdir "$work/dev"
mount --bind /dev "$work/dev" || exit 97
mount -t tmpfs -o mode=0755 nsdev /dev || exit 97
for n in null zero random urandom; do
  touch "/dev/$n" && mount --bind "$work/dev/$n" "/dev/$n" || exit 97
done
python3 - "$work/syslog" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
with open(sys.argv[1] + ".ready", "w"):
    pass
with open(sys.argv[1], "a") as out:
    while True:
        msg = s.recv(65536).decode(errors="replace").rstrip("\n\0")
        out.write(msg + "\n")
        out.flush()
PY
receiver=$!
trap 'kill $receiver 2>/dev/null' EXIT
for _ in $(seq 100); do [ -e "$work/syslog.ready" ] && break; sleep 0.1; done
"$@" || exit 98
pid=$(cat "$work/run/loud.pid")
kill -USR1 "$pid"
sleep 1
kill "$pid"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -KILL "$pid" 2>/dev/null
# The exit's counters are the second stats line: wait for the receiver.
for _ in $(seq 50); do
  [ "$(grep -c 'swapfile: stats: ' "$work/syslog")" -ge 2 ] && break
  sleep 0.1
done
exit 0
NS
rc=0
unshare --mount --propagation private bash "$WORK/ns.sh" "$WORK" \
  "${nocap[@]}" "${SERVE[@]}" "$WORK/loud.img" >"$WORK/bg.log" 2>&1 || rc=$?
[ "$rc" -ne 97 ] || skip "cannot build a private /dev here: $(cat "$WORK/bg.log")"
[ "$rc" -eq 0 ] || fail "serve in the background: exit $rc: $(cat "$WORK/bg.log")"
python3 - "$WORK/syslog" <<'PY' || fail "syslog: $(cat "$WORK/syslog" 2>/dev/null)"
import re, sys
# <PRI>TIMESTAMP ident[pid]: message; the severity is PRI's low 3 bits,
# the facility the rest: daemon (3), as nbdkit's own lines.
want = {"swapfile: warning: oom_score_adj -1000": 4, "swapfile: stats: ": 6}
seen = {}
for line in open(sys.argv[1]):
    m = re.match(r"<(\d+)>.*?: (swapfile: .*)", line)
    if not m:
        continue
    for text, severity in want.items():
        if m.group(2).startswith(text):
            seen[text] = int(m.group(1))
for text, severity in want.items():
    assert seen.get(text) == 3 * 8 + severity, (text, seen.get(text), severity)
PY
grep -q "swapfile: warning: .*insecure permissions" "$WORK/bg.log" ||
  fail "the warning before nbdkit's fork did not reach serve's stderr: $(cat "$WORK/bg.log")"
ok "background: warning at LOG_WARNING, counters at LOG_INFO in syslog"

finish
