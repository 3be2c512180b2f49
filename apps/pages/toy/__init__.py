"""The Toy sandbox page: ``toy.py`` is the script ``apps/main.py`` routes to (``/toy``); its helpers sit beside it."""
