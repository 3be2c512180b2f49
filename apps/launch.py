"""``toydiff app``: start the Streamlit sandbox (``apps/main.py``) on this machine only, unless told otherwise.

    toydiff app                         # http://127.0.0.1:8501
    toydiff app --port 8600
    toydiff app --address 0.0.0.0       # reachable from other machines: only on a network you trust
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from toydiff.cli import OneLineParser, run_guarded

__all__ = ["MAIN", "main", "streamlit_args", "configure_process"]

MAIN = Path(__file__).resolve().parent / "main.py"


def _port(text: str) -> int:
    # ArgumentTypeError: argparse prints this message after "argument --port:" (a ValueError would read
    # "invalid _port value")
    try:
        p = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer port, got {text!r}") from None
    if not 1 <= p <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port in 1..65535, got {p}")
    return p


def build_parser() -> OneLineParser:
    p = OneLineParser(prog="toydiff app", description="Start the toydiff Streamlit app.")
    p.add_argument("--port", type=_port, default=8501, help="port to serve on (default 8501)")
    p.add_argument("--address", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 exposes it to the network)")
    p.add_argument("--browser", action="store_true", help="open a browser tab (default: headless)")
    return p


def streamlit_args(port: int = 8501, address: str = "127.0.0.1", headless: bool = True) -> list[str]:
    """The arguments of ``streamlit run apps/main.py ...`` (usage statistics always off)."""
    return ["run", str(MAIN),
            "--server.address", address,
            "--server.port", str(port),
            "--server.headless", "true" if headless else "false",
            "--browser.gatherUsageStats", "false"]


def configure_process(threads: int | None = None) -> int:
    """Process-wide settings of the app server, made once at launch: matplotlib draws off screen (Agg) and
    torch uses ``threads`` intra-op threads: the one policy of :mod:`toydiff.threads` (default 1, or
    ``$TOYDIFF_THREADS``; ``$TOYDIFF_APP_THREADS`` for the app alone). Returns the count.
    """
    import matplotlib

    from toydiff.threads import configure_threads

    text = os.environ.get("TOYDIFF_APP_THREADS")
    if threads is None and text:
        try:
            threads = int(text)
        except ValueError:
            raise ValueError(f"TOYDIFF_APP_THREADS must be an integer, got {text!r}") from None
    matplotlib.use("Agg")
    return configure_threads(threads)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (the arguments after ``toydiff app``) and run Streamlit until it exits or Ctrl-C."""

    def run() -> int:
        args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
        from streamlit.web import cli as stcli  # in-process: Ctrl-C and SIGTERM stop the server, no orphan

        configure_process()

        print(f"toydiff app: serving on http://{args.address}:{args.port}  (Ctrl-C to stop)", file=sys.stderr)
        if args.address not in ("127.0.0.1", "localhost", "::1"):
            print(f"toydiff app: note: --address {args.address} makes the app reachable from other machines",
                  file=sys.stderr)
        try:
            stcli.main(args=streamlit_args(args.port, args.address, headless=not args.browser),
                       prog_name="streamlit", standalone_mode=False)
        except SystemExit as e:
            return e.code if isinstance(e.code, int) else 0
        except KeyboardInterrupt:
            return 0
        return 0

    return run_guarded(run, "toydiff app")


if __name__ == "__main__":
    sys.exit(main())
