"""Processes for the benchmark and the fault suite: free ports, waiting, stopping by pid, and a
throwaway redis-server. Only processes started through here are ever stopped."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port, process, what):
    for _ in range(200):
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} does not listen on {port}")


def cpu_seconds(pid):
    """User plus system CPU time a running process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(process):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Redis:
    """A redis-server on a free loopback port with its own directory; restartable on the same
    port and directory (so an AOF survives a kill)."""

    def __init__(self, work, extra, port=None):
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(dir=work)
        self.extra = extra
        self.start()

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--dir", self.dir, "--logfile", os.path.join(self.dir, "redis.log")] + self.extra)
        wait_for(self.port, self.process, "redis-server")

    def kill(self):
        """SIGKILL: no chance to flush anything."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def cli(self, *args):
        return subprocess.run(["redis-cli", "-p", str(self.port), "--raw"] + list(args),
                              check=True, capture_output=True, text=True).stdout

    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def close(self):
        stop(self.process)
        shutil.rmtree(self.dir, ignore_errors=True)


def ready(port):
    """Waits for porter's /readyz (the store answers)."""
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /readyz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit("porter never became ready")
