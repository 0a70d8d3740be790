#!/usr/bin/env python3
"""Interleaved A/B of two porter binaries under the same load: A, B, A, B, ... so that drift of
the machine (other processes, caches, clock) falls on both alike. Prints each run and the
medians. The scenario is the benchmark's first: the memory store (events to stdout, here
/dev/null), Meta bodies of 1.5 KB, 64 keep-alive connections, the admin listener on.

  cargo build --release --locked -p porter -p porter-load       # B and the load generator
  python3 bench/ab.py --a /elsewhere/target/release/porter --b target/release/porter \\
      --rounds 6 --seconds 10

`--pinned` puts porter on core 0 and the load generator on core 1 (steadier figures).
`--store local` runs both on the local store (a fresh directory per run) instead of memory;
`--store redis` on a fresh redis-server per run (no persistence, on porter's core when
pinned), whose CPU per request is reported beside porter's.
`--b-telemetry URL` runs B with `[telemetry] otlp_endpoint = URL`; `--b-telemetry sink` starts
a throwaway OTLP/HTTP sink in this process (200 to every POST) and points B at it;
`--b-sample-ratio R` sets B's `[telemetry] sample_ratio`. `--store redis --b-wait-replicas 1`
gives both a replica of their Redis and B `[store] wait_replicas = 1` (the cost of `WAIT`).
`--rust-log info` runs both with
porter's own default (a log line per request, written to a file) instead of `warn`.
Only processes started here are stopped, by their pid.
"""

import argparse
import http.server
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
from procs import Redis, cpu_seconds, free_port, ready, stop, wait_for  # noqa: E402


class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def start_sink():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def run(binary, telemetry, args, work, ratio=None, wait_replicas=None):
    port = free_port()
    config = os.path.join(work, f"porter-{port}.toml")
    redis = replica = None
    store = args.store
    if store == "redis":
        redis = Redis(work, ["--appendonly", "no"])
        if args.pinned:
            subprocess.run(["taskset", "-p", "-c", "0", str(redis.process.pid)], check=True,
                           stdout=subprocess.DEVNULL)
        store = redis.url()
        if args.b_wait_replicas:
            # Both A and B run with a replica attached; only B waits for it.
            replica = Redis(work, ["--appendonly", "no", "--replicaof", "127.0.0.1",
                                   str(redis.port)])
            while "state=online" not in redis.cli("INFO", "replication"):
                time.sleep(0.05)
    with open(config, "w") as f:
        text = bench.porter_config(port, store, work)
        if wait_replicas:
            text = text.replace(f'url = "{store}"\n',
                                f'url = "{store}"\nwait_replicas = {wait_replicas}\n')
        f.write(text)
        if telemetry:
            f.write(f'\n[telemetry]\notlp_endpoint = "{telemetry}"\n')
            if ratio is not None:
                f.write(f"sample_ratio = {ratio}\n")
    server_core, load_core = (0, 1) if args.pinned else (None, None)
    process = subprocess.Popen(bench.taskset(server_core) + [binary, "serve", "--config", config],
                               env=dict(os.environ, RUST_LOG=args.rust_log),
                               stdout=subprocess.DEVNULL,
                               stderr=open(os.path.join(work, "porter.log"), "a"))
    try:
        wait_for(port, process, binary)
        ready(port)
        bench.load(port, bench.META, args.warmup, args.connections, core=load_core)
        before = cpu_seconds(process.pid)
        redis_before = cpu_seconds(redis.process.pid) if redis else 0.0
        result = bench.load(port, bench.META, args.seconds, args.connections, core=load_core)
        after = cpu_seconds(process.pid)
        redis_after = cpu_seconds(redis.process.pid) if redis else 0.0
    finally:
        stop(process)
        if redis:
            redis.close()
        if replica:
            replica.close()
    requests = max(1, sum(result["statuses"].values()))
    return {
        "rps": result["requests_per_second"],
        "p50": result["p50_ms"],
        "p99": result["p99_ms"],
        "cpu_us": 1e6 * (after - before) / requests,
        "redis_us": 1e6 * (redis_after - redis_before) / requests,
        "statuses": result["statuses"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", required=True, help="porter binary A (the baseline)")
    parser.add_argument("--b", required=True, help="porter binary B")
    parser.add_argument("--b-telemetry", help="B's [telemetry] otlp_endpoint, or `sink`")
    parser.add_argument("--b-sample-ratio", type=float, help="B's [telemetry] sample_ratio")
    parser.add_argument("--b-wait-replicas", type=int,
                        help="with --store redis: a replica for both, B's [store] wait_replicas")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rust-log", default="warn",
                        help="porter's RUST_LOG (porter's own default is info: a line per request)")
    parser.add_argument("--store", choices=("memory", "local", "redis"), default="memory")
    parser.add_argument("--pinned", action="store_true",
                        help="porter on core 0, the load generator on core 1")
    args = parser.parse_args()
    telemetry = start_sink() if args.b_telemetry == "sink" else args.b_telemetry
    results = {"A": [], "B": []}
    with tempfile.TemporaryDirectory() as work:
        for round in range(args.rounds):
            # Alternate which goes first, so that neither always follows the other.
            order = [("A", args.a, None), ("B", args.b, telemetry)]
            if round % 2:
                order.reverse()
            for name, binary, tel in order:
                r = run(binary, tel, args, work, args.b_sample_ratio if name == "B" else None,
                        args.b_wait_replicas if name == "B" else None)
                results[name].append(r)
                print(f"round {round + 1} {name}: {r['rps']:.0f} req/s, p50 {r['p50']:.2f} ms, "
                      f"p99 {r['p99']:.2f} ms, {r['cpu_us']:.1f} µs CPU/request"
                      + (f" + Redis {r['redis_us']:.1f}" if args.store == "redis" else "")
                      + f", {r['statuses']}",
                      flush=True)
    print()
    print("| binary | median req/s | median p50 ms | median p99 ms | median µs CPU/request "
          "| median Redis µs CPU/request |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in ("A", "B"):
        rs = results[name]
        med = lambda key: statistics.median(r[key] for r in rs)  # noqa: E731
        print(f"| {name} | {med('rps'):.0f} | {med('p50'):.2f} | {med('p99'):.2f} | "
              f"{med('cpu_us'):.1f} | {med('redis_us'):.1f} |")
    a = statistics.median(r["rps"] for r in results["A"])
    b = statistics.median(r["rps"] for r in results["B"])
    print(f"\nB/A throughput: {b / a:.3f}")


if __name__ == "__main__":
    main()
