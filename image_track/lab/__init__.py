"""The image lab: seven MNIST experiments composed from toydiff's sampler layer (no sampling loop here).

Each experiment is one function returning a small dataclass of numpy arrays (and writing a figure to
``out=``) and one ``toydiff mnist lab <name>`` subcommand:

==========  ==========================================================================================
denoise     Gaussian blur vs one-step x̂_0 vs iterative strided denoising at t = 250, 500, 750
sdedit      SDEdit (Meng et al. 2022) from strided start indices, unconditional and towards a class
inpaint     RePaint-style inpainting (Lugmayr et al. 2022) of a rectangle or a mask image
anagram     visual anagrams: one digit that reads as a, and as b when flipped / rotated
hybrid      hybrid images: class a from afar (low frequencies), class b close up (high frequencies)
denoiser    the single-step denoiser z = x + σε (σ = 0.5): training, loss curve, out-of-distribution σ
guidance    classifier-free guidance sweep w ∈ {0, 5, 10}: grids and animated GIFs per digit
==========  ==========================================================================================

Every experiment takes the one model handle, :class:`image_track.loaded.LoadedModel` (from :func:`load_lab_model`,
which insists on a class-conditional checkpoint, or :func:`image_track.sampling.load_model`; ``LabModel`` is its
former name, kept as a function that wraps a bare network). The sampling ones share one skeleton
(:mod:`image_track.lab.common`): ``LoadedModel.eps_fn`` and a combinator -> ``strided_sample`` -> ``judge`` ->
``finish`` (figure to ``out=``).

The sampling experiments clamp x̂_0 to [-1, 1] at every step (``clip_x0=1.0``, as DDPM's reference code does for
images; ``clip_x0=None`` turns it off) and use ancestral DDPM over the strided timesteps [990, 960, ..., 0].
"""

from image_track.lab.anagram import AnagramResult, anagram
from image_track.lab.common import LabModel, LoadedModel, load_lab_model, strided_timesteps
from image_track.lab.denoise import DenoiseResult, denoise
from image_track.lab.denoiser import DenoiserConfig, DenoiserResult, denoiser
from image_track.lab.hybrid import HybridResult, hybrid
from image_track.lab.inpaint import InpaintResult, inpaint
from image_track.lab.guidance import GuidanceResult, guidance
from image_track.lab.sdedit import SDEditResult, sdedit

__all__ = [
    "main", "LoadedModel", "LabModel", "load_lab_model", "strided_timesteps",
    "denoise", "sdedit", "inpaint", "anagram", "hybrid", "denoiser", "guidance", "DenoiserConfig",
    "DenoiseResult", "SDEditResult", "InpaintResult", "AnagramResult", "HybridResult",
    "DenoiserResult", "GuidanceResult",
]


def main(argv=None) -> int:
    """``toydiff mnist lab <experiment> [options]``; see :mod:`image_track.lab.cli`."""
    from image_track.lab.cli import main as _main

    return _main(argv)
