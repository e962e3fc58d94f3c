"""Rate limits as token buckets on an injected clock (no I/O, no wall clock of their own)."""

from __future__ import annotations

from collections import OrderedDict

from assistant.errors import ConfigError


class TokenBucket:
    """``rate_per_s`` tokens a second, at most ``burst`` saved; :meth:`take` spends them."""

    def __init__(self, rate_per_s: float, burst: float, now_s: float):
        if rate_per_s <= 0 or burst <= 0:
            raise ConfigError(f"a token bucket needs rate_per_s > 0 and burst > 0, got "
                              f"{rate_per_s} and {burst}")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._tokens = burst
        self._updated_s = now_s

    def _refill(self, now_s: float) -> None:
        elapsed = max(0.0, now_s - self._updated_s)
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate_per_s)
        self._updated_s = max(now_s, self._updated_s)

    def take(self, amount: float, now_s: float) -> bool:
        """Spend ``amount`` tokens if there are enough; False (nothing spent) otherwise."""
        self._refill(now_s)
        if self._tokens < amount:
            return False
        self._tokens -= amount
        return True

    def retry_after_s(self, amount: float, now_s: float) -> float:
        """Seconds until ``amount`` tokens will be there."""
        self._refill(now_s)
        return max(0.0, (amount - self._tokens) / self.rate_per_s)


class KeyedLimiter:
    """One :class:`TokenBucket` per key (API key id or address), least recent ones forgotten."""

    def __init__(self, rate_per_s: float, burst: float, max_keys: int = 10000):
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, key: str, now_s: float, amount: float = 1.0) -> bool:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(self.rate_per_s, self.burst, now_s)
            self._buckets[key] = bucket
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(key)
        return bucket.take(amount, now_s)

    def exhausted(self, key: str, now_s: float) -> bool:
        """Whether ``take`` would refuse ``key`` now (nothing is spent)."""
        bucket = self._buckets.get(key)
        return bucket is not None and bucket.retry_after_s(1.0, now_s) > 0

    def retry_after_s(self, key: str, now_s: float) -> float:
        bucket = self._buckets.get(key)
        return bucket.retry_after_s(1.0, now_s) if bucket else 0.0

    def __len__(self) -> int:
        return len(self._buckets)
