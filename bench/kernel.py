"""bench/run --kernel: nbdswap and its peers through the kernel's nbd client.

Swap goes page -> kernel nbd driver -> socket -> server -> file, never
through libnbd. This mode boots the qemu guest of tests/vm (scenario
kbench, tests/vm/scenario-kbench.sh), which measures every server on the
same backing file, attached with nbd-client, round by round; here the raw
figures it copied back become medians, ratios and the targets.
See docs/benchmarks.md, "Through the kernel's client".
"""

import datetime
import glob
import json
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.dirname(HERE)

# Guest configuration name -> label, in the order the guest runs them.
# --only may name others: a server's name with levers of the client side
# ("native+c2+sched=mq-deadline", tests/vm/scenario-kbench.sh's
# kbench_select), labelled after the server with its levers.
BASES = {
    "native": "nbdswap native",
    "plugin": "nbdswap plugin",
    "qemu-nbd": "qemu-nbd none io_uring",
    "nbdkit-file": "nbdkit file",
    "local": "limit (no NBD)",
}
CONFIGS = list(BASES.items())
OURS_BASES = ("native", "plugin")
OURS = OURS_BASES               # choose: nbdswap's configurations chosen
QEMU, LIMIT = "qemu-nbd", "local"
ALL_JOBS = ["4k-randread-qd1", "4k-randread-qd32", "4k-randwrite-qd1",
            "4k-randwrite-qd32", "64k-seqwrite-qd8", "128k-seqread-qd4"]
JOBS = list(ALL_JOBS)
SWAP = "swap"
PAGE_KIB = 4


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def vm_timeout(rounds, runtime, workload_mib):
    """A generous time limit in seconds for the guest: fio jobs (with fio's
    own start-up under TCG), the swap workload per configuration (its
    time grows with its size), boot and set-up."""
    swap = 200 * workload_mib // 512 + 30
    per_round = len(CONFIGS) * (len(JOBS) * (runtime + 10) + swap)
    return int(1.5 * (rounds * per_round + 300))


def choose(only, workloads):
    """Set CONFIGS, OURS and JOBS from --only (guest configuration names,
    with levers) and --workloads (fio job names; "swap" alone: the swap
    workload only, which always runs)."""
    global CONFIGS, OURS, JOBS
    if only:
        names = [c.strip() for c in only.split(",") if c.strip()]
        for c in names:
            base, _, levers = c.partition("+")
            bad = [lv for lv in levers.split("+") if levers and not
                   re.fullmatch(r"c([1-9]|1[0-6])|sched=[a-z-]+|"
                                r"maxkb=[1-9][0-9]*|pc=[0-9]|inline|worker|"
                                r"iowq=[0-9]+|poll=[0-9]+|[sw]cpu=[0-9]|tcp",
                                lv)]
            if [lv for lv in levers.split("+") if base != "native" and
                    re.fullmatch(r"inline|worker|iowq=[0-9]+|poll=[0-9]+", lv)]:
                sys.exit("bench: --only: '%s': inline, worker, iowq=N and poll=N "
                         "are the native server's" % c)
            if bad or (base == LIMIT and levers and not all(
                    re.fullmatch(r"pc=[0-9]|wcpu=[0-9]", lv)
                    for lv in levers.split("+"))):
                sys.exit("bench: --only: '%s': levers are c1..c16, "
                         "sched=NAME, maxkb=N, pc=N, scpu=N, wcpu=N, tcp, "
                         "and "
                         "for native inline, worker, iowq=N and poll=N, "
                         "after a server's name; the limit takes "
                         "pc=N and wcpu=N only" % c)
            if base not in BASES:
                sys.exit("bench: --only: '%s' is not one of %s (levers "
                         "follow a server's name: native+c2+sched=mq-deadline"
                         "+maxkb=512+pc=0)" % (c, ", ".join(BASES)))
        CONFIGS = [(c, BASES[c.split("+")[0]]
                    + (" +" + c.partition("+")[2] if "+" in c else ""))
                   for c in names]
    OURS = tuple(c for c, _ in CONFIGS if c.split("+")[0] in OURS_BASES)
    if workloads:
        names = [j.strip() for j in workloads.split(",") if j.strip()]
        bad = [j for j in names if j not in ALL_JOBS + [SWAP]]
        if bad:
            sys.exit("bench: --workloads: %s not among %s"
                     % (", ".join(bad), ", ".join(ALL_JOBS + [SWAP])))
        JOBS = [j for j in ALL_JOBS if j in names]


def recorded(resdir):
    """The configurations and jobs an earlier run's guest recorded in its
    kbench-info, as --only and --workloads would give them."""
    only = workloads = None
    try:
        with open(os.path.join(resdir, "kbench-info")) as f:
            for line in f:
                key, _, val = line.partition(":")
                if key == "configs":
                    only = ",".join(val.split())
                elif key == "jobs":
                    workloads = ",".join(val.split()) or SWAP
    except OSError:
        pass
    return only, workloads


def run_vm(build_dir, rounds, runtime, workload_mib, quick, backing):
    """Run tests/vm/run kbench; return its run directory's results/."""
    logdir = os.environ.get("VM_LOGDIR",
                            os.path.join(build_dir, "tests", "vm", "logs"))
    limit = vm_timeout(rounds, runtime, workload_mib)
    env = dict(os.environ, top_builddir=build_dir, VM_LOGDIR=logdir,
               VM_KBENCH_ROUNDS=str(rounds), VM_KBENCH_RUNTIME=str(runtime),
               VM_WORKLOAD_MIB=str(workload_mib),
               VM_KBENCH_CONFIGS=" ".join(c for c, _ in CONFIGS),
               VM_KBENCH_JOBS=" ".join(JOBS) or "none",
               VM_KBENCH_BACKING=backing)
    if quick:
        # Half of a 256 MiB workload over a 128 MiB cgroup is a near
        # thing: the smoke test checks that swap moved, not how much.
        env.setdefault("VM_MIN_SWAP_MIB", str(workload_mib // 4))
    env.setdefault("VM_TIMEOUT", str(limit))
    env.setdefault("VM_TOTAL_TIMEOUT", str(int(env["VM_TIMEOUT"]) + 300))
    before = set(glob.glob(os.path.join(logdir, "*-kbench")))
    log("booting the tests/vm guest (scenario kbench, %d round(s), time "
        "limit %s s; waits for any other VM run to finish first)"
        % (rounds, env["VM_TIMEOUT"]))
    rc = subprocess.run([os.path.join(SRCDIR, "tests", "vm", "run"), "kbench"],
                        env=env, stdout=sys.stderr).returncode
    if rc in (77, 99):
        sys.exit("bench: tests/vm/run could not run the guest (exit %d)" % rc)
    runs = sorted(set(glob.glob(os.path.join(logdir, "*-kbench"))) - before)
    for name in ("kbench.tsv", "kbench-info"):
        if not runs or not os.path.exists(os.path.join(runs[-1], "results",
                                                        name)):
            failed = ""
            if runs:
                with open(os.path.join(runs[-1], "results", "checks")) as f:
                    failed = "".join(ln for ln in f if ln.startswith("FAIL"))
            sys.exit("bench: the guest left no %s (tests/vm/run exit %d)%s"
                     % (name, rc, ":\n" + failed if failed else ""))
    if rc != 0:
        log("some checks in the guest failed (listed in results.md)")
    return os.path.join(runs[-1], "results")


def fio_figures(path):
    """IOPS, MB/s, p50/p99 completion latency (µs) and I/Os of one fio
    JSON output."""
    with open(path) as f:
        text = f.read()
    job = json.loads(text[text.index("{"):])["jobs"][0]
    d = job["write"] if job["write"]["total_ios"] else job["read"]
    pct = d["clat_ns"].get("percentile", {})
    return {"iops": d["iops"], "mbps": d["bw_bytes"] / 1e6,
            "p50_us": pct.get("50.000000", 0) / 1000.0,
            "p99_us": pct.get("99.000000", 0) / 1000.0,
            "mean_us": d["lat_ns"]["mean"] / 1000.0,
            "ios": d["total_ios"]}


def clock_ticks(resdir):
    with open(os.path.join(resdir, "kbench-info")) as f:
        for line in f:
            if line.startswith("clock ticks per second:"):
                return int(line.split(":")[1])
    return 100


def load(resdir):
    """{(round, config, job): {figure: value}} from the guest's kbench.tsv
    and fio's JSON files, with the derived figures: server CPU per I/O,
    and for the swap job CPU per page moved, request sizes, queue."""
    hz = clock_ticks(resdir)
    raw = {}
    with open(os.path.join(resdir, "kbench.tsv")) as f:
        for line in f:
            rnd, cfg, job, key, val = line.rstrip("\n").split("\t")
            raw.setdefault((int(rnd), cfg, job), {})[key] = val
    # A round counts when every configuration finished its swap job: a
    # run stopped half-way through a round would otherwise compare the
    # configurations over different rounds.
    done = {rnd for (rnd, _, _) in raw
            if all("seconds" in raw.get((rnd, c, SWAP), {}) for c, _ in CONFIGS)}
    dropped = sorted({rnd for (rnd, _, _) in raw} - done)
    if dropped:
        log("incomplete round(s) left out: %s" % dropped)
    out = {}
    for k, v in raw.items():
        if k[0] not in done:
            continue
        if k[2] == SWAP:
            r = {key: float(x) for key, x in v.items() if x != ""}
            swap_derived(r, hz)
        else:
            r = fio_figures(os.path.join(resdir, "kbench", v["json"]))
            if v.get("guest_busy_pct", "") != "":
                r["guest_busy_pct"] = float(v["guest_busy_pct"])
            if v.get("cpu_ticks", "") != "":
                r["cpu_us_per_io"] = (float(v["cpu_ticks"]) * 1e6 / hz
                                      / max(r["ios"], 1))
            # Context switches per I/O: the guest's, every task's, and
            # the server's threads' (a sleep and a wake-up each).
            for key, col in (("guest_ctxsw", "guest_cs"),
                             ("srv_ctxsw", "srv_cs")):
                if v.get(key, "") != "":
                    r[col] = float(v[key]) / max(r["ios"], 1)
            # nbdswap's own sums (kbench_server_sums): the mean time of a
            # request in its request engine and, native, from its header
            # read to its reply sent.
            if float(v.get("srv_requests") or 0) > 0:
                r["engine_us"] = (float(v["srv_engine_ns"]) / 1000
                                  / float(v["srv_requests"]))
            if float(v.get("srv_turns") or 0) > 0:
                r["turn_us"] = (float(v["srv_turn_ns"]) / 1000
                                / float(v["srv_turns"]))
                r["outside_us"] = r["mean_us"] - r["turn_us"]
        out[k] = r
    return out


def swap_derived(r, hz):
    """Figures of one swap job that follow from the raw ones."""
    pages = (r.get("pswpin_mib", 0) + r.get("pswpout_mib", 0)) * 1024 / PAGE_KIB
    if "cpu_ticks" in r:
        r["cpu_s"] = r["cpu_ticks"] / hz
        r["cpu_us_per_page"] = r["cpu_s"] * 1e6 / max(pages, 1)
    for key, col in (("guest_ctxsw", "guest_cs"), ("srv_ctxsw", "srv_cs")):
        if key in r:
            r[col] = r[key] / max(pages, 1)
    dev = "nbd0" if "nbd0_reads" in r else "vda"
    for op in ("read", "write"):
        n = r.get("%s_%ss" % (dev, op), 0)
        if n:
            r[op + "_kib"] = r["%s_%s_sectors" % (dev, op)] / 2 / n
    if r.get("seconds"):
        r["queue"] = r.get(dev + "_queue_ms", 0) / 1000 / r["seconds"]


def peer_of(cfg, other, fio=False):
    """The configuration a figure of cfg is compared with: other (the
    limit or qemu-nbd) under the same conditions, or None when the run
    has no such one.  The conditions are the levers of the set-up rather
    than of the server or of how it is attached: the page-cluster
    ("native+pc=5" -> "local+pc=5"; a ratio across page-clusters would
    credit the server with the readahead; not for the fio jobs, which do
    not swap), the workload's CPU (wcpu=N) and, against qemu-nbd, the
    server's CPU (scpu=N) and the transport (tcp).  The other levers (cN, sched, maxkb, inline...)
    are what is measured: the peer runs without them, as its users would
    run it."""
    keep = ["wcpu"] + ([] if fio else ["pc"]) + (["scpu", "tcp"]
                                                   if other == QEMU else [])
    want = {lv for lv in cfg.split("+")[1:] if lv.split("=")[0] in keep}
    for c, _ in CONFIGS:
        if c.split("+")[0] != other:
            continue
        # A fio job's peer may carry a page-cluster, which fio does not
        # see; nothing else.
        levers = {lv for lv in c.split("+")[1:]
                  if not (fio and lv.startswith("pc="))}
        if levers == want and (not fio or c.split("+")[1:] == []
                               or not re.fullmatch(r"[a-z-]+\+pc=[0-9]", c)):
            return c
    return None if want else other


def round_ratios(data):
    """Per round, the swap job's time through each server divided by the
    local swap file's and by qemu-nbd's in the same round."""
    for (rnd, cfg, job), r in data.items():
        if job != SWAP or "seconds" not in r:
            continue
        for other, key in ((LIMIT, "x_local"), (QEMU, "x_qemu")):
            o = data.get((rnd, peer_of(cfg, other), SWAP), {}).get("seconds")
            if o:
                r[key] = r["seconds"] / o


COLS = ["iops", "mbps", "p50_us", "p99_us", "cpu_us_per_io", "guest_busy_pct",
        "seconds",
        "x_local", "x_qemu", "verified", "pswpout_mib", "pswpin_mib",
        "majflt", "cpu_s", "cpu_us_per_page", "read_kib", "write_kib",
        "queue", "mean_us", "engine_us", "turn_us", "outside_us",
        "guest_cs", "srv_cs"]


def medians(data):
    """{(config, job): {figure: median over rounds}}."""
    med = {}
    for cfg, _ in CONFIGS:
        for job in JOBS + [SWAP]:
            rs = [r for (_, c, j), r in data.items() if c == cfg and j == job]
            m = {}
            for k in COLS:
                vals = [r[k] for r in rs if k in r]
                if vals:
                    # A single round that failed to verify is a fact.
                    m[k] = min(vals) if k == "verified" else \
                        statistics.median(vals)
            if m:
                med[(cfg, job)] = m
    return med


def fmt(v, digits=1):
    return "–" if v is None else "%.*f" % (digits, v)


def fio_table(med):
    heads = ["job", "config", "IOPS", "× limit", "MB/s", "p50 µs", "p99 µs",
             "server CPU µs/IO", "× qemu-nbd CPU", "guest CPU busy %",
             "guest switches/IO", "server switches/IO"]
    md = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for job in JOBS:
        for cfg, label in CONFIGS:
            m = med.get((cfg, job))
            if not m:
                continue
            lim = med.get((peer_of(cfg, LIMIT, True), job), {}).get("iops")
            qcpu = med.get((peer_of(cfg, QEMU, True), job),
                           {}).get("cpu_us_per_io")
            cpu = m.get("cpu_us_per_io")
            md.append("| " + " | ".join([
                job, label, fmt(m["iops"], 0),
                fmt(m["iops"] / lim if lim else None, 2), fmt(m["mbps"]),
                fmt(m["p50_us"]), fmt(m["p99_us"]), fmt(cpu, 2),
                fmt(cpu / qcpu if cpu is not None and qcpu else None, 2),
                fmt(m.get("guest_busy_pct"), 0), fmt(m.get("guest_cs"), 2),
                fmt(m.get("srv_cs"), 2)])
                + " |")
    return "\n".join(md) + "\n"


# What the limit swaps on: "local swap file", or with --backing device
# the second volume (main sets it from the guest's kbench-info).
LIMIT_SWAP = "local swap file"


def swap_table(med):
    heads = ["config", "seconds", "× " + LIMIT_SWAP, "× qemu-nbd",
             "verified", "pswpout MiB", "pswpin MiB", "major faults",
             "server CPU s", "server CPU µs/page", "read KiB/req",
             "write KiB/req", "avg queue", "guest CPU busy %",
             "guest switches/page", "server switches/page"]
    md = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for cfg, label in CONFIGS:
        m = med.get((cfg, SWAP))
        if not m:
            continue
        g = m.get
        md.append("| " + " | ".join([
            label, fmt(g("seconds")), fmt(g("x_local"), 2),
            fmt(g("x_qemu"), 2),
            "yes" if g("verified") == 1 else "NO",
            fmt(g("pswpout_mib"), 0), fmt(g("pswpin_mib"), 0),
            fmt(g("majflt"), 0), fmt(g("cpu_s"), 2),
            fmt(g("cpu_us_per_page"), 1), fmt(g("read_kib")),
            fmt(g("write_kib")), fmt(g("queue"), 2),
            fmt(g("guest_busy_pct"), 0), fmt(g("guest_cs"), 2),
            fmt(g("srv_cs"), 2)]) + " |")
    return ("Request sizes and queue: /dev/nbd0's (the %s: "
            "the virtio disk's) /sys/block stat over the swap cycle; guest "
            % LIMIT_SWAP +
            "CPU busy: the share of both vCPUs' time not idle (/proc/stat); "
            "switches: context switches, the guest's (/proc/stat ctxt) and "
            "the server's threads' (their status files), per 4 KiB page "
            "moved; "
            "ratios are medians of each round's ratio.\n\n" + "\n".join(md) + "\n")


def split_table(med):
    """Where a depth-1 request's time goes: fio's mean latency on
    /dev/nbd0, the part inside the server (header read to reply sent),
    of it the request engine's (file I/O through io_uring), and what is
    left outside the server (the kernel client, the socket, the
    wake-ups on both sides); beside the limit's mean (the file with no
    NBD)."""
    heads = ["job", "config", "fio mean µs", "in the server µs",
             "of it the engine µs", "outside the server µs",
             "limit's mean µs"]
    md = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for job in [j for j in JOBS if j.endswith("-qd1")]:
        for cfg, label in CONFIGS:
            m = med.get((cfg, job), {})
            if "engine_us" not in m:
                continue
            lim = med.get((peer_of(cfg, LIMIT, True), job), {}).get("mean_us")
            md.append("| " + " | ".join([
                job, label, fmt(m.get("mean_us"), 0),
                fmt(m.get("turn_us"), 0), fmt(m["engine_us"], 0),
                fmt(m.get("outside_us"), 0), fmt(lim, 0)]) + " |")
    if len(md) == 2:
        return "No depth-1 job ran through nbdswap.\n"
    return ("nbdswap's counters (include/stats.h), read on SIGUSR1 before "
            "and after each job, as means per request; each column a median "
            "over the rounds (outside: per round, fio's mean less the "
            "server's). The server's part starts when it parses the "
            "header, so its own wake-up for the socket counts as outside; "
            "the plugin's server time is nbdkit's, which it cannot see "
            "(engine only).\n\n" + "\n".join(md) + "\n")


def targets(med):
    """The targets of the issue, per nbdswap server, MET or NOT MET."""
    out = []

    def get(c, j, k):
        return med.get((c, j), {}).get(k)

    def line(ok, text):
        out.append("- **%s** — %s" % ("MET" if ok else "NOT MET", text))

    for cfg in OURS:
        who = dict(CONFIGS)[cfg]
        for key, bound, what in (("x_local", 1.3, "the " + LIMIT_SWAP),
                                 ("x_qemu", 0.8, "qemu-nbd cache=none")):
            x = get(cfg, SWAP, key)
            if x is not None:
                line(x <= bound, "swap workload: %s %.1f s = %.2f× %s "
                     "(median of the rounds' ratios); target ≤ %.2f×"
                     % (who, get(cfg, SWAP, "seconds"), x, what, bound))
        for job, floor in (("4k-randread-qd32", 0.75),
                           ("4k-randwrite-qd32", 0.6)):
            us, lim = get(cfg, job, "iops"), get(peer_of(cfg, LIMIT, True),
                                                 job, "iops")
            if us and lim:
                line(us >= floor * lim, "%s: %s %.0f IOPS = %.2f of the "
                     "limit (%.0f); target ≥ %.2f"
                     % (job, who, us, us / lim, lim, floor))
        for job in ("4k-randread-qd1", "4k-randwrite-qd1"):
            us, lim = get(cfg, job, "p50_us"), get(peer_of(cfg, LIMIT, True),
                                                   job, "p50_us")
            if us and lim:
                line(us <= 1.5 * lim, "%s p50: %s %.1f µs = %.2f× the "
                     "limit's (%.1f µs); target ≤ 1.50×"
                     % (job, who, us, us / lim, lim))
        for job in [j for j in JOBS if j.startswith("4k-")]:
            us, q = get(cfg, job, "cpu_us_per_io"), get(
                peer_of(cfg, QEMU, True), job, "cpu_us_per_io")
            if us is not None and q:
                line(us <= 0.7 * q, "%s server CPU: %s %.2f µs/IO = %.2f× "
                     "qemu-nbd's (%.2f); target ≤ 0.70×"
                     % (job, who, us, us / q, q))
        us, q = get(cfg, SWAP, "cpu_us_per_page"), get(peer_of(cfg, QEMU),
                                                       SWAP, "cpu_us_per_page")
        if us is not None and q:
            line(us <= 0.7 * q, "swap workload server CPU: %s %.1f µs per "
                 "page moved = %.2f× qemu-nbd's (%.1f); target ≤ 0.70×"
                 % (who, us, us / q, q))
    return "\n".join(out) + "\n"


def write_tsv(data, med, outdir):
    """results.tsv: the medians; raw.tsv: every round."""
    with open(os.path.join(outdir, "results.tsv"), "w") as f:
        f.write("\t".join(["job", "config"] + COLS) + "\n")
        for (cfg, job), m in sorted(med.items(), key=lambda kv: (
                (JOBS + [SWAP]).index(kv[0][1]),
                [c for c, _ in CONFIGS].index(kv[0][0]))):
            f.write("\t".join([job, dict(CONFIGS)[cfg]]
                              + ["%.3f" % m[k] if k in m else "" for k in COLS])
                    + "\n")
    with open(os.path.join(outdir, "raw.tsv"), "w") as f:
        f.write("\t".join(["round", "job", "config"] + COLS) + "\n")
        for (rnd, cfg, job), r in sorted(data.items()):
            f.write("\t".join([str(rnd), job, dict(CONFIGS)[cfg]]
                              + ["%.3f" % r[k] if k in r else "" for k in COLS])
                    + "\n")


def checks_summary(resdir):
    """The guest's failed checks, or that all passed."""
    try:
        with open(os.path.join(resdir, "checks")) as f:
            lines = f.read().splitlines()
    except OSError:
        return "No checks file: the guest did not finish.\n"
    bad = [ln for ln in lines if ln.startswith("FAIL")]
    if not bad:
        return ("All %d checks in the guest passed (every word of every "
                "swap workload verified).\n" % len(lines))
    return ("%d of %d checks in the guest FAILED:\n\n" % (len(bad), len(lines))
            + "\n".join("    " + ln for ln in bad) + "\n")


def pipe_rtt(prefix):
    """Microseconds per round trip of perf's pipe benchmark (two context
    switches and a wake-up each way), run with prefix; "?" without perf."""
    r = subprocess.run(prefix + "perf bench sched pipe -l 100000", shell=True,
                       capture_output=True, text=True)
    for line in r.stdout.splitlines():
        if "usecs/op" in line:
            return line.split()[0]
    return "?"


def host_info():
    def sh(cmd):
        return subprocess.run(cmd, shell=True, capture_output=True,
                              text=True).stdout.strip()
    return "\n".join([
        "- host: %s cpus (%s), %s, kernel %s" % (
            os.cpu_count(),
            sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip(),
            sh("grep MemTotal /proc/meminfo | tr -s ' '"), sh("uname -r")),
        "- host's context switches: pipe round trip %s us, %s us on one "
        "CPU (perf bench sched pipe; the guest's below)" % (
            pipe_rtt(""), pipe_rtt("taskset -c 0 ")),
        "- guest: tests/vm (qemu TCG, %s)" % sh(
            "qemu-system-x86_64 --version | head -1"),
    ]) + "\n"


def traced(resdir):
    """The report's section on the swap runs that VM_KBENCH_PROFILE=1
    profiled and traced (bench/ktrace.py), or nothing."""
    import ktrace
    files = sorted(glob.glob(os.path.join(resdir, "kbench", "trace-*.txt")))
    if not files:
        return []
    out = ["", "## Where the swap runs' time goes (traced, VM_KBENCH_PROFILE=1)",
           "", "Per swap run: each block device's requests and how busy it "
           "was; for /dev/nbd0 each request's time split into the client's "
           "send, the wait for the reply (socket both ways and the whole "
           "server) and the client's receive and completion; then the "
           "profile's busiest tasks (share of all samples, both vCPUs, idle "
           "included) and the tasks that switched out most (share and "
           "count of all context switches; swapper is idle, leaving a CPU "
           "to a woken task).", "", "```"]
    for path in files:
        name = os.path.basename(path)[len("trace-"):-len(".txt")]
        out.append("== round " + name.replace("-", ": ", 1))
        out += ktrace.describe(ktrace.summarise(path))
        prof = os.path.join(resdir, "kbench", "profile-%s.txt" % name)
        try:
            with open(prof) as f:
                text = f.read()
            lines = text.split("== by dso")[0].splitlines()[1:9]
            out += ["  profile: " + " ".join(ln.split()) for ln in lines]
            # Every context switch, by the task switched out: share,
            # count, task.
            sw = text.split("== context switches by task")
            if len(sw) > 1:
                out += ["  switches: " + " ".join(ln.split())
                        for ln in sw[1].splitlines()[1:11]]
        except OSError:
            pass
    out.append("```")
    return out


def main(args):
    rounds = args.rounds or (1 if args.quick else 3)
    runtime = args.runtime or (3 if args.quick else 5)
    workload_mib = int(os.environ.get("VM_WORKLOAD_MIB",
                                      256 if args.quick else 512))
    build_dir = os.path.abspath(args.build_dir)
    for p in ("plugin/.libs/nbdkit-swapfile-plugin.so", "server/nbdswap"):
        if not os.path.exists(os.path.join(build_dir, p)):
            sys.exit("bench: %s not found: build first (./build.sh build)"
                     % os.path.join(build_dir, p))
    stamp = datetime.datetime.utcnow().strftime("%Y-%m-%d-%H%M")
    if args.from_run:
        # The run's own time, from its log directory (tests/vm/run's
        # YYYYMMDDTHHMMSSZ-kbench), not the report's.
        m = re.search(r"(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)\d\dZ-kbench",
                      os.path.abspath(args.from_run))
        if m:
            stamp = "%s-%s-%s-%s%s" % m.groups()
    outdir = args.out or os.path.join(
        HERE, "results", stamp + "-kernel" + ("-quick" if args.quick else ""))
    if args.from_run:
        choose(*recorded(args.from_run))
    else:
        choose(args.only, args.workloads)
    t0 = time.time()
    resdir = args.from_run or run_vm(build_dir, rounds, runtime, workload_mib,
                                        args.quick, args.backing)
    elapsed = time.time() - t0
    os.makedirs(outdir, exist_ok=True)
    data = load(resdir)
    round_ratios(data)
    med = medians(data)
    write_tsv(data, med, outdir)
    with open(os.path.join(resdir, "kbench-info")) as f:
        guest = "".join("- " + ln for ln in f)
    global LIMIT_SWAP
    if "backing: block device" in guest:
        served = ("block device (a dm-linear volume of the guest's disk)",
                  "block device", "a second such volume")
        LIMIT_SWAP = "limit's swap volume"
    else:
        served = ("backing file made by `nbdswap create`", "backing file",
                  "a local swap file")
    report = [
        "# nbdswap through the kernel's nbd client, %s" % stamp, "",
        "`bench/run --kernel`: in the tests/vm guest, every server on the same "
        "%s, attached with `nbd-client` "
        "(1 connection, unix socket); fio (io_uring, direct=1) on /dev/nbd0, "
        "then the verifying swap workload in its memory cgroup; the limit is "
        "the same without NBD (fio on the %s, the "
        "workload on %s). Configurations alternate within " % served +
        "each round; medians over the %d complete round(s) (the guest was "
        "asked for the rounds under Machine). %s Guest "
        "results: %s." % (len({k[0] for k in data}),
                          "Reported afterwards from the run's results."
                          if args.from_run else "%.0f s in all." % elapsed,
                          resdir), "",
        "## Machine", "", host_info() + guest,
        "## Checks", "", checks_summary(resdir),
        "## Targets", "", targets(med),
        "## Swap workload", "", swap_table(med),
        "## fio on /dev/nbd0", "", fio_table(med),
        "## Where a depth-1 request's time goes", "", split_table(med)]
    report += traced(resdir)
    with open(os.path.join(outdir, "results.md"), "w") as f:
        f.write("\n".join(report))
    print("\n".join(report))
    log("results in %s" % outdir)
