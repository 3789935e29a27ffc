#!/bin/bash
# nbdswap serve on TCP: the default bind is loopback.  No traffic goes
# anywhere but 127.0.0.1.
source "$(dirname "$0")/functions.sh"
requires python3 python3

backing tcp.img 16M

# Default: loopback.
port=$(free_port)
serve_bg "$WORK/tcp.img" --port "$port"
io "nbd://127.0.0.1:$port/"
grep -q "127.0.0.1:$port " <(ss -ltnH 2>/dev/null || netstat -ltn) ||
  fail "not listening on 127.0.0.1:$port only"
expect_status 0 " tcp:127.0.0.1:$port " status "$WORK/tcp.img"
stop "$LAST_PID"

finish
