"""The app tests' shared pieces: tests/apps/browser_harness.py (Playwright + ``toydiff app``) and
tests/apps/app_harness.py (Streamlit's AppTest), importable by name from the test files."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from browser_harness import browser, server  # noqa: E402,F401  (session-scoped fixtures)
