"""Draw every figure of toydiff.toy.figures from small synthetic inputs (toydiff.toy.figures.gallery) into a
folder, and print what the figure checks (toydiff.toy.figures.lint) find in each: matplotlib figures as PNG,
Plotly figures as standalone HTML and, with ``--shots``, as PNG screenshots taken by /usr/bin/chromium.

    python bench/figure_gallery.py --out /tmp/gallery [--shots] [name ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from toydiff.toy.figures.gallery import mpl_cases, plotly_cases  # noqa: E402
from toydiff.toy.figures.lint import mpl_problems, plotly_problems  # noqa: E402


def _shoot(html: list[Path]) -> None:
    """A 1000 × 600 screenshot of each HTML file, beside it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium",
                              args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = b.new_page(viewport={"width": 1000, "height": 640})
        for h in html:
            page.goto(h.resolve().as_uri())
            page.wait_for_selector(".main-svg")
            page.screenshot(path=str(h.with_suffix(".png")))
        b.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--shots", action="store_true", help="screenshot the Plotly figures with chromium")
    ap.add_argument("names", nargs="*", help="only these figures (default: all)")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    for name, (make, plane) in mpl_cases().items():
        if a.names and name not in a.names:
            continue
        fig = make()
        print(f"{name:32s} {mpl_problems(fig, plane=plane) or 'ok'}")
        fig.savefig(a.out / f"{name.replace('/', '_')}.png", dpi=90)
        plt.close(fig)
    html = []
    for name, (make, plane) in plotly_cases().items():
        if a.names and name not in a.names:
            continue
        fig = make()
        print(f"{name:32s} {plotly_problems(fig, plane=plane) or 'ok'}")
        import plotly.graph_objects as go

        fig = go.Figure(fig.to_dict())  # validated: the animations are built unvalidated (template left a name)
        fig.update_layout(width=980, height=600)
        html.append(a.out / f"{name.replace('/', '_')}.html")
        fig.write_html(html[-1], include_plotlyjs=True, auto_play=False)
    if a.shots and html:
        _shoot(html)


if __name__ == "__main__":
    main()
