"""What `segstudio serve` runs: the dashboard (app.py) behind the sign-in gate (gate.py).

`streamlit run dashboard/server.py` finds the ``st.App`` below and serves it with Streamlit's own
server (Starlette + uvicorn); every request and websocket passes through ``SignInGate`` first, so
downloads and media under ``/media/`` are protected like the pages. The sign-in settings come from
the secrets file `segstudio serve` chose (``SEGSTUDIO_SECRETS``).
"""

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:  # `streamlit run` puts only dashboard/ on the path
    sys.path.insert(0, str(_ROOT))

import streamlit as st  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402

from dashboard.gate import SignInGate  # noqa: E402

app = st.App("app.py", middleware=[Middleware(SignInGate)])
