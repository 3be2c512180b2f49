"""bench/ is a folder of scripts, not a package: its modules are imported by name from there (as the benches
import each other)."""

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))
