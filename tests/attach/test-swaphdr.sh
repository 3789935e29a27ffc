#!/bin/bash
# The swap header attach writes instead of running mkswap
# (server/attach/swaphdr.c), on plain files, as util-linux sees it:
# blkid and swaplabel find swap with its UUID and label, and mkswap given
# the same UUID, label and size writes the same first page, compared
# field by field and then byte for byte.  A header whose signature is
# then broken must no longer be swap to blkid (the checks can fail).
# Skips without blkid, swaplabel or mkswap.
set -euo pipefail

WRITE=${SWAPHDR_WRITE:-$PWD/attach/swaphdr-write}
WORK=$(mktemp -d /tmp/nbdswap-swaphdr.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
TEST=test-swaphdr.sh
PATH=$PATH:/usr/sbin:/sbin
PS=$(getconf PAGESIZE)
failures=0

for tool in blkid swaplabel mkswap od; do
  if ! command -v "$tool" >/dev/null; then
    echo "$TEST: SKIP: no $tool" >&2
    exit 77
  fi
done

fail ()
{
  echo "$TEST: FAIL: $*" >&2
  failures=$((failures + 1))
}

# A file of $2 bytes of zeros (not sparse: mkswap warns about holes).
zeros ()
{
  head -c "$2" /dev/zero > "$1"
  chmod 600 "$1"
}

# field FILE OFFSET LENGTH TYPE: od's view of one header field.
field ()
{
  od -A n -v -t "$4" -j "$2" -N "$3" "$1" | tr -s ' \n' ' '
}

# Compares the header fields of ours ($1) and mkswap's ($2).
compare_fields ()
{
  local name off len type a b
  while read -r name off len type; do
    a=$(field "$1" "$off" "$len" "$type")
    b=$(field "$2" "$off" "$len" "$type")
    if [ "$a" != "$b" ]; then
      fail "$3: $name differs: ours [$a], mkswap's [$b]"
    fi
  done <<FIELDS
bootbits 0 1024 x1
version 1024 4 u4
last_page 1028 4 u4
nr_badpages 1032 4 u4
uuid 1036 16 x1
label 1052 16 x1
padding 1068 $((PS - 1078)) x1
signature $((PS - 10)) 10 c
FIELDS
  if ! cmp -s -n "$PS" "$1" "$2"; then
    fail "$3: the first pages differ: $(cmp -l -n "$PS" "$1" "$2" | head -n 3 | tr '\n' ' ')"
  fi
}

# check SIZE LABEL: our header on a SIZE-byte file, seen by blkid and
# swaplabel (LABEL cut to 15 bytes, as mkswap cuts it) and compared with
# mkswap's.
check ()
{
  local size=$1 label=${2:0:15} uuid probe before=$failures
  zeros "$WORK/ours" "$size"
  zeros "$WORK/mkswap" "$size"
  if ! uuid=$("$WRITE" "$WORK/ours" "$2"); then
    fail "$size bytes: swaphdr-write failed"
    return
  fi
  probe=$(blkid -p -o export "$WORK/ours" || :)
  if ! grep -qx 'TYPE=swap' <<<"$probe" ||
     ! grep -qx "UUID=$uuid" <<<"$probe" ||
     ! grep -qx "LABEL=$label" <<<"$probe"; then
    fail "$size bytes: blkid -p: $(tr '\n' ' ' <<<"$probe"), want swap, $uuid, $label"
  fi
  if grep -q '^VERSION=' <<<"$probe" && ! grep -qx 'VERSION=1' <<<"$probe"; then
    fail "$size bytes: blkid -p: $(grep '^VERSION=' <<<"$probe")"
  fi
  probe=$(swaplabel "$WORK/ours" 2>&1 || :)
  if ! grep -qE "^LABEL: $label\$" <<<"$probe" ||
     ! grep -qE "^UUID: +$uuid\$" <<<"$probe"; then
    fail "$size bytes: swaplabel: $(tr '\n' ' ' <<<"$probe")"
  fi
  if ! mkswap -U "$uuid" -L "$2" "$WORK/mkswap" > "$WORK/mkswap.log" 2>&1; then
    fail "$size bytes: mkswap failed: $(tr '\n' ' ' < "$WORK/mkswap.log")"
    return
  fi
  compare_fields "$WORK/ours" "$WORK/mkswap" "$size bytes"
  [ "$failures" -gt "$before" ] || echo "ok: $size bytes, label $label, UUID $uuid"
}

check $((64 * 1024 * 1024)) nbdswap-nbd0
check $((64 * 1024 * 1024 + 1000)) nbdswap-nbd12
check $((10 * PS)) abcdefghijklmnop
check $((16 * PS)) abcdefghijklmno
check $((1024 * 1024 * 1024 + 3 * PS)) x

# Fewer than 10 pages: refused, nothing written.
zeros "$WORK/small" $((10 * PS - 1))
if "$WRITE" "$WORK/small" s 2>/dev/null; then
  fail "a swap header on $((10 * PS - 1)) bytes"
elif [ -n "$(blkid -p -o value -s TYPE "$WORK/small" || :)" ]; then
  fail "a refused header left a signature"
fi

# The probe sees a broken signature: the checks above can fail.
zeros "$WORK/broken" $((64 * 1024 * 1024))
"$WRITE" "$WORK/broken" broken > /dev/null
printf 'SWAPSPACE3' | dd of="$WORK/broken" bs=1 seek=$((PS - 10)) \
  conv=notrunc status=none
if [ -n "$(blkid -p -o value -s TYPE "$WORK/broken" || :)" ]; then
  fail "blkid finds swap with a broken signature"
fi

[ "$failures" -eq 0 ] || { echo "$TEST: $failures failure(s)" >&2; exit 1; }
