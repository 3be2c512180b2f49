import streamlit as st

st.title("toy")
st.info("This page is being built.")
