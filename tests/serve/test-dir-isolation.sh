#!/bin/bash
# One export's failing storage holds up no other export of the same
# server, for both front ends (the native server, serve --dir, and the
# plugin's dir=): the faulty builds fail every write on the file of one
# export, sick, with EAGAIN for WINDOW ms (NBDSWAP_FAULT's file=, see
# include/fault.h), the server retrying each for retry-timeout=RETRY s.
# While sick's first write is in that retry loop, fio writes and
# verifies half of each other export, the three at once.  Then:
#   - each fio's verify passed, and each finished before sick's write had
#     its answer: a retry that held a thread, lock or ring the others
#     need would keep them waiting out the whole retry window;
#   - no request of theirs waited anywhere near one backoff sleep (their
#     latencies stay under LAT_MAX_MS, while sick's retry sleeps up to
#     1 s at a time);
#   - sick's client got what the fault dictates: EIO for the write that
#     outlived retry-timeout, success for the next one, retried until the
#     window closed; the first write's bytes are nowhere, the second's in
#     sick's file only; the counters blame sick alone.
# Unix sockets only.
# The faulty builds only (functions.sh takes these).
NBDSWAP=$PWD/../server/nbdswap-faulty
NBDSWAP_PLUGIN=$PWD/../plugin/.libs/nbdkit-swapfile-faulty-plugin.so
source "$(dirname "$0")/functions.sh"

[ -e "$NBDSWAP_PLUGIN" ] || { echo "$NBDSWAP_PLUGIN not built" >&2; exit 99; }
requires fio fio
engines=$(fio --enghelp 2>/dev/null || true)
grep -qxE '[[:space:]]*nbd' <<<"$engines" ||
  skip "this fio has no nbd engine (fio >= 3.16 built with libnbd)"

# The timing: the window opens with sick's first write (A), whose
# retries (1 ms doubling to 1 s apart) end in EIO at RETRY s + 23 ms.
# The second (B) is retried at about RETRY + 1.05 s (in the window) and
# RETRY + 2.05 s (past it), well inside its own retry-timeout.  The
# others' fio runs take about 1 s here, a quarter of the time they have.
HEALTHY=(alpha bravo charlie)
RETRY=4                         # retry-timeout=, seconds
WINDOW=5500                     # ms sick's writes fail with EAGAIN
LAT_MAX_MS=500                  # no healthy request may wait this long
A=$((1 << 20))
B=$((2 << 20))

# healthy_fio NAME SOCK: fio writes 8 MiB of NAME's export (4 KiB
# blocks in random order, 8 in flight) and reads every block back to
# verify it; its JSON report in $WORK/fio.NAME.json, and "EXIT START_NS
# END_NS" in $WORK/fio.NAME.time.
healthy_fio ()
{
  local start rc=0

  start=$(date +%s%N)
  fio --name="$1" --ioengine=nbd --uri="nbd+unix:///$1?socket=$2" \
      --rw=randwrite --bs=4k --size=8m --iodepth=8 \
      --verify=crc32c --verify_fatal=1 --do_verify=1 \
      --output-format=json --output="$WORK/fio.$1.json" \
      >"$WORK/fio.$1.out" 2>&1 || rc=$?
  echo "$rc $start $(date +%s%N)" >"$WORK/fio.$1.time"
}

# fio_check NAME: what healthy_fio NAME reported; prints its end (ns)
# and its longest request (ms), or fails.
fio_check ()
{
  /usr/bin/python3 - "$WORK/fio.$1.json" "$((8 << 20))" <<'PY'
import json, sys
job = json.load(open(sys.argv[1]))["jobs"][0]
size = int(sys.argv[2])
if job["error"] != 0:
    sys.exit("fio error %d" % job["error"])
if job["write"]["io_bytes"] != size or job["read"]["io_bytes"] != size:
    sys.exit("wrote %d and verified %d bytes, not %d each"
             % (job["write"]["io_bytes"], job["read"]["io_bytes"], size))
print("%.1f" % (max(job[d]["clat_ns"]["max"] for d in ("write", "read"))
                / 1e6))
PY
}

# ms NS: nanoseconds in whole milliseconds.
ms ()
{
  echo $(($1 / 1000000))
}

# check_sick KIND: sick's first write got EIO after retry-timeout, its
# second succeeded once the window closed; sets EIO_AT (ns).
check_sick ()
{
  local o got start end opened

  read -r o got start end < <(grep "^$A " "$WORK/sick.out" || echo x x 0 0)
  opened=$start
  EIO_AT=$end
  if [ "$got" = EIO ] && (( end - start >= RETRY * 1000000000 &&
                             end - start < (RETRY + 2) * 1000000000 )); then
    ok "$1: sick's first write got EIO after $(ms $((end - start))) ms"
  else
    fail "$1: sick's first write: want EIO after $RETRY s: $(cat "$WORK/sick.out")"
  fi
  read -r o got start end < <(grep "^$B " "$WORK/sick.out" || echo x x 0 0)
  if [ "$got" = ok ] && (( end - opened >= WINDOW * 1000000 )); then
    ok "$1: sick's second write succeeded once the window closed ($(ms $((end - opened))) ms after it opened)"
  else
    fail "$1: sick's second write: want success after the $WINDOW ms window: $(cat "$WORK/sick.out")"
  fi
}

# check_healthy KIND NAME: NAME's fio verified everything, ended before
# sick's write had its EIO, and no request of it waited LAT_MAX_MS.
check_healthy ()
{
  local rc start end lat

  read -r rc start end <"$WORK/fio.$2.time"
  if [ "$rc" -ne 0 ] || ! lat=$(fio_check "$2" 2>&1); then
    fail "$1: fio on $2: exit $rc: ${lat:-} $(cat "$WORK/fio.$2.out")"
  elif (( end >= EIO_AT )); then
    fail "$1: fio on $2 ended $(ms $((end - EIO_AT))) ms after sick's write had its EIO: held up by sick's retries"
  elif awk -v l="$lat" -v m="$LAT_MAX_MS" 'BEGIN { exit !(l >= m) }'; then
    fail "$1: a request on $2 waited $lat ms (limit $LAT_MAX_MS)"
  else
    ok "$1: $2 written and verified in $(ms $((end - start))) ms (longest request $lat ms), $(ms $((EIO_AT - end))) ms before sick's EIO"
  fi
}

# check_files KIND: sick's file holds its second write only, the others
# none of sick's bytes, and the directory no new file.
check_files ()
{
  local others=("${HEALTHY[@]/#/$WORK/fleet/}")

  dir_client only-written sick "$WORK/fleet/sick" $B ||
    fail "$1: sick's file holds more or less than its second write"
  dir_client absent sick $A "${others[@]}" &&
    dir_client absent sick $B "${others[@]}" ||
    fail "$1: sick's bytes landed in another export's file"
  [ "$(ls -A "$WORK/fleet" | tr '\n' ' ')" = "${HEALTHY[*]} sick " ] ||
    fail "$1: the directory changed: $(ls -A "$WORK/fleet")"
}

# check_log KIND LOG: the counters at exit put the retries and the error
# on sick alone, and one failure was logged, sick's.
check_log ()
{
  local n eio="pwrite: $WORK/fleet/sick: offset $A length 65536: Resource temporarily unavailable persisted for $RETRY s (retry-timeout): reporting EIO"

  for n in "${HEALTHY[@]}"; do
    grep -qE "stats: export '$n': .* retries=0 errors=0 " "$2" ||
      fail "$1: $n's counters: $(grep "stats: export '$n'" "$2")"
  done
  grep -qE "stats: export 'sick': .* retries=[1-9][0-9]* errors=1 " "$2" ||
    fail "$1: sick's counters: $(grep "stats: export 'sick'" "$2")"
  grep -qF "$eio" "$2" && [ "$(grep -c 'persisted for' "$2")" -eq 1 ] ||
    fail "$1: want one failure logged, sick's: $(grep 'error' "$2")"
}

# run KIND: the case against one front end.
run ()
{
  local kind=$1 sock=$WORK/$1.sock log=$WORK/$1.log server n pids=()

  rm -rf "$WORK/fleet"
  fleet "${HEALTHY[@]}" sick
  export NBDSWAP_FAULT=write:EAGAIN:after=0:for=$WINDOW:file=sick
  dir_serve "$kind" "$log" "unix:$sock" "$WORK/fleet" -- retry-timeout=$RETRY
  unset NBDSWAP_FAULT
  server=$LAST_PID
  log_wait "$log" "$server" "$(dir_serving "$kind" 4)" || {
    cat "$log" >&2
    fail "$kind: the server did not start with 4 exports"
    return
  }

  dir_client "unix:$sock" timed-write sick $A $B >"$WORK/sick.out" 2>&1 &
  pids+=($!)
  log_wait "$log" "$server" "write: offset $A: .*: transient error, retrying" ||
    fail "$kind: sick's write is not being retried: $(tail -3 "$log")"
  for n in "${HEALTHY[@]}"; do
    healthy_fio "$n" "$sock" &
    pids+=($!)
  done
  for n in "${pids[@]}"; do
    wait "$n" || true
  done

  check_sick "$kind"
  for n in "${HEALTHY[@]}"; do
    check_healthy "$kind" "$n"
  done
  check_files "$kind"
  stop_clean "$server" "the $kind server"
  check_log "$kind" "$log"
}

for kind in native plugin; do
  run "$kind"
done
finish
