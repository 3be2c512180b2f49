"""The Discrete diffusion page."""
