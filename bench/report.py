#!/usr/bin/env python3
"""Helpers for bench/compare.sh: python3 standard library only.

Subcommands:
  preload N BYTES OUT       write N `SET key:%012d <BYTES x>` commands as RESP to OUT
                            (the keys redis-benchmark -r N draws from), for redis-cli --pipe
  restart PORT KEYS LOG -- CMD...
                            spawn CMD (stdout and stderr to LOG) and time from spawn until
                            DBSIZE on PORT answers KEYS; prints "PID SECONDS"; leaves the
                            server running (compare.sh stops it)
  rss PID                   VmRSS of PID in KiB, from /proc/PID/status
  report OUT [--doc FILE] [--chart-data FILE]
                            aggregate OUT/*.csv and OUT/meta.env into OUT/report.md; with
                            --doc, put it between the markers in FILE's section
                            "walkvd against Redis" (appending the section if missing)
"""

import csv
import os
import socket
import statistics
import subprocess
import sys
import time

SECTION = "## walkvd against Redis"
BEGIN = "<!-- bench/compare.sh: begin (generated; edit bench/report.py instead) -->"
END = "<!-- bench/compare.sh: end -->"


def preload(n, value_bytes, out):
    value = b"x" * value_bytes
    head = b"*3\r\n$3\r\nSET\r\n$16\r\n"
    tail = b"\r\n$%d\r\n" % value_bytes + value + b"\r\n"
    with open(out, "wb") as f:
        chunk = []
        for i in range(n):
            chunk.append(head + b"key:%012d" % i + tail)
            if len(chunk) == 65536:
                f.write(b"".join(chunk))
                chunk = []
        f.write(b"".join(chunk))


def dbsize_once(sock):
    """Sends DBSIZE, returns the integer or None (an error such as -LOADING)."""
    sock.sendall(b"*1\r\n$6\r\nDBSIZE\r\n")
    buf = b""
    while not buf.endswith(b"\r\n"):
        part = sock.recv(4096)
        if not part:
            raise ConnectionError("closed")
        buf += part
    if buf.startswith(b":"):
        return int(buf[1:-2])
    return None


def restart(port, keys, log, cmd):
    deadline = 120.0
    with open(log, "ab") as logf:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=logf, stderr=logf, stdin=subprocess.DEVNULL)
    sock = None
    while True:
        elapsed = time.perf_counter() - t0
        if elapsed > deadline or proc.poll() is not None:
            print(f"{proc.pid} FAILED")
            sys.exit(1)
        try:
            if sock is None:
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if dbsize_once(sock) == keys:
                elapsed = time.perf_counter() - t0
                break
        except OSError:
            if sock is not None:
                sock.close()
            sock = None
        time.sleep(0.0005)
    sock.close()
    print(f"{proc.pid} {elapsed:.4f}")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# ---------------------------------------------------------------- report


def read_csv(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


def read_meta(path):
    meta = {}
    with open(path) as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                meta[k] = v
    return meta


def med(values):
    values = [float(v) for v in values]
    return statistics.median(values) if values else float("nan")


def fmt_int(x):
    return f"{x:,.0f}"


def fmt_ms(x):
    return f"{x:.3f}"


def cell_key(r):
    return (r["fsync"], r["test"], int(r["clients"]), int(r["pipeline"]))


def aggregate_cells(rows):
    """{cell: {server: {rps, p50, p99, reps}}, and per-rep paired ratios}."""
    cells = {}
    for r in rows:
        cells.setdefault(cell_key(r), {}).setdefault(r["server"], []).append(r)
    out = {}
    for key, by_server in cells.items():
        agg = {}
        for server, rs in by_server.items():
            agg[server] = {
                "rps": med(r["rps"] for r in rs),
                "p50": med(r["p50"] for r in rs),
                "p99": med(r["p99"] for r in rs),
                "n": rs[0]["n"],
                "reps": len(rs),
            }
        w = {r["rep"]: float(r["rps"]) for r in by_server.get("walkv", [])}
        d = {r["rep"]: float(r["rps"]) for r in by_server.get("redis", [])}
        paired = [w[k] / d[k] for k in w if k in d and d[k] > 0]
        agg["paired"] = (min(paired), max(paired)) if paired else None
        out[key] = agg
    return out


CELL_ORDER = {"always": 0, "everysec": 1, "no": 2}


def cells_table(cells):
    lines = [
        "| fsync | test | clients | pipeline | walkv req/s | Redis req/s | **ratio** (per-round range) "
        "| walkv p50 ms | Redis p50 ms | walkv p99 ms | Redis p99 ms | p99 ratio |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    keys = sorted(cells, key=lambda k: (CELL_ORDER.get(k[0], 9), k[1] != "SET", k[3], k[2]))
    for key in keys:
        a = cells[key]
        w, d = a.get("walkv"), a.get("redis")
        if not w or not d:
            continue
        ratio = w["rps"] / d["rps"] if d["rps"] else float("nan")
        rng = f" ({a['paired'][0]:.2f}–{a['paired'][1]:.2f})" if a["paired"] else ""
        p99r = w["p99"] / d["p99"] if d["p99"] else float("nan")
        lines.append(
            f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | {fmt_int(w['rps'])} | {fmt_int(d['rps'])} "
            f"| **{ratio:.2f}**{rng} | {fmt_ms(w['p50'])} | {fmt_ms(d['p50'])} | {fmt_ms(w['p99'])} "
            f"| {fmt_ms(d['p99'])} | {p99r:.2f} |"
        )
    return lines


def restart_summary(rows):
    out = {}
    for r in rows:
        out.setdefault((r["case"], r["server"]), []).append(r)
    return {k: (med(r["seconds"] for r in v), med(r["rss_kib"] for r in v), len(v), v[0].get("files", "")) for k, v in out.items()}


def snapshot_summary(rows):
    out = {}
    for r in rows:
        out.setdefault((r["server"], r["phase"]), []).append(r)
    return {
        k: {
            "rps": med(r["rps"] for r in v),
            "p50": med(r["p50"] for r in v),
            "p99": med(r["p99"] for r in v),
            "max": med(r["max"] for r in v),
            "snap_s": med(r["snap_seconds"] for r in v),
            "run_s": med(r["run_seconds"] for r in v),
            "reps": len(v),
            "p99s": [float(r["p99"]) for r in v],
        }
        for k, v in out.items()
    }


def verdict(ok):
    if ok is None:
        return "n/a"
    return "**pass**" if ok else "**FAIL**"


def goals(cells, restarts, mem, snaps, keys_expected):
    """[(goal, measured, verdict)]"""
    g = []

    def ratio(fsync, test, clients, pipeline):
        a = cells.get((fsync, test, clients, pipeline))
        if not a or "walkv" not in a or "redis" not in a:
            return None, None
        return a["walkv"]["rps"] / a["redis"]["rps"], a

    r, a = ratio("always", "SET", 50, 1)
    if r is not None:
        p99w, p99r = a["walkv"]["p99"], a["redis"]["p99"]
        g.append(("SET, fsync always, 50 clients, no pipelining: ≥ 2.0× Redis", f"{r:.2f}×", verdict(r >= 2.0)))
        g.append(("… and its p99 no higher than Redis's", f"{p99w:.3f} ms vs {p99r:.3f} ms", verdict(p99w <= p99r)))
    r, a = ratio("always", "SET", 50, 16)
    if r is not None:
        g.append(("SET, fsync always, 50 clients, pipeline 16: ≥ 1.5× Redis", f"{r:.2f}×", verdict(r >= 1.5)))
    for fsync in ("everysec", "no"):
        for test in ("SET", "GET"):
            for p in (1, 16):
                r, _ = ratio(fsync, test, 50, p)
                if r is not None:
                    g.append((f"{test}, fsync {fsync}, 50 clients, pipeline {p}: ≥ 1.0× Redis", f"{r:.2f}×", verdict(r >= 1.0)))
    full = keys_expected == 1_000_000
    lo = restarts.get(("log", "walkv"))
    if lo:
        g.append((f"restart of {keys_expected:,} keys from the log alone: ≤ 0.4 s", f"{lo[0]:.3f} s", verdict(lo[0] <= 0.4) if full else "n/a (quick)"))
    sn = restarts.get(("snapshot", "walkv"))
    if sn:
        g.append((f"restart of {keys_expected:,} keys with a snapshot: ≤ 0.3 s", f"{sn[0]:.3f} s", verdict(sn[0] <= 0.3) if full else "n/a (quick)"))
    if "walkv" in mem and "redis" in mem:
        r = mem["walkv"] / mem["redis"]
        g.append((f"RSS with {keys_expected:,} keys of 100 bytes: ≤ 0.8× Redis", f"{r:.2f}× ({mem['walkv'] / 1024:.0f} MiB vs {mem['redis'] / 1024:.0f} MiB)", verdict(r <= 0.8)))
    b, s = snaps.get(("walkv", "base")), snaps.get(("walkv", "snap"))
    if b and s:
        r = s["p99"] / b["p99"]
        g.append(("p99 of SET during a snapshot: ≤ 2× its p99 without one", f"{r:.2f}× ({s['p99']:.3f} ms vs {b['p99']:.3f} ms)", verdict(r <= 2.0)))
    return g


def chart_data(cells, path):
    rows = sorted(k for k in cells if k[0] == "always" and k[1] == "SET" and k[3] == 1)
    with open(path, "w") as f:
        f.write("# clients walkv_rps redis_rps\n")
        for k in rows:
            a = cells[k]
            if "walkv" in a and "redis" in a:
                f.write(f"{k[2]} {a['walkv']['rps']:.0f} {a['redis']['rps']:.0f}\n")


def build_report(out_dir, chart_rel):
    meta = read_meta(os.path.join(out_dir, "meta.env"))
    cells = aggregate_cells(read_csv(os.path.join(out_dir, "cells.csv")))
    restarts = restart_summary(read_csv(os.path.join(out_dir, "restart.csv")))
    mem = {r["server"]: float(r["rss_kib"]) for r in read_csv(os.path.join(out_dir, "memory.csv"))}
    snaps = snapshot_summary(read_csv(os.path.join(out_dir, "snapshot.csv")))
    keys = int(meta.get("KEYS", "0"))
    chart_data(cells, os.path.join(out_dir, "chart.dat"))

    L = []
    L.append(f"Generated by `bench/compare.sh{' --quick' if meta.get('QUICK') == '1' else ''}` "
             f"({meta.get('STARTED', '?')} – {meta.get('ENDED', '?')}, {meta.get('RUNTIME', '?')}).")
    L.append("")
    L.append("### Setup")
    L.append("")
    L.append("| | |")
    L.append("|---|---|")
    L.append(f"| code | `git rev-parse --short HEAD` = `{meta.get('COMMIT', '?')}`{meta.get('DIRTY', '')} |")
    L.append(f"| machine | `nproc` = {meta.get('NPROC', '?')}, {meta.get('CPU', '?')}, {meta.get('MEM', '?')} RAM, {meta.get('KERNEL', '?')} |")
    L.append(f"| disk | data directories in `{meta.get('DATA', '?')}`: {meta.get('DISK', '?')} |")
    L.append(f"| load average (`uptime`) | start: {meta.get('LOAD_START', '?')}; end: {meta.get('LOAD_END', '?')} |")
    L.append(f"| Redis | {meta.get('REDIS_VERSION', '?')}; {meta.get('BENCH_VERSION', '?')} |")
    L.append(f"| walkvd | `{meta.get('WALKVD', '?')}` (release build) |")
    L.append(f"| repetitions | {meta.get('REPS', '?')} per cell, walkv and Redis alternating (A, B, A, B, …); medians; the ratio is median/median, the range in brackets the lowest and highest ratio of one round's pair |")
    L.append("")
    L.append("### Throughput and latency: `redis-benchmark`, 100-byte values, random keys over the preloaded "
             f"{keys:,}-key space")
    L.append("")
    L.extend(cells_table(cells))
    L.append("")
    L.append(f"![SET under fsync always, no pipelining: requests/s by number of clients]({chart_rel})")
    L.append("")
    L.append("### Restart and memory")
    L.append("")
    L.append("| server | what is on disk | start to first `DBSIZE` = " f"{keys:,} (median) | RSS after the restart |")
    L.append("|---|---|---:|---:|")
    names = {
        ("log", "walkv"): "the log only (no snapshot)",
        ("snapshot", "walkv"): "snapshot (`SAVE`) + a short log",
        ("log", "redis"): "command AOF only (`aof-use-rdb-preamble no`)",
        ("snapshot", "redis"): "RDB preamble (`BGREWRITEAOF`) + a short AOF",
    }
    for key in [("log", "walkv"), ("log", "redis"), ("snapshot", "walkv"), ("snapshot", "redis")]:
        if key in restarts:
            s, rss, n, files = restarts[key]
            L.append(f"| {key[1]} | {names[key]}{(' — ' + files) if files else ''} | {s:.3f} s ({n} runs) | {rss / 1024:.0f} MiB |")
    L.append("")
    if mem:
        L.append(f"RSS right after loading the {keys:,} keys over one connection (`redis-cli --pipe`): "
                 + ", ".join(f"{s} {v / 1024:.0f} MiB" for s, v in sorted(mem.items(), reverse=True)) + ".")
        L.append("")
    L.append("### SET latency during a snapshot (fsync always, 50 clients)")
    L.append("")
    L.append("| server | run | req/s | p50 ms | p99 ms | max ms | snapshot took | run took |")
    L.append("|---|---|---:|---:|---:|---:|---:|---:|")
    for server in ("walkv", "redis"):
        for phase, label in (("base", "without a snapshot"), ("snap", "BGSAVE" if server == "walkv" else "BGREWRITEAOF")):
            s = snaps.get((server, phase))
            if s:
                took = f"{s['snap_s']:.2f} s" if phase == "snap" else ""
                L.append(f"| {server} | {label} | {fmt_int(s['rps'])} | {fmt_ms(s['p50'])} | {fmt_ms(s['p99'])} "
                         f"| {fmt_ms(s['max'])} | {took} | {s['run_s']:.2f} s |")
    L.append("")
    L.append("### The goals")
    L.append("")
    L.append("| goal | measured | verdict |")
    L.append("|---|---|---|")
    for goal, measured, v in goals(cells, restarts, mem, snaps, keys):
        L.append(f"| {goal} | {measured} | {v} |")
    L.append("")
    L.append("### The exact commands")
    L.append("")
    L.append("```sh")
    for k in ("CMD_WALKV", "CMD_REDIS", "CMD_PRELOAD", "CMD_BENCH", "CMD_SNAPSHOT"):
        if k in meta:
            L.append(meta[k])
    L.append("```")
    return "\n".join(L) + "\n"


def put_in_doc(doc, body):
    with open(doc) as f:
        text = f.read()
    block = f"{BEGIN}\n{body}{END}\n"
    if BEGIN in text and END in text:
        a = text.index(BEGIN)
        b = text.index(END) + len(END)
        if text[b:b + 1] == "\n":
            b += 1
        text = text[:a] + block + text[b:]
    else:
        if not text.endswith("\n"):
            text += "\n"
        text += f"\n{SECTION}\n\n{block}"
    with open(doc, "w") as f:
        f.write(text)


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "preload":
        preload(int(argv[2]), int(argv[3]), argv[4])
    elif cmd == "restart":
        sep = argv.index("--")
        restart(int(argv[2]), int(argv[3]), argv[4], argv[sep + 1:])
    elif cmd == "rss":
        print(rss_kib(int(argv[2])))
    elif cmd == "report":
        out_dir = argv[2]
        doc = argv[argv.index("--doc") + 1] if "--doc" in argv else None
        chart_rel = argv[argv.index("--chart-rel") + 1] if "--chart-rel" in argv else "chart.png"
        body = build_report(out_dir, chart_rel)
        with open(os.path.join(out_dir, "report.md"), "w") as f:
            f.write(body)
        if doc:
            put_in_doc(doc, body)
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv)
