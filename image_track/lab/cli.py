"""``toydiff mnist lab <experiment> [options]``: one subcommand per lab experiment, each writing a figure.

    toydiff mnist lab denoise  [--digit 3 | --index I | --image my.png] [--t 250,500,750 | --i-starts 8,16]
    toydiff mnist lab sdedit   [--digit 3 | --image my.png] [--target 8] [--w 5] [--i-starts 1,3,5,7,10,20]
    toydiff mnist lab inpaint  [--rect top,left,height,width | --mask mask.png] [--label 7]
    toydiff mnist lab anagram  [--a 6 --b 9 --transform rot180|hflip]
    toydiff mnist lab hybrid   [--low 1 --high 7]
    toydiff mnist lab denoiser [--epochs 5 --subset 2048 --preset tiny]
    toydiff mnist lab guidance [--ws 0,5,10 --digits 0,...,9] [--gif-dir DIR]

Common options: ``--checkpoint`` (default: the committed ``tiny_cond``), ``--out`` (PNG), ``--seed``,
``--method`` (ddpm), ``--stride`` (30), ``--no-clip``, ``--quiet``. Bad input prints one line on stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Callable, Sequence

import toydiff as td
from toydiff.cli import OneLineParser, check_writable, run_guarded
from toydiff.options import float_list, int_list, seed_arg
from toydiff.threads import add_threads_flag, configure_threads

from image_track.lab.common import load_lab_model

__all__ = ["main", "build_parser"]

PROG = "toydiff mnist lab"


def _common(p: argparse.ArgumentParser, name: str, *, model: bool = True) -> None:
    p.add_argument("--out", default=f"lab_{name}.png", help="figure to write (PNG; default %(default)s)")
    p.add_argument("--seed", type=seed_arg, default=0, help="all randomness (default %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_threads_flag(p)
    if model:
        p.add_argument("--checkpoint", default=None, help="class-conditional checkpoint (default: committed tiny_cond)")
        p.add_argument("--method", default="ddpm", choices=td.METHODS, help="sampler (default %(default)s)")
        p.add_argument("--stride", type=int, default=30, help="timestep stride over T (default %(default)s)")
        p.add_argument("--no-clip", action="store_true", help="don't clamp x0-hat to [-1, 1] at each step")


def _source(p: argparse.ArgumentParser, default_digit: int | None) -> None:
    # --digit defaults to None so that the group sees it only when given (a default of 3 let --image X --digit 3
    # through); with none of the three, the experiment's digit (default_digit) is used
    g = p.add_mutually_exclusive_group()
    g.add_argument("--image", help="your own picture (any size or mode; made 28x28 gray; at most 4096 x 4096)")
    g.add_argument("--digit", type=int, default=None, help=f"the first MNIST test image of this class (default "
                                                           f"{default_digit})")
    g.add_argument("--index", type=int, help="MNIST test image number")
    p.set_defaults(default_digit=default_digit)


def _denoise(p: argparse.ArgumentParser) -> None:
    _source(p, 3)
    lv = p.add_mutually_exclusive_group()
    lv.add_argument("--t", type=int_list, default=[250, 500, 750], help="noise levels (default 250,500,750)")
    lv.add_argument("--i-starts", type=int_list, default=None, help="or: indices into [990, 960, ..., 0]")
    p.add_argument("--label", type=int, default=None, help="condition the denoiser on this class")
    p.add_argument("--blur-kernel", type=int, default=7, help="size of the Gaussian blur's kernel (pixels)")
    p.add_argument("--blur-sigma", type=float, default=1.5, help="standard deviation of the Gaussian blur (pixels)")


def _sdedit(p: argparse.ArgumentParser) -> None:
    _source(p, 3)
    p.add_argument("--target", type=int, default=8, help="class to edit towards (default %(default)s)")
    p.add_argument("--w", type=float, default=5.0, help="guidance scale towards the target (default %(default)s)")
    p.add_argument("--i-starts", type=int_list, default=[1, 3, 5, 7, 10, 20],
                   help="indices into [990, 960, ..., 0] (default 1,3,5,7,10,20)")


def _inpaint(p: argparse.ArgumentParser) -> None:
    _source(p, 7)
    m = p.add_mutually_exclusive_group()
    m.add_argument("--rect", help="top,left,height,width to regenerate (default 0,0,14,28: the top half)")
    m.add_argument("--mask", help="mask image: white = generate")
    p.add_argument("--label", type=int, default=None, help="generate the hole as this class")
    p.add_argument("--w", type=float, default=None, help="guidance scale for --label")
    p.add_argument("--n", type=int, default=4, help="how many inpaintings")


def _anagram(p: argparse.ArgumentParser) -> None:
    p.add_argument("--a", type=int, default=6, help="the class the image reads as")
    p.add_argument("--b", type=int, default=9, help="the class it reads as once transformed")
    p.add_argument("--transform", default="rot180", choices=("rot180", "hflip", "identity"),
                   help="what turns a into b")
    p.add_argument("--w", type=float, default=3.0, help="guidance scale (default %(default)s)")
    p.add_argument("--n", type=int, default=6, help="how many anagrams")


def _hybrid(p: argparse.ArgumentParser) -> None:
    p.add_argument("--low", type=int, default=1, help="class in the low frequencies (seen from afar)")
    p.add_argument("--high", type=int, default=7, help="class in the high frequencies (seen close up)")
    p.add_argument("--kernel", type=int, default=None, help="Gaussian kernel (default: 33 at 64 px scaled: 15)")
    p.add_argument("--sigma", type=float, default=None, help="Gaussian sigma (default: 2 at 64 px scaled: 0.875)")
    p.add_argument("--w", type=float, default=3.0, help="guidance scale (default %(default)s)")
    p.add_argument("--n", type=int, default=6, help="how many hybrids")


def _denoiser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="tiny", help="UNet preset used image-to-image (default %(default)s)")
    p.add_argument("--sigma", type=float, default=0.5, help="noise level it is trained at: z = x + sigma*eps")
    p.add_argument("--epochs", type=int, default=5, help="training epochs")
    p.add_argument("--subset", type=int, default=2048, help="training images (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=64, help="training batch")
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate (Adam)")
    p.add_argument("--test-sigmas", type=float_list, default=[0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
                   help="noise levels it is tested at, comma-separated")
    p.add_argument("--save", default=None, help="also save the trained net (safetensors)")


def _guidance(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ws", type=float_list, default=[0.0, 5.0, 10.0], help="guidance scales (default 0,5,10)")
    p.add_argument("--digits", type=int_list, default=list(range(10)), help="classes")
    p.add_argument("--n", type=int, default=2, help="samples per digit and scale")
    p.add_argument("--gif-dir", default=None, help="write one GIF of sampling per digit here (default: none)")
    p.add_argument("--gif-frames", type=int, default=12, help="sampler steps shown in each GIF (default %(default)s)")


#: experiment -> (help line, its own flags); every one also gets :func:`_common`'s flags
EXPERIMENTS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "denoise": ("Gaussian blur vs one-step x0 vs iterative denoising", _denoise),
    "sdedit": ("SDEdit from strided start indices, free and towards a class", _sdedit),
    "inpaint": ("keep pixels outside a mask, generate inside", _inpaint),
    "anagram": ("a digit that reads as a, and as b when flipped/rotated", _anagram),
    "hybrid": ("class a from afar, class b close up", _hybrid),
    "denoiser": ("train the single-step denoiser z = x + sigma*eps and test other sigma", _denoiser),
    "guidance": ("classifier-free guidance sweep: grids and GIFs per digit", _guidance),
}


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog=PROG, description="One subcommand per lab experiment, each writing a figure.\n\n"
                                                  + __doc__.split("\n\n", 2)[2],
                           epilog="examples:\n" + __doc__.split("\n\n")[1])
    sub = parser.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT",
                                title="experiments (toydiff mnist lab EXPERIMENT --help: its options)")
    for name, (help_line, add_flags) in EXPERIMENTS.items():
        p = sub.add_parser(name, help=help_line)
        add_flags(p)
        _common(p, name, model=name != "denoiser")
    return parser


def _run(args: argparse.Namespace) -> int:
    # the submodules (the package re-exports functions of the same names, so import them by full name)
    anagram, denoise, denoiser, guidance, hybrid, inpaint, sdedit = (
        importlib.import_module(f"{__package__}.{m}")
        for m in ("anagram", "denoise", "denoiser", "guidance", "hybrid", "inpaint", "sdedit"))
    progress = not args.quiet
    name = args.experiment
    check_writable(args.out, "--out")
    configure_threads(args.threads)
    if name == "denoiser":
        cfg = denoiser.DenoiserConfig(preset=args.preset, sigma=args.sigma, epochs=args.epochs, subset=args.subset,
                                      batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                                      test_sigmas=tuple(args.test_sigmas))
        denoiser.denoiser(cfg, out=args.out, save=args.save, progress=progress)
        print(args.out)
        return 0
    if getattr(args, "default_digit", None) is not None and args.image is None and args.index is None \
            and args.digit is None:
        args.digit = args.default_digit
    model = load_lab_model(args.checkpoint)
    common = dict(method=args.method, stride=args.stride, clip_x0=None if args.no_clip else 1.0, seed=args.seed,
                  out=args.out, progress=progress)
    runners: dict[str, Callable[[], object]] = {
        "denoise": lambda: denoise.denoise(model, image=args.image, digit=args.digit, index=args.index,
                                           timesteps=args.t, i_starts=args.i_starts, label=args.label, blur_kernel=args.blur_kernel,
                                           blur_sigma=args.blur_sigma, **common),
        "sdedit": lambda: sdedit.sdedit(model, image=args.image, digit=args.digit, index=args.index,
                                        target=args.target, w=args.w, i_starts=args.i_starts, **common),
        "inpaint": lambda: inpaint.inpaint(model, image=args.image, digit=args.digit, index=args.index,
                                           rect=args.rect, mask=args.mask, label=args.label, w=args.w, n=args.n,
                                           **common),
        "anagram": lambda: anagram.anagram(model, a=args.a, b=args.b, transform=args.transform, w=args.w, n=args.n,
                                           **common),
        "hybrid": lambda: hybrid.hybrid(model, low=args.low, high=args.high, kernel=args.kernel, sigma=args.sigma,
                                        w=args.w, n=args.n, **common),
        "guidance": lambda: guidance.guidance(model, ws=args.ws, digits=args.digits, n=args.n,
                                              gif_dir=args.gif_dir, gif_frames=args.gif_frames, **common),
    }
    runners[name]()
    print(args.out)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    return run_guarded(lambda: _run(parser.parse_args(argv)), PROG)
