import streamlit as st

st.title("samplers")
st.info("This page is being built.")
