#!/usr/bin/env python3
"""Where a swap run's time goes, from the guest's tracepoints.

bench/run --kernel with VM_KBENCH_PROFILE=1 records, during every swap
run, the block layer's request issue and completion (and requeue) and the nbd
driver's transport events in the guest kernel's trace buffer
(tests/vm/scenario-kbench.sh, kbench_profiled) and copies its text out
(`perf script -F cpu,time,event,trace` prints the same).  This reads
one such file and tells, per block device, how busy it was (the share of
the span with a request in flight, and the mean number in flight) and
how long its requests took; and for an nbd device, how each request's
time splits between the client's send, the wait for the reply (the
socket both ways and the whole server: its wake-up, its file I/O, its
reply), and the client's receive and completion.

    bench/ktrace.py TRACE...      one summary per file
"""

import re
import statistics
import sys

# "task-PID [001] d..1. 12435.921012: block_rq_issue: 254,0 RM 4096 ()
# 13539912 + 8 [comm]" (the trace file of Linux 6.1; later kernels add
# the I/O priority before the comm; perf script has no task or flags and
# names the event "block:block_rq_issue"); block_rq_complete has no byte count; nbd's transport events say
# "nbd transport event: request 0x..., handle 0x...", nbd_send_request
# "nbd0: request 0x...".
LINE = re.compile(r"\[(\d+)\]\s+(?:\S+\s+)?(\d+\.\d+):\s+(\S+?):\s+(.*)$")
BLOCK = re.compile(r"(\d+),(\d+) (\S+) (?:\d+ )?\(.*?\) (\d+) \+ (\d+)")
NBD_REQ = re.compile(r"request (0x[0-9a-f]+|[0-9a-f]+)")

NBD_MAJOR = 43
# nbd's minors: 32 a device (its default max_part=16).
NBD_MINORS = 32
REQUEUED = -1.0


def _op(rwbs):
    """'R', 'W', 'F' (a flush) or None for what is not data."""
    for c in rwbs:
        if c in "RW":
            return c
    return "F" if "F" in rwbs else None


def parse(path):
    """Per device (maj, min): a list of requests (op, bytes, t_issue,
    t_complete); and for nbd devices, per request, the nbd phases."""
    reqs = {}        # dev -> list of [op, bytes, t0, t1, sent, hdr_rx]
    open_ = {}       # (dev, sector, op) -> list of open requests
    last_issue = {}  # cpu -> the nbd request issued last on it
    by_ptr = {}      # nbd request pointer -> request record
    with open(path, errors="replace") as f:
        for line in f:
            m = LINE.search(line)
            if not m:
                continue
            # perf script names the event "block:block_rq_issue", the
            # kernel's trace file "block_rq_issue".
            cpu, t, ev, rest = int(m.group(1)), float(m.group(2)), \
                m.group(3).split(":")[-1], m.group(4)
            if ev in ("block_rq_issue", "block_rq_requeue",
                      "block_rq_complete"):
                b = BLOCK.search(rest)
                if not b:
                    continue
                dev = (int(b.group(1)), int(b.group(2)))
                op = _op(b.group(3))
                if op is None or op == "F":
                    continue
                key = (dev, int(b.group(4)), op)
                if ev.endswith("issue"):
                    r = [op, int(b.group(5)) * 512, t, None, None, None]
                    open_.setdefault(key, []).append(r)
                    reqs.setdefault(dev, []).append(r)
                    if dev[0] == NBD_MAJOR:
                        last_issue[cpu] = r
                elif ev.endswith("requeue"):
                    # Issued again later: this issue never completes.
                    q = open_.get(key)
                    if q:
                        q.pop()[3] = REQUEUED
                else:
                    q = open_.get(key)
                    if q:
                        q.pop(0)[3] = t
            elif ev.startswith("nbd_"):
                p = NBD_REQ.search(rest)
                if not p:
                    continue
                ptr = p.group(1)
                if ev == "nbd_send_request":
                    # Sent from the context that issued it, right after.
                    r = last_issue.pop(cpu, None)
                    if r is not None:
                        by_ptr[ptr] = r
                    continue
                r = by_ptr.get(ptr)
                if r is None:
                    continue
                if ev in ("nbd_header_sent", "nbd_payload_sent"):
                    r[4] = t
                elif ev == "nbd_header_received" and r[5] is None:
                    r[5] = t
                    del by_ptr[ptr]
    return reqs


def _busy(rs):
    """Seconds with at least one of requests rs in flight, the mean
    number in flight over the span, and the span (first issue to last
    completion)."""
    edges = sorted([(r[2], 1) for r in rs] + [(r[3], -1) for r in rs])
    span = edges[-1][0] - edges[0][0]
    busy = area = 0.0
    depth, prev = 0, edges[0][0]
    for t, d in edges:
        if depth > 0:
            busy += t - prev
        area += depth * (t - prev)
        depth += d
        prev = t
    return busy, (area / span if span > 0 else 0.0), span


def _us(xs):
    return statistics.mean(xs) * 1e6 if xs else float("nan")


def summarise(path):
    """A dict per device name ('nbd0', '254,0'): requests, span_s,
    busy_pct, mean_in_flight, and per op its count, mean KiB and mean
    latency in µs (for nbd also send_us, wait_us, recv_us)."""
    out = {}
    for dev, rs in parse(path).items():
        rs = [r for r in rs if r[3] is not None and r[3] != REQUEUED]
        if len(rs) < 2:
            continue
        busy, depth, span = _busy(rs)
        name = ("nbd%d" % (dev[1] // NBD_MINORS) if dev[0] == NBD_MAJOR
                else "%d,%d" % dev)
        d = {"requests": len(rs), "span_s": span,
             "busy_pct": 100.0 * busy / span if span > 0 else 0.0,
             "mean_in_flight": depth}
        for op in "RW":
            o = [r for r in rs if r[0] == op]
            if not o:
                continue
            e = {"n": len(o),
                 "kib": statistics.mean(r[1] for r in o) / 1024,
                 "lat_us": _us([r[3] - r[2] for r in o])}
            ph = [r for r in o if r[4] is not None and r[5] is not None
                  and r[2] <= r[4] <= r[5] <= r[3]]
            if ph:
                e["send_us"] = _us([r[4] - r[2] for r in ph])
                e["wait_us"] = _us([r[5] - r[4] for r in ph])
                e["recv_us"] = _us([r[3] - r[5] for r in ph])
                e["phased"] = len(ph)
            d[op] = e
        out[name] = d
    return out


def describe(s):
    """Lines of text for summarise's dict."""
    lines = []
    for name, d in sorted(s.items()):
        lines.append("%s: %d requests over %.1f s, busy %.0f %%, %.2f in "
                     "flight on average" % (name, d["requests"], d["span_s"],
                                            d["busy_pct"],
                                            d["mean_in_flight"]))
        for op, word in (("R", "reads"), ("W", "writes")):
            e = d.get(op)
            if not e:
                continue
            text = "  %s: %d, %.1f KiB, %.0f us" % (word, e["n"], e["kib"],
                                                   e["lat_us"])
            if "wait_us" in e:
                text += (" = send %.0f + wait for the reply %.0f + receive "
                         "%.0f (%d traced)" % (e["send_us"], e["wait_us"],
                                               e["recv_us"], e["phased"]))
            lines.append(text)
    return lines


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    for path in argv:
        print("== " + path)
        for ln in describe(summarise(path)):
            print(ln)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
