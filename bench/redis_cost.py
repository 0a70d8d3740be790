#!/usr/bin/env python3
"""What dedupe-and-enqueue costs Redis itself, per event, done three ways.

  script       porter's src/store/enqueue.lua through EVALSHA, N events per call (atomic)
  watch-multi  WATCH the dedupe keys, MGET them, then MULTI, XADD and SET PX per event, EXEC
               (atomic too, optimistically: EXEC fails if another writer touched a key)
  set-nx-xadd  SET NX PX then XADD per event, as bench/reference does (not atomic: a crash
               between the two loses the event, and its retry is taken for a duplicate)

Each way runs on a fresh redis-server (no persistence) with new keys only, as in the
benchmark, and the figure is the redis-server process's CPU time (user + system) divided by
the events stored. Commands are built first and then pipelined, so that Redis is never idle and
the client's speed does not matter; for watch-multi this leaves out the round trip between MGET and MULTI, which
costs latency, not Redis CPU.

    python3 bench/redis_cost.py                  # 50 000 events of 1 700 bytes per way and size
    python3 bench/redis_cost.py --events 5000 --sizes 1,10
"""

import argparse
import os
import socket
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from procs import Redis, cpu_seconds  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TTL_MS = b"86400000"
ANSWER = b'{"status":"accepted","events":1}'
STREAM = b"porter:events"


# A few lines of RESP rather than a Python Redis client: nothing to install, and nothing
# between the measurement and the bytes Redis reads.
def command(*args):
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        arg = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


class Connection:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.file = self.sock.makefile("rb")

    def send(self, data):
        self.sock.sendall(data)

    def read(self):
        """Reads one reply, whatever its shape; raises on an error reply."""
        line = self.file.readline()
        kind, rest = line[:1], line[1:-2]
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind in (b"+", b":"):
            return rest
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.file.read(n + 2)[:-2]
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise RuntimeError(f"unexpected reply {line!r}")


def event(i, size):
    head = b'{"specversion":"1.0","id":"evt_%032x","type":"message.received","data":{"text":"' % i
    return head + b"x" * max(0, size - len(head) - 3) + b'"}}'


def batches(way, count, size, per_call, sha):
    """Yields (wire bytes, replies to read) for `count` events in calls of `per_call`."""
    for start in range(0, count, per_call):
        ids = range(start, min(count, start + per_call))
        keys = [b"porter:dedupe:%d" % i for i in ids]
        if way == "script":
            args = [b"EVALSHA", sha, 2 * len(keys)]
            for key in keys:
                args += [key, STREAM]
            args.append(b"0")
            for i in ids:
                args += [TTL_MS, ANSWER, event(i, size), b"message.received", b"whatsapp",
                         b"evt_%032x" % i]
            yield command(*args), 1
        elif way == "watch-multi":
            wire = [command(b"WATCH", *keys), command(b"MGET", *keys), command(b"MULTI")]
            for i, key in zip(ids, keys):
                wire.append(command(b"XADD", STREAM, b"*", b"event", event(i, size),
                                    b"type", b"message.received", b"source", b"whatsapp",
                                    b"id", b"evt_%032x" % i))
                wire.append(command(b"SET", key, ANSWER, b"PX", TTL_MS))
            wire.append(command(b"EXEC"))
            yield b"".join(wire), 4 + 2 * len(keys)
        else:
            wire = []
            for i, key in zip(ids, keys):
                wire.append(command(b"SET", key, ANSWER, b"NX", b"PX", TTL_MS))
                wire.append(command(b"XADD", STREAM, b"*", b"event", event(i, size),
                                    b"type", b"message.received", b"source", b"whatsapp",
                                    b"id", b"evt_%032x" % i))
            yield b"".join(wire), 2 * len(keys)


def measure(way, count, size, per_call, work):
    redis = Redis(work, ["--appendonly", "no"])
    try:
        connection = Connection(redis.port)
        with open(os.path.join(ROOT, "src", "store", "enqueue.lua"), "rb") as f:
            connection.send(command(b"SCRIPT", b"LOAD", f.read()))
        sha = connection.read()
        # Everything is built before the clock starts, then written by one thread while
        # this one reads the replies: Redis always has a full input buffer.
        work_items = list(batches(way, count, size, per_call, sha))
        chunks = [b"".join(wire for wire, _ in work_items[i:i + 64])
                  for i in range(0, len(work_items), 64)]
        before = cpu_seconds(redis.process.pid)
        writer = threading.Thread(target=lambda: [connection.send(c) for c in chunks])
        writer.start()
        for _, replies in work_items:
            for _ in range(replies):
                connection.read()
        writer.join()
        used = cpu_seconds(redis.process.pid) - before
        stored = int(redis.cli("XLEN", STREAM))
        if stored != count:
            raise SystemExit(f"{way}: {stored} events stored, expected {count}")
        return used / count * 1e6
    finally:
        redis.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--size", type=int, default=1_700, help="bytes of event JSON")
    parser.add_argument("--sizes", default="1,3,10", help="events per call")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="porter-redis-cost-") as work:
        print(f"Redis CPU µs per event ({args.events} events of {args.size} bytes; "
              "median of 3 runs)\n")
        print("| way | " + " | ".join(f"{n} per call" for n in sizes) + " |")
        print("|---|" + "---:|" * len(sizes))
        for way in ("script", "watch-multi", "set-nx-xadd"):
            figures = []
            for n in sizes:
                runs = sorted(measure(way, args.events, args.size, n, work) for _ in range(3))
                figures.append(f"{runs[1]:.1f}")
            print(f"| {way} | " + " | ".join(figures) + " |", flush=True)


if __name__ == "__main__":
    main()
