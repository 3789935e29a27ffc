#!/bin/bash
# Warnings and information (the counters) are logged at their own level,
# not as errors, by both servers: the plugin's where nbdkit logs, on
# stderr as "nbdkit: swapfile: warning: ..." in the foreground, the
# native server's as "nbdswap: warning: ..." (with "<4>" in front when
# stderr is systemd's journal, as for nbdswap's own lines), and in syslog
# at LOG_WARNING and LOG_INFO once the server is in the background.  The
# syslog half runs in a private mount namespace whose /dev/log is this
# test's own datagram socket (the host's syslog is not touched).  Without
# CAP_SYS_RESOURCE the oom_score_adj warning comes after the server's
# fork, so it reaches syslog; a 0644 backing file gives one before it.
source "$(dirname "$0")/functions.sh"
[ "$(id -u)" -eq 0 ] || skip "needs root (setpriv --bounding-set, unshare --mount)"
requires unshare util-linux
requires setpriv util-linux
requires python3 python3

backing loud.img 16M
chmod 0644 "$WORK/loud.img"
nocap=(setpriv --inh-caps=-sys_resource --bounding-set=-sys_resource)

# Background: the inner script runs in the new mount namespace: /dev
# becomes a tmpfs holding the host's null, zero, random, urandom and a
# socket "log" bound by a small receiver that appends each message to
# $WORK/syslog.  It waits for the exit's counters: the second line
# matching STATS.
cat >"$WORK/ns.sh" <<'NS'
set -u
work=$1
stats=$2
shift 2
mkdir -p "$work/dev"
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
for _ in $(seq 50); do
  [ "$(grep -c "$stats" "$work/syslog")" -ge 2 ] && break
  sleep 0.1
done
exit 0
NS

for server in "${SERVERS[@]}"; do
  server_opts "$server"
  # Where each server's own lines are: nbdkit's stderr lines name the
  # plugin, nbdswap's its command; in syslog, nbdkit's ident with the
  # plugin's name in the message, the native server's ident
  # nbdswap-serve.  The native server hardens itself before it leaves
  # serve's stderr (what stops it is printed there), so its
  # oom_score_adj warning is on serve's stderr, not in syslog.
  if [ "$server" = plugin ]; then
    me="nbdkit: swapfile"
    sys_re='<(\d+)>.*? nbdkit\[\d+\]: swapfile: (.*)'
    sys_want="oom_score_adj -1000,stats: "
  else
    me="nbdswap"
    sys_re='<(\d+)>.*? nbdswap-serve\[\d+\]: (.*)'
    sys_want="stats: "
  fi
  rm -f "$NBDSWAP_RUNTIME_DIR/loud.pid"

  # Foreground: stderr.
  "${nocap[@]}" "${SERVE[@]}" --foreground "$WORK/loud.img" "${OPTS[@]}" \
    --socket "$WORK/fg.sock" >"$WORK/fg.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  for _ in $(seq 100); do [ -S "$WORK/fg.sock" ] && break; sleep 0.1; done
  io "nbd+unix:///?socket=$WORK/fg.sock"
  stop_clean "$pid" "$server in the foreground"
  grep -q "^$me: warning: .*insecure permissions 0644" "$WORK/fg.log" ||
    fail "$server: no permissions warning on stderr: $(cat "$WORK/fg.log")"
  grep -q "^$me: warning: oom_score_adj -1000" "$WORK/fg.log" ||
    fail "$server: no oom_score_adj warning on stderr: $(cat "$WORK/fg.log")"
  grep -q "^$me: stats: reads=1 writes=1 " "$WORK/fg.log" ||
    fail "$server: no counters on stderr: $(cat "$WORK/fg.log")"
  if grep -E "error: (warning|stats):" "$WORK/fg.log"; then
    fail "$server: warnings or counters logged as errors"
  fi
  ok "$server, foreground: warnings and counters on stderr, not as errors"

  # Foreground under systemd: stderr is the journal (JOURNAL_STREAM
  # names it), and each line starts with its syslog level for journald
  # to keep: nbdswap's own lines and the plugin's.  A directory where
  # the counters file goes makes an error at exit.
  : >"$WORK/journal.log"
  rm -f "$NBDSWAP_RUNTIME_DIR/loud.stats"
  mkdir "$NBDSWAP_RUNTIME_DIR/loud.stats"
  JOURNAL_STREAM=$(stat -c %d:%i "$WORK/journal.log") "${nocap[@]}" \
    "${SERVE[@]}" --foreground "$WORK/loud.img" "${OPTS[@]}" \
    --socket "$WORK/j.sock" >>"$WORK/journal.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  for _ in $(seq 100); do [ -S "$WORK/j.sock" ] && break; sleep 0.1; done
  io "nbd+unix:///?socket=$WORK/j.sock"   # the server has started
  stop "$pid"
  rmdir "$NBDSWAP_RUNTIME_DIR/loud.stats"
  for want in "<4>nbdswap: warning: oom_score_adj -1000" \
              "<4>$me: warning: .*insecure permissions 0644" \
              "<6>$me: .*: fit to serve" \
              "<6>$me: stats: reads=1 " \
              "<3>$me: error: stats-file: $NBDSWAP_RUNTIME_DIR/loud.stats: "; do
    grep -q "^$want" "$WORK/journal.log" ||
      fail "$server: no line '$want' for the journal: $(cat "$WORK/journal.log")"
  done
  ok "$server, journal: lines start with their syslog level"

  # Background: syslog.
  rc=0
  rm -f "$WORK/syslog" "$WORK/syslog.ready"
  unshare --mount --propagation private bash "$WORK/ns.sh" "$WORK" \
    "stats: reads=" "${nocap[@]}" "${SERVE[@]}" "$WORK/loud.img" "${OPTS[@]}" \
    >"$WORK/bg.log" 2>&1 || rc=$?
  [ "$rc" -ne 97 ] || skip "cannot build a private /dev here: $(cat "$WORK/bg.log")"
  [ "$rc" -eq 0 ] ||
    fail "$server: serve in the background: exit $rc: $(cat "$WORK/bg.log")"
  python3 - "$WORK/syslog" "$sys_re" "$sys_want" <<'PY' ||
import re, sys
# <PRI>TIMESTAMP ident[pid]: message; the severity is PRI's low 3 bits,
# the facility the rest: daemon (3), as nbdkit's own lines.  A warning
# may carry its tag.
levels = {"oom_score_adj -1000": 4, "stats: ": 6}
want = {k: levels[k] for k in sys.argv[3].split(",")}
seen = {}
for line in open(sys.argv[1]):
    m = re.match(sys.argv[2], line)
    if not m:
        continue
    text = re.sub(r"^warning: ", "", m.group(2))
    for start in want:
        if text.startswith(start):
            seen[start] = int(m.group(1))
for start, severity in want.items():
    assert seen.get(start) == 3 * 8 + severity, (start, seen.get(start), severity)
PY
    fail "$server: syslog: $(cat "$WORK/syslog" 2>/dev/null)"
  grep -q "warning: .*insecure permissions" "$WORK/bg.log" ||
    fail "$server: the warning before the server's fork did not reach serve's stderr: $(cat "$WORK/bg.log")"
  if [ "$server" = native ]; then
    grep -q "^nbdswap: warning: oom_score_adj -1000" "$WORK/bg.log" ||
      fail "native: no oom_score_adj warning on serve's stderr: $(cat "$WORK/bg.log")"
  fi
  ok "$server, background: warning at LOG_WARNING, counters at LOG_INFO in syslog"
done

finish
