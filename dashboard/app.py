"""Segment Studio dashboard: the entry point given to `streamlit run` (see `segstudio serve`).

It only reads the store (the latest complete build) and calls ``core``; it never trains.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:  # `streamlit run dashboard/app.py` puts only dashboard/ on the path
    sys.path.insert(0, str(_ROOT))

import streamlit as st  # noqa: E402

st.set_page_config(page_title="Segment Studio", page_icon=":material/donut_large:", layout="wide",
                   initial_sidebar_state="expanded")

# The tables' own "Download as CSV" writes cells such as =cmd|... raw: keep it off (segstudio serve
# and .streamlit/config.toml set it too); the Export page offers neutralised downloads.
st.set_option("client.disableDataExport", True)

from dashboard import common  # noqa: E402

common.require_sign_in()

PAGES = {
    "Explore": [
        st.Page("views/overview.py", title="Overview", icon=":material/dashboard:", default=True),
        st.Page("views/segment_map.py", title="Segment map", icon=":material/scatter_plot:"),
        st.Page("views/segment_detail.py", title="Segment detail", icon=":material/groups:"),
        st.Page("views/compare.py", title="Compare", icon=":material/compare_arrows:"),
        st.Page("views/user_profile.py", title="Shopper profile", icon=":material/person_search:"),
        st.Page("views/changes.py", title="Changes over time", icon=":material/timeline:"),
    ],
    "Act": [
        st.Page("views/rules.py", title="Bought together", icon=":material/hub:"),
        st.Page("views/recommend.py", title="Recommend", icon=":material/recommend:"),
        st.Page("views/audiences.py", title="Audiences", icon=":material/campaign:"),
        st.Page("views/export.py", title="Export", icon=":material/download:"),
    ],
    "Behind the scenes": [
        st.Page("views/model.py", title="Model and data", icon=":material/monitoring:"),
    ],
}

st.markdown(
    """
    <style>
      [data-testid="stMetricValue"] { font-size: 1.7rem; }
      .seg-card-title { font-weight: 600; font-size: 1.05rem; }
      .seg-muted { color: #5f6776; font-size: 0.9rem; }
      div[data-testid="stSidebarHeader"] { padding-bottom: 0.5rem; }
    </style>
    """,
    unsafe_allow_html=True,
)
ASSETS = Path(__file__).resolve().parent / "assets"
st.logo(str(ASSETS / "logo.svg"), icon_image=str(ASSETS / "icon.svg"), size="large")
page = st.navigation(PAGES)
common.sidebar_lens()  # the lens switch and the other-lens filter, shared by every page
common.sidebar_footer()
page.run()
