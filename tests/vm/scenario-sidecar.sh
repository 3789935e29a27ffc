# shellcheck shell=bash
# nbdswap VM tests: scenario 5 of issue 7, the container sidecar.
#
# Runs the commands of docs/sidecar.md as they stand there: every shell
# block marked <!-- sidecar-test: NAME --> is extracted and run, so the
# guide and this test cannot drift apart.  The sidecar runs in its own
# mount, network and PID namespaces (the guide's unshare), under a seccomp
# filter that denies io_uring as container runtimes do; the node side
# attaches with the guide's command, swaps through it and detaches.

SIDECAR_DOC=$VM_SRCDIR/../../docs/sidecar.md
SIDECAR_BIN=/tmp/sidecar-bin

# Prints the shell block of the guide marked <!-- sidecar-test: $1 -->
# (the marker line, then a ```sh fence); fails if there is no such block
# or more than one.
doc_block ()
{
  awk -v want="<!-- sidecar-test: $1 -->" '
    $0 == want { n++; state = 1; next }
    state == 1 && $0 == "```sh" { state = 2; next }
    state == 1 { exit 1 }
    state == 2 && $0 == "```" { state = 0; next }
    state == 2 { print }
    END { exit n != 1 }' "$SIDECAR_DOC"
}

# The block $1 as one line: continuation lines joined, blanks squeezed.
doc_block_flat ()
{
  doc_block "$1" | sed -e ':a' -e '/\\$/{N;s/\\\n//;ba' -e '}' \
    | tr -s ' \n' '  ' | sed 's/^ //; s/ $//'
}

# Writes the guide's block $1 to $RESULTS/doc-$1.sh, after the guide's
# container function, and prints the script's path.
doc_script ()
{
  local f=$RESULTS/doc-$1.sh
  { echo "# from docs/sidecar.md, blocks 'container' and '$1'"
    doc_block container && doc_block "$1"; } > "$f" || return 1
  echo "$f"
}

# Runs the guide's block $1 (with its container function) in bash;
# the arguments after it go before bash (a wrapper such as the seccomp
# filter).
doc_run ()
{
  local f
  f=$(doc_script "$1") || { log "no block '$1' in $SIDECAR_DOC"; return 1; }
  shift
  "$@" bash "$f"
}

# The seccomp wrapper that denies io_uring_setup (EPERM): the one
# 'make check' built, or one compiled here from its source.
seccomp_wrapper ()
{
  local built=${NBDSWAP_CMD%/server/nbdswap}/tests/integration/seccomp-deny-uring
  if [ -x "$built" ]; then
    echo "$built"
    return
  fi
  mkdir -p /tmp/seccomp-build && : > /tmp/seccomp-build/config.h
  cc -O2 -I/tmp/seccomp-build -o /tmp/seccomp-deny-uring \
     "$VM_SRCDIR/../integration/seccomp-deny-uring.c" -lseccomp >&2 \
    && echo /tmp/seccomp-deny-uring
}

# Checks that the pod and the image in the guide say what the blocks run:
# the sidecar block is the image's ENV and ENTRYPOINT with the pod's
# args, the container block makes the node at the pod's devicePath, and
# the socket volume's hostPath is SOCK_DIR.  Sets SOCK_DIR.
doc_consistent ()
{
  local env entry args devpath want got
  env=$(sed -n 's/^ENV //p' "$SIDECAR_DOC")
  entry=$(sed -n 's/^ENTRYPOINT \[\(.*\)\]$/\1/p' "$SIDECAR_DOC" | tr -d '",')
  args=$(sed -n 's/^ *args: \[\(.*\)\]$/\1/p' "$SIDECAR_DOC" | tr -d '",')
  want="$env container ${entry##*/} $args"
  got=$(doc_block_flat sidecar)
  if [ "$got" = "$want" ]; then
    pass doc-sidecar-is-pod "$got"
  else
    fail doc-sidecar-is-pod "block runs '$got', image and pod say '$want'"
  fi
  devpath=$(sed -n 's/^ *- { name: swap-data, devicePath: \([^ ]*\) }$/\1/p' \
              "$SIDECAR_DOC")
  got=$(doc_block_flat container)
  if [ -n "$devpath" ] && [[ $got == *"mknod -m 0600 $devpath b "* ]]; then
    pass doc-device-is-pod "$devpath"
  else
    fail doc-device-is-pod "the container block makes no node at the pod's devicePath '$devpath'"
  fi
  SOCK_DIR=$(awk '/hostPath:/ { h = 1; next } h && $1 == "path:" { print $2; exit }' \
               "$SIDECAR_DOC")
  if [ -n "$SOCK_DIR" ] && grep -q "^SOCK_DIR=$SOCK_DIR " "$SIDECAR_DOC"; then
    pass doc-sockdir-is-pod "$SOCK_DIR"
  else
    fail doc-sockdir-is-pod "hostPath '$SOCK_DIR' is not the guide's SOCK_DIR"
    SOCK_DIR=${SOCK_DIR:-$SOCKDIR/app-with-swap}
  fi
}

# Prints the first process named $2 among pid $1 and its descendants.
descendant_named ()
{
  local comm c
  read -r comm 2>/dev/null < "/proc/$1/comm" || return 1
  if [ "$comm" = "$2" ]; then
    echo "$1"
    return 0
  fi
  for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
    descendant_named "$c" "$2" && return 0
  done
  return 1
}

# Starts the guide's sidecar block under the seccomp filter $1, its
# output in $RESULTS/sidecar.log; waits for its socket and sets
# SIDECAR_PID (the shell running the block) and SERVER_PID (its nbdkit,
# as this side sees it).
sidecar_start ()
{
  local deny=$1 f end=$((SECONDS + 60))
  f=$(doc_script sidecar) || return 1
  "$deny" bash "$f" > "$RESULTS/sidecar.log" 2>&1 &
  SIDECAR_PID=$!
  SERVER_PID=
  while [ "$SECONDS" -lt "$end" ]; do
    if [ -S "$SOCK_DIR/swap.sock" ] && [ -z "$SERVER_PID" ]; then
      SERVER_PID=$(descendant_named "$SIDECAR_PID" nbdkit)
    fi
    [ -n "$SERVER_PID" ] && return 0
    [ -d "/proc/$SIDECAR_PID" ] || return 1
    sleep 0.2
  done
  return 1
}

# Checks that the server is in other mount, network and PID namespaces
# than the guest's init, PID 1 in its own, sees the socket directory at
# /run/nbdswap and nothing else of the node's /run/nbdswap, and has no
# network interface but loopback.
namespace_checks ()
{
  local ns same="" nspid inside outside ifaces
  for ns in mnt net pid; do
    if [ "$(readlink "/proc/$SERVER_PID/ns/$ns")" = "$(readlink "/proc/1/ns/$ns")" ]
    then
      same="$same $ns"
    fi
  done
  if [ -z "$same" ]; then
    pass sidecar-namespaces "mnt, net and pid differ from init's: $(readlink "/proc/$SERVER_PID/ns/mnt") $(readlink "/proc/$SERVER_PID/ns/net") $(readlink "/proc/$SERVER_PID/ns/pid")"
  else
    fail sidecar-namespaces "shares these namespaces with init:$same"
  fi
  nspid=$(awk '$1 == "NSpid:" { print $NF }' "/proc/$SERVER_PID/status")
  if [ "$nspid" = 1 ]; then
    pass sidecar-pid-1 "nbdkit is $SERVER_PID here, 1 in the sidecar"
  else
    fail sidecar-pid-1 "nbdkit is PID $nspid in the sidecar, want 1"
  fi
  inside=$(stat -c %d:%i "/proc/$SERVER_PID/root/run/nbdswap")
  outside=$(stat -c %d:%i "$SOCK_DIR")
  if [ "$inside" = "$outside" ] \
     && [ ! -e "/proc/$SERVER_PID/root$SOCK_DIR" ]; then
    pass sidecar-sees-socket-dir "its /run/nbdswap is $SOCK_DIR ($inside), the node's other entries hidden"
  else
    fail sidecar-sees-socket-dir "its /run/nbdswap is $inside, $SOCK_DIR is $outside"
  fi
  ifaces=$(awk -F: 'NR > 2 { gsub(/ /, "", $1); print $1 }' \
             "/proc/$SERVER_PID/net/dev" | tr '\n' ' ')
  if [ "$ifaces" = "lo " ]; then
    pass sidecar-no-network "interfaces: $ifaces"
  else
    fail sidecar-no-network "interfaces: $ifaces"
  fi
}

# The modes the guide promises (socket directory 0700, socket 0600) and
# what it says of the pidfile.
mode_checks ()
{
  local d s
  d=$(stat -c %a "$SOCK_DIR")
  s=$(stat -c %a "$SOCK_DIR/swap.sock")
  if [ "$d" = 700 ] && [ "$s" = 600 ]; then
    pass sidecar-socket-modes "directory $d, socket $s"
  else
    fail sidecar-socket-modes "directory $d, socket $s; want 700 and 600"
  fi
  # The guide says the pidfile there holds the sidecar's PID, 1.
  if [ "$(cat "$SOCK_DIR/swap.pid" 2>/dev/null)" = 1 ]; then
    pass sidecar-pidfile "$SOCK_DIR/swap.pid says 1"
  else
    fail sidecar-pidfile "$SOCK_DIR/swap.pid: $(cat "$SOCK_DIR/swap.pid" 2>&1)"
  fi
}

# The server's log must say loudly that it fell back to pread and why,
# and before that (serve's default is the native server, which needs
# io_uring) that nbdkit serves in the native server's place.  The socket
# exists before nbdkit has loaded the plugin (serve binds it), so wait
# for the plugin's start.
fallback_check ()
{
  local line end=$((SECONDS + 30))
  while [ "$SECONDS" -lt "$end" ]; do
    line=$(grep -m 1 'FALLING BACK to the pread/pwrite engine' \
             "$RESULTS/sidecar.log") && break
    sleep 0.5
  done
  if [[ $line == *"io_uring_setup was denied (EPERM)"*seccomp* ]]; then
    pass sidecar-pread-fallback "${line:0:160}..."
  else
    fail sidecar-pread-fallback "no fallback warning: $(tail -n 3 "$RESULTS/sidecar.log" | tr '\n' ' ')"
  fi
  line=$(grep -m 1 'FALLING BACK to nbdkit' "$RESULTS/sidecar.log")
  if [[ $line == "nbdswap: warning: the native server needs io_uring, and io_uring_setup was denied (EPERM)"* ]]
  then
    pass sidecar-nbdkit-fallback "${line:0:160}..."
  else
    fail sidecar-nbdkit-fallback "no warning that nbdkit serves instead of the native server: $(head -n 3 "$RESULTS/sidecar.log" | tr '\n' ' ')"
  fi
}

# After the guide's detach: no swap on the device or its mapping, the
# device unconfigured.
sidecar_detach_checks ()
{
  local name=${DEVICE#/dev/}
  if grep -qE "^(/dev/$name|/dev/dm-|/dev/mapper/)" /proc/swaps; then
    fail detach-swapoff "$(tail -n +2 /proc/swaps | tr '\n' ' ')"
  else
    pass detach-swapoff
  fi
  for _ in $(seq 50); do
    [ -e "/sys/block/$name/pid" ] || [ "$(cat "/sys/block/$name/size")" != 0 ] \
      || break
    sleep 0.1
  done
  if [ -e "/sys/block/$name/pid" ] \
     || [ "$(cat "/sys/block/$name/size")" != 0 ] \
     || [ -n "$(ls "/sys/block/$name/holders")" ]; then
    fail detach-disconnected "$DEVICE still configured or held"
  else
    pass detach-disconnected
  fi
}

# 'nbdswap status' on the node, after the workload: it lists the
# sidecar's nbdkit by its PID here, its file and socket as the sidecar
# sees them, and its counters (read through /proc/PID/root).
status_check ()
{
  local line
  "$NBDSWAP_CMD" status > "$RESULTS/status.txt" 2>&1
  log "nbdswap status on the node:"$'\n'"$(cat "$RESULTS/status.txt")"
  line=$(awk -v p="$SERVER_PID" '$1 == p' "$RESULTS/status.txt")
  if [[ $line == *" /dev/swap "*" unix:/run/nbdswap/swap.sock "* ]] \
     && awk '$4 > 0 && $5 > 0 && !/stale/ { f = 1 } END { exit !f }' \
          <<< "$line"
  then
    pass status-lists-sidecar "$line"
  else
    fail status-lists-sidecar "no line for PID $SERVER_PID with file, socket and fresh counters: ${line:-none}"
  fi
}

# Stops the sidecar as a runtime does, SIGTERM to its main process, and
# checks that all of it exits within 10 s.
sidecar_stop ()
{
  local end=$((SECONDS + 10))
  kill -TERM "$SERVER_PID"
  while [ "$SECONDS" -lt "$end" ] && [ -d "/proc/$SIDECAR_PID" ] \
        && ! grep -q ') Z' "/proc/$SIDECAR_PID/stat"; do
    sleep 0.1
  done
  if [ -d "/proc/$SIDECAR_PID" ] && ! grep -q ') Z' "/proc/$SIDECAR_PID/stat"
  then
    fail sidecar-stop "still running 10 s after SIGTERM"
    kill -KILL "$SERVER_PID"
  else
    pass sidecar-stop "exited on SIGTERM"
  fi
  wait "$SIDECAR_PID"
}

# The raw block volume: a device-mapper linear volume of VM_SWAP_MIB on
# the scratch disk, as LVM makes one (no udev in the guest: libdevmapper
# makes /dev/mapper/app-swap itself).
sidecar_volume ()
{
  modprobe dm_mod || return 1
  wipefs -q -a "$VM_DISK" 2> /dev/null
  DM_DISABLE_UDEV=1 dmsetup create --noudevsync app-swap \
    --table "0 $((VM_SWAP_MIB * 2048)) linear $VM_DISK 0"
}

# The sidecar's view of its block volume: a block device node at
# /dev/swap on a /dev of its own (tmpfs), with the volume's numbers, and
# the server verified it as a block device.
device_check ()
{
  local root=/proc/$SERVER_PID/root want got fs
  want=$(stat -L -c %t:%T "$SWAP_DEV")
  got=$(stat -c %F:%t:%T "$root/dev/swap" 2>&1)
  fs=$(stat -f -c %T "$root/dev" 2>&1)
  if [ "$got" = "block special file:$want" ] && [ "$fs" = tmpfs ] &&
     grep -q "/dev/swap: fit to serve: block device" "$RESULTS/sidecar.log"
  then
    pass sidecar-block-volume "its /dev/swap is $SWAP_DEV ($want) on its own /dev ($fs), verified as a block device"
  else
    fail sidecar-block-volume "its /dev/swap: $got on $fs (want $want); $(grep 'fit to serve\|refus' "$RESULTS/sidecar.log" | head -n 2 | tr '\n' ' ')"
  fi
}

# 5: the sidecar guide's commands: volumes, sidecar (its own namespaces,
# io_uring denied, a raw block volume), the node's attach, the swap
# cycle, the node's detach, the sidecar stopped.
scenario_sidecar ()
{
  local deny out status
  check_cmd sidecar-volume sidecar_volume || return
  doc_consistent
  export SWAP_DEV=/dev/mapper/app-swap SOCK_DIR
  export NBDSWAP_PLUGIN PATH=$SIDECAR_BIN:$PATH DEVICE=
  mkdir -p "$SIDECAR_BIN" && ln -sf "$NBDSWAP_CMD" "$SIDECAR_BIN/nbdswap"
  if ! deny=$(seccomp_wrapper) || ! "$deny" true; then
    fail seccomp-filter "cannot build or install the io_uring-denying filter"
    return
  fi
  pass seccomp-filter "$deny"

  check_cmd doc-volumes doc_run volumes || return
  if ! sidecar_start "$deny"; then
    fail sidecar-start "$(tail -n 3 "$RESULTS/sidecar.log" | tr '\n' ' ')"
    return
  fi
  pass sidecar-start "nbdkit $SERVER_PID, socket $SOCK_DIR/swap.sock"
  fallback_check
  device_check
  namespace_checks
  mode_checks

  out=$(doc_run attach 2>&1)
  status=$?
  log "attach: $out"
  DEVICE=$(echo "$out" | grep -o -m 1 '^/dev/nbd[0-9]*')
  if [ "$status" = 0 ] && [ -n "$DEVICE" ]; then
    pass doc-attach "$out"
  else
    fail doc-attach "exit $status: $out"
    sidecar_stop
    return
  fi
  log "$(cat /proc/swaps)"
  if [ -n "$(ls "/sys/block/${DEVICE#/dev/}/holders")" ] \
     && awk '$1 ~ /^\/dev\/(dm-|mapper\/)/ && $5 == 5 { f = 1 } END { exit !f }' /proc/swaps
  then
    pass attach-swapon "swap on the dm-crypt mapping over $DEVICE, priority 5"
  else
    fail attach-swapon "$(tail -n +2 /proc/swaps | tr '\n' ' ')"
  fi

  workload_half sidecar
  status_check
  if [ -d "/proc/$SERVER_PID" ]; then
    pass sidecar-alive
  else
    fail sidecar-alive "the sidecar's nbdkit exited during the workload"
  fi
  check_cmd doc-detach doc_run detach
  sidecar_detach_checks
  sidecar_stop
  dmesg_checks nbd-kernel-log
  DM_DISABLE_UDEV=1 dmsetup remove --noudevsync app-swap
}
