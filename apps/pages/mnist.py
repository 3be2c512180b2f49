import streamlit as st

st.title("mnist")
st.info("This page is being built.")
