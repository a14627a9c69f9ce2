"""A minimal keep-alive HTTP/1.1 client on asyncio streams: POST JSON, read the status and body.

The load generator's hot path. One instance is one connection used by one coroutine at a time
(a closed-loop client), reconnecting when the server closes it. It speaks exactly what a JSON
API needs: ``Content-Length`` or ``chunked`` response bodies, ``Connection: close``; anything
else is a :class:`ProtocolError`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit


class HttpError(Exception):
    """A request failed without an HTTP status (the load generator counts it by class name)."""


class ConnectError(HttpError):
    """The server could not be reached."""


class ReadTimeout(HttpError):
    """No complete answer within the timeout."""


class ProtocolError(HttpError):
    """The server closed the connection or sent something that is not an HTTP/1.1 response."""


class RawHttpClient:
    """POST JSON bodies to one ``http://host:port/path`` URL over a single keep-alive connection."""

    def __init__(self, url: str, *, timeout_s: float = 30.0, media_type: str = "application/json") -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"url={url!r}: the raw client speaks plain http://host[:port]/path only")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.timeout_s = timeout_s
        self._head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUser-Agent: mlhpc-loadgen\r\n"
            f"Accept: {media_type}\r\nContent-Type: {media_type}\r\n"
        ).encode("ascii")
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post_json(self, payload: dict[str, Any]) -> int:
        """Send one request and return the response's status code (the body is read and dropped)."""
        status, _ = await self.post(json.dumps(payload, separators=(",", ":")).encode())
        return status

    async def post(self, body: bytes) -> tuple[int, bytes]:
        """Send ``body`` (already in the client's media type) as a POST; return (status, response body)."""
        try:
            return await asyncio.wait_for(self._exchange(body), timeout=self.timeout_s)
        except TimeoutError as err:
            self.close()
            raise ReadTimeout(f"no answer within {self.timeout_s} s") from err
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as err:
            self.close()
            raise ProtocolError(str(err) or type(err).__name__) from err

    async def _exchange(self, body: bytes) -> tuple[int, bytes]:
        if self._writer is None:
            try:
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            except OSError as err:
                raise ConnectError(f"{self.host}:{self.port}: {err}") from err
        assert self._reader is not None
        self._writer.write(self._head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        head = await self._reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        if not version.startswith("HTTP/1."):
            raise ProtocolError(f"not an HTTP/1.x status line: {lines[0]!r}")
        status = int(rest[:3])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            data = await self._read_chunked()
        else:
            data = await self._reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close" or version == "HTTP/1.0":
            self.close()
        return status, data

    async def _read_chunked(self) -> bytes:
        assert self._reader is not None
        chunks: list[bytes] = []
        while True:
            size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self._reader.readuntil(b"\r\n")  # no trailers expected: the final CRLF
                return b"".join(chunks)
            chunks.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)

    def close(self) -> None:
        """Drop the connection (the next request opens a new one)."""
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None
