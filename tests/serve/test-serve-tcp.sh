#!/bin/bash
# nbdswap serve on TCP, for both servers: the default bind is loopback,
# status names the address; --export: the name asked for is served,
# another is refused.  No traffic goes anywhere but 127.0.0.1.
source "$(dirname "$0")/functions.sh"
requires python3 python3

backing tcp.img 16M

for server in "${SERVERS[@]}"; do
  server_opts "$server"

  # Default: loopback.
  port=$(free_port)
  serve_bg "$WORK/tcp.img" "${OPTS[@]}" --port "$port"
  io "nbd://127.0.0.1:$port/"
  grep -q "127.0.0.1:$port " <(ss -ltnH 2>/dev/null || netstat -ltn) ||
    fail "$server: not listening on 127.0.0.1:$port only"
  expect_status 0 " tcp:127.0.0.1:$port " status "$WORK/tcp.img"
  stop "$LAST_PID"

  # --export: only that name.
  port=$(free_port)
  serve_bg "$WORK/tcp.img" "${OPTS[@]}" --port "$port" --export swap1
  io "nbd://127.0.0.1:$port/swap1"
  if qemu-io -f raw -c 'read 0 4k' "nbd://127.0.0.1:$port/other" \
       >"$WORK/q" 2>&1; then
    fail "$server: --export swap1 served the export 'other'"
  else
    ok "$server: --export swap1 refuses 'other': $(head -1 "$WORK/q")"
  fi
  nbdswap status --json "$WORK/tcp.img" >"$WORK/status.json"
  grep -q '"export":"swap1"' "$WORK/status.json" ||
    fail "$server: status does not name the export: $(cat "$WORK/status.json")"
  stop "$LAST_PID"
done

finish
