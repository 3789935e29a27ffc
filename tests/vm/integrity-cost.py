#!/usr/bin/env python3
"""Medians of the integrity-cost VM scenario (scenario-integrity-cost.sh).

Usage: integrity-cost.py RESULTS_DIR

Reads RESULTS_DIR/kbench.tsv (round, config, job, key, value) and fio's
JSON files in RESULTS_DIR/kbench/, writes RESULTS_DIR/integrity-cost.md:
per job and configuration the median over the rounds (each round's value
in parentheses) and the ratio to plain --encrypt; prints the swap
workload's medians as "bench NAME VALUE" lines.  Fails if a round is
incomplete or a workload did not verify.
"""

import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "bench"))
from kernel import fio_figures  # noqa: E402 (bench/kernel.py)

CONFIGS = [("encrypt", "--encrypt (XTS)"),
           ("hmac", "--integrity (HMAC-SHA256 + XTS)"),
           ("gcm", "GCM, random IV")]
# (job, figure, label, digits): what the table shows, in its order.
ROWS = [("fill", "mbps", "1 MiB seq. write QD1 (the fill), MB/s", 1),
        ("4k-randread-qd1", "iops", "4K rand. read QD1, IOPS", 0),
        ("4k-randread-qd1", "p50_us", "4K rand. read QD1, p50 µs", 0),
        ("4k-randread-qd32", "iops", "4K rand. read QD32, IOPS", 0),
        ("4k-randread-qd32", "guest_busy_pct",
         "4K rand. read QD32, guest CPU busy %", 0),
        ("4k-randwrite-qd1", "iops", "4K rand. write QD1, IOPS", 0),
        ("4k-randwrite-qd1", "p50_us", "4K rand. write QD1, p50 µs", 0),
        ("4k-randwrite-qd32", "iops", "4K rand. write QD32, IOPS", 0),
        ("4k-randwrite-qd32", "guest_busy_pct",
         "4K rand. write QD32, guest CPU busy %", 0),
        ("128k-seqread-qd4", "mbps", "128K seq. read QD4, MB/s", 1),
        ("swap", "seconds", "swap workload, s", 1),
        ("swap", "guest_busy_pct", "swap workload, guest CPU busy %", 0)]


def load(res):
    """{(round, config, job): {figure: value}}."""
    raw = {}
    with open(os.path.join(res, "kbench.tsv")) as f:
        for line in f:
            rnd, cfg, job, key, val = line.rstrip("\n").split("\t")
            raw.setdefault((int(rnd), cfg, job), {})[key] = val
    out = {}
    for (rnd, cfg, job), v in raw.items():
        r = {k: float(x) for k, x in v.items() if k != "json" and x != ""}
        if "json" in v:
            r.update(fio_figures(os.path.join(res, "kbench", v["json"])))
        if job == "fill" and r.get("seconds"):
            r["mbps"] = r["mib"] * 1.048576 / r["seconds"]
        out[(rnd, cfg, job)] = r
    return out


def main():
    res = sys.argv[1]
    data = load(res)
    rounds = sorted({k[0] for k in data})
    bad = [(rnd, cfg) for rnd in rounds for cfg, _ in CONFIGS
           if data.get((rnd, cfg, "swap"), {}).get("verified") != 1.0]
    lines = ["| | " + " | ".join(label for _, label in CONFIGS) + " |",
             "|---|" + "---:|" * len(CONFIGS)]
    bench = []
    for job, fig, label, digits in ROWS:
        cells, base = [], None
        for cfg, _ in CONFIGS:
            vals = [data[(rnd, cfg, job)][fig] for rnd in rounds
                    if fig in data.get((rnd, cfg, job), {})]
            if not vals:
                cells.append("–")
                continue
            med = statistics.median(vals)
            cell = "%.*f" % (digits, med)
            if base is None:
                base = med
            elif base:
                cell += " (%.2f×)" % (med / base)
            cell += " [" + ", ".join("%.*f" % (digits, v) for v in vals) + "]"
            cells.append(cell)
            if job == "swap" and fig == "seconds":
                bench.append("integrity-cost-%s-swap-s %.1f" % (cfg, med))
        lines.append("| %s | %s |" % (label, " | ".join(cells)))
    lines.append("")
    lines.append("Medians of %d round(s) (each round's value in brackets); "
                 "(×) against --encrypt." % len(rounds))
    with open(os.path.join(res, "integrity-cost.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    for b in bench:
        print("bench " + b)
    if bad:
        sys.exit("not verified or incomplete: %s" % bad)


if __name__ == "__main__":
    main()
