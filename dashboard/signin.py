"""Sign-in in front of every page: nothing is shown until the person has signed in (when the
secrets ask for it), and nothing at all when the sign-in settings are broken."""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st


def auth_config():
    """The sign-in settings: the secrets file `segstudio serve` chose (SEGSTUDIO_SECRETS), else
    Streamlit's own secrets (`streamlit run`, tests). Anything doubtful comes back broken."""
    from core.access import AuthConfig, check_auth, load_cached, load_file

    path = os.environ.get("SEGSTUDIO_SECRETS")
    if path is not None:
        return load_cached(path or None)
    try:
        data = st.secrets.to_dict()
    except Exception:  # no secrets file, or one Streamlit could not parse: look ourselves
        files = [p for p in st.get_option("secrets.files") if Path(p).is_file()]
        for f in files:
            cfg = load_file(f)
            if cfg.method == "broken":
                return cfg
        if files:
            return AuthConfig("broken", files[0], error=f"Streamlit could not read {files[0]}.")
        return AuthConfig("none", "no secrets file")
    return check_auth(data, "Streamlit secrets")


def _centered(title: str, caption: str):
    _, mid, _ = st.columns([1, 2, 1])
    with mid:
        st.title(title)
        st.caption(caption)
    return mid


def require_sign_in() -> None:
    """Show nothing until the person has signed in, when [auth] asks for it; show nothing at all
    when [auth] is broken. Without [auth] the dashboard is open.

    Password sign-in happens on the gate's /signin page (dashboard/gate.py), which sets a signed
    session cookie; the gate checks it on every request (downloads included) and this function
    checks it again on every run of the script."""
    from core.access.sessions import DEFAULT_SIGNER, SESSION_COOKIE

    cfg = auth_config()
    if cfg.method == "none":
        return
    if cfg.method == "broken":
        with _centered("Segment Studio", "The dashboard is closed until its sign-in settings are fixed."):
            st.error(f"Sign-in is misconfigured, so no data is shown. {cfg.error}",
                     icon=":material/lock:")
        st.stop()
    if cfg.method == "password":
        token = st.context.cookies.get(SESSION_COOKIE) if st.context.cookies else None
        if DEFAULT_SIGNER.valid(token, cfg.password or "", cfg.session_hours * 3600):
            with st.sidebar:  # in this tab (target _self): its page and websocket end too
                st.markdown('Signed in · <a href="/signout" target="_self">Sign out</a>',
                            unsafe_allow_html=True)
            return
        with _centered("Segment Studio", "Sign in to see the shop's segments."):
            st.link_button("Sign in", "/signin", type="primary", icon=":material/login:")
            st.caption("If this keeps coming back, start the dashboard with `segstudio serve`: it "
                       "puts the sign-in page in front of it.")
        st.stop()
    if getattr(st.user, "is_logged_in", False):
        with st.sidebar:
            st.caption(f"Signed in as {st.user.get('name') or st.user.get('email') or 'you'}")
            if st.button("Sign out", key="_logout"):
                st.logout()
        return
    with _centered("Segment Studio", "Sign in with your company account to see the shop's segments."):
        if st.button("Sign in", type="primary"):
            st.login(cfg.providers[0]) if cfg.providers else st.login()
    st.stop()
