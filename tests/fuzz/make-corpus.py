#!/usr/bin/env python3
"""nbdswap: write the fuzz targets' seed corpus (tests/fuzz/corpus/).

  make-corpus.py [DIR]     (default: the corpus/ beside this script)

Each input is a client's byte stream as the target reads it:
native-handshake/ from the client flags on (the server's greeting is not
part of it), native-conn/ from the first request on.  The inputs are
small and each says one thing a client may send: good negotiations and
requests, and the broken ones a server must survive.  Run it again after
changing it and commit what it writes (the files are made here, never
edited by hand); old files of this script's naming are replaced.
"""
import os
import struct
import sys

OPT_MAGIC = 0x49484156454F5054          # "IHAVEOPT"
REQ_MAGIC = 0x25609513
FIXED, NO_ZEROES = 1, 2
OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_STARTTLS = 1, 2, 3, 5
OPT_INFO, OPT_GO, OPT_STRUCTURED_REPLY = 6, 7, 8
INFO_EXPORT, INFO_NAME, INFO_DESCRIPTION, INFO_BLOCK_SIZE = 0, 1, 2, 3
CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH, CMD_TRIM = 0, 1, 2, 3, 4
CMD_CACHE, CMD_WRITE_ZEROES, CMD_BLOCK_STATUS = 5, 6, 7
FLAG_FUA, FLAG_NO_HOLE = 1, 2
EXPORT = "swap"                         # fuzz-native-handshake.c's name
SIZE = 2 * 1024 * 1024                  # fuzz-native-conn.c's export


def cflags(f=FIXED | NO_ZEROES):
    return struct.pack(">I", f)


def opt(code, data=b"", length=None):
    n = len(data) if length is None else length
    return struct.pack(">QII", OPT_MAGIC, code, n) + data


def go_data(name=EXPORT, infos=(), count=None):
    n = name.encode()
    k = len(infos) if count is None else count
    return (struct.pack(">I", len(n)) + n + struct.pack(">H", k) +
            b"".join(struct.pack(">H", i) for i in infos))


def handshake():
    go = opt(OPT_GO, go_data(infos=[INFO_EXPORT, INFO_BLOCK_SIZE]))
    return {
        "go": cflags() + go,
        "go-no-infos": cflags() + opt(OPT_GO, go_data()),
        "go-fixed-only": cflags(FIXED) + go,
        "go-wrong-name": cflags() + opt(OPT_GO, go_data("nope")),
        "go-empty-name": cflags() + opt(OPT_GO, go_data("")),
        "go-name-too-long": cflags() + opt(
            OPT_GO, struct.pack(">I", 100) + b"swap" + b"\0\0"),
        "go-infos-mismatch": cflags() + opt(
            OPT_GO, go_data(infos=[INFO_EXPORT], count=3)),
        "go-short": cflags() + opt(OPT_GO, b"\0\0\0"),
        "go-length-past-data": cflags() + opt(
            OPT_GO, go_data(), length=4000),
        "go-many-infos": cflags() + opt(
            OPT_GO, go_data(infos=[INFO_NAME, INFO_DESCRIPTION] * 50)),
        "info-then-go": cflags() + opt(OPT_INFO, go_data(
            infos=[INFO_BLOCK_SIZE])) + go,
        "export-name": cflags() + opt(OPT_EXPORT_NAME, EXPORT.encode()),
        "export-name-zeroes": cflags(FIXED) + opt(
            OPT_EXPORT_NAME, EXPORT.encode()),
        "export-name-wrong": cflags() + opt(OPT_EXPORT_NAME, b"other"),
        "list": cflags() + opt(OPT_LIST) + opt(OPT_ABORT),
        "list-with-data": cflags() + opt(OPT_LIST, b"junk") + go,
        "structured-reply-then-go": cflags() + opt(OPT_STRUCTURED_REPLY) + go,
        "starttls": cflags() + opt(OPT_STARTTLS) + go,
        "unknown-option": cflags() + opt(0x12345678, b"abc") + go,
        "abort": cflags() + opt(OPT_ABORT),
        "abort-with-data": cflags() + opt(OPT_ABORT, b"data"),
        "oversized-option": cflags() + opt(OPT_GO, b"x" * 9000) + go,
        "oversized-length-no-data": cflags() + opt(
            OPT_INFO, length=0xffffffff),
        "max-name": cflags() + opt(OPT_GO, go_data("n" * 4096)),
        "bad-option-magic": cflags() + struct.pack(
            ">QII", 0x1122334455667788, OPT_GO, 0),
        "bad-flags": cflags(0),
        "unknown-flags": cflags(0xff),
        "truncated-flags": b"\0\0",
        "truncated-header": cflags() + opt(OPT_GO)[:10],
        "truncated-data": cflags() + opt(OPT_GO, go_data())[:20],
        "empty": b"",
        "many-options": cflags() + (opt(OPT_LIST) +
                                   opt(OPT_INFO, go_data())) * 20 + go,
    }


def req(cmd, off=0, length=4096, flags=0, cookie=None, magic=REQ_MAGIC):
    c = cookie if cookie is not None else (cmd << 32) | (off & 0xffffffff)
    return struct.pack(">IHHQQI", magic, flags, cmd, c, off, length)


def write(off, length, flags=0, payload=None):
    data = payload if payload is not None else bytes(
        (off + i) & 0xff for i in range(length))
    return req(CMD_WRITE, off, length, flags) + data


def conn():
    disc = req(CMD_DISC, 0, 0)
    return {
        "read": req(CMD_READ, 0, 4096) + disc,
        "write": write(4096, 4096) + disc,
        "write-fua": write(8192, 4096, FLAG_FUA) + disc,
        "write-then-read": write(0, 4096) + req(CMD_READ, 0, 4096) + disc,
        "flush": write(0, 512) + req(CMD_FLUSH, 0, 0) + disc,
        "flush-fua": req(CMD_FLUSH, 0, 0, FLAG_FUA) + disc,
        "zero": req(CMD_WRITE_ZEROES, 0, 65536) + disc,
        "zero-no-hole-fua": req(CMD_WRITE_ZEROES, 4096, 8192,
                                FLAG_NO_HOLE | FLAG_FUA) + disc,
        "zero-unaligned": req(CMD_WRITE_ZEROES, 100, 5000) + disc,
        "zero-whole": req(CMD_WRITE_ZEROES, 0, SIZE) + disc,
        "disc": disc,
        "no-disc": req(CMD_READ, 0, 512),
        "unaligned-write": write(1, 511) + disc,
        "unaligned-write-span": write(4000, 200) + disc,
        "unaligned-read": req(CMD_READ, 513, 1000) + disc,
        "unaligned-rmw-same-block": (write(10, 10) + write(20, 10) +
                                     write(4090, 12) + disc),
        "large-write": write(0, 132 * 1024) + disc,
        "large-read": req(CMD_READ, 0, 200 * 1024) + disc,
        "large-reads-two": (req(CMD_READ, 0, 256 * 1024) +
                            req(CMD_READ, 4096, 256 * 1024) + disc),
        # Runs of the mid buffers: one of all eight, then one that waits
        # for it; and one over what they hold (the large buffer).
        "run-whole-then-waiting": (req(CMD_READ, 0, 1024 * 1024) +
                                   write(512, 300 * 1024) + disc),
        "over-the-runs": req(CMD_READ, 0, 1536 * 1024) + disc,
        "read-whole": req(CMD_READ, 0, SIZE) + disc,
        "read-past-end": req(CMD_READ, SIZE - 512, 4096) + disc,
        "read-at-end": req(CMD_READ, SIZE, 512) + disc,
        "read-offset-huge": req(CMD_READ, 2**64 - 512, 1024) + disc,
        "read-zero-length": req(CMD_READ, 0, 0) + disc,
        "read-too-long": req(CMD_READ, 0, 64 * 1024 * 1024),
        "write-past-end": write(SIZE - 512, 1024) + disc,
        "write-offset-huge": write(2**64 - 4096, 4096) + disc,
        "write-zero-length": req(CMD_WRITE, 0, 0) + disc,
        "write-too-long": req(CMD_WRITE, 0, 64 * 1024 * 1024),
        "write-bad-flags": write(0, 512, 0x80) + disc,
        "zero-past-end": req(CMD_WRITE_ZEROES, SIZE, 4096) + disc,
        "zero-zero-length": req(CMD_WRITE_ZEROES, 0, 0) + disc,
        "trim": req(CMD_TRIM, 0, 4096) + disc,
        "cache": req(CMD_CACHE, 0, 4096) + disc,
        "block-status": req(CMD_BLOCK_STATUS, 0, 4096) + disc,
        "unknown-command": req(0x7777, 0, 4096) + disc,
        "bad-magic": req(CMD_READ, magic=0xdeadbeef) + req(CMD_READ),
        "garbage": bytes(range(256)),
        "truncated-header": req(CMD_READ)[:20],
        "truncated-payload": req(CMD_WRITE, 0, 8192) + b"\xaa" * 1000,
        "truncated-large-payload": (req(CMD_WRITE, 0, 200 * 1024) +
                                    b"\xbb" * 3000),
        # A request hidden in a payload the end of stream cuts short:
        # never to be served.
        "truncated-payload-hiding-a-request": (
            req(CMD_WRITE, 0, 8192) + req(CMD_READ, 0, 512, cookie=99)),
        # More requests than slots, then a write cut short: its header
        # is parsed only after the end of stream.
        "backlog-then-truncated-payload": (
            b"".join(req(CMD_READ, i * 4096, 4096) for i in range(40)) +
            req(CMD_WRITE, 0, 8192) + b"\x55" * 100),
        "large-read-then-truncated-large-write": (
            req(CMD_READ, 0, 256 * 1024) + req(CMD_WRITE, 4096, 256 * 1024) +
            (req(CMD_READ, 0, 512, cookie=99) * 100)),
        # More mid-size requests (over 32 KiB, up to 128 KiB) than a
        # connection's 8 mid buffers: the rest wait for one (the
        # writes' payloads behind the reads, small to keep the seed so).
        "mid-reads-then-mid-writes": (
            b"".join(req(CMD_READ, i * 30000 + 1, 100000)
                     for i in range(10)) +
            write(400000 + 7, 33000) + write(440000 + 9, 33000) +
            req(CMD_READ, 400000, 80000) + disc),
        "mid-reads": b"".join(req(CMD_READ, i * 20000 + 1, 100000)
                              for i in range(20)) + disc,
        # A mid-size write waiting for a buffer the reads hold, its
        # payload cut short by the end of stream.
        "mid-reads-then-truncated-mid-write": (
            b"".join(req(CMD_READ, i * 4096, 128 * 1024)
                     for i in range(10)) +
            req(CMD_WRITE, 100, 64 * 1024) + b"\x66" * 1000),
        "pipelined": b"".join(write(i * 1024, 1024) +
                              req(CMD_READ, i * 1024, 4096)
                              for i in range(40)) + disc,
        "pipelined-reads": b"".join(req(CMD_READ, i * 512, 512)
                                    for i in range(80)),
        "same-cookie": (req(CMD_READ, 0, 512, cookie=7) +
                        req(CMD_READ, 512, 512, cookie=7) + disc),
        "after-disc": disc + req(CMD_READ, 0, 4096),
        "empty": b"",
    }


def main():
    top = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus")
    for target, inputs in (("native-handshake", handshake()),
                           ("native-conn", conn())):
        d = os.path.join(top, target)
        os.makedirs(d, exist_ok=True)
        for old in os.listdir(d):
            if old.startswith("seed-"):
                os.unlink(os.path.join(d, old))
        for name, data in sorted(inputs.items()):
            with open(os.path.join(d, "seed-" + name), "wb") as f:
                f.write(data)
        print(f"{d}: {len(inputs)} inputs")


if __name__ == "__main__":
    main()
