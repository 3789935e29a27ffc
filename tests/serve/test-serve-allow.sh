#!/bin/bash
# nbdswap serve --allow: the plugin's allow= letting 127.0.0.1 in or
# keeping it out.  No traffic goes anywhere but 127.0.0.1.
source "$(dirname "$0")/functions.sh"
requires python3 python3

backing tcp.img 16M

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

# In the foreground the log is ours to read: the refusal names the client.
port=$(free_port)
serve_fg "$WORK/fg.log" "$WORK/tcp.img" --bind 127.0.0.1 --port "$port" \
  --allow 10.0.0.0/8
for _ in $(seq 100); do
  grep -q "after_fork\|serving" "$WORK/fg.log" 2>/dev/null && break
  qemu-io -f raw -c 'read 0 4k' "nbd://127.0.0.1:$port/" >/dev/null 2>&1 && break
  sleep 0.1
done
qemu-io -f raw -c 'read 0 4k' "nbd://127.0.0.1:$port/" >/dev/null 2>&1 &&
  fail "a client outside --allow was served (foreground)"
sleep 0.3
grep -q "client 127.0.0.1 is not in allow=: connection refused" "$WORK/fg.log" ||
  fail "the refusal is not logged: $(tail -3 "$WORK/fg.log")"
stop "$LAST_PID"

finish
