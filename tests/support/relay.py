"""A loopback TCP relay to PostgreSQL that a test can cut and restore: a database outage without root."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import make_url


class TcpRelay:
    """127.0.0.1:<port> relayed to the database on a thread of its own (the app blocks its loop on
    database calls). close() makes the database unreachable for whoever connects through it: new
    connections are refused and open ones cut; reopen() serves the same port again."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self._target = (target_host, target_port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        # each connection through the relay: the caller's end and, once connected, the database's end
        self._connections: dict[asyncio.StreamWriter, asyncio.StreamWriter | None] = {}
        self.port = 0

    def start(self) -> None:
        self._thread.start()
        self.reopen()

    def reopen(self) -> None:
        """Listen again, on the port callers already hold in their URLs."""
        if self._server is None:
            asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=10)

    def close(self) -> int:
        """Refuse new connections and cut the open ones; returns how many were cut."""
        if self._server is None:
            return 0
        return asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)

    def stop(self) -> None:
        self.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> int:
        assert self._server is not None
        self._server.close()
        cut = list(self._connections.items())
        for caller, database in cut:  # abort, as a network failure would: nothing more is delivered
            caller.transport.abort()
            if database is not None:
                database.transport.abort()
        await self._server.wait_closed()
        self._server = None
        return len(cut)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections[writer] = None  # known before connecting on: a close() meanwhile cuts it too
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            self._connections.pop(writer, None)
            return
        if writer.transport.is_closing():  # cut while it was connecting
            up_writer.transport.abort()
            self._connections.pop(writer, None)
            return
        self._connections[writer] = up_writer

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                dst.close()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            self._connections.pop(writer, None)


@contextmanager
def relayed(url: str) -> Iterator[tuple[str, TcpRelay]]:
    """The database URL rewritten to go through a fresh relay on 127.0.0.1, and the relay."""
    parsed = make_url(url)
    relay = TcpRelay(parsed.port or 5432, parsed.host or "127.0.0.1")
    relay.start()
    try:
        yield parsed.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False), relay
    finally:
        relay.stop()
