#!/usr/bin/python3
# nbdswap serve --dir tests: a libnbd client of one export.
#   dir-client.py unix:PATH|tcp:HOST:PORT COMMAND ARGS...
# (with NBD_SOURCE=ADDR in the environment a TCP client connects from
# that local address, e.g. 127.0.0.2: another client)
# list                 print the names NBD_OPT_LIST gives, space-separated
# rw NAME              write NAME's own pattern across the export, read it back
# check-file NAME PATH the file holds NAME's pattern
# open NAME            print "ok", or the errno name opening it failed with
# hold NAME READY GO   write, create READY, wait for GO, then print what a
#                      read and a write got ("read EIO", ...)
# timed-write NAME OFFSET...
#                      write 64 KiB of NAME's pattern at each OFFSET in
#                      turn: print "OFFSET ok|ERRNO START_NS END_NS" each
# only-written NAME PATH OFFSET...
#                      the file holds NAME's pattern at each OFFSET (64 KiB)
#                      and zeros everywhere else
# absent NAME OFFSET PATH...
#                      no PATH holds a 4 KiB block of NAME's pattern for
#                      OFFSET anywhere
import errno, os, socket, sys, time
import nbd

where, cmd = sys.argv[1], sys.argv[2]
args = sys.argv[3:]

def reach(h):
    kind, _, addr = where.partition(":")
    if kind == "unix":
        h.connect_unix(addr)
        return
    host, _, port = addr.rpartition(":")
    if os.environ.get("NBD_SOURCE"):
        s = socket.socket(socket.AF_INET)
        s.bind((os.environ["NBD_SOURCE"], 0))
        s.connect((host, int(port)))
        h.connect_socket(s.detach())
    else:
        h.connect_tcp(host, port)

def connect(name):
    h = nbd.NBD()
    h.set_export_name(name)
    reach(h)
    return h

def pattern(name, off, n):
    seed = (name + ":%d:" % off).encode()
    return (seed * (n // len(seed) + 1))[:n]

if cmd == "list":
    h = nbd.NBD()
    h.set_opt_mode(True)
    reach(h)
    names = []
    h.opt_list(lambda n, d: names.append(n))
    h.opt_abort()
    print(" ".join(names))
elif cmd == "rw":
    # Write the export's own pattern at offsets across it, read back.
    name = args[0]
    h = connect(name)
    offs = [0, 1 << 20, 8 << 20, (16 << 20) - 65536]
    for o in offs:
        h.pwrite(pattern(name, o, 65536), o)
    h.flush()
    for o in offs:
        if h.pread(65536, o) != pattern(name, o, 65536):
            sys.exit("%s: offset %d: read back differs" % (name, o))
    h.shutdown()
elif cmd == "check-file":
    # The file holds the export's pattern, and none of another's.
    name, path = args
    with open(path, "rb") as f:
        for o in [0, 1 << 20, 8 << 20, (16 << 20) - 65536]:
            f.seek(o)
            if f.read(65536) != pattern(name, o, 65536):
                sys.exit("%s: the file at %d does not hold the export's data"
                         % (path, o))
elif cmd == "open":
    # Try to open the export: print the error's errno name, or "ok".
    try:
        connect(args[0]).shutdown()
        print("ok")
    except nbd.Error as e:
        print(errno.errorcode.get(e.errno, str(e.errno)) if e.errno else e.string)
elif cmd == "hold":
    # Write, say ready, wait for the go, then try I/O: print what it got.
    name, ready, go = args
    h = connect(name)
    h.pwrite(pattern(name, 0, 4096), 0)
    open(ready, "w").close()
    while not os.path.exists(go):
        time.sleep(0.05)
    for what, f in (("read", lambda: h.pread(4096, 0)),
                    ("write", lambda: h.pwrite(b"z" * 4096, 0))):
        try:
            f()
            print(what, "ok")
        except nbd.Error as e:
            print(what, errno.errorcode.get(e.errno, str(e.errno)))
    h.shutdown()
elif cmd == "timed-write":
    # Each write's outcome and when it was asked and answered (wall
    # clock, which the calling shell's date +%s%N shares).
    name = args[0]
    h = connect(name)
    for o in map(int, args[1:]):
        start = time.time_ns()
        try:
            h.pwrite(pattern(name, o, 65536), o)
            got = "ok"
        except nbd.Error as e:
            got = errno.errorcode.get(e.errno, str(e.errno))
        print(o, got, start, time.time_ns(), flush=True)
    h.shutdown()
elif cmd == "only-written":
    name, path = args[0], args[1]
    want = {int(o): pattern(name, int(o), 65536) for o in args[2:]}
    with open(path, "rb") as f:
        data = f.read()
    for o in range(0, len(data), 65536):
        if data[o:o + 65536] != want.get(o, bytes(65536)):
            sys.exit("%s: bytes %d-%d are not what %s wrote there (%s)"
                     % (path, o, o + 65535, name,
                        "its pattern" if o in want else "zeros"))
elif cmd == "absent":
    name, o = args[0], int(args[1])
    block = pattern(name, o, 65536)[:4096]
    for path in args[2:]:
        with open(path, "rb") as f:
            if block in f.read():
                sys.exit("%s holds %s's data for offset %d" % (path, name, o))
