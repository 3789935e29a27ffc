#!/usr/bin/env python3
# nbdswap VM tests: keep the TCP payload that crosses one interface to or
# from one port, as a byte stream for plaintext-scan --stream.
#
# Usage: wire-capture.py IFACE PORT OUTFILE MAX_BYTES SECONDS
# Prints "capturing" once its socket is bound, then stops at MAX_BYTES of
# payload or after SECONDS, or on SIGTERM, and prints "captured N bytes
# in M frames".  IPv4 over Ethernet (veth) only.
import signal
import socket
import struct
import sys
import time

iface, port, out, limit, secs = (sys.argv[1], int(sys.argv[2]), sys.argv[3],
                                 int(sys.argv[4]), float(sys.argv[5]))
ETH_P_ALL = 0x0003
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
s.bind((iface, 0))
s.settimeout(0.5)
print("capturing", flush=True)
stop = False


def on_term(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
total = frames = 0
end = time.monotonic() + secs
with open(out, "wb") as f:
    while not stop and total < limit and time.monotonic() < end:
        try:
            frame = s.recv(262144)
        except socket.timeout:
            continue
        if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
            continue
        ihl = (frame[14] & 15) * 4
        tcp = 14 + ihl
        sport, dport = struct.unpack("!HH", frame[tcp:tcp + 4])
        if port not in (sport, dport):
            continue
        payload = frame[tcp + (frame[tcp + 12] >> 4) * 4:]
        if payload:
            f.write(payload)
            total += len(payload)
            frames += 1
print("captured %d bytes in %d frames" % (total, frames))
