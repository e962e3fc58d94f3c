"""The server: ``assistant serve`` (WebSocket protocol in ``docs/protocol.md``).

:mod:`serving.services` holds what every listener shares and no transport (the model
catalogue, the inference pool, metrics, auth, limits, the pipeline's gates and sinks);
listeners are shells over it, named in :data:`serving.server.LISTENERS`: the WebSocket v1
protocol is :mod:`serving.ws` (accept, connection, a pure session state machine, HTTP).
:class:`serving.server.App` puts them together and runs their lifecycle.
"""
