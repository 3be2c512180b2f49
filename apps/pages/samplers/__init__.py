"""The Sampler lab page: ``samplers.py`` is the script ``apps/main.py`` routes to (``/samplers``); its helpers sit beside it."""
