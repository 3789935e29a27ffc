#!/bin/bash
# nbdswap serve --allow: nbdkit's ip filter letting 127.0.0.1 in or
# keeping it out.  No traffic goes anywhere but 127.0.0.1.
source "$(dirname "$0")/functions.sh"
requires python3 python3

backing tcp.img 16M

# Debian 12's nbdkit 1.32.5 has an ip filter that cannot parse any
# address: then serve must refuse --allow instead of serving unfiltered.
if ! nbdkit -U - --filter=ip null allow=127.0.0.1 --run true >/dev/null 2>&1
then
  expect_status 3 "--allow: this nbdkit's ip filter cannot parse addresses" \
    serve "$WORK/tcp.img" --bind 127.0.0.1 --port "$(free_port)" \
    --allow 127.0.0.1/32
  [ "$FAILURES" -eq 0 ] || finish
  skip "nbdkit's ip filter cannot parse addresses here (Debian 12's nbdkit 1.32.5 lacks inet_pton); serve refuses --allow, as checked"
fi

# An allow-list that admits 127.0.0.1.
port=$(free_port)
serve_bg "$WORK/tcp.img" --bind 127.0.0.1 --port "$port" --allow 127.0.0.1/32
io "nbd://127.0.0.1:$port/"
stop "$LAST_PID"

# An allow-list that does not: the client is turned away.
port=$(free_port)
serve_bg "$WORK/tcp.img" --bind 127.0.0.1 --port "$port" --allow 10.0.0.0/8
if qemu-io -f raw -c 'read 0 4k' "nbd://127.0.0.1:$port/" >"$WORK/q" 2>&1
then
  fail "a client outside --allow was served"
else
  ok "a client outside --allow is refused: $(head -1 "$WORK/q")"
fi
stop "$LAST_PID"

finish
