#!/usr/bin/env python3
"""porter's image, run: deploy/image/test builds it (debug binary by default) and runs this.

Starts the image with podman (read-only root, the local store on a volume, host networking),
sends a signed request with `porter send` from outside and signed load with porter-load,
kills the container with SIGKILL under load, starts it again on the same volume, and checks
that every acknowledged event is stored exactly once. Also checks the image's health check,
user and that nothing but the volume was written. Only the container started here is removed.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from faults import SECRET, Failed, Load, check, exactly_once, statuses  # noqa: E402
from procs import free_port  # noqa: E402

UID = 65532
ADMIN_TOKEN = "image-test-admin-token-0123456789abcdef"


def podman(*args, check_rc=True):
    out = subprocess.run(["podman", *args], capture_output=True, text=True)
    if check_rc and out.returncode != 0:
        raise Failed(f"podman {' '.join(args)}: {out.stderr.strip()[:500]}")
    return out


def config(port, admin_port, store_path):
    return f"""[server]
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"
request_timeout = "3s"

[admin]
listen = "127.0.0.1:{admin_port}"
token = "{ADMIN_TOKEN}"

[store]
kind = "local"
path = "{store_path}"
retain_events = 10000000

[[sources]]
name = "whatsapp"
provider = "meta"
path = "/webhooks/whatsapp"
secrets = ["{SECRET}"]
"""


def ready(port, name, seconds=30):
    """Waits for /readyz through porter's own probe inside the container."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        probe = podman("exec", name, "/usr/local/bin/porter", "probe",
                       f"http://127.0.0.1:{port}/readyz", check_rc=False)
        if probe.returncode == 0:
            return
        time.sleep(0.2)
    logs = podman("logs", "--tail", "20", name, check_rc=False)
    raise Failed(f"porter in the container never became ready:\n{logs.stdout}{logs.stderr}")


def stored(name):
    """The provider event id of every event the store keeps, read by porter in the container
    (the store's directory is the container user's own; porter refuses another user's)."""
    out = podman("exec", name, "/usr/local/bin/porter", "events", "tail",
                 "--config", "/etc/porter/porter.toml", "--count", "10000000")
    return [json.loads(line)["providereventid"] for line in out.stdout.splitlines()
            if line.startswith("{")]


def run(args, work):
    data = os.path.join(work, "data")
    os.mkdir(data, 0o700)
    os.chown(data, UID, UID)
    port, admin_port = free_port(), free_port()
    inside = os.path.join(work, "porter.toml")
    outside = os.path.join(work, "host.toml")
    with open(inside, "w") as f:
        f.write(config(port, admin_port, "/var/lib/porter"))
    with open(outside, "w") as f:
        f.write(config(port, admin_port, data))
    os.chmod(inside, 0o644)

    inspect = json.loads(podman("image", "inspect", args.tag).stdout)[0]
    user = inspect["Config"].get("User")
    check(user == f"{UID}:{UID}", f"the image runs as {user!r}, not {UID}:{UID}")
    check(inspect.get("Healthcheck"), "the image has no health check")

    name = f"porter-image-test-{os.getpid()}"
    podman("run", "--detach", "--name", name, "--network", "host", "--read-only",
           "--volume", f"{data}:/var/lib/porter", "--volume", f"{inside}:/etc/porter/porter.toml:ro",
           args.tag)
    try:
        ready(port, name)
        sent = subprocess.run(
            [args.porter, "send", "whatsapp", os.path.join(ROOT, "fixtures/meta/text_message/body"),
             "--config", outside, "--url", f"127.0.0.1:{port}"],
            capture_output=True, text=True)
        check(sent.returncode == 0 and "200" in sent.stdout,
              f"porter send: {sent.returncode} {sent.stdout.strip()[:300]} {sent.stderr.strip()[:300]}")

        load = Load(args.load, work, port, seconds=8, rate=args.rate)
        time.sleep(3)
        podman("kill", "--signal", "KILL", name)
        time.sleep(1)
        podman("start", name)
        ready(port, name)
        report = load.finish()

        health = podman("healthcheck", "run", name, check_rc=False)
        check(health.returncode == 0, f"the health check failed: {health.stdout}{health.stderr}")
        changed = podman("diff", name).stdout.split()
        # The root is read-only: only the runtime's own mount points (/etc/hosts, /run,
        # the tmpfs it mounts on /tmp and /var/tmp) and the volume appear.
        unexpected = [path for path in changed if path not in ("C", "A", "D", "/var")
                      and not path.startswith(("/etc", "/run", "/tmp", "/var/tmp",
                                               "/var/lib/porter", "/dev"))]
        check(not unexpected, f"the container wrote outside its volume: {unexpected[:5]}")

        kept = stored(name)
        acked = report["acknowledged"]
        codes = statuses(report)
        check(len(acked) > 100, f"too little traffic to judge: {len(acked)} acknowledged")
        check(report["errors"] > 0, "the kill did not interrupt any request")
        check(set(codes) <= {200}, f"unexpected statuses {codes}")
        exactly_once(acked, kept)
        fixture = json.load(open(os.path.join(ROOT, "fixtures/meta/text_message/body")))
        sent_id = fixture["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
        check(sent_id in kept, f"the event porter send delivered ({sent_id}) is not stored")
        size = inspect.get("Size", 0)
        return (f"image {args.tag} ({size / 1024 / 1024:.1f} MiB, user {user}); {len(acked)} "
                f"acknowledged under load, the container killed and started again on its "
                f"volume: {len(kept)} stored, each once, the porter send event among them; "
                f"health check healthy")
    finally:
        podman("rm", "--force", name, check_rc=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="debug")
    parser.add_argument("--tag", default="porter:test")
    parser.add_argument("--rate", type=int, default=400)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    args.porter = os.path.join(ROOT, "target", args.profile, "porter")
    args.load = os.path.join(ROOT, "target", args.profile, "porter-load")
    work = tempfile.mkdtemp(prefix="porter-image-")
    os.chmod(work, 0o755)
    started = time.monotonic()
    try:
        outcome = run(args, work)
        print(f"ok    image ({time.monotonic() - started:.1f} s): {outcome}", flush=True)
        code = 0
    except Failed as failure:
        print(f"FAIL  image ({time.monotonic() - started:.1f} s): {failure}", flush=True)
        code = 1
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
