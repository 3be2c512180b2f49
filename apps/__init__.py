"""Streamlit pages for toydiff (launched by ``toydiff app``)."""
