"""The Segment Studio dashboard (Streamlit). Run it with `segstudio serve`."""
