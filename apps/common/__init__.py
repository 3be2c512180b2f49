"""What every page shares: display helpers (:mod:`apps.common.ui`), the URL-state convention with its table of
bounds (:mod:`apps.common.url_state`) and the image track's checkpoints (:mod:`apps.common.models`)."""
