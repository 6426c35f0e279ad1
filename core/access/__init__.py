"""Access to the dashboard: the sign-in configuration (checked to fail closed), signed session
cookies and the rate limit on wrong passwords. Plain Python: the dashboard's sign-in gate
(dashboard/gate.py) and `segstudio serve` both use it; nothing here imports streamlit."""

from core.access.config import AuthConfig, candidate_files, check_auth, load_cached, load_file
from core.access.sessions import SESSION_COOKIE, SignInLimiter, SessionSigner

__all__ = ["AuthConfig", "SESSION_COOKIE", "SessionSigner", "SignInLimiter", "candidate_files",
           "check_auth", "load_cached", "load_file"]
