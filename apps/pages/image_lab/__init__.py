"""The image_lab page (``page.py``, run by Streamlit from ``apps/main.py``) and its helpers."""
