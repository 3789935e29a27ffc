#!/bin/bash
# nbdswap serve --allow, for both servers (the plugin's allow=, the
# native server's own check): 127.0.0.1 let in or kept out, and in the
# foreground the refusal logged with the client's address.  No traffic
# goes anywhere but 127.0.0.1.
source "$(dirname "$0")/functions.sh"
requires python3 python3

backing tcp.img 16M

for server in "${SERVERS[@]}"; do
  server_opts "$server"

  # An allow-list that admits 127.0.0.1.
  port=$(free_port)
  serve_bg "$WORK/tcp.img" "${OPTS[@]}" --bind 127.0.0.1 --port "$port" \
    --allow 127.0.0.1/32
  io "nbd://127.0.0.1:$port/"
  stop "$LAST_PID"

  # An allow-list that does not: the client is turned away.
  port=$(free_port)
  serve_bg "$WORK/tcp.img" "${OPTS[@]}" --bind 127.0.0.1 --port "$port" \
    --allow 10.0.0.0/8
  if qemu-io -f raw -c 'read 0 4k' "nbd://127.0.0.1:$port/" >"$WORK/q" 2>&1
  then
    fail "$server: a client outside --allow was served"
  else
    ok "$server: a client outside --allow is refused: $(head -1 "$WORK/q")"
  fi
  stop "$LAST_PID"

  # In the foreground the log is ours to read: the refusal names the
  # client (the plugin names its parameter, allow=).
  port=$(free_port)
  refused="client 127.0.0.1 is not in (allow=|--allow): connection refused"
  serve_fg "$WORK/fg.log" "$WORK/tcp.img" "${OPTS[@]}" --bind 127.0.0.1 \
    --port "$port" --allow 10.0.0.0/8
  for _ in $(seq 100); do
    qemu-io -f raw -c 'read 0 4k' "nbd://127.0.0.1:$port/" >/dev/null 2>&1 &&
      fail "$server: a client outside --allow was served (foreground)"
    grep -qE "$refused" "$WORK/fg.log" && break
    sleep 0.1
  done
  grep -qE "$refused" "$WORK/fg.log" ||
    fail "$server: the refusal is not logged: $(tail -3 "$WORK/fg.log")"
  stop_clean "$LAST_PID" "$server --allow in the foreground"
done

finish
