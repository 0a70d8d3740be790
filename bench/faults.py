#!/usr/bin/env python3
"""porter's fault suite (run it with bench/faults, which builds the binaries first).

Each scenario starts its own redis-server, porter and porter-load on loopback, breaks
something while requests flow, and then checks the promise porter makes: every request
acknowledged with 200 holds an event that is stored exactly once (and delivered), and
everything else was answered with a status that makes the provider retry.

  kill-porter     porter is killed with SIGKILL under load and started again
  stop-redis      Redis is killed under load (AOF, fsync always) and started again
  destination     the HTTP destination is down for a while, then comes back
  redis-lost      Redis without persistence restarts empty under load, with a destination:
                  its consumer group is gone, and every event acknowledged afterwards must
                  still be delivered
  bounds          the memory store is full: 503 with Retry-After, nothing unbounded

Every scenario is bounded in time (about a minute in all). Exit status 0 only if every
check held. Only processes started here are stopped, by their pid.
"""

import argparse
import collections
import hashlib
import hmac
import http.client
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from procs import Redis, free_port, ready, stop, wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECRET = "fault-meta-secret"
DESTINATION_SECRET = "whsec_ZmF1bHQtc3VpdGUtZGVzdGluYXRpb24ta2V5"


class Failed(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failed(message)


class Porter:
    """porter serve on a fixed port with a config file; can be SIGKILLed and started again."""

    def __init__(self, binary, work, store_toml, extra_toml="", request_timeout="3s"):
        self.binary = binary
        self.port = free_port()
        self.config = os.path.join(work, f"porter-{self.port}.toml")
        self.log = os.path.join(work, f"porter-{self.port}.log")
        with open(self.config, "w") as f:
            f.write(f"""[server]
listen = "127.0.0.1:{self.port}"
public_url = "http://127.0.0.1:{self.port}"
request_timeout = "{request_timeout}"

{store_toml}

[[sources]]
name = "whatsapp"
provider = "meta"
path = "/webhooks/whatsapp"
secrets = ["{SECRET}"]
{extra_toml}
""")
        self.start()

    def start(self):
        self.process = subprocess.Popen([self.binary, "serve", "--config", self.config],
                                        env=dict(os.environ, RUST_LOG="warn"),
                                        stdout=subprocess.DEVNULL, stderr=open(self.log, "a"))
        wait_for(self.port, self.process, "porter")
        ready(self.port)

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def alive(self):
        return self.process.poll() is None

    def close(self):
        stop(self.process)


class Load:
    """porter-load in the background, writing the keys it saw acknowledged."""

    def __init__(self, binary, work, port, seconds, rate, connections=16):
        self.keys = os.path.join(work, f"keys-{time.monotonic_ns()}.txt")
        self.process = subprocess.Popen(
            [binary, "--url", f"http://127.0.0.1:{port}", "--secret", SECRET,
             "--connections", str(connections), "--duration", f"{seconds}s", "--rate", str(rate),
             "--body-size", "400", "--keys-out", self.keys, "--json"],
            stdout=subprocess.PIPE, text=True)

    def finish(self):
        out, _ = self.process.communicate(timeout=120)
        check(self.process.returncode == 0, f"porter-load exited with {self.process.returncode}")
        report = json.loads(out)
        with open(self.keys) as f:
            report["acknowledged"] = [line.strip() for line in f if line.strip()]
        return report


def stored_ids(redis):
    """The provider event id of every event in porter's stream, in order."""
    ids = []
    for line in redis.cli("XRANGE", "porter:events", "-", "+").splitlines():
        if line.startswith("{"):
            ids.append(json.loads(line)["providereventid"])
    return ids


def exactly_once(acknowledged, stored):
    counts = collections.Counter(stored)
    repeated = [key for key, n in counts.items() if n > 1]
    check(not repeated, f"{len(repeated)} events are stored more than once, e.g. {repeated[:3]}")
    missing = [key for key in acknowledged if key not in counts]
    check(not missing, f"{len(missing)} acknowledged events are not stored, e.g. {missing[:3]}")


def statuses(report):
    return {int(s): n for s, n in report["statuses"].items()}


def kill_porter(args, work):
    redis = Redis(work, ["--appendonly", "no"])
    porter = Porter(args.porter, work, f'[store]\nkind = "redis"\nurl = "{redis.url()}"')
    try:
        load = Load(args.load, work, porter.port, seconds=8, rate=args.rate)
        time.sleep(3)
        porter.kill()
        time.sleep(1)
        porter.start()
        report = load.finish()
        stored = stored_ids(redis)
        acked = report["acknowledged"]
        codes = statuses(report)
        check(len(acked) > 100, f"too little traffic to judge: {len(acked)} acknowledged")
        check(report["errors"] > 0, "the kill did not interrupt any request")
        check(set(codes) <= {200}, f"unexpected statuses {codes}")
        exactly_once(acked, stored)
        return (f"{len(acked)} acknowledged, {len(stored)} stored (each once; "
                f"{len(stored) - len(acked)} stored but unanswered when porter died), "
                f"{report['errors']} sends failed while porter was down (cut off or refused)")
    finally:
        porter.close()
        redis.close()


def stop_redis(args, work):
    redis = Redis(work, ["--appendonly", "yes", "--appendfsync", "always"])
    porter = Porter(args.porter, work, f'[store]\nkind = "redis"\nurl = "{redis.url()}"',
                    request_timeout="2s")
    try:
        load = Load(args.load, work, porter.port, seconds=10, rate=args.rate)
        time.sleep(3)
        redis.kill()
        time.sleep(3)
        redis.start()
        report = load.finish()
        codes = statuses(report)
        check(set(codes) <= {200, 503}, f"statuses other than 200 and 503: {codes}")
        check(codes.get(503, 0) > 0, "no request was refused while Redis was down")
        check(report["errors"] == 0, f"{report['errors']} connections failed: porter must answer")
        check(porter.alive(), "porter exited")
        after = Load(args.load, work, porter.port, seconds=2, rate=200).finish()
        check(statuses(after) == {200: sum(statuses(after).values())} and after["errors"] == 0,
              f"after Redis returned, without a restart: {statuses(after)}")
        stored = stored_ids(redis)
        acked = report["acknowledged"] + after["acknowledged"]
        exactly_once(acked, stored)
        return (f"{codes.get(200, 0)} answered 200 and {codes.get(503, 0)} answered 503 around a "
                f"3 s outage; all {len(acked)} acknowledged events stored once; "
                f"{statuses(after).get(200, 0)}/{sum(statuses(after).values())} accepted after it, no restart")
    finally:
        porter.close()
        redis.close()


class Receiver:
    """An HTTP destination that records the event ids it was given."""

    def __init__(self, port):
        received = self.received = []
        lock = self.lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with lock:
                    received.append(json.loads(body)["providereventid"])
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def ids(self):
        with self.lock:
            return list(self.received)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def destination(args, work):
    redis = Redis(work, ["--appendonly", "no"])
    receiver_port = free_port()
    destination_toml = f"""
[[destinations]]
name = "frontdesk"
kind = "http"
url = "http://127.0.0.1:{receiver_port}/events"
secret = "{DESTINATION_SECRET}"
timeout = "2s"
retry = ["500ms", "1s", "1s", "2s", "2s", "3s", "5s", "5s"]
"""
    porter = Porter(args.porter, work, f'[store]\nkind = "redis"\nurl = "{redis.url()}"',
                    destination_toml)
    receiver = None
    try:
        report = Load(args.load, work, porter.port, seconds=3, rate=200).finish()
        acked = report["acknowledged"]
        check(len(acked) > 100, f"too little traffic to judge: {len(acked)} acknowledged")
        time.sleep(3)  # the destination stays down 6 s in all
        receiver = Receiver(receiver_port)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and not set(acked) <= set(receiver.ids()):
            time.sleep(0.5)
        delivered = receiver.ids()
        missing = set(acked) - set(delivered)
        check(not missing, f"{len(missing)} acknowledged events never delivered, e.g. {sorted(missing)[:3]}")
        dead = subprocess.run([args.porter, "dlq", "list", "--config", porter.config],
                              capture_output=True, text=True)
        check(dead.returncode == 0 and "no dead letters" in dead.stdout,
              f"dead letters before the schedule ended: {dead.stdout.strip()[:300]} {dead.stderr.strip()[:300]}")
        repeats = len(delivered) - len(set(delivered))
        return (f"{len(acked)} events acknowledged while the destination was down; all delivered "
                f"after it returned ({repeats} delivered twice, same webhook-id), no dead letters")
    finally:
        if receiver:
            receiver.close()
        porter.close()
        redis.close()


def redis_lost(args, work):
    redis = Redis(work, ["--appendonly", "no"])
    receiver_port = free_port()
    receiver = Receiver(receiver_port)
    destination_toml = f"""
[[destinations]]
name = "frontdesk"
kind = "http"
url = "http://127.0.0.1:{receiver_port}/events"
secret = "{DESTINATION_SECRET}"
timeout = "2s"
retry = ["500ms", "1s", "2s"]
"""
    porter = Porter(args.porter, work, f'[store]\nkind = "redis"\nurl = "{redis.url()}"',
                    destination_toml, request_timeout="2s")
    try:
        load = Load(args.load, work, porter.port, seconds=8, rate=args.rate // 2)
        time.sleep(3)
        # A restart without persistence: the stream, the group and its schedule are gone.
        redis.kill()
        redis.start()
        report = load.finish()
        after = Load(args.load, work, porter.port, seconds=2, rate=200).finish()
        codes = statuses(report)
        check(set(codes) <= {200, 503}, f"statuses other than 200 and 503: {codes}")
        check(statuses(after) == {200: sum(statuses(after).values())},
              f"after the restart: {statuses(after)}")
        # What the new Redis holds was stored after the restart: all of it that porter
        # acknowledged, and everything of the second load, must reach the destination.
        stored_after = set(stored_ids(redis))
        acked = set(report["acknowledged"]) | set(after["acknowledged"])
        must_deliver = (acked & stored_after) | set(after["acknowledged"])
        check(set(after["acknowledged"]) <= stored_after, "events acknowledged after the restart are not stored")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not must_deliver <= set(receiver.ids()):
            time.sleep(0.5)
        missing = must_deliver - set(receiver.ids())
        check(not missing, f"{len(missing)} events acknowledged after the restart never delivered, "
                           f"e.g. {sorted(missing)[:3]}")
        with open(porter.log) as f:
            warnings = sum(1 for line in f if "was missing" in line or "were missing" in line)
        check(1 <= warnings <= 20, f"{warnings} warnings about the lost group (want a few, not a flood)")
        lost = len(acked - stored_after - set(receiver.ids()))
        return (f"{len(must_deliver)} events acknowledged after the restart, all delivered; "
                f"{lost} acknowledged before it were lost with Redis's memory (no persistence); "
                f"{warnings} warning(s) about the recreated group")
    finally:
        receiver.close()
        porter.close()
        redis.close()


def bounds(args, work):
    porter = Porter(args.porter, work, '[store]\nkind = "memory"\ncapacity = 100\nprint_events = false')
    try:
        report = Load(args.load, work, porter.port, seconds=2, rate=300).finish()
        codes = statuses(report)
        check(codes.get(200, 0) == 100, f"the store should take exactly 100 events: {codes}")
        check(set(codes) <= {200, 503} and codes.get(503, 0) > 0, f"statuses: {codes}")
        body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
            "field": "messages", "value": {"messaging_product": "whatsapp", "metadata": {
                "display_phone_number": "1", "phone_number_id": "2"}, "messages": [{
                    "from": "3", "id": "wamid.bounds-probe", "timestamp": "1710511200",
                    "type": "text", "text": {"body": "hello"}}]}}]}]}).encode()
        signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        connection = http.client.HTTPConnection("127.0.0.1", porter.port, timeout=5)
        connection.request("POST", "/webhooks/whatsapp", body,
                           {"content-type": "application/json", "x-hub-signature-256": signature})
        response = connection.getresponse()
        check(response.status == 503 and response.getheader("retry-after"),
              f"a full store answered {response.status} with Retry-After {response.getheader('retry-after')}")
        check(porter.alive(), "porter exited")
        return (f"100 accepted, then {codes.get(503, 0)} refused with 503 "
                f"(Retry-After: {response.getheader('retry-after')}); porter kept serving")
    finally:
        porter.close()


SCENARIOS = {"kill-porter": kill_porter, "stop-redis": stop_redis,
             "destination": destination, "redis-lost": redis_lost, "bounds": bounds}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="debug", help="which build of the binaries to use")
    parser.add_argument("--rate", type=int, default=800, help="requests per second under load")
    parser.add_argument("scenarios", nargs="*", help=f"any of {', '.join(SCENARIOS)} (default: all)")
    args = parser.parse_args()
    unknown = [name for name in args.scenarios if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    args.scenarios = args.scenarios or list(SCENARIOS)
    args.porter = os.path.join(ROOT, "target", args.profile, "porter")
    args.load = os.path.join(ROOT, "target", args.profile, "porter-load")
    failures = 0
    for name in args.scenarios:
        work = tempfile.mkdtemp(prefix=f"porter-faults-{name}-")
        started = time.monotonic()
        try:
            outcome = SCENARIOS[name](args, work)
            print(f"ok    {name} ({time.monotonic() - started:.1f} s): {outcome}", flush=True)
        except Failed as failure:
            failures += 1
            print(f"FAIL  {name} ({time.monotonic() - started:.1f} s): {failure}", flush=True)
            for log in sorted(os.listdir(work)):
                if log.endswith(".log"):
                    with open(os.path.join(work, log)) as f:
                        print(f"--- {log} (last lines)\n" + "".join(f.readlines()[-20:]), flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
