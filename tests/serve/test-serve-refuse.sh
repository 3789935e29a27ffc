#!/bin/bash
# nbdswap serve refusals: wrong arguments, missing and unfit files,
# non-loopback binds without an allow-list, options for the other server
# than the one asked for; the nbdkit command line (--nbdkit) for TLS,
# exports and allow-lists (--dry-run).  No server is started.
source "$(dirname "$0")/functions.sh"

backing good.img 1M
truncate -s 16M "$WORK/sparse.img"
chmod 0600 "$WORK/sparse.img"

expect_status 0 "^ nbdswap serve FILE" serve --help
expect_status 0 "^ nbdswap status" status --help
expect_status 1 "expected FILE" serve
expect_status 1 "expected one FILE" serve "$WORK/good.img" extra
expect_status 1 "unrecognized option '--bogus'" serve --bogus "$WORK/good.img"
expect_status 1 "--port 0: not a port number" serve --port 0 "$WORK/good.img"
expect_status 1 "--port x: not a port number" serve --port x "$WORK/good.img"
expect_status 1 "--threads 0: not a number from 1 to 1024" \
  serve --threads 0 "$WORK/good.img"
expect_status 1 "--poll-us 1001: not a number of microseconds from 0 to 1000" \
    serve --poll-us 1001 "$WORK/good.img"
expect_status 1 "--poll-us tunes the native server, and --nbdkit runs nbdkit: drop --poll-us or --nbdkit" \
    serve --nbdkit --poll-us 10 "$WORK/good.img"
expect_status 1 "--native and --nbdkit exclude each other" \
    serve --native --nbdkit "$WORK/good.img"
expect_status 1 "--socket and --port/--bind exclude each other" \
  serve --socket "$WORK/s" --port 10809 "$WORK/good.img"
expect_status 1 "--tls-psk and --tls-certificates exclude each other" \
  serve --tls-psk "$WORK/k" --tls-certificates "$WORK" "$WORK/good.img"
expect_status 1 "--bind localhost: not a numeric IPv4 or IPv6 address" \
  serve --bind localhost "$WORK/good.img"
expect_status 1 "--bind 192.0.2.1 is not loopback: give --allow CIDR.*swap pages are process memory" \
  serve --bind 192.0.2.1 "$WORK/good.img"
expect_status 1 "--bind 2001:db8::1 is not loopback" \
  serve --bind 2001:db8::1 --port 10809 "$WORK/good.img"
expect_status 1 "--allow 10.0.0.0/33: not an address or ADDR/PREFIX" \
  serve --bind 192.0.2.1 --allow 10.0.0.0/33 "$WORK/good.img"
expect_status 1 "--allow applies to TCP" \
  serve --allow 10.0.0.0/8 "$WORK/good.img"
expect_status 1 "--json and --prometheus exclude each other" \
  status --json --prometheus "$WORK/m"
expect_status 1 "unrecognized option '--bogus'" status --bogus

# The native server (the default): what only nbdkit has, and the plugin
# parameters after "--" that it takes or not; refused before anything
# starts, naming --nbdkit where nbdkit would take them.  --native, the
# default, changes nothing.
expect_status 3 "--tls-psk $WORK/k: not a readable file: make one with 'psktool" \
  serve --tls-psk "$WORK/k" "$WORK/good.img"
expect_status 1 "--tls-verify-peer checks client certificates: it needs --tls-certificates DIR" \
  serve --tls-psk "$WORK/k" --tls-verify-peer "$WORK/good.img"
expect_status 1 "--threads 8 sets nbdkit's threads, and the native server \(serve's default\) runs one thread per connection: add --nbdkit" \
  serve --threads 8 "$WORK/good.img"
expect_status 1 "--threads 32 sets nbdkit's threads.*add --nbdkit" \
  serve --native --threads 32 "$WORK/good.img"
expect_status 1 "after '--' it takes only plugin parameters \(KEY=VALUE\), not '--filter=cow': add --nbdkit" \
  serve "$WORK/good.img" -- --filter=cow
expect_status 1 "not '-v': add --nbdkit to serve with nbdkit" \
  serve --native "$WORK/good.img" -- -v
expect_status 1 "^nbdswap: queue-depth=8: not for the native server: .*one ring per connection itself \(add --nbdkit" \
  serve "$WORK/good.img" -- queue-depth=8
expect_status 1 "^nbdswap: workers=4: not for the native server: .*add --nbdkit" \
  serve "$WORK/good.img" -- workers=4
expect_status 1 "^nbdswap: file=/x: not for the native server: serve takes the file as FILE$" \
  serve "$WORK/good.img" -- file=/x
expect_status 1 "^nbdswap: stats-file=/x: not for the native server: .*where 'nbdswap status' reads them" \
  serve "$WORK/good.img" -- stats-file=/x
expect_status 1 "^nbdswap: allow=10.0.0.0/8: not for the native server: give --allow CIDR instead" \
  serve "$WORK/good.img" -- allow=10.0.0.0/8
expect_status 1 "^nbdswap: engine=pread: the native server \(serve's default\) has only io_uring: add --nbdkit for the plugin's pread/pwrite engine" \
  serve "$WORK/good.img" -- recheck=5 engine=pread
expect_status 1 "^nbdswap: direct=false: the native server \(serve's default\) does only O_DIRECT: add --nbdkit" \
  serve "$WORK/good.img" -- direct=false
expect_status 1 "^nbdswap: retry-timeout=abc: must be a number of seconds from 0 to 86400" \
  serve "$WORK/good.img" -- retry-timeout=abc
expect_status 1 "^nbdswap: retry-eio=maybe: not a boolean" \
  serve "$WORK/good.img" -- retry-eio=maybe
expect_status 1 "^nbdswap: bogus=1: unknown parameter: the native server takes recheck=, retry-timeout=, retry-eio= and mlock=" \
  serve --native "$WORK/good.img" -- bogus=1
# --nbdkit: what only the native server does.
expect_status 1 "^nbdswap: --nbdkit: --allow NAME=CIDR with one FILE: the plugin takes per-export allow lists with --dir only: drop --nbdkit" \
  serve --nbdkit --port 10809 --allow swap=127.0.0.1 "$WORK/good.img"
mkdir "$WORK/fleet"
: >"$WORK/keys.psk"
expect_status 1 "^nbdswap: --nbdkit: --dir with --tls-psk: each PSK identity opens only the export of its name, a rule only the native server keeps .*: drop --nbdkit" \
  serve --nbdkit --dir "$WORK/fleet" --port 10809 --tls-psk "$WORK/keys.psk"
expect_status 1 "^nbdswap: --dir names each export after its file: drop --export" \
  serve --nbdkit --dir "$WORK/fleet" --export x
[ ! -e "$NBDSWAP_RUNTIME_DIR/good.sock" ] || fail "a refused command line got a socket"

# Files.
expect_status 3 "$WORK/missing.img: no such file: create it with 'nbdswap create $WORK/missing.img SIZE'" \
  serve "$WORK/missing.img"
expect_status 2 "^error \[hole\]: $WORK/sparse.img: .*are a hole" \
  serve --nbdkit "$WORK/sparse.img"
expect_status 2 "$WORK/sparse.img: not fit to serve as swap \(1 problem above\)" \
  serve --nbdkit "$WORK/sparse.img"
[ ! -e "$NBDSWAP_RUNTIME_DIR/sparse.sock" ] || fail "an unfit file got a socket"
# direct= after "--" is read by the plugin's parser, booleans in any
# case: direct=FALSE skips serve's O_DIRECT check as direct=false does.
expect_status 2 "^Size: .*, alignment [0-9]+, O_DIRECT checked$" \
  serve --nbdkit "$WORK/sparse.img"
expect_status 2 "^Size: .*, alignment [0-9]+$" \
  serve --nbdkit "$WORK/sparse.img" -- direct=false
expect_status 2 "^Size: .*, alignment [0-9]+$" \
  serve --nbdkit "$WORK/sparse.img" -- direct=FALSE
expect_status 2 "^Size: .*, alignment [0-9]+$" \
  serve --nbdkit --dry-run "$WORK/sparse.img" -- -v direct=Off
# A bad plugin parameter is refused before nbdkit starts; nbdkit's own
# words and filters' parameters are nbdkit's.
expect_status 1 "^nbdswap: queue-depth=3: must be a power of two" \
  serve --nbdkit --dry-run "$WORK/good.img" -- queue-depth=3
expect_status 0 " file=$WORK/good.img .* -D swapfile.x=1 exportname=y$" \
  serve --nbdkit --dry-run "$WORK/good.img" -- -D swapfile.x=1 exportname=y
# With a filter, its parameters may share a plugin parameter's name (the
# ip filter's allow=): nbdkit judges them, serve still reads direct=.
expect_status 0 " --filter=ip allow=all deny=all$" \
  serve --nbdkit --dry-run "$WORK/good.img" -- --filter=ip allow=all deny=all
expect_status 2 "^Size: .*, alignment [0-9]+$" \
  serve --nbdkit --dry-run "$WORK/sparse.img" -- --filter=ip direct=false
expect_status 3 "--tls-psk $WORK/none.psk: not a readable file" \
  serve --tls-psk "$WORK/none.psk" "$WORK/good.img"
expect_status 3 "exists and is not a socket" \
  serve --socket "$WORK/good.img" "$WORK/good.img"
long=$WORK/$(printf 'x%.0s' $(seq 120)).sock
expect_status 3 "a unix socket path must be shorter than 108 bytes" \
  serve --socket "$long" "$WORK/good.img"
NBDSWAP_NBDKIT=$WORK/no-nbdkit expect_status 3 "cannot run $WORK/no-nbdkit" \
  serve --nbdkit --foreground "$WORK/good.img"

# The nbdkit command line (--nbdkit), after a line naming the server.
expect_status 0 "^# nbdswap serve: nbdkit with the swapfile plugin$" \
  serve --nbdkit --dry-run "$WORK/good.img"
plugin=$(cd "$PWD/../plugin/.libs" && pwd)/nbdkit-swapfile-plugin.so
expect_status 0 "^nbdkit -U $NBDSWAP_RUNTIME_DIR/good.sock -t 32 -P $NBDSWAP_RUNTIME_DIR/good.pid .*/plugin/.libs/nbdkit-swapfile-plugin.so file=$WORK/good.img stats-file=$NBDSWAP_RUNTIME_DIR/good.stats$" \
  serve --nbdkit --dry-run "$WORK/good.img"
NBDSWAP_PLUGIN=swapfile expect_status 0 " -t 8 .* swapfile file=$WORK/good.img .* engine=pread -v$" \
  serve --nbdkit --dry-run --threads 8 "$WORK/good.img" -- engine=pread -v
expect_status 0 "^# nbdswap binds $WORK/s.sock .*LISTEN_FDS=1" \
  serve --nbdkit --dry-run --foreground --socket "$WORK/s.sock" "$WORK/good.img"
expect_status 0 "^nbdkit -f -t 32 " \
  serve --nbdkit --dry-run --foreground --socket "$WORK/s.sock" "$WORK/good.img"
expect_status 0 "^nbdkit -p 10809 -i 127.0.0.1 " \
  serve --nbdkit --dry-run --port 10809 "$WORK/good.img"
expect_status 0 "^nbdkit -p 10809 -i 192.0.2.1 .* allow=192.0.2.0/24,198.51.100.7,2001:db8::/32$" \
  serve --nbdkit --dry-run --bind 192.0.2.1 --allow 192.0.2.0/24,198.51.100.7 \
  --allow 2001:db8::/32 "$WORK/good.img"
expect_status 0 " --tls=require --tls-psk $WORK/keys.psk " \
  serve --nbdkit --dry-run --tls-psk "$WORK/keys.psk" "$WORK/good.img"
expect_status 0 "attach the kernel's nbd client with 'nbdswap attach --tls-psk FILE'" \
  serve --nbdkit --dry-run --tls-psk "$WORK/keys.psk" "$WORK/good.img"
# Relative TLS paths become whole ones: the credentials are read again at
# every handshake, after a server in the background has left this directory.
cd "$WORK"
expect_status 0 " --tls-psk $WORK/keys.psk " \
  serve --nbdkit --dry-run --tls-psk keys.psk good.img
expect_status 0 " --tls-certificates $WORK/\\. " \
  serve --nbdkit --dry-run --tls-certificates . good.img
cd - >/dev/null
expect_status 0 " --tls=require --tls-certificates $WORK " \
  serve --nbdkit --dry-run --tls-certificates "$WORK" "$WORK/good.img"
expect_status 0 " -e swap1 --filter=exportname .* exportname=swap1 exportname-strict=true" \
  serve --nbdkit --dry-run --export swap1 "$WORK/good.img"
INVOCATION_ID=x expect_status 0 "^nbdkit -f " \
  serve --nbdkit --dry-run "$WORK/good.img"

finish
