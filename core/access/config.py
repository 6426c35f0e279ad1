"""Who may see the dashboard: the ``[auth]`` section of a secrets file, checked so that any
mistake closes the door instead of opening it.

    [auth]                          # a shared password
    password = "a-long-passphrase"
    session_hours = 12              # optional: how long a sign-in lasts (default 12)

    [auth]                          # or single sign-on (OpenID Connect, Streamlit's st.login)
    redirect_uri = "https://segments.example.com/oauth2callback"
    cookie_secret = "a-long-random-string"
    client_id = "..."
    client_secret = "..."
    server_metadata_url = "https://accounts.example.com/.well-known/openid-configuration"
    # (or one table per provider: [auth.google] client_id = ..., [auth.okta] ...)

``check_auth(secrets)`` returns an ``AuthConfig`` whose ``method`` is ``none`` (no sign-in: no
``[auth]`` and nothing that looks like an attempt at one), ``password``, ``oidc``, or ``broken``
with ``error`` saying exactly what is wrong. Broken means: the file is not valid TOML; ``[auth]``
is empty, misspelt (``[Auth]``, ``[authentication]``) or not a table; a key is unknown or
misspelt (``pasword``); the password is empty or not text; a password sits outside ``[auth]``;
a password and single sign-on are both given; single sign-on lacks a required key. A broken
configuration serves no data at all.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

PASSWORD_KEYS = ("password", "session_hours")
OIDC_KEYS = ("redirect_uri", "cookie_secret", "client_id", "client_secret", "server_metadata_url",
             "client_kwargs", "expose_tokens")
PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url", "client_kwargs",
                 "expose_tokens")
OIDC_REQUIRED = ("redirect_uri", "cookie_secret")
PROVIDER_REQUIRED = ("client_id", "client_secret", "server_metadata_url")
DEFAULT_SESSION_HOURS = 12.0
_AUTH_LOOKALIKES = ("authentication", "authorization", "authorisation", "login", "signin",
                    "sign_in", "sign-in", "access")


@dataclass(frozen=True)
class AuthConfig:
    method: str                        # none | password | oidc | broken
    source: str                        # where it was read (a file, "Streamlit secrets")
    error: str | None = None           # what is wrong (method == "broken")
    password: str | None = None
    session_hours: float = DEFAULT_SESSION_HOURS
    providers: tuple[str, ...] = ()    # named OIDC providers ([auth.NAME]); () = the default one
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def describe(self) -> str:
        if self.method == "password":
            return f"password sign-in (from {self.source})"
        if self.method == "oidc":
            who = ", ".join(self.providers) if self.providers else "the configured provider"
            return f"single sign-on with {who} (from {self.source})"
        if self.method == "broken":
            return f"BROKEN, serving no data: {self.error}"
        return f"none: anyone who can reach the address sees the data ({self.source})"


def _broken(source: str, what: str) -> AuthConfig:
    return AuthConfig("broken", source, error=f"{source}: {what}")


def _near(word: str, other: str) -> bool:
    """Equal, one edit apart, or the same letters swapped ('auth' ~ 'aut', 'atuh', 'oauth')."""
    if sorted(word) == sorted(other):
        return True
    if abs(len(word) - len(other)) > 1:
        return False
    prev = list(range(len(other) + 1))
    for i, a in enumerate(word, 1):
        cur = [i]
        for j, b in enumerate(other, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a != b)))
        prev = cur
    return prev[-1] <= 1


def _suggest(word: str, options) -> str:
    m = difflib.get_close_matches(word.lower(), list(options), n=1, cutoff=0.6)
    return f" (did you mean '{m[0]}'?)" if m else ""


def check_auth(secrets: Mapping[str, Any] | None, source: str) -> AuthConfig:
    """Decide the sign-in method from parsed secrets; anything doubtful is ``broken``."""
    secrets = dict(secrets or {})
    auth = secrets.get("auth")
    if auth is None:
        for key in secrets:
            low = key.strip().lower()
            if low in _AUTH_LOOKALIKES or _near("auth", low):
                return _broken(source, f"the section [{key}] looks like a misspelt [auth]: write "
                                       f"it exactly [auth] (lower case), or the dashboard would "
                                       f"be open to everyone.")
            if low in ("password", "passwd", "pass", "pasword", "passwort") or key in OIDC_KEYS:
                return _broken(source, f"'{key}' is outside any section: put it under [auth] "
                                       f"(a line [auth] above it).")
        return AuthConfig("none", source)
    if not isinstance(auth, Mapping):
        return _broken(source, "auth must be a section ([auth] on its own line, then key = value "
                               "lines), not a single value.")
    auth = dict(auth)
    if not auth:
        return _broken(source, "[auth] is empty. Set password = \"...\" under it (or the single "
                               "sign-on keys), or remove the section to open the dashboard to "
                               "everyone who can reach it.")
    providers = {k: v for k, v in auth.items() if isinstance(v, Mapping)}
    flat = {k: v for k, v in auth.items() if k not in providers}
    known = set(PASSWORD_KEYS) | set(OIDC_KEYS)
    for key in flat:
        if key not in known:
            return _broken(source, f"[auth] has an unknown key '{key}'{_suggest(key, known)}. "
                                   f"Known keys: password (and session_hours), or {', '.join(OIDC_KEYS)}.")
    if "password" in flat:
        oidc_given = [k for k in flat if k in OIDC_KEYS] + list(providers)
        if oidc_given:
            return _broken(source, f"[auth] has both a password and single sign-on keys "
                                   f"({', '.join(oidc_given)}): keep one of the two.")
        pw = flat["password"]
        if not isinstance(pw, str):
            return _broken(source, "[auth] password must be text in quotes, e.g. password = \"...\".")
        if not pw.strip():
            return _broken(source, "[auth] password is empty. Set a password (at least 8 "
                                   "characters), or remove [auth] to open the dashboard to everyone.")
        hours = flat.get("session_hours", DEFAULT_SESSION_HOURS)
        if isinstance(hours, bool) or not isinstance(hours, (int, float)) or not 0 < hours <= 24 * 90:
            return _broken(source, f"[auth] session_hours must be a number of hours between 0 and "
                                   f"2160 (got {hours!r}).")
        warn = ("the password is shorter than 8 characters; a longer one is much harder to guess",) \
            if len(pw) < 8 else ()
        return AuthConfig("password", source, password=pw, session_hours=float(hours),
                          warnings=warn)
    if "session_hours" in flat:
        return _broken(source, "[auth] session_hours applies to a password, and no password is set.")
    missing = [k for k in OIDC_REQUIRED if not str(flat.get(k) or "").strip()]
    if missing:
        return _broken(source, f"[auth] single sign-on needs {', '.join(missing)} (or set password "
                               f"= \"...\" for a shared password).")
    for name, section in providers.items():
        bad = [k for k in section if k not in PROVIDER_KEYS]
        if bad:
            return _broken(source, f"[auth.{name}] has an unknown key '{bad[0]}'"
                                   f"{_suggest(bad[0], PROVIDER_KEYS)}.")
        if "_" in name:
            return _broken(source, f"[auth.{name}]: provider names cannot contain '_'.")
    targets = {f"auth.{n}": dict(s) for n, s in providers.items()} or {"auth": flat}
    for where, section in targets.items():
        lacking = [k for k in PROVIDER_REQUIRED if not str(section.get(k) or "").strip()]
        if lacking:
            return _broken(source, f"[{where}] single sign-on needs {', '.join(lacking)}.")
    return AuthConfig("oidc", source, providers=tuple(providers))


def load_file(path: str | os.PathLike) -> AuthConfig:
    """The sign-in configuration of one secrets file (a file that cannot be read is broken)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        return _broken(str(p), "the secrets file does not exist.")
    except (OSError, UnicodeDecodeError) as e:
        return _broken(str(p), f"the secrets file cannot be read ({e}).")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        return _broken(str(p), f"not valid TOML ({e}). Fix the file; until then no data is served.")
    return check_auth(data, str(p))


def candidate_files(cwd: Path | None = None, install_dir: Path | None = None) -> list[Path]:
    """Where ``segstudio serve`` looks for secrets, in order: the working folder's
    .streamlit/secrets.toml, the install folder's, then the user's ~/.streamlit/secrets.toml."""
    out = [(cwd or Path.cwd()) / ".streamlit" / "secrets.toml"]
    if install_dir is not None:
        out.append(install_dir / ".streamlit" / "secrets.toml")
    out.append(Path.home() / ".streamlit" / "secrets.toml")
    seen, result = set(), []
    for p in out:
        r = p.resolve()
        if r not in seen:
            seen.add(r)
            result.append(r)
    return result


_cache: dict[str, tuple[tuple, AuthConfig]] = {}


def load_cached(path: str | os.PathLike | None) -> AuthConfig:
    """``load_file`` re-read only when the file changes (checked on every call: an edit to the
    secrets takes effect at once, a broken edit closes the door at once)."""
    if not path:
        return AuthConfig("none", "no secrets file")
    p = Path(path)
    try:
        st = p.stat()
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
    except OSError:
        key = None
    hit = _cache.get(str(p))
    if hit and hit[0] == key and key is not None:
        return hit[1]
    cfg = load_file(p)
    _cache[str(p)] = (key, cfg)
    return cfg
