"""The MNIST page: ``mnist.py`` is the script ``apps/main.py`` routes to (``/mnist``); its helpers sit beside it."""
