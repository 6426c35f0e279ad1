"""The sign-in gate: an ASGI middleware in front of Streamlit (see dashboard/server.py).

Why a gate in front of Streamlit
--------------------------------
Streamlit serves a page's files, downloads (``st.download_button``) and images from ``/media/...``
URLs answered by its web server, not by the app's script: a check inside the script protects what
the script draws, but not a download URL fetched by someone else. So every HTTP request and
websocket passes through this middleware first (Streamlit 1.6x runs on Starlette; ``st.App``
accepts middleware), and:

* password (``[auth] password``): nothing but the sign-in page and the health check is served
  without a valid signed session cookie (``core.access.sessions``). Pages redirect to
  ``/signin``; the app's websocket, ``/media/`` downloads, uploads and static files get 401/403.
  ``/signin`` rate-limits wrong passwords per browser and per client address; ``/signout`` ends
  the session. The app's script checks the same cookie again (``dashboard.common``).
* single sign-on (OIDC via ``st.login``): Streamlit's own login flow runs the pages, and this gate
  refuses ``/media/`` and uploads unless the request carries Streamlit's signed, logged-in user
  cookie.
* a broken configuration: every request gets a 503 page saying what is wrong (health excepted).
* no ``[auth]``: everything passes (the dashboard is open to whoever can reach it).

The configuration is re-read when the secrets file changes, so fixing or breaking it takes
effect at once.
"""

from __future__ import annotations

import hmac
import html
import json
import os
import secrets as _secrets
from typing import Callable
from urllib.parse import parse_qs, quote

from core.access import AuthConfig, load_cached
from core.access.sessions import (ATTEMPT_COOKIE, DEFAULT_SIGNER, SESSION_COOKIE, SessionSigner,
                                  SignInLimiter)

SIGNIN, SIGNOUT = "/signin", "/signout"
OPEN_PATHS = ("/_stcore/health", "/healthz")
PROTECTED_FOR_OIDC = ("/media/", "/_stcore/upload_file")
MAX_FORM_BYTES = 16_384


def config_from_env() -> AuthConfig:
    """The configuration `segstudio serve` chose (SEGSTUDIO_SECRETS: the file, "" for none)."""
    path = os.environ.get("SEGSTUDIO_SECRETS")
    if path is None:
        return AuthConfig("broken", "SEGSTUDIO_SECRETS", error=(
            "the dashboard was started without `segstudio serve`, so the sign-in settings are "
            "unknown. Start it with `segstudio serve` (optionally --secrets FILE)."))
    return load_cached(path or None)


def _cookies(scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            for part in value.decode("latin-1").split(";"):
                if "=" in part:
                    k, v = part.split("=", 1)
                    out.setdefault(k.strip(), v.strip())
    return out


def _header(scope, name: bytes) -> str:
    for k, v in scope.get("headers", []):
        if k == name:
            return v.decode("latin-1")
    return ""


def _safe_next(value: str | None) -> str:
    v = (value or "/").strip()
    if not v.startswith("/") or v.startswith("//") or "\\" in v or v.startswith(SIGNIN):
        return "/"
    return v


class SignInGate:
    def __init__(self, app, config: Callable[[], AuthConfig] = config_from_env,
                 signer: SessionSigner = DEFAULT_SIGNER, limiter: SignInLimiter | None = None):
        self.app = app
        self.config = config
        self.signer = signer
        self.limiter = limiter or SignInLimiter()

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket") or scope.get("path") in OPEN_PATHS:
            return await self.app(scope, receive, send)
        cfg = self.config()
        path = scope.get("path") or "/"
        if cfg.method == "none":
            return await self.app(scope, receive, send)
        if cfg.method == "broken":
            return await self._deny(scope, send, 503, "Segment Studio is not available",
                                    f"The sign-in settings are broken, so no data is served: "
                                    f"{cfg.error}")
        if cfg.method == "oidc":
            if path.startswith(PROTECTED_FOR_OIDC) and not _oidc_signed_in(scope):
                return await self._deny(scope, send, 403, "Sign in first",
                                        "Downloads and files need a signed-in session.")
            return await self.app(scope, receive, send)
        if path == SIGNIN and scope["type"] == "http":
            return await self._signin(scope, receive, send, cfg)
        if path == SIGNOUT and scope["type"] == "http":
            return await _respond(send, 303, b"", [(b"location", SIGNIN.encode()),
                                                   _clear_cookie(SESSION_COOKIE)])
        if self.signed_in(scope, cfg):
            return await self.app(scope, receive, send)
        wants_page = scope["type"] == "http" and scope.get("method") in ("GET", "HEAD") and \
            "text/html" in _header(scope, b"accept") and not path.startswith(("/media/", "/_stcore/"))
        if wants_page:
            target = path + (f"?{scope['query_string'].decode('latin-1')}" if scope.get("query_string") else "")
            return await _respond(send, 303, b"", [(b"location", f"{SIGNIN}?next={quote(target)}".encode())])
        return await self._deny(scope, send, 401, "Sign in first",
                                "Sign in at /signin to see the shop's data.")

    def signed_in(self, scope, cfg: AuthConfig) -> bool:
        token = _cookies(scope).get(SESSION_COOKIE)
        return self.signer.valid(token, cfg.password or "", cfg.session_hours * 3600)

    async def _deny(self, scope, send, status: int, title: str, text: str):
        if scope["type"] == "websocket":  # refuse the handshake
            return await send({"type": "websocket.close", "code": 1008})
        return await _respond(send, status, _page(title, f"<p>{html.escape(text)}</p>"),
                              [(b"content-type", b"text/html; charset=utf-8")])

    async def _signin(self, scope, receive, send, cfg: AuthConfig):
        cookies = _cookies(scope)
        attempt = cookies.get(ATTEMPT_COOKIE) or _secrets.token_urlsafe(16)
        client = (scope.get("client") or ("?", 0))[0]
        keys = [f"session:{attempt}", f"address:{client}"]
        extra = [] if ATTEMPT_COOKIE in cookies else [_set_cookie(ATTEMPT_COOKIE, attempt, scope, None)]
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        nxt = _safe_next((query.get("next") or ["/"])[0])
        if scope.get("method") != "POST":
            return await _form(send, 200, nxt, "", extra)
        body = await _read_body(receive, MAX_FORM_BYTES)
        form = parse_qs(body.decode("utf-8", "replace"))
        nxt = _safe_next((form.get("next") or [nxt])[0])
        wait = self.limiter.wait(keys)
        if wait > 0:
            return await _form(send, 429, nxt, f"Too many wrong passwords from this browser or "
                               f"address. Try again in {int(wait + 0.999)} seconds.",
                               extra + [(b"retry-after", str(int(wait + 0.999)).encode())])
        given = (form.get("password") or [""])[0]
        if cfg.password and hmac.compare_digest(given.encode(), cfg.password.encode()):
            self.limiter.success(keys)
            token = self.signer.issue(cfg.password)
            return await _respond(send, 303, b"", extra + [
                (b"location", nxt.encode()),
                _set_cookie(SESSION_COOKIE, token, scope, int(cfg.session_hours * 3600))])
        wait = self.limiter.failure(keys)
        msg = "That password is not right. Ask your Segment Studio administrator."
        if wait > 0:
            msg += f" Wait {int(wait + 0.999)} seconds before the next try."
        return await _form(send, 401, nxt, msg, extra)


def _oidc_signed_in(scope) -> bool:
    """Streamlit's signed user cookie says the browser is logged in (fail closed on any doubt)."""
    try:
        from starlette.requests import Request
        from streamlit.web.server.starlette.starlette_auth_routes import _get_cookie_value_from_request
        from streamlit.web.server.starlette.starlette_server_config import USER_COOKIE_NAME

        value = _get_cookie_value_from_request(Request(scope), USER_COOKIE_NAME)
        return bool(value) and json.loads(value).get("is_logged_in") is True
    except Exception:  # noqa: BLE001 - an unreadable cookie or a changed Streamlit: refuse
        return False


def _set_cookie(name: str, value: str, scope, max_age: int | None) -> tuple[bytes, bytes]:
    parts = [f"{name}={value}", "Path=/", "HttpOnly", "SameSite=Lax"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if scope.get("scheme") in ("https", "wss"):
        parts.append("Secure")
    return b"set-cookie", "; ".join(parts).encode()


def _clear_cookie(name: str) -> tuple[bytes, bytes]:
    return b"set-cookie", f"{name}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0".encode()


async def _read_body(receive, limit: int) -> bytes:
    body = b""
    while True:
        msg = await receive()
        body += msg.get("body", b"")
        if len(body) > limit or not msg.get("more_body"):
            return body[:limit]


async def _respond(send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]):
    headers = [*headers, (b"content-length", str(len(body)).encode()),
               (b"cache-control", b"no-store")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _form(send, status: int, nxt: str, message: str, headers):
    err = f'<p class="err" role="alert">{html.escape(message)}</p>' if message else ""
    body = _page("Segment Studio", f"""
      <p class="sub">Sign in to see the shop's segments.</p>
      {err}
      <form method="post" action="{SIGNIN}">
        <input type="hidden" name="next" value="{html.escape(nxt)}">
        <label for="pw">Password</label>
        <input id="pw" name="password" type="password" autocomplete="current-password" autofocus required>
        <button type="submit">Sign in</button>
      </form>""")
    return await _respond(send, status, body, [*headers, (b"content-type", b"text/html; charset=utf-8")])


def _page(title: str, inner: str) -> bytes:
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{html.escape(title)}</title>
<style>
 body {{ font-family: system-ui, sans-serif; background: #F4F6FB; color: #1F2430; margin: 0; }}
 main {{ max-width: 380px; margin: 12vh auto; background: #fff; border: 1px solid #E3E7EF;
        border-radius: 12px; padding: 32px; }}
 h1 {{ font-size: 1.5rem; margin: 0 0 4px; }} .sub {{ color: #5f6776; margin: 0 0 20px; }}
 label {{ display: block; font-size: .9rem; margin-bottom: 6px; }}
 input[type=password] {{ width: 100%; box-sizing: border-box; padding: 10px; font-size: 1rem;
        border: 1px solid #C9CFDB; border-radius: 8px; margin-bottom: 16px; }}
 button {{ background: #4C5FD5; color: #fff; border: 0; border-radius: 8px; padding: 10px 18px;
        font-size: 1rem; cursor: pointer; }}
 .err {{ background: #FDECEC; color: #8A1C1C; padding: 10px; border-radius: 8px; }}
</style></head><body><main><h1>{html.escape(title)}</h1>{inner}</main></body></html>""".encode()
