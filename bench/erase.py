#!/usr/bin/env python3
"""How long `porter erase` takes on a Redis store holding many events.

Starts a redis-server of its own on a free loopback port (no persistence), fills the event
stream with N events in porter's stream format (one in every 1,000 from the guest to erase,
the rest from others), and times `porter erase --dry-run`, the erasure itself, and a second
run that finds nothing. Stops its redis-server by its pid when done.

    cargo build --release -p porter
    python3 bench/erase.py --events 100000 --porter target/release/porter
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

GUEST = "4915123456789"
LUA = """
local n, every, guest = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
for i = 1, n do
  local from = (i % every == 0) and guest or tostring(4400000000000 + i)
  local id = 'evt_' .. string.format('%032x', i)
  local event = '{"specversion":"1.0","id":"' .. id .. '","source":"/sources/whatsapp",'
    .. '"datacontenttype":"application/json","provider":"meta","providereventid":"wamid.' .. i
    .. '","receivedat":"2026-12-04T12:00:00Z","type":"message.received","data":{"channel":'
    .. '"whatsapp","message_id":"wamid.' .. i .. '","from":"' .. from .. '","kind":"text",'
    .. '"text":"Could I have extra towels in room 512, please?","profile_name":"Guest"}}'
  redis.call('XADD', KEYS[1], '*', 'event', event, 'type', 'message.received',
    'source', 'whatsapp', 'id', id)
end
return n
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(command):
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, json.loads(done.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--porter", default="target/release/porter")
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as dir:
        redis = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", dir],
            stdout=subprocess.DEVNULL,
        )
        try:
            cli = ["redis-cli", "-p", str(port)]
            for _ in range(100):
                if subprocess.run(cli + ["PING"], capture_output=True).returncode == 0:
                    break
                time.sleep(0.05)
            subprocess.run(cli + ["EVAL", LUA, "1", "porter:events", str(args.events), "1000", GUEST],
                           check=True, capture_output=True)
            config = os.path.join(dir, "porter.toml")
            with open(config, "w") as f:
                f.write(f"""[store]
kind = "redis"
url = "redis://127.0.0.1:{port}"

[privacy]
key = "a-benchmark-privacy-key-of-32-bytes-or-more"

[[sources]]
name = "whatsapp"
provider = "meta"
path = "/webhooks/whatsapp"
secrets = ["bench-secret"]
""")
            erase = [args.porter, "erase", "--config", config, "--phone", "+49 151 2345 6789", "--json"]
            print(f"{args.events} events in the stream, {args.events // 1000} of them the guest's")
            for label, command in [("dry run", erase + ["--dry-run"]), ("erase", erase),
                                   ("second run", erase)]:
                seconds, report = timed(command)
                print(f"{label:<11} {seconds:7.3f} s  events {report['erased']['events']}")
        finally:
            redis.terminate()
            redis.wait()


if __name__ == "__main__":
    sys.exit(main())
