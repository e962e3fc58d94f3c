"""The streaming server: ``assistant serve`` (WebSocket protocol in ``docs/protocol.md``).

Thin asyncio shells (:mod:`serving.server`, :mod:`serving.connection`, :mod:`serving.http`)
around pure pieces (:mod:`serving.session`, :mod:`serving.auth`, :mod:`serving.limits`,
:mod:`serving.metrics`) and the core's :class:`~assistant.stream.Segmenter`.
"""
