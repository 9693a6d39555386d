"""The load client (drain test): keep-alive load over N connections on an
asyncio loop in its own thread, counting every request by outcome."""

import asyncio
import json
import threading
import time

from .proc import IO_TIMEOUT


class LoadClient:
    """Keep-alive load over N connections on an asyncio loop in its own thread,
    counting every request:
      sent          requests written to a connection
      by_status     responses received, by "status" or "status reason"
      refused       connection attempts refused (nothing was sent)
      unaccepted    a brand-new connection reset before its first response:
                    the kernel accepted it into the listen backlog but the
                    gateway closed its listener before accepting it
      lost          requests written on an accepted connection that got no
                    response (EOF, reset, or timeout): must be 0
    A worker reconnects after `Connection: close` and stops when refused."""

    def __init__(self, host, port, request_bytes, connections, max_requests):
        self.host = host
        self.port = port
        self.req = request_bytes
        self.connections = connections
        self.max_requests = max_requests
        self.sent = 0
        self.responses = 0
        self.by_status = {}
        self.refused = 0
        self.unaccepted = 0
        self.lost = 0
        self.lost_details = []  # (monotonic time, description)
        self.connect_errors = []
        self.late_draining = []  # monotonic times of 503 draining responses
        self.stop = False
        self.thread = threading.Thread(target=self._main, daemon=True)

    def start(self):
        self.thread.start()

    def join(self, timeout):
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def _main(self):
        asyncio.run(self._run())

    async def _run(self):
        await asyncio.gather(*(self._worker(i) for i in range(self.connections)))

    async def _read_response(self, reader):
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        h = {}
        for ln in lines[1:]:
            if ln:
                k, _, v = ln.partition(":")
                h[k.strip().lower()] = v.strip()
        if "chunked" in h.get("transfer-encoding", "").lower():
            body = b""
            while True:
                n = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
                if n == 0:
                    while (await reader.readuntil(b"\r\n")) != b"\r\n":
                        pass
                    break
                body += await reader.readexactly(n)
                await reader.readexactly(2)
        elif "content-length" in h:
            body = await reader.readexactly(int(h["content-length"]))
        else:
            body = await reader.read()
        return status, h, body

    async def _worker(self, i):
        while not self.stop and self.sent < self.max_requests:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port), IO_TIMEOUT)
            except ConnectionRefusedError:
                self.refused += 1
                return
            except (OSError, asyncio.TimeoutError) as e:
                self.connect_errors.append(repr(e))
                return
            fresh = True
            try:
                while not self.stop and self.sent < self.max_requests:
                    writer.write(self.req)
                    self.sent += 1
                    try:
                        await writer.drain()
                        status, h, body = await asyncio.wait_for(self._read_response(reader),
                                                                 IO_TIMEOUT * 2)
                    except ConnectionResetError as e:
                        if fresh:
                            self.unaccepted += 1
                        else:
                            self.lost += 1
                            self.lost_details.append((time.monotonic(), "worker %d: %r" % (i, e)))
                        break
                    except (asyncio.IncompleteReadError, OSError, asyncio.TimeoutError,
                            ValueError, IndexError) as e:
                        self.lost += 1
                        self.lost_details.append(
                            (time.monotonic(), "worker %d (fresh=%s): %r" % (i, fresh, e)))
                        break
                    fresh = False
                    self.responses += 1
                    key = str(status)
                    if status != 200:
                        try:
                            key += " " + str(json.loads(body).get("reason"))
                        except ValueError:
                            key += " non-json"
                    if key == "503 draining":
                        self.late_draining.append(time.monotonic())
                    self.by_status[key] = self.by_status.get(key, 0) + 1
                    if "close" in h.get("connection", "").lower():
                        break
            finally:
                writer.close()
                try:
                    await writer.wait_closed()
                except OSError:
                    pass
