#!/bin/sh
# nbdswap: install the Debian 12 packages the build, the tests, the
# benchmarks (perf: the kernel benchmark's profile and context-switch
# figures) and make fuzz need (libFuzzer's runtime is in
# libclang-rt-14-dev, which clang pulls in only as a recommendation).
# Idempotent: does nothing when all are present.
set -eu

PACKAGES="
  build-essential autoconf automake libtool pkg-config
  nbdkit nbdkit-plugin-dev libnbd-dev libnbd-bin liburing-dev check
  libseccomp-dev libnl-genl-3-dev libgnutls28-dev gnutls-bin
  nbd-client nbd-server qemu-utils qemu-system-x86 fio
  e2fsprogs xfsprogs btrfs-progs util-linux kmod busybox-static cpio
  valgrind gnuplot-nox nfs-kernel-server systemd python3 iproute2
  clang libclang-rt-14-dev python3-libnbd lvm2 linux-perf
"

missing=
for p in $PACKAGES; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "nbdswap: missing Debian packages:$missing" >&2
  echo "nbdswap: run as root, or: sudo apt-get install$missing" >&2
  exit 1
fi
echo "nbdswap: installing Debian packages:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >&2
