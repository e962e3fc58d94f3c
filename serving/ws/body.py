"""Request bodies for the few HTTP endpoints that take one, on the WebSocket port.

websockets parses HTTP requests for the opening handshake only, and a handshake has no body,
so it reads none: bytes after the headers would be taken for WebSocket frames. This
connection class (websockets' ``create_connection`` hook) holds the first bytes of each
connection until the headers are complete; for a PUT or POST with ``Content-Length`` it also
waits for that many bytes (at most :data:`MAX_BODY_BYTES`), keeps them as
:attr:`BodyReadingConnection.request_body`, and hands websockets the request without them
(and without its Content-Length and Expect headers, which websockets would refuse).
``Expect: 100-continue`` is answered so that clients like curl send the body at once.
Everything after the first request goes to websockets untouched.
"""

from __future__ import annotations

from typing import Any

from websockets.asyncio.server import ServerConnection

MAX_BODY_BYTES = 1 << 20  # slot value lists: 10,000 names fit many times over
DRAIN_BYTES = 1 << 24  # a larger body is still received (and dropped) up to this before the
# 413, so that a client still sending it reads the answer instead of a reset connection
MAX_HEAD_BYTES = 1 << 16  # beyond this websockets refuses the headers itself


class BodyReadingConnection(ServerConnection):
    """See module docs."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.request_body = b""
        self.body_too_large = False
        self._head = bytearray()
        self._passing = False
        self._discarding = False  # the rest of a body too large to read: never parsed
        self._skip = 0  # bytes of a too-large body still to drop before answering
        self._skipped_head = b""
        self._continued = False

    def data_received(self, data: bytes) -> None:
        if self._skip:
            self._skip = max(0, self._skip - len(data))
            if not self._skip:
                self._release(self._skipped_head)
                self._discarding = True
            return
        if self._discarding:
            return
        if self._passing:
            super().data_received(data)
            return
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            if len(self._head) > MAX_HEAD_BYTES:
                self._release(bytes(self._head))
            return
        head, rest = bytes(self._head[: end + 4]), bytes(self._head[end + 4 :])
        length, expect = _length(head)
        if length > MAX_BODY_BYTES:
            self.body_too_large = True  # answered 413 once the body is in (up to DRAIN_BYTES)
            self._skipped_head = _without_body_headers(head)
            # A client that waits for 100-continue gets the 413 instead and sends nothing.
            self._skip = 0 if expect else max(0, min(length, DRAIN_BYTES) - len(rest))
            if not self._skip:
                self._release(self._skipped_head)
                self._discarding = True
            else:
                self._head.clear()
            return
        if len(rest) < length:
            if expect and not self._continued:
                self._continued = True
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            return
        self.request_body = rest[:length]
        self._release(_without_body_headers(head) + rest[length:])

    def _release(self, data: bytes) -> None:
        self._passing = True
        self._head.clear()
        super().data_received(data)


def _without_body_headers(head: bytes) -> bytes:
    """The request head without Content-Length and Expect (websockets refuses a request
    that announces a body; the body was taken off already)."""
    lines = head.split(b"\r\n")
    kept = [ln for ln in lines if ln.split(b":", 1)[0].strip().lower()
            not in (b"content-length", b"expect")]
    return b"\r\n".join(kept)


def _length(head: bytes) -> tuple[int, bool]:
    """The body length a PUT or POST announces (0 for others or none), and whether it asks
    for ``100-continue``."""
    lines = head.split(b"\r\n")
    method = lines[0].split(b" ", 1)[0].upper()
    if method not in (b"PUT", b"POST"):
        return 0, False
    length, expect = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            try:
                length = max(0, int(value.strip()))
            except ValueError:
                length = 0
        elif name == b"expect" and value.strip().lower() == b"100-continue":
            expect = True
    return length, expect
