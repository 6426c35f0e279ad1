"""Sign-in fails closed: every misconfiguration serves no data and says what is wrong; wrong
passwords are slowed down per browser and per address; downloads need a signed-in session."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import pytest

from core.access import SignInLimiter, SessionSigner, check_auth, load_file
from core.access.sessions import ATTEMPT_COOKIE, SESSION_COOKIE
from dashboard.gate import SignInGate

ROOT = Path(__file__).resolve().parents[1]
OIDC = {"redirect_uri": "https://s.example.com/oauth2callback", "cookie_secret": "x" * 32,
        "client_id": "id", "client_secret": "secret",
        "server_metadata_url": "https://id.example.com/.well-known/openid-configuration"}


# ------------------------------------------------------------------ the configuration
@pytest.mark.parametrize("secrets, fragment", [
    ({"auth": {"password": ""}}, "password is empty"),
    ({"auth": {"password": "   "}}, "password is empty"),
    ({"auth": {"pasword": "s3cret-pass"}}, "unknown key 'pasword' (did you mean 'password'?)"),
    ({"auth": {}}, "[auth] is empty"),
    ({"Auth": {"password": "s3cret-pass"}}, "[Auth] looks like a misspelt [auth]"),
    ({"auht": {"password": "s3cret-pass"}}, "[auht] looks like a misspelt [auth]"),
    ({"authentication": {"password": "s3cret-pass"}}, "misspelt [auth]"),
    ({"password": "s3cret-pass"}, "'password' is outside any section"),
    ({"auth": "s3cret-pass"}, "must be a section"),
    ({"auth": {"password": 12345678}}, "must be text in quotes"),
    ({"auth": {"password": "s3cret-pass", **OIDC}}, "both a password and single sign-on"),
    ({"auth": {k: v for k, v in OIDC.items() if k != "cookie_secret"}}, "needs cookie_secret"),
    ({"auth": {"redirect_uri": OIDC["redirect_uri"], "cookie_secret": "c",
               "google": {"client_id": "id", "server_metadata_url": "u"}}}, "[auth.google] single sign-on needs client_secret"),
    ({"auth": {"password": "s3cret-pass", "session_hours": 0}}, "session_hours"),
])
def test_every_misconfiguration_is_broken_with_the_reason(secrets, fragment):
    cfg = check_auth(secrets, "secrets.toml")
    assert cfg.method == "broken" and fragment in cfg.error and cfg.error.startswith("secrets.toml")


def test_working_configurations_and_open_access(tmp_path):
    assert check_auth({"auth": {"password": "long enough pass"}}, "s").method == "password"
    short = check_auth({"auth": {"password": "abc"}}, "s")
    assert short.method == "password" and "shorter than 8" in short.warnings[0]
    assert check_auth({"auth": OIDC}, "s").method == "oidc"
    named = check_auth({"auth": {"redirect_uri": "r", "cookie_secret": "c",
                                 "okta": {k: OIDC[k] for k in ("client_id", "client_secret",
                                                               "server_metadata_url")}}}, "s")
    assert named.method == "oidc" and named.providers == ("okta",)
    assert check_auth({"database": {"path": "x"}}, "s").method == "none"
    assert check_auth(None, "s").method == "none"
    bad = tmp_path / "secrets.toml"
    bad.write_text('[auth]\npassword = "unterminated\n')
    cfg = load_file(bad)
    assert cfg.method == "broken" and "not valid TOML" in cfg.error and str(bad) in cfg.error
    bad.write_bytes(b"\xff\xfe\x00binary")
    assert load_file(bad).method == "broken"


# ------------------------------------------------------------------ sessions and the rate limit
def test_wrong_passwords_wait_longer_and_longer_per_session_and_address():
    now = [1000.0]
    lim = SignInLimiter(free=3, base_s=2.0, cap_s=60.0, forget_s=3600, clock=lambda: now[0])
    me = ["session:a", "address:10.0.0.1"]
    assert [lim.failure(me) for _ in range(3)] == [0.0, 0.0, 2.0]
    assert lim.wait(me) == 2.0
    # another browser from the same address waits too; another address with another browser not
    assert lim.wait(["session:b", "address:10.0.0.1"]) == 2.0
    assert lim.wait(["session:c", "address:10.0.0.2"]) == 0.0
    waits = []
    for _ in range(6):
        now[0] += lim.wait(me)
        waits.append(lim.failure(me))
    assert waits == [4.0, 8.0, 16.0, 32.0, 60.0, 60.0]  # doubling, capped
    # the same browser hopping address is still held by its session
    assert lim.wait(["session:a", "address:10.9.9.9"]) == 60.0
    now[0] += 60
    lim.success(me)
    assert lim.wait(me) == 0.0 and lim.failures("session:a") == 0


def test_session_tokens_expire_and_cannot_be_forged():
    now = [1_000_000.0]
    signer = SessionSigner(b"k" * 32, clock=lambda: now[0])
    token = signer.issue("pass-word-1")
    assert signer.valid(token, "pass-word-1", 3600)
    assert not signer.valid(token, "another password", 3600)           # password changed
    assert not SessionSigner(b"z" * 32).valid(token, "pass-word-1", 3600)  # server restarted
    issued, nonce, mac = token.split(".")
    assert not signer.valid(f"{int(issued) + 9999}.{nonce}.{mac}", "pass-word-1", 3600)
    assert not signer.valid("", "pass-word-1", 3600) and not signer.valid("a.b", "pass-word-1", 3600)
    now[0] += 3601
    assert not signer.valid(token, "pass-word-1", 3600)                 # expired


# ------------------------------------------------------------------ the gate (ASGI, in process)
class _App:
    """Stands for Streamlit: answers 200 to anything the gate lets through."""

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            await send({"type": "websocket.accept"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"THE DATA"})


def _call(gate, path, *, method="GET", cookies=None, body=b"", kind="http", accept="text/html",
          client="10.0.0.1"):
    headers = [(b"accept", accept.encode())]
    if cookies:
        headers.append((b"cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()).encode()))
    path, _, query = path.partition("?")
    scope = {"type": kind, "path": path, "method": method, "headers": headers,
             "query_string": query.encode(), "client": (client, 5000), "scheme": "http"}
    sent = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(msg):
        sent.append(msg)

    asyncio.run(gate(scope, receive, send))
    if kind == "websocket":
        return sent[0]
    start = sent[0]
    hdrs = {}
    for k, v in start["headers"]:
        hdrs.setdefault(k.decode(), []).append(v.decode())
    return start["status"], hdrs, b"".join(m.get("body", b"") for m in sent[1:])


def _cookie_from(hdrs, name):
    for c in hdrs.get("set-cookie", []):
        if c.startswith(name + "="):
            return c.split(";")[0].split("=", 1)[1]
    return None


def _gate(secrets, now=None):
    cfg = check_auth(secrets, "secrets.toml")
    clock = (lambda: now[0]) if now else time.monotonic
    return SignInGate(_App(), config=lambda: cfg, limiter=SignInLimiter(clock=clock))


def test_password_gate_serves_nothing_without_a_session():
    gate = _gate({"auth": {"password": "correct horse"}})
    status, hdrs, _ = _call(gate, "/segment_map")
    assert status == 303 and hdrs["location"] == ["/signin?next=/segment_map"]
    for path in ("/media/3f2a.csv", "/media/3f2a.parquet", "/_stcore/upload_file/x", "/static/app.js"):
        assert _call(gate, path, accept="*/*")[0] == 401, path
    assert _call(gate, "/_stcore/stream", kind="websocket") == {"type": "websocket.close", "code": 1008}
    assert _call(gate, "/_stcore/health")[0] == 200  # says "ok", nothing else
    # forged or stale cookies change nothing
    assert _call(gate, "/media/3f2a.csv", cookies={SESSION_COOKIE: "1.2.3"})[0] == 401


def test_signing_in_opens_pages_downloads_and_the_websocket():
    gate = _gate({"auth": {"password": "correct horse"}})
    status, hdrs, body = _call(gate, "/signin?next=/export")
    assert status == 200 and b'type="password"' in body and _cookie_from(hdrs, ATTEMPT_COOKIE)
    status, hdrs, _ = _call(gate, "/signin", method="POST", body=b"password=correct+horse&next=%2Fexport")
    assert status == 303 and hdrs["location"] == ["/export"]
    session = _cookie_from(hdrs, SESSION_COOKIE)
    assert session and "HttpOnly" in hdrs["set-cookie"][-1] and "SameSite=Lax" in hdrs["set-cookie"][-1]
    jar = {SESSION_COOKIE: session}
    assert _call(gate, "/media/3f2a.csv", cookies=jar, accept="*/*")[:3:2] == (200, b"THE DATA")
    assert _call(gate, "/_stcore/stream", kind="websocket", cookies=jar) == {"type": "websocket.accept"}
    status, hdrs, _ = _call(gate, "/signout", cookies=jar)
    assert status == 303 and "Max-Age=0" in hdrs["set-cookie"][0]
    # no open redirect after sign-in
    status, hdrs, _ = _call(gate, "/signin", method="POST", body=b"password=correct+horse&next=//evil.example")
    assert hdrs["location"] == ["/"]


def test_wrong_passwords_are_rate_limited_and_not_even_checked_while_waiting():
    now = [5000.0]
    gate = _gate({"auth": {"password": "correct horse"}}, now)
    browser = {ATTEMPT_COOKIE: "browser-1"}
    codes = [_call(gate, "/signin", method="POST", body=b"password=guess", cookies=browser)[0]
             for _ in range(3)]
    assert codes == [401, 401, 401]
    status, hdrs, body = _call(gate, "/signin", method="POST", body=b"password=correct+horse",
                               cookies=browser)
    assert status == 429 and hdrs["retry-after"] == ["2"] and b"Try again in 2 seconds" in body
    # a fresh browser from the same address waits as well
    assert _call(gate, "/signin", method="POST", body=b"password=correct+horse",
                 cookies={ATTEMPT_COOKIE: "browser-2"})[0] == 429
    now[0] += 2
    assert _call(gate, "/signin", method="POST", body=b"password=guess", cookies=browser)[0] == 401
    assert _call(gate, "/signin", method="POST", body=b"password=correct+horse", cookies=browser)[0] == 429
    now[0] += 4  # the wait doubled
    assert _call(gate, "/signin", method="POST", body=b"password=correct+horse", cookies=browser)[0] == 303


def test_broken_configuration_closes_everything_and_says_why():
    gate = _gate({"auth": {"password": ""}})
    status, _, body = _call(gate, "/")
    assert status == 503 and b"password is empty" in body
    assert _call(gate, "/media/3f2a.csv")[0] == 503
    assert _call(gate, "/signin", method="POST", body=b"password=")[0] == 503
    assert _call(gate, "/_stcore/stream", kind="websocket")["code"] == 1008


def test_single_sign_on_protects_downloads_with_streamlits_login_cookie():
    gate = _gate({"auth": OIDC})
    assert _call(gate, "/")[0] == 200  # Streamlit's own login page runs in the app
    assert _call(gate, "/media/3f2a.csv")[0] == 403
    assert _call(gate, "/media/3f2a.csv", cookies={"_streamlit_user": "forged"})[0] == 403
    assert _call(gate, "/_stcore/upload_file/s/f", method="PUT")[0] == 403


def test_no_auth_section_leaves_the_dashboard_open():
    gate = _gate({})
    assert _call(gate, "/media/3f2a.csv")[:3:2] == (200, b"THE DATA")


# ------------------------------------------------------------------ the app's own check (AppTest)
APP = str(ROOT / "dashboard" / "app.py")


def _run_app(secrets=None):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=120)
    if secrets is not None:
        at.secrets.update(secrets)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_app_shows_no_data_when_sign_in_is_broken_or_missing(tiny_db, tmp_path, monkeypatch):
    at = _run_app({"auth": {"pasword": "s3cret-pass"}})
    assert not at.metric and "unknown key 'pasword'" in at.error[0].value
    at = _run_app({"auth": {"password": "s3cret-pass"}})  # no session cookie: the sign-in link only
    assert not at.metric and not at.dataframe
    assert [b.proto.url for b in at.get("link_button")] == ["/signin"]
    bad = tmp_path / "secrets.toml"
    bad.write_text("[auth]\npassword = \n")
    monkeypatch.setenv("SEGSTUDIO_SECRETS", str(bad))
    at = _run_app()
    assert not at.metric and "not valid TOML" in at.error[0].value
    monkeypatch.setenv("SEGSTUDIO_SECRETS", "")  # serve found no secrets file: open
    at = _run_app()
    assert at.metric and from_option("client.disableDataExport") is True


def from_option(name):
    from streamlit import config

    return config.get_option(name)


# ------------------------------------------------------------------ segstudio serve
def test_serve_reads_the_working_folders_secrets_and_refuses_broken_ones(tiny_db, tmp_path,
                                                                         monkeypatch, capsys):
    from core.cli import main

    work = tmp_path / "work"
    (work / ".streamlit").mkdir(parents=True)
    monkeypatch.chdir(work)
    monkeypatch.setattr(Path, "home", lambda: tmp_path / "nohome")
    secrets = work / ".streamlit" / "secrets.toml"
    secrets.write_text('[auth]\npassword = "correct horse"\n')
    assert main(["serve", "--db", str(tiny_db.path), "--dry-run"]) == 0
    out = capsys.readouterr()
    assert f"Sign-in: password sign-in (from {secrets})" in out.err
    assert "dashboard/server.py" in out.out and "--client.disableDataExport true" in out.out
    assert f"--secrets.files {secrets}" in out.out
    for text, fragment in (('[auth]\npassword = ""\n', "password is empty"),
                           ('[auth]\npasword = "x"\n', "unknown key 'pasword'"),
                           ("[auth\n", "not valid TOML")):
        secrets.write_text(text)
        assert main(["serve", "--db", str(tiny_db.path), "--dry-run"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and fragment in err[0] and str(secrets) in err[0], err
    other = tmp_path / "elsewhere.toml"
    other.write_text('[auth]\npassword = "from the flag"\n')
    assert main(["serve", "--db", str(tiny_db.path), "--secrets", str(other), "--dry-run"]) == 0
    assert f"(from {other})" in capsys.readouterr().err
    assert main(["serve", "--db", str(tiny_db.path), "--secrets", "missing.toml", "--dry-run"]) == 2
    secrets.unlink()
    assert main(["serve", "--db", str(tiny_db.path), "--dry-run"]) == 0
    assert "Sign-in: none: anyone who can reach the address" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


def test_served_dashboard_refuses_downloads_and_pages_without_a_session(tiny_db, tmp_path):
    """The real server (`segstudio serve` with a password): the gate is in front of Streamlit."""
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[auth]\npassword = "correct horse"\n')
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("SEGSTUDIO_SECRETS", "SEGSTUDIO_CONFIG")}
    log = open(tmp_path / "serve.log", "w")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "segstudio"), "serve", "--db",
                             str(tiny_db.path), "--port", str(port), "--secrets", str(secrets), "-q"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://localhost:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/_stcore/health", timeout=2)
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "serve.log").read_text()
                time.sleep(0.3)
        opener = urllib.request.build_opener(_NoRedirect)
        with pytest.raises(urllib.error.HTTPError) as e:
            opener.open(urllib.request.Request(base + "/", headers={"Accept": "text/html"}))
        assert e.value.code == 303 and e.value.headers["location"] == "/signin?next=/"
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(base + "/media/5b1f0d2a9c.csv")
        assert e.value.code == 401
        jar = CookieJar()
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect)
        codes = []
        for pw in ("guess1", "guess2", "guess3", "correct horse"):
            try:
                browser.open(base + "/signin", data=f"password={pw}".encode())
            except urllib.error.HTTPError as err:
                codes.append(err.code)
        assert codes == [401, 401, 401, 429]
        time.sleep(2.2)
        with pytest.raises(urllib.error.HTTPError) as e:  # 303 to the app, with the session cookie
            browser.open(base + "/signin", data=b"password=correct+horse&next=/export")
        assert e.value.code == 303 and any(c.name == SESSION_COOKIE for c in jar)
        page = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar)).open(base + "/export")
        assert page.status == 200
    finally:
        import signal

        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
