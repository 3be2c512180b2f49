"""The Image lab page: ``image_lab.py`` is the script ``apps/main.py`` routes to (``/image_lab``); its helpers sit beside it."""
