import streamlit as st

st.title("image_lab")
st.info("This page is being built.")
