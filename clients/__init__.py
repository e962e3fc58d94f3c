"""Clients of the streaming server: the Python SDK (`clients.sdk`) and `assistant mic`."""
