"""Shared plumbing for the dashboard pages: the store, per-session read cursors, caching keyed on
the store's version, formatting, empty states and sign-in.

Pages only render: every figure comes from ``core.explore`` (and ``core.recommend``).
"""

from __future__ import annotations

import html
from pathlib import Path

import streamlit as st

from core import explore as ex
from core.config import load_settings
from core.store import Store
from dashboard import daterange

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------ settings & store
def settings():
    """Settings as the server was started with them (SEGSTUDIO_DB, segstudio.toml...)."""
    return load_settings()


def store() -> Store:
    return settings().store()


def currency() -> str:
    s = store()
    without_store = ex.currency_symbol(settings())
    return _store_currency(str(s.path), _vkey(s), without_store) if s.exists() else without_store


@st.cache_data(show_spinner=False, max_entries=16)
def _store_currency(path: str, version_key: str, without_store: str) -> str:
    """The currency for this version of the store, read once rather than on every figure
    (``without_store``, what the settings alone say, is part of the key so a change of
    setting is seen)."""
    cur = _shared_connection(path, version_key).cursor()
    try:
        return ex.currency_symbol(settings(), cur)
    finally:
        cur.close()


def _vkey(store_: Store) -> str:
    """The published version of the store and its records (saved segments): reads see both."""
    v = store_.version()
    return "missing" if v is None else v.key


def _dkey(store_: Store) -> str:
    """The store's data alone (ingests and builds), for caches that never read records."""
    v = store_.version()
    return "missing" if v is None else v.data_key


@st.cache_resource(show_spinner=False, max_entries=4)
def _shared_connection(path: str, version_key: str):
    """One read-only connection per published version of the store (shared by sessions, each
    of which reads through its own cursor). A new build changes the version, so the next
    rerun opens the new file."""
    return Store(path).read()


def con():
    """This session's read cursor on the store as currently published."""
    s = store()
    key = _vkey(s)
    cur = st.session_state.get("_cursor")
    if cur is None or cur[0] != key or cur[1] != str(s.path):
        cur = [key, str(s.path), _shared_connection(str(s.path), key).cursor(), None]
        st.session_state["_cursor"] = cur
    dates = daterange.current()
    if dates != cur[3]:  # only when the sidebar's range changed for this cursor
        ex.restrict_events(cur[2], *(dates or (None, None)))
        cur[3] = dates
    return cur[2]


@st.cache_data(show_spinner=False, max_entries=512, ttl=3600)
def _cached(fn_name: str, path: str, version_key: str, args: tuple, kwargs: tuple,
            dates: tuple | None = None):
    fn = getattr(ex, fn_name)
    cur = _shared_connection(path, version_key).cursor()
    if dates:
        ex.restrict_events(cur, *dates)
    try:
        return fn(cur, *args, **dict(kwargs))
    finally:
        cur.close()


def q(fn_name: str, *args, **kwargs):
    """Call ``core.explore.<fn_name>(con, *args, **kwargs)``, cached per store version."""
    s = store()
    return _cached(fn_name, str(s.path), _vkey(s), tuple(args), tuple(sorted(kwargs.items())),
                   daterange.current())


@st.cache_resource(show_spinner=False, max_entries=4)
def _profile_index(path: str, version_key: str, run_id: int):
    cur = _shared_connection(path, version_key).cursor()
    try:
        return ex.ProfileIndex.load(cur, run_id)
    finally:
        cur.close()


def profile_index(run_id: int) -> ex.ProfileIndex:
    s = store()
    return _profile_index(str(s.path), _dkey(s), run_id)


def version_key() -> str:
    return _vkey(store())


# ------------------------------------------------------------------------------ runs & empty states
def current_run(required: bool = True) -> dict | None:
    """The latest complete build, or an empty state (and stop) when there is none."""
    s = store()
    if not s.exists():
        if required:
            empty_state(
                "No store yet",
                f"Segment Studio found no data at `{s.path}`.\n\n"
                "Create a demo shop and build it with `segstudio serve --demo`, or load your own "
                "data with `segstudio ingest FILE --format FORMAT` and then run `segstudio build`.")
            st.stop()
        return None
    run = q("latest_build")
    if run is None and required:
        empty_state("No build yet: run `segstudio build`",
                    "The store has data but no complete build. `segstudio build` computes the "
                    "shopper profiles, segments, map, rules and recommendations; this page fills in "
                    "as soon as it finishes (the dashboard picks it up by itself).")
        st.stop()
    return run


def empty_state(title: str, body: str, icon: str = ":material/info:") -> None:
    with st.container(border=True):
        st.markdown(f"#### {title}")
        st.markdown(body)


def needs(table: str, run_id: int, what: str) -> bool:
    """True when the build wrote ``table``; otherwise show why the section is empty."""
    if q("has_rows", table, run_id):
        return True
    st.info(f"{what} are not in this build yet. They appear after the next `segstudio build`.",
            icon=":material/hourglass_empty:")
    return False


# ------------------------------------------------------------------------------ formatting
def money(x, digits=None) -> str:
    return ex.fmt_money(x, currency(), digits)


def money_short(x) -> str:
    """£2.1m, £845k, £950.00: money that fits a narrow card."""
    return ex.fmt_money_short(x, currency())


pct, num, intf, lift, when, days = ex.fmt_pct, ex.fmt_num, ex.fmt_int, ex.fmt_lift, ex.fmt_when, ex.fmt_days


def feature_value(feature: str, x) -> str:
    if feature == "mean_hour":
        return ex.fmt_clock(x)
    if feature in ex.MONEY_FEATURES:
        return money(x)
    if feature in ex.SHARE_FEATURES:
        return pct(x)
    if feature in ("frequency", "n_events", "n_items"):
        return num(x, 1) if x is not None and float(x) != int(float(x)) else intf(x)
    if feature == "recency_days" or feature == "tenure_days":
        return days(x)
    return num(x, 2)


def behaviour_table(features, group_label: str) -> None:
    """Median behaviour of a group (segment or selection) next to the whole shop's, formatted
    (money figures only where the shop records prices)."""
    f = features
    if not shop_has_prices():
        f = f[~f["feature"].isin(ex.MONEY_FEATURES | {"price_sensitivity"})]
    st.dataframe(
        {"Behaviour (median)": f["label"],
         group_label: [feature_value(k, v) for k, v in zip(f["feature"], f["group"])],
         "Whole shop": [feature_value(k, v) for k, v in zip(f["feature"], f["population"])]},
        hide_index=True, width="stretch")


def swatch(color: str, size: int = 12) -> str:
    c = html.escape(color or ex.UNASSIGNED_COLOR)
    return (f'<span style="display:inline-block;width:{size}px;height:{size}px;border-radius:3px;'
            f'background:{c};margin-right:6px;vertical-align:middle"></span>')


def page_header(title: str, subtitle: str = "") -> None:
    st.title(title)
    if subtitle:
        st.caption(subtitle)


def segment_options(run_id: int, lens: str = "taste", scope=None) -> dict[str, int]:
    """Label -> segment id for a lens's segments (taste unless told: the recommenders work on
    taste segments), sizes within the scope when there is one."""
    df = q("segments", run_id, lens=lens, scope=scope)
    if df.empty:
        return {}
    return {f"{r.name} ({intf(r.size)} shoppers)": int(r.segment_id) for r in df.itertuples()}


# ------------------------------------------------------------------------------ lenses & scope
LENS_KEY, SCOPE_KEY = "lens", "scope_segment"
LENS_NOUN = {"taste": "taste segment", "lifecycle": "lifecycle stage"}


def lens() -> str:
    """The lens the person chose in the sidebar (shared by every page): taste or lifecycle."""
    v = st.session_state.get(LENS_KEY)
    return v if v in ex.LENSES else ex.DEFAULT_LENS


EVERYONE = "everyone"  # the filter's "no filter" choice (segment ids are ints; -1 = unassigned)


def scope():
    """(other lens, segment id) when the person narrowed every page to one segment of the other
    lens in the sidebar, else None."""
    sid = st.session_state.get(SCOPE_KEY, EVERYONE)
    return None if sid in (None, EVERYONE) else (ex.other_lens(lens()), int(sid))


def set_lens(name: str, scope_segment: int | None = None) -> None:
    """For button callbacks: switch the lens (and the scope in the other lens)."""
    st.session_state[LENS_KEY] = name
    st.session_state[SCOPE_KEY] = EVERYONE if scope_segment is None else int(scope_segment)


def _lens_changed() -> None:
    st.session_state[SCOPE_KEY] = EVERYONE  # the other lens changed: its segment no longer applies


def _from_link() -> None:
    """Start a session on the lens (and other-lens segment) its link names, when it names them."""
    name = st.query_params.get("lens")
    if name in ex.LENSES:
        st.session_state[LENS_KEY] = name
        try:
            st.session_state[SCOPE_KEY] = int(st.query_params.get("scope", ""))
        except ValueError:
            pass


def sidebar_lens() -> None:
    """The lens switch and the other-lens filter, in the sidebar of every page."""
    s = store()
    if not s.exists():
        return
    run = current_run(required=False)
    if not run:
        return
    if LENS_KEY not in st.session_state:  # a shared link: ?lens=lifecycle&scope=3
        _from_link()
    cur = _shared_connection(str(s.path), _vkey(s)).cursor()
    try:
        daterange.sidebar(cur)
    finally:
        cur.close()
    have = [n for n in ex.LENSES if not q("segments", run["run_id"], lens=n).empty]
    if len(have) < 2:  # a build with one lens only (or none): nothing to switch or filter by
        st.session_state[LENS_KEY] = have[0] if have else ex.DEFAULT_LENS
        st.session_state[SCOPE_KEY] = EVERYONE
        return
    with st.sidebar:
        st.radio("Segments by", list(ex.LENSES), key=LENS_KEY, horizontal=True,
                 format_func=lambda n: ex.LENS_LABELS[n], on_change=_lens_changed,
                 help="Taste: what shoppers buy and how they shop. Lifecycle: where they are with "
                      "the shop (new, active, loyal, at risk, lapsed).")
        other = ex.other_lens(lens())
        opts = {sid: f"{name} ({intf(n)})" for name, sid, n in
                q("lens_scope_options", run["run_id"], lens())}
        if st.session_state.get(SCOPE_KEY) not in opts:
            st.session_state[SCOPE_KEY] = EVERYONE
        st.selectbox(f"Only shoppers in this {LENS_NOUN[other]}", [EVERYONE, *opts], key=SCOPE_KEY,
                     format_func=lambda sid: "Everyone" if sid == EVERYONE else opts[sid],
                     help="Narrow every page to the shoppers in one segment of the other lens, "
                          "e.g. the taste segments of at-risk shoppers.")


def scope_note(run_id: int) -> None:
    """A line under the page title saying the page is narrowed, when it is."""
    daterange.note()
    sc = scope()
    if sc is None:
        return
    names = q("segment_names", run_id, lens=sc[0])
    st.info(f"Only shoppers in the {LENS_NOUN[sc[0]]} **{html.escape(names.get(sc[1], str(sc[1])))}**"
            " (change it in the sidebar).", icon=":material/filter_alt:")


def shop_has_prices() -> bool:
    return bool(q("has_prices"))


def weak_warning(run: dict, lens_name: str | None = None) -> None:
    """The plain-words warning that a lens's segments are weak, with what to try."""
    r = ex.lens_quality(run).get(lens_name or lens())
    if r and r.get("warning"):
        st.warning(f"{r['warning']} {r['advice'] or ''}", icon=":material/warning:")


# ------------------------------------------------------------------------------ sign-in
from dashboard.signin import auth_config, require_sign_in  # noqa: E402,F401  (app.py calls it here)


def sidebar_footer() -> None:
    s = store()
    with st.sidebar:
        run = current_run(required=False) if s.exists() else None
        if run:
            st.caption(f"Build {run['run_id']} · {when(run['finished_at'])}  \n`{s.path.name}`")
        else:
            st.caption(f"`{s.path.name}` · no build yet")



# ------------------------------------------------------------------------------ recommendations
@st.cache_resource(show_spinner="Preparing the recommenders (once per build)...", max_entries=2)
def _engine(path: str, version_key: str, run_id: int):
    from core.explore import recs

    return recs.engine(_shared_connection(path, version_key).cursor(), run_id)


def rec_engine(run_id: int):
    """The fitted recommenders of the run, shared by every session until the next build."""
    s = store()
    return _engine(str(s.path), _dkey(s), run_id)


def recommend_preview(kind: str, run_id: int, **kwargs) -> dict:
    from core.explore import recs

    return recs.preview(rec_engine(run_id), kind, con=con(), run_id=run_id, **kwargs)


RECOMMENDER_LABELS = {
    "hybrid": "Hybrid (blend)", "encoder": "Profile encoder", "item_knn": "Bought together (item kNN)",
    "segment_popularity": "Popular in the segment", "repeat": "Buy again", "popularity": "Best sellers",
    "persona": "Persona match",
}


def show_recommendations(result: dict, key: str = "recs") -> None:
    """A ranked list with reasons (the first recommender in the result)."""
    if result.get("error"):
        st.info(result["error"])
        return
    df = result["recs"]
    if df.empty:
        st.info("No recommendations for this case (no history the recommenders can use).")
        return
    first = df["recommender"].iloc[0]
    d = df[df["recommender"] == first][["rank", "title", "price", "reason"]]
    st.dataframe(d, hide_index=True, width="stretch", key=key, column_config={
        "rank": st.column_config.NumberColumn("#", width="small"), "title": "Item",
        "price": st.column_config.NumberColumn(f"Price ({currency()})", format="%.2f"),
        "reason": st.column_config.TextColumn("Why", width="large")})
