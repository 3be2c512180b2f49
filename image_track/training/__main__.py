"""``python -m image_track.training ...`` (what ``torchrun --nproc_per_node=N -m image_track.training ...``
launches): the flags of ``toydiff mnist train``."""

import sys

from image_track.training.cli import main

if __name__ == "__main__":
    sys.exit(main())
