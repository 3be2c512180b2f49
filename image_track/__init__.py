"""MNIST on toydiff's schedule-and-sampler layer: data, UNet presets, training, sampling, evaluation."""
