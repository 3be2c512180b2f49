"""The Labs page: ``labs.py`` is the script ``apps/main.py`` routes to (``/labs``); its helpers sit beside it."""
