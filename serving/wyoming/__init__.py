"""The Wyoming listener (Home Assistant's speech protocol), a shell over the server's services.

* :mod:`serving.wyoming.listener` accepts connections and runs each one's handler;
* :mod:`serving.wyoming.session` is its pure state machine (events in, actions out).

Started by ``assistant serve --wyoming-uri tcp://HOST:PORT`` or ``assistant wyoming``.
"""

from .listener import WyomingListener

__all__ = ["WyomingListener"]
