"""The app's pages: one folder per page (``page.py`` the script ``apps/main.py`` routes to, its helpers beside it)."""
