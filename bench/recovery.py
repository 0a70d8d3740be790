#!/usr/bin/env python3
"""How long the local store takes to start after a crash, holding N undelivered events.

Starts a release porter with a local store and one HTTP destination, pauses the destination
(admin API) so every event stays scheduled, sends N signed 1.5 KB WhatsApp messages with
porter-load (in batches of 10 per request), kills porter with SIGKILL, and starts it again
on the same directory: the time from exec to listening, what porter logs about the replay
(records, ms), its resident memory, and the directory's size. Then it checks that every
acknowledged key is there.

  bench/recovery.py --events 1000000        # cargo build --release first

Only processes started here are stopped; everything lives in a temporary directory.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

from procs import free_port, stop, wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECRET = "recovery-meta-secret"
TOKEN = "recovery-admin-token-0123456789abcdef"
DESTINATION_SECRET = "whsec_cmVjb3ZlcnktZGVzdGluYXRpb24ta2V5"


def rss_mib(pid, field="VmRSS:"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    return 0.0


def du_mib(path):
    total = 0
    for name in os.listdir(path):
        total += os.path.getsize(os.path.join(path, name))
    return total / (1 << 20)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--profile", default="release")
    args = parser.parse_args()
    porter_bin = os.path.join(ROOT, "target", args.profile, "porter")
    load_bin = os.path.join(ROOT, "target", args.profile, "porter-load")
    work = tempfile.mkdtemp(prefix="porter-recovery-")
    port, admin = free_port(), free_port()
    config = os.path.join(work, "porter.toml")
    with open(config, "w") as f:
        f.write(f"""[server]
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"

[store]
kind = "local"
path = "{work}/data"
capacity = {args.events * 2}

[admin]
listen = "127.0.0.1:{admin}"
token = "{TOKEN}"

[[sources]]
name = "whatsapp"
provider = "meta"
path = "/webhooks/whatsapp"
secrets = ["{SECRET}"]

[[destinations]]
name = "crm"
kind = "http"
url = "http://127.0.0.1:9/never"
secret = "{DESTINATION_SECRET}"
""")
    log = open(os.path.join(work, "porter.log"), "a")

    def start():
        """Starts porter; the seconds until /readyz answers 200."""
        started = time.monotonic()
        process = subprocess.Popen([porter_bin, "serve", "--config", config],
                                   env=dict(os.environ, RUST_LOG="warn,porter::server=info,porter::app=info"),
                                   stdout=subprocess.DEVNULL, stderr=log)
        wait_for(port, process, "porter")
        while True:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz").status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.01)
        return process, time.monotonic() - started

    process = None
    try:
        process, _ = start()
        request = urllib.request.Request(f"http://127.0.0.1:{admin}/api/destinations/crm/pause",
                                         method="POST",
                                         headers={"Authorization": f"Bearer {TOKEN}"})
        urllib.request.urlopen(request).read()
        keys = os.path.join(work, "keys.txt")
        rate = 2_000  # requests/s of 10 events: 20 000 events/s
        seconds = max(1, args.events // (rate * 10))
        started = time.monotonic()
        out = subprocess.run(
            [load_bin, "--url", f"http://127.0.0.1:{port}", "--secret", SECRET,
             "--connections", "64", "--rate", str(rate), "--duration", f"{seconds}s",
             "--batch", "10", "--body-size", "15000", "--keys-out", keys, "--json"],
            capture_output=True, text=True, check=True)
        report = json.loads(out.stdout)
        sent_in = time.monotonic() - started
        with open(keys) as f:
            acked = [line.strip() for line in f if line.strip()]
        before = rss_mib(process.pid)
        process.send_signal(signal.SIGKILL)
        process.wait()
        size = du_mib(os.path.join(work, "data"))
        process, elapsed = start()
        log.flush()
        with open(os.path.join(work, "porter.log")) as f:
            opened = [line for line in f if "local store opened" in line]
        if len(opened) < 2:
            sys.exit("porter did not log the second opening")
        opened = opened[-1]
        replay = dict(re.findall(r"(records|torn_bytes|ms)=(\d+)", opened))
        after = rss_mib(process.pid)
        peak = rss_mib(process.pid, "VmHWM:")
        waiting = 0
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and waiting < len(acked):
            time.sleep(1)
            metrics = urllib.request.urlopen(urllib.request.Request(
                f"http://127.0.0.1:{admin}/metrics",
                headers={"Authorization": f"Bearer {TOKEN}"})).read().decode()
            found = re.search(r'porter_consumer_lag\{destination="crm"\} (\d+)', metrics)
            waiting = int(found.group(1)) if found else 0
        print(f"events acknowledged: {len(acked)} in {sent_in:.1f} s "
              f"({len(acked) / sent_in:.0f} events/s, statuses {report['statuses']})")
        print(f"on disk at the kill: {size:.0f} MiB; porter's RSS before the kill {before:.0f} MiB")
        print(f"restart after SIGKILL: ready (/readyz 200) after {elapsed:.2f} s; replay: "
              f"{replay.get('records')} records in {replay.get('ms')} ms "
              f"(torn bytes cut: {replay.get('torn_bytes')}); RSS {after:.0f} MiB "
              f"(peak {peak:.0f} MiB)")
        print(f"events waiting for the paused destination after the restart: {waiting}")
        if waiting < len(acked):
            print(f"FAIL: {len(acked) - waiting} acknowledged events are not scheduled")
            sys.exit(1)
    finally:
        if process:
            stop(process)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
