"""The UNet architectures behind :mod:`image_track.models`' presets, one module per architecture."""
