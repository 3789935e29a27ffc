# shellcheck shell=bash
# nbdswap VM tests: one server for a fleet of clients (issue 17), its
# exports logical volumes.  Sourced by guest-scenario after guest-lib.sh
# (and scenario-kbench.sh, whose kbench_devstat it uses).
#
# Storage: a volume group on a loop device over a file on the ext4
# scratch disk, with four logical volumes; a --dir of symlinks to them
# (client1 -> /dev/fleetvg/client1 ...) and to the physical volume.
# client3 is mounted and client4 is swapped on by the guest itself, so
# the server must leave them out with their causes; the physical volume
# is held by device-mapper.
#
# Network (inside the guest, which has no NIC): the server's namespace
# answers on 10.98.0.1 (on its loopback), reached from two client
# namespaces by veth pairs:
#
#   netns fleet1  10.98.1.2 --- 10.98.1.1 \
#                                          netns fleetsrv: 10.98.0.1
#   netns fleet2  10.98.2.2 --- 10.98.2.1 /
#
# One `nbdswap serve --dir` (the native server) with TLS-PSK (identity
# clientN opens export clientN) and per-export --allow (clientN only from
# 10.98.N.2).  Each client attaches its own export with `nbdswap attach
# --netns fleetN`: attach runs in the root namespace, where the kernel's
# nbd netlink family is (Linux 6.1), and connects from fleetN.  Both
# devices swap at the same priority while the verifying workload runs.

FLEET_ADDR=10.98.0.1
FLEET_PORT=10812
FLEET_VG=fleetvg
FLEET_MNT=/mnt/fleet-mounted
# LVM without udev (the guest has none): libdevmapper makes the nodes
# and the /dev/VG/LV links itself (DM_DISABLE_UDEV), nothing waits for
# udev, no dmeventd, no metadata backups on the 9p root's overlay.
FLEET_LVM_CONFIG='devices { obtain_device_list_from_udev = 0 } activation { udev_sync = 0 udev_rules = 0 monitoring = 0 } backup { backup = 0 archive = 0 }'

# Runs LVM command $1 with the options above, on the physical volume
# FLEET_PV only (no scan of the other block devices, nbd ones included).
fleet_lvm ()
{
  local cmd=$1
  shift
  DM_DISABLE_UDEV=1 LVM_SUPPRESS_FD_WARNINGS=1 \
    "$cmd" -q --devices "$FLEET_PV" --config "$FLEET_LVM_CONFIG" "$@"
}

# The volume group on a loop device over FLEET_IMG and its logical
# volumes: client1 and client2 (the swap exports), client3 (ext4,
# mounted) and client4 (swap of the guest itself).  Run by check_cmd, in
# a subshell: the caller finds the loop device again (fleet_pv).
fleet_lvm_setup ()
{
  local lv
  modprobe loop && modprobe dm_mod || return 1
  backing_create "$FLEET_IMG" $((2 * FLEET_LV_MIB + 64)) || return 1
  FLEET_PV=$(losetup -f --show --direct-io=on "$FLEET_IMG") || return 1
  fleet_lvm pvcreate "$FLEET_PV" || return 1
  fleet_lvm vgcreate "$FLEET_VG" "$FLEET_PV" || return 1
  for lv in client1 client2; do
    fleet_lvm lvcreate -y -W n -Z n -L "${FLEET_LV_MIB}M" -n "$lv" \
      "$FLEET_VG" || return 1
  done
  for lv in client3 client4; do
    fleet_lvm lvcreate -y -W n -Z n -L 16M -n "$lv" "$FLEET_VG" || return 1
  done
  for lv in client1 client2 client3 client4; do
    [ -b "/dev/$FLEET_VG/$lv" ] || { log "no /dev/$FLEET_VG/$lv"; return 1; }
  done
}

# FLEET_PV: the loop device over FLEET_IMG.
fleet_pv ()
{
  FLEET_PV=$(losetup -n -O NAME -j "$FLEET_IMG")
  [ -b "$FLEET_PV" ]
}

# The directory FLEET_DIR of symlinks, client3 mounted, client4 swapped
# on.
fleet_dir_setup ()
{
  local lv
  mkdir -p "$FLEET_DIR" "$FLEET_MNT" || return 1
  for lv in client1 client2 client3 client4; do
    ln -s "/dev/$FLEET_VG/$lv" "$FLEET_DIR/$lv" || return 1
  done
  ln -s "$FLEET_PV" "$FLEET_DIR/pv" || return 1
  mkfs.ext4 -q -F "/dev/$FLEET_VG/client3" && \
    mount "/dev/$FLEET_VG/client3" "$FLEET_MNT" || return 1
  mkswap -q "/dev/$FLEET_VG/client4" > /dev/null && \
    swapon -p 1 "/dev/$FLEET_VG/client4" || return 1
  for lv in client1 client2 client3 client4 pv; do
    log "$FLEET_DIR/$lv -> $(readlink "$FLEET_DIR/$lv") -> $(readlink -f "$FLEET_DIR/$lv")"
  done
}

# The three namespaces and two links drawn above.
fleet_net_setup ()
{
  local i ns
  modprobe veth || return 1
  for ns in fleetsrv fleet1 fleet2; do
    ip netns add "$ns" && ip -n "$ns" link set lo up || return 1
  done
  ip -n fleetsrv addr add "$FLEET_ADDR/32" dev lo || return 1
  for i in 1 2; do
    ip link add "fl$i-c" type veth peer name "fl$i-s" netns fleetsrv \
      || return 1
    ip link set "fl$i-c" netns "fleet$i" || return 1
    ip -n "fleet$i" addr add "10.98.$i.2/24" dev "fl$i-c" || return 1
    ip -n "fleet$i" link set "fl$i-c" up || return 1
    ip -n "fleet$i" route add default via "10.98.$i.1" || return 1
    ip -n fleetsrv addr add "10.98.$i.1/24" dev "fl$i-s" || return 1
    ip -n fleetsrv link set "fl$i-s" up || return 1
  done
}

# The server's key file (identities client1 and client2) and each
# client's own line of it, in FLEET_KEYS.
fleet_keys ()
{
  local c
  mkdir -p "$FLEET_KEYS" || return 1
  for c in client1 client2; do
    psktool -u "$c" -p "$FLEET_KEYS/server.psk" > /dev/null || return 1
  done
  for c in client1 client2; do
    grep "^$c:" "$FLEET_KEYS/server.psk" > "$FLEET_KEYS/$c.psk" || return 1
  done
}

# `nbdswap serve --dir` in the server namespace, its log server.log;
# waits until it serves (its exports verified).  SERVER_PID.
fleet_server_start ()
{
  local end=$((SECONDS + 120))
  ip netns exec fleetsrv "$NBDSWAP_CMD" serve --dir "$FLEET_DIR" \
    --port "$FLEET_PORT" --bind "$FLEET_ADDR" --allow 10.98.0.0/16 \
    --allow client1=10.98.1.2/32 --allow client2=10.98.2.2/32 \
    --tls-psk "$FLEET_KEYS/server.psk" --foreground \
    > "$RESULTS/server.log" 2>&1 &
  # shellcheck disable=SC2034 # server_running and server_stop use it
  SERVER_PID=$!
  while [ "$SECONDS" -lt "$end" ]; do
    grep -q 'native: serving [0-9]* exports from' "$RESULTS/server.log" &&
      return 0
    server_running || return 1
    sleep 0.5
  done
  return 1
}

# Check $1: the server log has a line with the fixed string $2 (waiting
# up to 10 s: the monitor thread logs a re-scan after SIGHUP).
fleet_logged ()
{
  local end=$((SECONDS + 10))
  while ! grep -qF -- "$2" "$RESULTS/server.log"; do
    if [ "$SECONDS" -ge "$end" ]; then
      fail "$1" "no line '$2' in the server log: $(tail -n 3 "$RESULTS/server.log" | tr '\n' ' ')"
      return 1
    fi
    sleep 0.5
  done
  pass "$1" "$(grep -m 1 -F -- "$2" "$RESULTS/server.log" | sed 's/^nbdswap: //')"
}

# What the server did with each entry of the directory at start: the two
# swap exports served, the mounted and swapped-on volumes and the
# physical volume left out with their causes.
fleet_start_checks ()
{
  fleet_logged fleet-serves-client1 "export 'client1': serving $FLEET_DIR/client1"
  fleet_logged fleet-serves-client2 "export 'client2': serving $FLEET_DIR/client2"
  fleet_logged fleet-lv-block-device "$FLEET_DIR/client1: fit to serve: block device, "
  fleet_logged fleet-mounted-lv-refused \
    "$FLEET_DIR/client3: is mounted on $FLEET_MNT (ext4): unmount it first"
  fleet_logged fleet-swap-lv-refused \
    "$FLEET_DIR/client4: is an active kernel swap area ("
  fleet_logged fleet-pv-refused "$FLEET_DIR/pv: is in use by dm-"
  fleet_logged fleet-others-serve "native: serving 2 exports from $FLEET_DIR"
}

# Check $1: `nbdswap attach` from namespace $2 with key file $3 asking
# for export $4 is refused (exit 5, /dev/nbd2 untouched), and the server
# log names the client and the export: client $5.
fleet_refused ()
{
  local name=$1 ns=$2 key=$3 export=$4 who=$5 rc=0 out line
  out=$(timeout 60 "$NBDSWAP_CMD" attach "$FLEET_ADDR:$FLEET_PORT" /dev/nbd2 \
          --netns "$ns" --export "$export" --tls-psk "$key" 2>&1) || rc=$?
  line="native: client $who asked for export '$export': refused (not one this client may open)"
  if [ "$rc" = 5 ] && [ "$(cat /sys/block/nbd2/size)" = 0 ] &&
     [[ $out == *"not one this client may open"* ]] &&
     grep -qF "$line" "$RESULTS/server.log"; then
    pass "$name" "exit 5 ($(echo "$out" | tail -n 1)); server: $line"
  else
    fail "$name" "exit $rc: $out; want the server line '$line': $(tail -n 2 "$RESULTS/server.log" | tr '\n' ' ')"
  fi
}

# The refusals: client1 asking for client2 (both rules refuse); the key
# of client2 from client1's address (the address rule alone); client1's
# key from client2's address (the identity rule alone).  And the list
# client1 is answered holds its own export only.
fleet_refusal_checks ()
{
  local names
  fleet_refused fleet-other-export-refused fleet1 "$FLEET_KEYS/client1.psk" \
    client2 "10.98.1.2 (PSK identity 'client1')"
  fleet_refused fleet-address-rule fleet1 "$FLEET_KEYS/client2.psk" \
    client2 "10.98.1.2 (PSK identity 'client2')"
  fleet_refused fleet-identity-rule fleet2 "$FLEET_KEYS/client1.psk" \
    client2 "10.98.2.2 (PSK identity 'client1')"
  names=$(ip netns exec fleet1 timeout 60 nbdinfo --list \
            "nbds://client1@$FLEET_ADDR:$FLEET_PORT/?tls-psk-file=$FLEET_KEYS/client1.psk" \
            2>&1 | sed -n 's/^export="\(.*\)":$/\1/p' | tr '\n' ' ')
  if [ "$names" = "client1 " ]; then
    pass fleet-list-own-only "NBD_OPT_LIST answers client1: $names"
  else
    fail fleet-list-own-only "NBD_OPT_LIST answers client1 with '$names', want client1 only"
  fi
}

# Check $1: `nbdswap attach --netns fleet$2` of export client$2 to
# /dev/nbd$3 at priority 5.
fleet_attach ()
{
  check_cmd "$1" "$NBDSWAP_CMD" attach "$FLEET_ADDR:$FLEET_PORT" "/dev/nbd$3" \
    --netns "fleet$2" --export "client$2" \
    --tls-psk "$FLEET_KEYS/client$2.psk" --priority 5
}

# The connections: each client's socket is in its own namespace (none in
# the root one), and both devices swap at priority 5.
fleet_attached_checks ()
{
  local n1 n2 n0 i
  n1=$(ip netns exec fleet1 ss -Htn state established "( dport = :$FLEET_PORT )" | wc -l)
  n2=$(ip netns exec fleet2 ss -Htn state established "( dport = :$FLEET_PORT )" | wc -l)
  n0=$(ss -Htn state established "( dport = :$FLEET_PORT )" | wc -l)
  if [ "$n1" = 1 ] && [ "$n2" = 1 ] && [ "$n0" = 0 ]; then
    pass fleet-sockets-in-namespaces "one connection from fleet1, one from fleet2, none from the root namespace"
  else
    fail fleet-sockets-in-namespaces "connections: fleet1 $n1, fleet2 $n2, root $n0; want 1, 1, 0"
  fi
  log "$(cat /proc/swaps)"
  for i in 0 1; do
    if awk -v d="/dev/nbd$i" '$1 == d && $5 == 5 { f = 1 } END { exit !f }' \
         /proc/swaps; then
      pass "fleet-swapon-nbd$i" "/dev/nbd$i is swap with priority 5"
    else
      fail "fleet-swapon-nbd$i" "$(tail -n +2 /proc/swaps | tr '\n' ' ')"
    fi
  done
}

# The two nbd devices and, below the server, the two volumes' dm-N
# (found by device number: /dev/VG/LV may be a link or a node of
# libdevmapper's), in FLEET_DEVS.
fleet_devs ()
{
  local lv d
  FLEET_DEVS=(nbd0 nbd1)
  for lv in client1 client2; do
    d=$(readlink -f "/sys/dev/block/$((0x$(stat -L -c %t "/dev/$FLEET_VG/$lv"))):$((0x$(stat -L -c %T "/dev/$FLEET_VG/$lv")))")
    FLEET_DEVS+=("${d##*/}")
  done
}

# Sectors read and written so far on each of FLEET_DEVS, in FLEET_R[]
# and FLEET_W[] (kbench_devstat, scenario-kbench.sh).
fleet_stat_snap ()
{
  local i
  for i in "${!FLEET_DEVS[@]}"; do
    read -r _ "FLEET_R[i]" _ "FLEET_W[i]" _ <<< "$(kbench_devstat "${FLEET_DEVS[i]}")"
  done
}

# The workload, and what each device carried: each nbd device wrote at
# least a quarter of what the guest swapped out and read back at least a
# quarter of what it swapped in (same priority: the kernel takes turns),
# and its logical volume on the server's side took at least those writes.
fleet_workload ()
{
  local -a r0 w0
  local i mib=$((VM_WORKLOAD_MIB / 2)) rd wr name
  fleet_devs
  fleet_stat_snap
  r0=("${FLEET_R[@]}") w0=("${FLEET_W[@]}")
  workload_run fleet "$mib"
  workload_checks fleet $((VM_MIN_SWAP_MIB / 2))
  fleet_stat_snap
  for i in 0 1; do
    rd=$(( (FLEET_R[i] - r0[i]) / 2048 )) wr=$(( (FLEET_W[i] - w0[i]) / 2048 ))
    name=fleet-nbd$i-carried
    if [ "$wr" -ge $((WL_OUT_MIB / 4)) ] && [ "$rd" -ge $((WL_IN_MIB / 4)) ]
    then
      pass "$name" "/dev/nbd$i wrote $wr MiB, read $rd MiB (the guest: out $WL_OUT_MIB MiB, in $WL_IN_MIB MiB)"
    else
      fail "$name" "/dev/nbd$i wrote $wr MiB, read $rd MiB; want a quarter of the guest's out $WL_OUT_MIB MiB, in $WL_IN_MIB MiB"
    fi
    wr=$(( (FLEET_W[i + 2] - w0[i + 2]) / 2048 ))
    name=fleet-lv$((i + 1))-written
    if [ "$wr" -ge $((WL_OUT_MIB / 4)) ]; then
      pass "$name" "$FLEET_VG/client$((i + 1)) (${FLEET_DEVS[i + 2]}) took $wr MiB of writes"
    else
      fail "$name" "$FLEET_VG/client$((i + 1)) took $wr MiB of writes, want >= $((WL_OUT_MIB / 4))"
    fi
  done
}

# nbdswap status: per export, its client's address, PSK identity and
# file I/O mode, and the reads and writes it served.
fleet_status_check ()
{
  "$NBDSWAP_CMD" status --json "$FLEET_DIR" > "$RESULTS/status.json" 2>&1
  if python3 - "$RESULTS/status.json" <<'PY' > "$RESULTS/status-check.log" 2>&1
import json, sys
st = json.load(open(sys.argv[1]))["served"][0]
ex = {e["name"]: e for e in st["exports"]}
assert sorted(ex) == ["client1", "client2"], sorted(ex)
for n in (1, 2):
    e = ex["client%d" % n]
    who = [(c["address"], c["identity"]) for c in e["clients"]]
    assert who == [("10.98.%d.2" % n, "client%d" % n)], (n, who)
    # Clients in namespaces of this kernel, reached through veths, of
    # exports that are LVs on a loop device over a file (FLEET_IMG): the
    # I/O goes to a file, so the native server keeps io_uring's workers
    # (--file-io auto; a disk's LV would be issued inline).
    assert [c["file_io"] for c in e["clients"]] == ["worker"], e["clients"]
    c = e["counters"]
    assert c["write_bytes"] > 0 and c["read_bytes"] > 0 and c["errors"] == 0, (n, c)
    print("client%d: %s, read %d MiB, wrote %d MiB" % (n, who[0],
          c["read_bytes"] >> 20, c["write_bytes"] >> 20))
PY
  then
    pass fleet-status "$(tr '\n' ';' < "$RESULTS/status-check.log")"
  else
    fail fleet-status "$(tail -n 2 "$RESULTS/status-check.log" | tr '\n' ' ')"
  fi
}

# The volumes that were refused, freed (swapoff, umount), are served
# after SIGHUP without disturbing the two in use; a removed link is
# then dropped.
fleet_sighup_checks ()
{
  check_cmd fleet-swapoff-client4 swapoff "/dev/$FLEET_VG/client4"
  check_cmd fleet-umount-client3 umount "$FLEET_MNT"
  kill -HUP "$SERVER_PID"
  fleet_logged fleet-freed-swap-lv-served \
    "export 'client4': serving $FLEET_DIR/client4"
  fleet_logged fleet-freed-mounted-lv-served \
    "export 'client3': serving $FLEET_DIR/client3"
  rm "$FLEET_DIR/client4"
  kill -HUP "$SERVER_PID"
  fleet_logged fleet-removed-link-dropped \
    "export 'client4': its file was removed: no longer served"
  if grep -qE "export 'client[12]'.*no longer served" "$RESULTS/server.log"
  then
    fail fleet-rescan-keeps-clients "$(grep -m 1 -E "export 'client[12]'.*no longer served" "$RESULTS/server.log")"
  else
    pass fleet-rescan-keeps-clients "client1 and client2 stayed served through both re-scans"
  fi
}

scenario_fleet ()
{
  local i
  # Each swap volume holds a whole workload's swap, if the kernel sent
  # it all one way.
  FLEET_LV_MIB=$((VM_WORKLOAD_MIB * 3 / 4))
  FLEET_IMG=$SCRATCH/fleet-pv.img
  FLEET_DIR=$SCRATCH/fleet
  FLEET_KEYS=$SCRATCH/fleet-keys
  check_cmd ext4-mkfs fs_make ext4 || return
  # `ip netns exec` gives the server a mount namespace of its own, a
  # copy of this one as a slave: without shared propagation (the guest
  # has no systemd to make / shared) the umount of client3 below would
  # not reach it, and the server would rightly go on finding the volume
  # mounted.
  check_cmd fleet-shared-mounts mount --make-rshared / || return
  check_cmd fleet-lvm fleet_lvm_setup || return
  fleet_pv || { fail fleet-pv "no loop device over $FLEET_IMG"; return; }
  check_cmd fleet-dir fleet_dir_setup || return
  check_cmd fleet-net-setup fleet_net_setup || return
  check_cmd fleet-keys fleet_keys || return
  check_cmd tls-module modprobe tls || return
  modprobe nbd nbds_max=4 || { fail nbd-module; return; }
  if ! fleet_server_start; then
    fail fleet-server-start "$(tail -n 3 "$RESULTS/server.log" | tr '\n' ' ')"
    return
  fi
  pass fleet-server-start "one native server, --dir of LV links, TLS-PSK, per-export --allow"
  fleet_start_checks
  fleet_refusal_checks
  fleet_attach fleet-attach-client1 1 0 || { server_stop; return; }
  fleet_attach fleet-attach-client2 2 1 || { server_stop; return; }
  fleet_attached_checks
  fleet_workload
  fleet_status_check
  # Its clients may be this machine (veths of this kernel): the server
  # says once per export that an LV over a loop device can stall swap
  # of this machine (lib/backing.c, backing_shares_swap_pool).
  fleet_logged fleet-pool-warning "/client1 is a block device over loop"
  fleet_sighup_checks
  server_alive_check fleet-server-alive "the server exited"
  for i in 0 1; do
    check_cmd "fleet-detach-nbd$i" "$NBDSWAP_CMD" detach "/dev/nbd$i"
  done
  server_stop_check fleet-server-stop
  dmesg_checks nbd-kernel-log
}
