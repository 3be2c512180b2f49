"""The toydiff Streamlit app: one entry point, the router; one folder per page, ``pages/<name>/page.py`` with its
state, work and figures beside it, and what pages share in ``apps/common`` (``toydiff app`` launches it).

    streamlit run apps/main.py --server.address 127.0.0.1

The pages draw with matplotlib off screen (Agg), selected here, at the entry, rather than by any module on
import. ``toydiff app`` also pins torch's thread count (see ``apps.launch.configure_process``).
"""

from pathlib import Path

import matplotlib
import streamlit as st

matplotlib.use("Agg")  # figures are rendered to PNG bytes; no window, and safe off the main thread

HERE = Path(__file__).resolve().parent

st.set_page_config(page_title="toydiff", page_icon=":material/blur_on:", layout="wide")

#: (folder under pages/, title, icon); each page is ``pages/<folder>/page.py`` with its helpers beside it, served at
#: ``/<folder>``; the first is the default
ROUTES = [
    ("schedules", "Schedules & forward process", ":material/show_chart:"),
    ("toy", "Toy sandbox", ":material/science:"),
    ("motion", "Motion", ":material/animation:"),
    ("samplers", "Sampler lab", ":material/casino:"),
    ("labs", "Labs", ":material/biotech:"),
    ("mnist", "MNIST", ":material/grid_view:"),
    ("image_lab", "Image lab", ":material/brush:"),
]
PAGES = [st.Page(HERE / "pages" / folder / "page.py", title=title, icon=icon, url_path=folder, default=i == 0)
         for i, (folder, title, icon) in enumerate(ROUTES)]

st.navigation(PAGES).run()
