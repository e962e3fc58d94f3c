"""Who is calling: API keys (``Authorization: Bearer KEY``) and short-lived signed tokens.

Browsers cannot set headers on a WebSocket, so a page trades a key for a token
(``POST /v1/token``) and connects with ``?token=...``. A token is
``v1.<payload>.<signature>``: base64url JSON ``{"kid": key id, "exp": unix seconds}`` and its
HMAC-SHA256 under the server's token secret. Pure functions of their inputs and a clock value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

TOKEN_PREFIX = "v1"


@dataclass(frozen=True)
class Refusal:
    """Why a caller was not let in: bad credentials, or too many bad ones from its address."""

    rate_limited: bool
    retry_after_s: float | None = None


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: ``key_id`` names the key (never the key itself)."""

    key_id: str
    via: str  # "key", "token" or "anonymous" (no keys configured)


def key_id(key: str) -> str:
    """A stable, non-secret name for a key (logs, rate limits, metrics)."""
    return "k-" + hashlib.sha256(key.encode()).hexdigest()[:10]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def bearer(authorization: str | None) -> str | None:
    """The credential of an ``Authorization: Bearer X`` header, or None."""
    if not authorization:
        return None
    scheme, _, credential = authorization.strip().partition(" ")
    return credential.strip() or None if scheme.lower() == "bearer" else None


class Authenticator:
    """Checks keys and tokens; with no keys configured everyone is ``anonymous``."""

    def __init__(self, keys: Iterable[str], secret: bytes | None = None, ttl_s: float = 300.0):
        self._keys = {key_id(k): k.encode() for k in keys}
        self._secret = secret or secrets.token_bytes(32)
        self.ttl_s = ttl_s

    @property
    def required(self) -> bool:
        return bool(self._keys)

    def check_key(self, key: str | None) -> Principal | None:
        if key is None:
            return None
        candidate = key.encode("utf-8", "surrogateescape")
        found = None
        for kid, known in self._keys.items():  # compare with every key: no early exit
            if hmac.compare_digest(candidate, known):
                found = kid
        return Principal(found, "key") if found else None

    def issue_token(self, principal: Principal, now_s: float) -> tuple[str, float]:
        """A token for ``principal`` and its expiry (unix seconds)."""
        expires = now_s + self.ttl_s
        payload = _b64(json.dumps({"kid": principal.key_id, "exp": round(expires)},
                                  separators=(",", ":")).encode())
        return f"{TOKEN_PREFIX}.{payload}.{self._sign(payload)}", expires

    def check_token(self, token: str | None, now_s: float) -> Principal | None:
        if not token:
            return None
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
            return None
        payload, signature = parts[1], parts[2]
        # Bytes, not str: compare_digest refuses non-ASCII text, and a token is whatever a
        # client put in the URL.
        if not hmac.compare_digest(signature.encode("utf-8", "surrogateescape"),
                                   self._sign(payload).encode("ascii")):
            return None
        try:
            claims = json.loads(_unb64(payload))
            kid, expires = str(claims["kid"]), float(claims["exp"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None
        if expires < now_s or kid not in self._keys:  # expired, or its key was removed
            return None
        return Principal(kid, "token")

    def authenticate(self, authorization: str | None, token: str | None,
                     now_s: float) -> Principal | None:
        """The caller of a request, or None when credentials are required and not valid."""
        if not self.required:
            return Principal("anonymous", "anonymous")
        return self.check_key(bearer(authorization)) or self.check_token(token, now_s)

    def _sign(self, payload: str) -> str:
        digest = hmac.new(self._secret, f"{TOKEN_PREFIX}.{payload}".encode(
            "utf-8", "surrogateescape"), hashlib.sha256)
        return _b64(digest.digest())


def host_allowed(host: str | None, allowed: frozenset[str]) -> bool:
    """Whether a keyless server should answer a request for ``Host: host``.

    DNS rebinding points an attacker's name at 127.0.0.1, so a page of that name can talk to
    a local server as "its own origin"; the request still carries the attacker's name as its
    Host. IP addresses, ``localhost`` (and ``*.localhost``) and the ``allowed`` names are
    answered; other names are not.
    """
    if "*" in allowed:
        return True
    if not host:
        return False
    name = host.strip().lower()
    if name.startswith("["):  # [v6]:port
        name = name[1:].partition("]")[0]
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    name = name.rstrip(".")
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    return name == "localhost" or name.endswith(".localhost") or name in allowed
