"""The WebSocket v1 listener: the protocol of docs/protocol.md, the HTTP endpoints and the
browser page on one port, as a shell over the server's services (:mod:`serving.services`).

* :mod:`serving.ws.listener` accepts connections (auth, limits) and runs their lifecycle;
* :mod:`serving.ws.connection` is the asyncio reader/sender of one connection;
* :mod:`serving.ws.session` is its pure state machine (frames in, actions out);
* :mod:`serving.ws.http` answers plain HTTP requests on the same port.
"""

from .listener import WebSocketListener

__all__ = ["WebSocketListener"]
