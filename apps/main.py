"""The toydiff Streamlit app: one entry point, one file per page (``toydiff app`` launches it).

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

PAGES = [
    st.Page(HERE / "pages" / "schedules.py", title="Schedules & forward process", icon=":material/show_chart:", url_path="schedules",
            default=True),
    st.Page(HERE / "pages" / "toy.py", title="Toy sandbox", icon=":material/science:", url_path="toy"),
    st.Page(HERE / "pages" / "motion.py", title="Motion", icon=":material/animation:", url_path="motion"),
    st.Page(HERE / "pages" / "samplers.py", title="Sampler lab", icon=":material/casino:", url_path="samplers"),
    st.Page(HERE / "pages" / "labs.py", title="Labs", icon=":material/biotech:", url_path="labs"),
    st.Page(HERE / "pages" / "mnist.py", title="MNIST", icon=":material/grid_view:", url_path="mnist"),
    st.Page(HERE / "pages" / "image_lab.py", title="Image lab", icon=":material/brush:", url_path="image_lab"),
]

st.navigation(PAGES).run()
