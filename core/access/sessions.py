"""Signed session cookies and the rate limit on wrong passwords.

A signed-in browser holds ``segstudio_session = <issued>.<nonce>.<mac>``, an HttpOnly cookie whose
MAC is HMAC-SHA256 over ``<issued>.<nonce>`` with a key derived from a secret made when the
server starts and from the password. So a session ends when it is older than ``session_hours``,
when the password changes, or when the server restarts; a forged or edited cookie never passes.

Wrong passwords are slowed down per browser session (a cookie set on the sign-in page) and per
client address: after ``free`` failures in a row, each further attempt must wait a delay that
doubles every time (2 s, 4 s, 8 s ... up to ``cap``). Attempts made during the wait are refused
without even checking the password; a correct password clears the count.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from typing import Callable, Iterable

SESSION_COOKIE = "segstudio_session"
ATTEMPT_COOKIE = "segstudio_signin"


class SessionSigner:
    def __init__(self, secret: bytes | None = None, clock: Callable[[], float] = time.time):
        self._secret = secret or secrets.token_bytes(32)
        self._clock = clock

    def _key(self, password: str) -> bytes:
        return hmac.new(self._secret, password.encode("utf-8"), hashlib.sha256).digest()

    def issue(self, password: str) -> str:
        payload = f"{int(self._clock())}.{secrets.token_urlsafe(16)}"
        mac = hmac.new(self._key(password), payload.encode(), hashlib.sha256).hexdigest()
        return f"{payload}.{mac}"

    def valid(self, token: str | None, password: str, max_age_s: float) -> bool:
        if not token or not password or token.count(".") != 2:
            return False
        issued, nonce, mac = token.split(".")
        want = hmac.new(self._key(password), f"{issued}.{nonce}".encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(mac, want):
            return False
        try:
            age = self._clock() - int(issued)
        except ValueError:
            return False
        return -60 <= age <= max_age_s


# One signer per server process: the sign-in gate issues cookies, the app's script checks them.
DEFAULT_SIGNER = SessionSigner()


class SignInLimiter:
    """Growing delays after wrong passwords, per key (a browser session, a client address)."""

    def __init__(self, free: int = 3, base_s: float = 2.0, cap_s: float = 300.0,
                 forget_s: float = 3600.0, max_keys: int = 20_000,
                 clock: Callable[[], float] = time.monotonic):
        self.free, self.base_s, self.cap_s, self.forget_s = free, base_s, cap_s, forget_s
        self.max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()
        self._state: OrderedDict[str, tuple[int, float, float]] = OrderedDict()  # fails, until, last

    def delay_after(self, failures: int) -> float:
        if failures < self.free:
            return 0.0
        return min(self.cap_s, self.base_s * 2 ** (failures - self.free))

    def _get(self, key: str, now: float) -> tuple[int, float, float]:
        fails, until, last = self._state.get(key, (0, 0.0, now))
        if now - last > self.forget_s and now >= until:
            return 0, 0.0, now
        return fails, until, last

    def wait(self, keys: Iterable[str]) -> float:
        """Seconds before the next attempt is allowed for these keys (0: now)."""
        now = self._clock()
        with self._lock:
            return max([0.0] + [self._get(k, now)[1] - now for k in keys if k])

    def failure(self, keys: Iterable[str]) -> float:
        """Record a wrong password; returns the wait now imposed."""
        now = self._clock()
        waits = [0.0]
        with self._lock:
            for k in keys:
                if not k:
                    continue
                fails = self._get(k, now)[0] + 1
                until = now + self.delay_after(fails)
                self._state[k] = (fails, until, now)
                self._state.move_to_end(k)
                waits.append(until - now)
            while len(self._state) > self.max_keys:
                self._state.popitem(last=False)
        return max(waits)

    def success(self, keys: Iterable[str]) -> None:
        with self._lock:
            for k in keys:
                self._state.pop(k, None)

    def failures(self, key: str) -> int:
        with self._lock:
            return self._get(key, self._clock())[0]
