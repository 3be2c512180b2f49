"""The Schedules & forward process page: ``schedules.py`` is the script ``apps/main.py`` routes to (``/schedules``); its helpers sit beside it."""
