"""The app's pages, one folder each: ``<name>/<name>.py`` is the script ``apps/main.py`` routes to, its state, work and
figures sit beside it; what several pages share is in :mod:`apps.common`."""
