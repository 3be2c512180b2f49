"""``python -m image_track.lab <experiment> ...``: the same as ``toydiff mnist lab <experiment> ...``."""

import sys

from image_track.lab.cli import main

sys.exit(main())
