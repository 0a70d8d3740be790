"""A small TCP load balancer for the fault suite's rolling upgrade (bench/faults.py).

Each new client connection goes to the next backend, in turn, among those whose `/readyz`
answered 200 at the last check (every 100 ms); a backend that refuses the connection is
skipped and the next one tried. Bytes are copied both ways until either side closes, then
both are closed: like a layer-4 load balancer with health checks (an AWS NLB, HAProxy in TCP
mode, a Kubernetes Service whose endpoints follow readiness). Runs in a thread of its own.
"""

import asyncio
import threading

from procs import free_port

CHECK_EVERY = 0.1


class Balancer:
    def __init__(self, backends):
        self.backends = list(backends)
        self.ready = set(self.backends)
        self.port = free_port()
        self.turn = 0
        self.routed = {port: 0 for port in self.backends}
        self.no_backend = 0
        self.loop = asyncio.new_event_loop()
        started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self.thread.start()
        started.wait(5)

    def _run(self, started):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", self.port))
        self.checks = self.loop.create_task(self._check_forever())
        started.set()
        self.loop.run_forever()

    async def _check_forever(self):
        while True:
            for port in self.backends:
                if await self._is_ready(port):
                    self.ready.add(port)
                else:
                    self.ready.discard(port)
            await asyncio.sleep(CHECK_EVERY)

    @staticmethod
    async def _is_ready(port):
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port), 1)
        except (OSError, asyncio.TimeoutError):
            return False
        try:
            writer.write(b"GET /readyz HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n")
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), 1)
            return line.startswith(b"HTTP/1.1 200")
        except (OSError, asyncio.TimeoutError):
            return False
        finally:
            writer.close()

    async def _client(self, client_reader, client_writer):
        backend = None
        candidates = [p for p in self.backends if p in self.ready] or list(self.backends)
        for attempt in range(len(candidates)):
            port = candidates[(self.turn + attempt) % len(candidates)]
            try:
                backend = await asyncio.open_connection("127.0.0.1", port)
                self.turn += attempt + 1
                self.routed[port] += 1
                break
            except OSError:
                self.ready.discard(port)
        if backend is None:
            self.no_backend += 1
            client_writer.close()
            return
        backend_reader, backend_writer = backend

        async def pipe(reader, writer):
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except OSError:
                pass
            finally:
                writer.close()

        await asyncio.gather(pipe(client_reader, backend_writer),
                             pipe(backend_reader, client_writer))

    def close(self):
        def stop():
            self.checks.cancel()
            self.server.close()
            self.loop.stop()
        self.loop.call_soon_threadsafe(stop)
        self.thread.join(5)
