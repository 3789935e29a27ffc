#!/bin/bash
# serve --file-io: how the native server issues a connection's file
# operations.  auto, the default: inline for a client on another
# machine, through io_uring's workers for one that may be this machine
# (a unix socket, loopback, an address of this machine: peer.h says why
# that matters); worker and inline choose, and inline for a client here
# is a warning.  Each server says its choice and the reason once per
# connection, and serves either way; a file whose direct I/O shares the
# kernel's bio pool with this machine's swap-outs is a warning to a
# client here, once per export, with both servers.  Three network namespaces made here
# (a server's, a router's, a client's, joined by veth pairs, so this
# kernel at both ends as peer.h sees it) and a VXLAN overlay between
# the first and last standing for another machine.  No packet leaves
# them.
source "$(dirname "$0")/functions.sh"

backing fio.img 16M
IMG=$WORK/fio.img
NS_S=nbdswap-fio-s-$$
NS_R=nbdswap-fio-r-$$
NS_C=nbdswap-fio-c-$$
NETNS_MADE=
cleanup_netns ()
{
  if [ -n "$NETNS_MADE" ]; then
    ip netns delete "$NS_S" 2>/dev/null || :
    ip netns delete "$NS_R" 2>/dev/null || :
    ip netns delete "$NS_C" 2>/dev/null || :
  fi
}
trap 'cleanup; cleanup_netns' EXIT

expect_status 1 "--file-io sometimes: not auto, worker or inline" \
  serve --dry-run "$IMG" --file-io sometimes
expect_status 1 "--file-io tunes the native server, and --nbdkit runs nbdkit" \
  serve --nbdkit --dry-run "$IMG" --file-io worker

# serve_wait LOG: the server of serve_fg (LAST_PID) serves, per LOG.
serve_wait ()
{
  for _ in $(seq 100); do
    grep -q "native: serving" "$1" && return 0
    kill -0 "$LAST_PID" 2>/dev/null || break
    sleep 0.1
  done
  fail "the server did not start: $(cat "$1")"
  return 1
}

# said LOG REGEX WHAT: LOG has a line matching REGEX.
said ()
{
  if grep -qE -- "$2" "$1"; then
    ok "$3"
  else
    fail "$3: no /$2/ in: $(grep 'native:' "$1" | tr '\n' ' ')"
  fi
}

# Write and read back through URI from namespace NS: ns_io NS URI WHO.
ns_io ()
{
  local out
  if out=$(ip netns exec "$1" qemu-io -f raw -c 'write -P 0x3c 8192 64k' \
             -c 'read -P 0x3c 8192 64k' "$2" 2>&1) &&
     ! grep -q "Pattern verification failed" <<<"$out"; then
    ok "${3:+$3: }write and read back through $2 from $1"
  else
    fail "${3:+$3: }I/O through $2 from $1: $out"
  fi
}

# One server of IMG: serve_fg LOG ARGS..., wait, I/O through URI (in
# namespace NS if given), stop.  run LOG URI NS ARGS...
run ()
{
  local log=$1 uri=$2 ns=$3
  shift 3
  if [ -n "$ns" ]; then
    ip netns exec "$NS_S" "${SERVE[@]}" --foreground "$IMG" "$@" > "$log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
  else
    serve_fg "$log" "$IMG" "$@"
  fi
  serve_wait "$log" || return 0
  if [ -n "$ns" ]; then
    ns_io "$ns" "$uri"
  else
    io "$uri"
  fi
  stop "$LAST_PID"
}

run "$WORK/unix.log" "nbd+unix:///?socket=$WORK/u.sock" "" --socket "$WORK/u.sock"
said "$WORK/unix.log" "file operations through io_uring's workers \(the client may be this machine: a unix socket\)" \
  "auto, unix socket: workers"

# A file on ext4 or xfs shares the kernel's bio pool with this
# machine's swap-outs (backing_shares_swap_pool): each server says so
# once per export to clients that may be this machine (here two
# connections), and not for a file elsewhere (btrfs, tmpfs...).
fstype=$(nbdswap verify --json "$IMG" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["filesystem"])')
case "$fstype" in
  ext4|xfs|f2fs) want_pool=1 ;;
  *) want_pool=0
     echo "$TEST_NAME: the shared-pool cases check only its absence: $IMG is on $fstype" ;;
esac
pool_said ()
{
  grep -c "warning: .*export '': $IMG is a file on [a-z0-9]*, whose direct I/O takes its bios from the kernel pool that this machine's swap-outs hold until the server answers: .*serve a block device (a partition or an LVM volume of a disk, by its node in /dev; docs/local-swap.md)" "$1" || :
}
for server in "${SERVERS[@]}"; do
  server_opts "$server"
  serve_fg "$WORK/pool-$server.log" "$IMG" "${OPTS[@]}" --socket "$WORK/p.sock"
  for _ in $(seq 100); do
    [ -S "$WORK/p.sock" ] && nbdinfo --size "nbd+unix:///?socket=$WORK/p.sock" \
      > /dev/null 2>&1 && break
    sleep 0.1
  done
  io "nbd+unix:///?socket=$WORK/p.sock"
  io "nbd+unix:///?socket=$WORK/p.sock"
  stop "$LAST_PID"
  n=$(pool_said "$WORK/pool-$server.log")
  if [ "$n" = "$want_pool" ] &&
     { [ "$n" = 0 ] || grep -q "is a file on $fstype, " "$WORK/pool-$server.log"; }; then
    ok "$server, a file on $fstype, a unix socket: the shared-pool warning $n time(s)"
  else
    fail "$server, a file on $fstype, a unix socket: the shared-pool warning $n times, want $want_pool: $(grep -i warning "$WORK/pool-$server.log")"
  fi
done

port=$(free_port)
run "$WORK/lo.log" "nbd://127.0.0.1:$port" "" --port "$port" --bind 127.0.0.1
said "$WORK/lo.log" "file operations through io_uring's workers \(the client may be this machine: 127\.0\.0\.1, a loopback address\)" \
  "auto, loopback: workers"

# A server confined to one CPU (taskset, as systemd's CPUAffinity= would)
# keeps its io_uring workers on it: the server registers its threads'
# CPUs for them (engine_uring_workers_follow), as Linux 6.1 does not do
# it by itself (the VM's native scenario checks that kernel).
if [ "$(nproc)" -ge 2 ]; then
  cpu=$(( $(nproc) - 1 ))
  taskset -c "$cpu" "${SERVE[@]}" --foreground "$IMG" --socket "$WORK/c.sock" \
    > "$WORK/cpus.log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
  if serve_wait "$WORK/cpus.log"; then
    # The workers go with the connection: keep it open while they are
    # counted (an idle worker lives on for 5 s).
    qemu-io -f raw -c 'write -P 0x11 0 1M' -c 'read -P 0x11 0 1M' \
      -c 'sleep 4000' "nbd+unix:///?socket=$WORK/c.sock" > "$WORK/cpus-io.log" 2>&1 &
    io_pid=$!
    for _ in $(seq 30); do
      grep -q '^read' "$WORK/cpus-io.log" && break
      sleep 0.1
    done
    n=0 bad=
    for t in /proc/"$LAST_PID"/task/*; do
      [[ "$(cat "$t/comm" 2>/dev/null)" == iou-wrk* ]] || continue
      n=$((n + 1))
      c=$(awk '/^Cpus_allowed_list:/ { print $2 }' "$t/status" 2>/dev/null)
      [ "$c" = "$cpu" ] || bad+=" ${t##*/}:$c"
    done
    if [ "$n" -gt 0 ] && [ -z "$bad" ]; then
      ok "server on CPU $cpu: its $n io_uring worker(s) too"
    else
      fail "server on CPU $cpu: $n io_uring worker(s), elsewhere:${bad:- (none seen)}"
    fi
    wait "$io_pid" || fail "I/O on the server on CPU $cpu: $(cat "$WORK/cpus-io.log")"
    stop "$LAST_PID"
  fi
fi

run "$WORK/inline-unix.log" "nbd+unix:///?socket=$WORK/u.sock" "" \
  --socket "$WORK/u.sock" --file-io inline
said "$WORK/inline-unix.log" "warning: .*file operations inline \(--file-io inline\) for a client that may be this machine \(a unix socket\).*use --file-io auto" \
  "inline asked, unix socket: warned, and it serves"

# The namespaces: S (the server) -- veth -- R (a router) -- veth -- C.
# From S, C is beyond a gateway, but through S's veth: the same kernel.
# A VXLAN overlay between S and C (over that path) stands for another
# machine: its link is no veth.  False if any step fails.
topology ()
{
  ip netns add "$NS_S" && NETNS_MADE=1 &&
  ip netns add "$NS_R" && ip netns add "$NS_C" &&
  ip -n "$NS_S" link add fio-s type veth peer name fio-rs netns "$NS_R" &&
  ip -n "$NS_R" link add fio-rc type veth peer name fio-c netns "$NS_C" &&
  ip -n "$NS_S" addr add 10.213.7.1/30 dev fio-s &&
  ip -n "$NS_R" addr add 10.213.7.2/30 dev fio-rs &&
  ip -n "$NS_R" addr add 10.213.8.1/30 dev fio-rc &&
  ip -n "$NS_C" addr add 10.213.8.2/30 dev fio-c || return 1
  for l in "$NS_S fio-s" "$NS_R fio-rs" "$NS_R fio-rc" "$NS_C fio-c" \
           "$NS_S lo" "$NS_R lo" "$NS_C lo"; do
    ip -n "${l% *}" link set "${l#* }" up || return 1
  done
  ip -n "$NS_S" route add 10.213.8.0/30 via 10.213.7.2 &&
  ip -n "$NS_C" route add 10.213.7.0/30 via 10.213.8.1 &&
  ip netns exec "$NS_R" sysctl -q -w net.ipv4.ip_forward=1
}

# A bridge with a veth port in S, as containers hang off docker0 or cni0.
bridge ()
{
  ip -n "$NS_S" link add fio-br type bridge &&
  ip -n "$NS_S" link add fio-b0 type veth peer name fio-b1 netns "$NS_R" &&
  ip -n "$NS_S" link set fio-b0 master fio-br &&
  ip -n "$NS_S" addr add 10.213.9.1/24 dev fio-br &&
  ip -n "$NS_R" addr add 10.213.9.2/24 dev fio-b1 &&
  ip -n "$NS_S" link set fio-br up && ip -n "$NS_S" link set fio-b0 up &&
  ip -n "$NS_R" link set fio-b1 up
}

vxlan ()
{
  ip -n "$NS_S" link add vx-s type vxlan id 213 local 10.213.7.1 \
    remote 10.213.8.2 dstport 4789 2>"$WORK/vxlan.err" &&
  ip -n "$NS_C" link add vx-c type vxlan id 213 local 10.213.8.2 \
    remote 10.213.7.1 dstport 4789 2>>"$WORK/vxlan.err" &&
  ip -n "$NS_S" addr add 10.213.10.1/24 dev vx-s &&
  ip -n "$NS_C" addr add 10.213.10.2/24 dev vx-c &&
  ip -n "$NS_S" link set vx-s up && ip -n "$NS_C" link set vx-c up
}

if ! topology 2>"$WORK/netns.err"; then
  echo "$TEST_NAME: SKIP the network-namespace cases: $(cat "$WORK/netns.err")"
  finish
fi

uri="nbd://10.213.7.1:10809"
allow=(--allow 10.213.0.0/16)
run "$WORK/routed.log" "$uri" "$NS_C" --port 10809 --bind 10.213.7.1 "${allow[@]}"
said "$WORK/routed.log" "file operations through io_uring's workers \(the client may be this machine: 10\.213\.8\.2, reached through veth fio-s and a gateway: the veth's other end is in this kernel\)" \
  "auto, a client beyond a gateway on a veth: workers"

run "$WORK/veth.log" "$uri" "$NS_R" --port 10809 --bind 10.213.7.1 "${allow[@]}"
said "$WORK/veth.log" "file operations through io_uring's workers \(the client may be this machine: 10\.213\.7\.2, reached through veth fio-s: the veth's other end is in this kernel\)" \
  "auto, a client at the other end of a veth: workers"

# From the server's own namespace, to its own address there: here.
run "$WORK/near.log" "$uri" "$NS_S" --port 10809 --bind 10.213.7.1 "${allow[@]}"
said "$WORK/near.log" "file operations through io_uring's workers \(the client may be this machine: 10\.213\.7\.1, an address of fio-s here\)" \
  "auto, a client on an address of this machine: workers"

if bridge 2>"$WORK/bridge.err"; then
  run "$WORK/bridge.log" "nbd://10.213.9.1:10809" "$NS_R" --port 10809 \
    --bind 10.213.9.1 "${allow[@]}"
  said "$WORK/bridge.log" "file operations through io_uring's workers \(the client may be this machine: 10\.213\.9\.2, reached through bridge fio-br, which has veth ports \(this machine's containers\)\)" \
    "auto, a client behind a bridge with veth ports: workers"
else
  echo "$TEST_NAME: SKIP the bridge case: $(cat "$WORK/bridge.err")"
fi

if vxlan; then
  vuri="nbd://10.213.10.1:10809"
  run "$WORK/far.log" "$vuri" "$NS_C" --port 10809 --bind 10.213.10.1 "${allow[@]}"
  said "$WORK/far.log" "file operations inline \(the client is elsewhere: 10\.213\.10\.2, reached through vx-s, not a veth: another machine\)" \
    "auto, a client over a link that is no veth: inline"
  n=$(pool_said "$WORK/far.log")
  if [ "$n" = 0 ]; then
    ok "native, a client elsewhere: no shared-pool warning"
  else
    fail "native, a client elsewhere: the shared-pool warning $n times"
  fi
  # The plugin (file=: no address for the access rules) asks too.
  ip netns exec "$NS_S" "${SERVE[@]}" --foreground --nbdkit "$IMG" --port 10809 \
    --bind 10.213.10.1 "${allow[@]}" > "$WORK/far-plugin.log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
  for _ in $(seq 100); do
    ip netns exec "$NS_C" nbdinfo --size "$vuri" > /dev/null 2>&1 && break
    sleep 0.1
  done
  ns_io "$NS_C" "$vuri" plugin
  stop "$LAST_PID"
  n=$(pool_said "$WORK/far-plugin.log")
  if [ "$n" = 0 ]; then
    ok "plugin, a client elsewhere: no shared-pool warning"
  else
    fail "plugin, a client elsewhere: the shared-pool warning $n times"
  fi
  run "$WORK/far-worker.log" "$vuri" "$NS_C" --port 10809 --bind 10.213.10.1 \
    "${allow[@]}" --file-io worker
  said "$WORK/far-worker.log" "file operations through io_uring's workers \(--file-io worker: 10\.213\.10\.2, reached through vx-s, not a veth: another machine\)" \
    "worker asked, a client elsewhere: workers"
else
  echo "$TEST_NAME: SKIP the other-machine cases (no VXLAN here): $(cat "$WORK/vxlan.err")"
fi

finish
