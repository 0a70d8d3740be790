#!/usr/bin/env python3
"""porter's benchmark (run it with bench/run, which builds the release binaries first).

Starts, on loopback and on this machine only, a fresh redis-server per run, a release build of
porter, and porter-reference (bench/reference: a server doing only the irreducible work, on the
same HTTP stack and allocator). porter-load drives each one in turn over the same connections
for the same time; the load generator shares the cores with the server and Redis, for porter
and the reference alike. Every figure is the median of --runs runs.

Prints one Markdown report (scenarios, ratios, latency at 80 % of peak, memory over a long run,
the machine) and writes it to --out. Only processes started here are stopped, by their pid.
"""

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from procs import Redis, cpu_seconds, free_port, ready, stop, wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, "target", "release")
PORTER = os.path.join(RELEASE, "porter")
LOAD = os.path.join(RELEASE, "porter-load")
REFERENCE = os.path.join(RELEASE, "porter-reference")
META_SECRET = "bench-meta-secret"
TWILIO_TOKEN = "bench-twilio-token"

META = ["--provider", "meta", "--secret", META_SECRET, "--body-size", "1500"]
TWILIO = ["--provider", "twilio", "--secret", TWILIO_TOKEN, "--body-size", "600"]

# name, store ("memory" | "redis"), redis-server arguments, porter-load arguments
SCENARIOS = [
    ("memory store (events to stdout)", "memory", [], META),
    ("local store (fdatasync per batch)", "local", [], META),
    ("redis", "redis", ["--appendonly", "no"], META),
    ("redis, appendfsync everysec", "redis", ["--appendonly", "yes", "--appendfsync", "everysec"], META),
    ("redis, 10 % duplicates", "redis", ["--appendonly", "no"], META + ["--duplicates", "0.1"]),
    ("redis, twilio form", "redis", ["--appendonly", "no"], TWILIO),
    ("redis, 10-message batch", "redis", ["--appendonly", "no"], ["--provider", "meta", "--secret", META_SECRET, "--batch", "10", "--body-size", "6000"]),
]


def porter_config(port, store, work=None):
    if store == "local":
        # A fresh directory per run, on the machine's disk (not tmpfs): what a deployment gets.
        store_toml = f'[store]\nkind = "local"\npath = "{tempfile.mkdtemp(dir=work)}"\n'
    elif store == "memory":
        # Events go out as JSON lines (to /dev/null here), as in development: the memory store
        # then keeps only dedupe keys, where keeping every event would measure page faults.
        store_toml = '[store]\nkind = "memory"\nprint_events = true\n'
    else:
        store_toml = f'[store]\nkind = "redis"\nurl = "{store}"\n'
    return f"""[server]
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"
{store_toml}
[[sources]]
name = "whatsapp"
provider = "meta"
path = "/webhooks/whatsapp"
secrets = ["{META_SECRET}"]

[[sources]]
name = "sms"
provider = "twilio"
path = "/webhooks/sms"
secrets = ["{TWILIO_TOKEN}"]

# The admin listener is on, as in production: every request is recorded for the console.
[admin]
listen = "127.0.0.1:0"
token = "bench-admin-token-of-at-least-24-characters"
"""


def taskset(core):
    """The command prefix that pins a process to one core (nothing when not pinning)."""
    return ["taskset", "-c", str(core)] if core is not None else []


def start_server(kind, work, redis, store="memory", core=None):
    """Starts porter or the reference; returns (process, port)."""
    port = free_port()
    if kind == "porter":
        config = os.path.join(work, f"porter-{port}.toml")
        with open(config, "w") as f:
            f.write(porter_config(port, redis.url() if redis else store, work))
        env = dict(os.environ, RUST_LOG="warn")
        process = subprocess.Popen(taskset(core) + [PORTER, "serve", "--config", config], env=env,
                                   stdout=subprocess.DEVNULL,
                                   stderr=open(os.path.join(work, "porter.log"), "a"))
    else:
        args = [REFERENCE, "--listen", f"127.0.0.1:{port}", "--meta-secret", META_SECRET,
                "--twilio-token", TWILIO_TOKEN, "--public-url", f"http://127.0.0.1:{port}"]
        if redis:
            args += ["--redis", redis.url()]
        process = subprocess.Popen(taskset(core) + args, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
    wait_for(port, process, kind)
    if kind == "porter":
        ready(port)
    return process, port


def load(port, args, seconds, connections, rate=None, core=None):
    command = taskset(core) + [LOAD, "--url", f"http://127.0.0.1:{port}", "--public-url", f"http://127.0.0.1:{port}",
               "--connections", str(connections), "--duration", f"{seconds}s", "--json"] + args
    if rate:
        command += ["--rate", str(int(rate))]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def children_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_run(kind, store, redis_args, load_args, args, work, rate=None, pinned=False):
    """One measured run; adds the CPU microseconds per request that the server, Redis and the
    load generator spent during it. `pinned`: the server on core 0, the load on core 1."""
    redis = Redis(work, redis_args) if store == "redis" else None
    server_core, load_core = (0, 1) if pinned else (None, None)
    try:
        process, port = start_server(kind, work, redis, store, server_core)
        try:
            load(port, load_args, args.warmup, args.connections, rate, load_core)
            pids = [process.pid] + ([redis.process.pid] if redis else [])
            before = [cpu_seconds(pid) for pid in pids] + [children_cpu_seconds()]
            result = load(port, load_args, args.seconds, args.connections, rate, load_core)
            after = [cpu_seconds(pid) for pid in pids] + [children_cpu_seconds()]
            requests = max(1, sum(result["statuses"].values()))
            used = [1e6 * (a - b) / requests for a, b in zip(after, before)]
            result["server_us"], result["load_us"] = used[0], used[-1]
            result["redis_us"] = used[1] if redis else 0.0
        finally:
            stop(process)
    finally:
        if redis:
            redis.close()
    return result


def median(results, key):
    return statistics.median(r[key] for r in results)


def statuses(results):
    total = {}
    for r in results:
        for status, count in r["statuses"].items():
            total[status] = total.get(status, 0) + count
    errors = sum(r["errors"] for r in results)
    text = " ".join(f"{s}:{c}" for s, c in sorted(total.items()))
    return text + (f" errors:{errors}" if errors else "")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def memory_run(kind, args, work, rate):
    """porter or the reference with Redis at a fixed rate for --soak seconds, sampling the
    server's resident memory."""
    redis = Redis(work, ["--appendonly", "no"])
    try:
        process, port = start_server(kind, work, redis)
        try:
            command = [LOAD, "--url", f"http://127.0.0.1:{port}", "--connections", str(args.connections),
                       "--duration", f"{args.soak}s", "--rate", str(int(rate)), "--json"] + META
            loader = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
            samples = []
            started = time.monotonic()
            while loader.poll() is None:
                samples.append((round(time.monotonic() - started), rss_kib(process.pid)))
                time.sleep(5)
            result = json.loads(loader.stdout.read())
        finally:
            stop(process)
    finally:
        redis.close()
    return samples, result


def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = "unknown"
    try:
        with open("/proc/meminfo") as f:
            memory = f"{int(f.readline().split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass

    def version(command):
        try:
            return subprocess.run(command, capture_output=True, text=True).stdout.strip().splitlines()[0]
        except (OSError, IndexError):
            return "unknown"

    commit = version(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", ROOT, "diff", "--quiet", "HEAD"]).returncode != 0
    return [
        f"CPU: {model}, {os.cpu_count()} logical cores (shared by the server, Redis and the load generator)",
        f"Memory: {memory}; kernel {platform.release()}",
        f"{version(['redis-server', '--version'])}",
        f"{version(['rustc', '--version'])}; porter {commit}{' (with uncommitted changes)' if dirty else ''}",
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--soak", type=int, default=60, help="seconds of the memory run (0 skips it)")
    parser.add_argument("--pinned-seconds", type=int, default=60,
                        help="seconds of each pinned run at 80 %% of its peak")
    parser.add_argument("--only", help="run only scenarios whose name contains this")
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "RESULTS.md"))
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="porter-bench-")
    started = datetime.datetime.now(datetime.timezone.utc)
    rows, raw = [], []
    peak = None
    try:
        for name, store, redis_args, load_args in SCENARIOS:
            if args.only and args.only not in name:
                continue
            runs = {"porter": [], "reference": []}
            for _ in range(args.runs):
                for kind in ("porter", "reference"):
                    runs[kind].append(one_run(kind, store, redis_args, load_args, args, work))
            p, r = runs["porter"], runs["reference"]
            ratio = median(p, "requests_per_second") / median(r, "requests_per_second")
            rows.append((name, p, r, ratio))
            raw.append((name, runs))
            print(f"{name}: porter {median(p, 'requests_per_second'):.0f} req/s, "
                  f"reference {median(r, 'requests_per_second'):.0f} req/s, ratio {ratio:.2f}",
                  file=sys.stderr)
            if name == "redis":
                peak = median(p, "requests_per_second")

        latency = None
        if peak:
            rate = 0.8 * peak
            latency = {kind: [one_run(kind, "redis", ["--appendonly", "no"], META, args, work, rate)
                              for _ in range(args.runs)] for kind in ("porter", "reference")}
        pinned = {}
        if not args.only or "pinned" in args.only:
            # One core for the server, one for the load generator: the tail is the server's.
            for label, kind, store in (("porter, memory store", "porter", "memory"),
                                       ("porter, local store", "porter", "local"),
                                       ("reference (verify and parse)", "reference", "memory")):
                top = median([one_run(kind, store, [], META, args, work, pinned=True)
                              for _ in range(args.runs)], "requests_per_second")
                # One long run at 80 %: a stall every few seconds (a snapshot, a new journal)
                # must show in it, which a short run can miss.
                steady = argparse.Namespace(**dict(vars(args), seconds=args.pinned_seconds))
                at = [one_run(kind, store, [], META, steady, work, 0.8 * top, pinned=True)]
                pinned[label] = (top, at)
                print(f"pinned {label}: peak {top:.0f} req/s, p99 at 80 % "
                      f"{median(at, 'p99_ms'):.2f} ms", file=sys.stderr)
        soak = None
        if peak and args.soak > 0:
            soak = {kind: memory_run(kind, args, work, 0.8 * peak) for kind in ("porter", "reference")}
    finally:
        shutil.rmtree(work, ignore_errors=True)

    report = render(args, started, rows, raw, peak, latency, soak, pinned)
    print(report)
    if args.out:
        with open(args.out, "w") as f:
            f.write(report)
        print(f"written to {args.out}", file=sys.stderr)


def render(args, started, rows, raw, peak, latency, soak, pinned):
    lines = [
        "# porter benchmark results",
        "",
        f"`bench/run --runs {args.runs} --seconds {args.seconds} --connections {args.connections}"
        f" --soak {args.soak}`, {started:%Y-%m-%d %H:%M} UTC. Medians of {args.runs} runs of "
        f"{args.seconds} s (after {args.warmup} s of warm-up), {args.connections} keep-alive "
        "connections, as fast as they go. Every run has a fresh redis-server; porter and the "
        "reference take turns.",
        "",
        "## Machine",
        "",
    ] + [f"- {line}" for line in machine()] + [
        "",
        "## Throughput",
        "",
        "| scenario | porter req/s | porter events/s | p50 ms | p99 ms | reference req/s | p50 ms | p99 ms | ratio | porter statuses |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, p, r, ratio in rows:
        lines.append(
            f"| {name} | {median(p, 'requests_per_second'):.0f} | {median(p, 'events_per_second'):.0f} | "
            f"{median(p, 'p50_ms'):.2f} | {median(p, 'p99_ms'):.2f} | {median(r, 'requests_per_second'):.0f} | "
            f"{median(r, 'p50_ms'):.2f} | {median(r, 'p99_ms'):.2f} | {ratio:.2f} | {statuses(p)} |")
    lines += [
        "",
        "ratio = porter req/s ÷ reference req/s. `events/s` counts events acknowledged as new "
        "(duplicates and refused requests excluded).",
        "",
        "## CPU per request",
        "",
        "Microseconds of CPU (user + system) per request during the same runs: the two cores are "
        "shared, so these add up to the throughput.",
        "",
        "| scenario | porter | its Redis | its load generator | reference | its Redis | its load generator |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, p, r, _ in rows:
        lines.append(
            f"| {name} | {median(p, 'server_us'):.1f} | {median(p, 'redis_us'):.1f} | "
            f"{median(p, 'load_us'):.1f} | {median(r, 'server_us'):.1f} | "
            f"{median(r, 'redis_us'):.1f} | {median(r, 'load_us'):.1f} |")
    if latency:
        rate = 0.8 * peak
        lines += [
            "",
            f"## Latency at 80 % of peak ({rate:.0f} req/s, redis scenario, {args.connections} connections)",
            "",
            "Measured from each request's scheduled send time (no coordinated omission).",
            "",
            "| server | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | statuses |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        for kind, results in latency.items():
            lines.append(
                f"| {kind} | {median(results, 'p50_ms'):.2f} | {median(results, 'p90_ms'):.2f} | "
                f"{median(results, 'p99_ms'):.2f} | {median(results, 'p999_ms'):.2f} | "
                f"{median(results, 'max_ms'):.2f} | {statuses(results)} |")
    if pinned:
        lines += [
            "",
            f"## Pinned: the server on core 0, the load generator on core 1 ({args.connections} connections)",
            "",
            f"Peak throughput pinned (median of {args.runs} runs of {args.seconds} s), then one "
            f"run of {args.pinned_seconds} s at 80 % of that peak; latency from each request's "
            "scheduled send time.",
            "",
            "| server | peak req/s | rate | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | statuses |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for label, (top, results) in pinned.items():
            lines.append(
                f"| {label} | {top:.0f} | {0.8 * top:.0f} | {median(results, 'p50_ms'):.2f} | "
                f"{median(results, 'p90_ms'):.2f} | {median(results, 'p99_ms'):.2f} | "
                f"{median(results, 'p999_ms'):.2f} | {median(results, 'max_ms'):.2f} | "
                f"{statuses(results)} |")
    targets = render_targets(rows, pinned)
    if targets:
        lines += ["", "## The targets", ""] + targets
    if soak:
        columns = max(len(samples) for samples, _ in soak.values())
        lines += [
            "",
            f"## Memory over {args.soak} s (redis store, {0.8 * peak:.0f} req/s, {args.connections} connections)",
            "",
            "Resident set size of each server every 5 s, then the whole run's latency:",
            "",
            "| server | " + " | ".join(f"{5 * i} s" for i in range(columns)) + " | requests | p99 ms | p99.9 ms | statuses |",
            "|---|" + "---:|" * (columns + 3) + "---|",
        ]
        for kind, (samples, result) in soak.items():
            lines.append(
                f"| {kind} RSS MiB | " + " | ".join(f"{kib / 1024:.1f}" for _, kib in samples)
                + " | " * (columns - len(samples))
                + f" | {result['requests']} | {result['p99_ms']:.2f} | {result['p999_ms']:.2f} | "
                f"{statuses([result])} |")
    lines += ["", "Where the time goes, and what limits porter against the reference: "
              "[`bench/ANALYSIS.md`](ANALYSIS.md)."]
    lines += ["", "## Every run", "", "| scenario | server | req/s per run |", "|---|---|---|"]
    for name, runs in raw:
        for kind, results in runs.items():
            lines.append(f"| {name} | {kind} | " + ", ".join(f"{r['requests_per_second']:.0f}" for r in results) + " |")
    return "\n".join(lines) + "\n"


def render_targets(rows, pinned):
    """The issue's targets, each met or missed, from this run's medians."""
    by_name = {name: (p, r) for name, p, r, _ in rows}

    def rps(name, side):
        pair = by_name.get(name)
        return median(pair[side], "requests_per_second") if pair else None

    memory, memory_ref = rps("memory store (events to stdout)", 0), rps("memory store (events to stdout)", 1)
    local, redis, redis_ref = rps("local store (fdatasync per batch)", 0), rps("redis", 0), rps("redis", 1)
    lines = ["| target | figure | verdict |", "|---|---|---|"]

    def row(text, value, goal, detail):
        if value is not None:
            lines.append(f"| {text} | {value:.2f} ({detail}) | {'met' if value >= goal else 'missed'} |")

    if memory and memory_ref:
        row("memory store ≥ 0.8 × the reference's verify-and-parse", memory / memory_ref, 0.8,
            f"{memory:.0f} vs {memory_ref:.0f} req/s")
    if local and redis:
        row("local store ≥ 1.2 × porter's Redis (no persistence)", local / redis, 1.2,
            f"{local:.0f} vs {redis:.0f} req/s")
    if local and memory:
        row("local store ≥ 0.8 × porter's memory store", local / memory, 0.8,
            f"{local:.0f} vs {memory:.0f} req/s")
    if redis and redis_ref:
        row("Redis store ≥ 0.9 × the reference's Redis", redis / redis_ref, 0.9,
            f"{redis:.0f} vs {redis_ref:.0f} req/s")

    def tail(label, text, key, goal):
        if label in pinned:
            top, results = pinned[label]
            value = median(results, key)
            lines.append(f"| {text} | {value:.2f} ms at {0.8 * top:.0f} req/s | "
                         f"{'met' if value <= goal else 'missed'} |")

    tail("porter, local store", "local store p99 ≤ 10 ms at 80 % of its pinned peak", "p99_ms", 10)
    tail("porter, local store", "local store max ≤ 100 ms at 80 % of its pinned peak", "max_ms", 100)
    tail("porter, memory store", "memory store p99 ≤ 5 ms at 80 % of its pinned peak", "p99_ms", 5)
    return lines if len(lines) > 2 else []


if __name__ == "__main__":
    main()
