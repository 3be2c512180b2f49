"""The Motion page: ``motion.py`` is the script ``apps/main.py`` routes to (``/motion``); its helpers sit beside it."""
