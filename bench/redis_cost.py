#!/usr/bin/env python3
"""What dedupe-and-enqueue costs Redis itself, per event, done three ways.

  script       porter's src/store/redis/enqueue.lua (with groups.lua) through EVALSHA, N
               events per call, with one consumer group on the stream (atomic)
  script-no-groups  the same script told the stream needs no group (no XINFO GROUPS): what
               the group check costs
  function     the same Lua loaded as a function library and run with FCALL (atomic)
  watch-multi  WATCH the dedupe keys, MGET them, then MULTI, XADD and SET PX per event, EXEC
               (atomic too, optimistically: EXEC fails if another writer touched a key)
  watch-multi-groups  the same, with XINFO GROUPS read beside the MGET (the check the script
               makes that the stream's groups exist)
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
import hashlib
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
GROUP = b"http-receiver"
CURSOR = b"porter:cursor:http-receiver"


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
    """An event of `size` bytes whose text differs all along (as guests' messages do): Lua
    hashes only a sample of a long string's bytes, so events that differ only in their id
    would all fall in one bucket of its string table and make Lua look slower than it is."""
    head = b'{"specversion":"1.0","id":"evt_%032x","type":"message.received","data":{"text":"' % i
    body = hashlib.sha256(b"%d" % i).hexdigest().encode()
    text = (body * (size // len(body) + 1))[: max(0, size - len(head) - 3)]
    return head + text + b'"}}'


def batches(way, count, size, per_call, sha):
    """Yields (wire bytes, replies to read) for `count` events in calls of `per_call`."""
    for start in range(0, count, per_call):
        ids = range(start, min(count, start + per_call))
        keys = [b"porter:dedupe:%d" % i for i in ids]
        if way in ("script", "function", "script-no-groups"):
            args = ([b"FCALL", b"porter_enqueue"] if way == "function" else [b"EVALSHA", sha])
            if way == "script-no-groups":
                args += [1 + len(keys), STREAM, *keys, b"0", b"0"]
            else:
                args += [2 + len(keys), STREAM, CURSOR, *keys, b"0", b"1", GROUP]
            for i in ids:
                args += [TTL_MS, ANSWER, event(i, size), b"message.received", b"whatsapp",
                         b"evt_%032x" % i]
            yield command(*args), 1
        elif way in ("watch-multi", "watch-multi-groups"):
            wire = [command(b"WATCH", *keys), command(b"MGET", *keys)]
            if way == "watch-multi-groups":
                wire.append(command(b"XINFO", b"GROUPS", STREAM))
            wire.append(command(b"MULTI"))
            for i, key in zip(ids, keys):
                wire.append(command(b"XADD", STREAM, b"*", b"event", event(i, size),
                                    b"type", b"message.received", b"source", b"whatsapp",
                                    b"id", b"evt_%032x" % i))
                wire.append(command(b"SET", key, ANSWER, b"PX", TTL_MS))
            wire.append(command(b"EXEC"))
            yield b"".join(wire), 4 + 2 * len(keys) + (way == "watch-multi-groups")
        else:
            wire = []
            for i, key in zip(ids, keys):
                wire.append(command(b"SET", key, ANSWER, b"NX", b"PX", TTL_MS))
                wire.append(command(b"XADD", STREAM, b"*", b"event", event(i, size),
                                    b"type", b"message.received", b"source", b"whatsapp",
                                    b"id", b"evt_%032x" % i))
            yield b"".join(wire), 2 * len(keys)


WAYS = ("script", "script-no-groups", "function", "watch-multi", "watch-multi-groups",
        "set-nx-xadd")


def measure(way, count, size, per_call, work):
    redis = Redis(work, ["--appendonly", "no"])
    try:
        connection = Connection(redis.port)
        lua = b"".join(
            open(os.path.join(ROOT, "src", "store", "redis", name), "rb").read()
            for name in ("groups.lua", "enqueue.lua"))
        connection.send(command(b"SCRIPT", b"LOAD", lua))
        sha = connection.read()
        # The same code as a function library: its body becomes a function of KEYS and ARGV.
        library = (b"#!lua name=porter\nlocal function enqueue(KEYS, ARGV)\n" + lua
                   + b"\nend\nredis.register_function('porter_enqueue', enqueue)\n")
        connection.send(command(b"FUNCTION", b"LOAD", b"REPLACE", library))
        connection.read()
        # Porter's streams always have their destinations' groups before anything is appended.
        connection.send(command(b"XGROUP", b"CREATE", STREAM, GROUP, b"0", b"MKSTREAM"))
        connection.read()
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
        for way in WAYS:
            figures = []
            for n in sizes:
                runs = sorted(measure(way, args.events, args.size, n, work) for _ in range(3))
                figures.append(f"{runs[1]:.1f}")
            print(f"| {way} | " + " | ".join(figures) + " |", flush=True)


if __name__ == "__main__":
    main()
