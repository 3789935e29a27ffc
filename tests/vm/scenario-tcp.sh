# shellcheck shell=bash
# nbdswap VM tests: scenario 11 of issue 7, remote swap over TCP.
# Sourced by guest-scenario after guest-lib.sh (and scenario-attach.sh,
# whose supervisor_checks and detach_checks it uses).
#
# Inside the guest only (it has no NIC), three network stacks joined by
# veth pairs:
#
#   root netns (the client)  10.99.0.2 --- 10.99.0.1  netns nbdsrv (server)
#   netns nbdout (outsider)  10.99.1.2 --- 10.99.1.1  netns nbdsrv
#
# The server binds 10.99.0.1 and allows only 10.99.0.2/32; the outsider
# reaches 10.99.0.1 through its own link and must be refused.  The client
# is the root namespace because the kernel's nbd generic-netlink family is
# registered for the initial network namespace only (Linux 6.1: no
# netnsok), so `nbdswap attach` run inside another namespace cannot hand
# its sockets to the driver; the guest log records what it sees.

TCP_SRV_NS=nbdsrv
TCP_OUT_NS=nbdout
TCP_SRV_ADDR=10.99.0.1
TCP_CLI_ADDR=10.99.0.2
TCP_PORT=10810
# What the server logs when it turns the outsider away (the native
# server: "--allow"; the plugin under nbdkit: "allow=").
TCP_REFUSED="client 10.99.1.2 is not in "

# Create the namespaces and links described above.
tcp_net_setup ()
{
  modprobe veth || return 1
  ip netns add "$TCP_SRV_NS" && ip netns add "$TCP_OUT_NS" || return 1
  ip -n "$TCP_SRV_NS" link set lo up || return 1
  ip -n "$TCP_OUT_NS" link set lo up || return 1
  ip link add tcp-cli type veth peer name tcp-srv0 netns "$TCP_SRV_NS" \
    || return 1
  ip link add tcp-out type veth peer name tcp-srv1 netns "$TCP_SRV_NS" \
    || return 1
  ip link set tcp-out netns "$TCP_OUT_NS" || return 1
  ip addr add "$TCP_CLI_ADDR/24" dev tcp-cli && ip link set tcp-cli up \
    || return 1
  ip -n "$TCP_SRV_NS" addr add "$TCP_SRV_ADDR/24" dev tcp-srv0 || return 1
  ip -n "$TCP_SRV_NS" addr add 10.99.1.1/24 dev tcp-srv1 || return 1
  ip -n "$TCP_SRV_NS" link set tcp-srv0 up || return 1
  ip -n "$TCP_SRV_NS" link set tcp-srv1 up || return 1
  ip -n "$TCP_OUT_NS" addr add 10.99.1.2/24 dev tcp-out || return 1
  ip -n "$TCP_OUT_NS" link set tcp-out up || return 1
  ip -n "$TCP_OUT_NS" route add default via 10.99.1.1
}

# Count the established TCP connections to the server port seen in network
# namespace $1 ("" for the root namespace), by local or remote port $2
# (sport or dport).
tcp_established ()
{
  local -a pre=()
  [ -n "$1" ] && pre=(ip netns exec "$1")
  "${pre[@]}" ss -Htn state established "( $2 = :$TCP_PORT )" | wc -l
}

# Start `nbdswap serve` (its default, the native server) on backing file
# $1 in the server namespace, in the foreground (ip netns exec execs
# serve, which serves in its own process: SERVER_PID is the server's),
# and wait until it listens.
tcp_server_start ()
{
  local end=$((SECONDS + 60))
  ip netns exec "$TCP_SRV_NS" env NBDSWAP_PLUGIN="$NBDSWAP_PLUGIN" \
    "$NBDSWAP_CMD" serve "$1" --port "$TCP_PORT" --bind "$TCP_SRV_ADDR" \
    --allow "$TCP_CLI_ADDR/32" --foreground > "$RESULTS/server.log" 2>&1 &
  # shellcheck disable=SC2034 # server_running and server_stop use it
  SERVER_PID=$!
  while [ "$SECONDS" -lt "$end" ]; do
    ip netns exec "$TCP_SRV_NS" ss -Hltn "sport = :$TCP_PORT" \
      | grep -q "$TCP_SRV_ADDR:$TCP_PORT" && return 0
    server_running || return 1
    sleep 0.5
  done
  return 1
}

# A non-loopback --bind without --allow must be refused before anything
# listens: exit 1 with a message that names --allow.
tcp_bind_needs_allow ()
{
  local rc=0 out
  out=$(ip netns exec "$TCP_SRV_NS" env NBDSWAP_PLUGIN="$NBDSWAP_PLUGIN" \
          "$NBDSWAP_CMD" serve "$1" --port $((TCP_PORT + 1)) \
          --bind "$TCP_SRV_ADDR" --foreground 2>&1) || rc=$?
  if [ "$rc" = 1 ] && [[ $out == *"--allow"* ]] \
     && ! ip netns exec "$TCP_SRV_NS" ss -Hltn | grep -q ":$((TCP_PORT + 1))"
  then
    pass tcp-bind-needs-allow "exit 1: $(echo "$out" | head -n 1)"
  else
    fail tcp-bind-needs-allow "exit $rc: $out"
  fi
}

# The outsider (10.99.1.2, not in the allow-list) must be refused: nbdinfo
# fails, `nbdswap attach` fails as unreachable (exit 5) without touching
# any device, and the server log names the refusal.
tcp_outsider_refused ()
{
  local rc=0 out before
  out=$(ip netns exec "$TCP_OUT_NS" timeout 60 \
          nbdinfo "nbd://$TCP_SRV_ADDR:$TCP_PORT" 2>&1) || rc=$?
  if [ "$rc" != 0 ]; then
    pass tcp-outsider-nbdinfo-refused "exit $rc: $(echo "$out" | tail -n 1)"
  else
    fail tcp-outsider-nbdinfo-refused "nbdinfo from 10.99.1.2 succeeded"
  fi
  before=$(grep -c "$TCP_REFUSED" "$RESULTS/server.log")
  rc=0
  out=$(ip netns exec "$TCP_OUT_NS" timeout 60 "$NBDSWAP_CMD" attach \
          "$TCP_SRV_ADDR:$TCP_PORT" /dev/nbd1 2>&1) || rc=$?
  if [ "$rc" = 5 ] && [ "$(cat /sys/block/nbd1/size)" = 0 ]; then
    pass tcp-outsider-attach-refused "exit 5: $(echo "$out" | tail -n 1)"
  else
    fail tcp-outsider-attach-refused "exit $rc: $out"
  fi
  sleep 1
  if [ "$(grep -c "$TCP_REFUSED" "$RESULTS/server.log")" -gt "$before" ] \
     && [ "$before" -gt 0 ]; then
    pass tcp-outsider-logged "$(grep -m 1 "$TCP_REFUSED" "$RESULTS/server.log")"
  else
    fail tcp-outsider-logged "the server log names no refusal: $(tail -n 3 "$RESULTS/server.log" | tr '\n' ' ')"
  fi
}

# Logs whether the kernel's nbd generic-netlink family is visible in the
# root namespace and in another one (why the client is the root one).
tcp_log_nbd_family ()
{
  local root other
  root=$(genl ctrl get name nbd > /dev/null 2>&1 && echo yes || echo no)
  other=$(ip netns exec "$TCP_OUT_NS" genl ctrl get name nbd \
            > /dev/null 2>&1 && echo yes || echo no)
  log "nbd netlink family visible: root netns $root, $TCP_OUT_NS $other"
}

# Checks that /dev/nbd0 runs on two TCP connections: the driver makes one
# hardware queue per connection, and two sockets are established from
# the client to the server (seen from both ends).
tcp_two_connections ()
{
  local queues cli srv
  queues=$(find /sys/block/nbd0/mq -mindepth 1 -maxdepth 1 -type d | wc -l)
  cli=$(tcp_established "" dport)
  srv=$(tcp_established "$TCP_SRV_NS" sport)
  log "$(ss -Htn state established "( dport = :$TCP_PORT )")"
  if [ "$queues" = 2 ] && [ "$cli" = 2 ] && [ "$srv" = 2 ]; then
    pass tcp-two-connections "2 hardware queues on nbd0, 2 sockets established at each end"
  else
    fail tcp-two-connections "$queues hardware queues, $cli client sockets, $srv server sockets; want 2 each"
  fi
}

# 11: remote swap over TCP between network namespaces, with the
# allow-list enforced.
scenario_tcp ()
{
  local backing=$SCRATCH/nbdswap-backing.img
  check_cmd ext4-mkfs fs_make ext4 || return
  check_cmd create-backing backing_create "$backing" "$VM_SWAP_MIB" || return
  check_cmd tcp-net-setup tcp_net_setup || return
  modprobe nbd nbds_max=4 || { fail nbd-module; return; }
  tcp_bind_needs_allow "$backing"
  if ! tcp_server_start "$backing"; then
    fail tcp-server-start "$(tail -n 3 "$RESULTS/server.log" | tr '\n' ' ')"
    return
  fi
  pass tcp-server-start "listening on $TCP_SRV_ADDR:$TCP_PORT only"
  tcp_outsider_refused
  tcp_log_nbd_family

  check_cmd tcp-attach "$NBDSWAP_CMD" attach "$TCP_SRV_ADDR:$TCP_PORT" \
    /dev/nbd0 --connections 2 || { server_stop; return; }
  log "$(cat /proc/swaps)"
  if grep -q '^/dev/nbd0' /proc/swaps; then
    pass tcp-swapon "/dev/nbd0 is swap"
  else
    fail tcp-swapon "$(tail -n +2 /proc/swaps | tr '\n' ' ')"
  fi
  tcp_two_connections
  supervisor_checks
  workload_half tcp
  server_alive_check tcp-server-alive "the server exited during the workload"
  detach_checks
  server_stop_check tcp-server-stop
  dmesg_checks nbd-kernel-log
}
