"""The toydiff Streamlit app: one entry point, the router; one folder per page, ``pages/<name>/<name>.py`` with its
state, work and figures beside it, and what pages share in ``apps/common`` (``toydiff app`` launches it).

    streamlit run apps/main.py --server.address 127.0.0.1

The pages draw with matplotlib off screen (Agg), selected here, at the entry, rather than by any module on
import. ``toydiff app`` also pins torch's thread count (see ``apps.launch.configure_process``).
"""

from pathlib import Path

import matplotlib
import streamlit as st

from apps.charts import readable_widgets

matplotlib.use("Agg")  # figures are rendered to PNG bytes; no window, and safe off the main thread

HERE = Path(__file__).resolve().parent

st.set_page_config(page_title="toydiff", page_icon=":material/blur_on:", layout="wide")
readable_widgets()  # multiselect chips wrap instead of running off the box

#: (name, title, icon); each page is ``pages/<name>/<name>.py`` with its helpers beside it, served at ``/<name>``;
#: the first is the default. The script is named after its page: Streamlit (and AppTest's ``switch_page`` before a
#: first run) names a page by its file's stem, which then matches its ``url_path``.
ROUTES = [
    ("schedules", "Schedules & forward process", ":material/show_chart:"),
    ("toy", "Toy sandbox", ":material/science:"),
    ("motion", "Motion", ":material/animation:"),
    ("samplers", "Sampler lab", ":material/casino:"),
    ("labs", "Labs", ":material/biotech:"),
    ("mnist", "MNIST", ":material/grid_view:"),
    ("image_lab", "Image lab", ":material/brush:"),
    ("discrete", "Discrete diffusion", ":material/apps:"),
]
PAGES = [st.Page(HERE / "pages" / name / f"{name}.py", title=title, icon=icon, url_path=name, default=i == 0)
         for i, (name, title, icon) in enumerate(ROUTES)]

st.navigation(PAGES).run()
