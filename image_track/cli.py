"""``toydiff mnist {train,sample,eval,lab,distill}``: train UNet presets, sample and draw them, score them, distil them.

    toydiff mnist train  --preset tiny --conditional --epochs 5 --out runs/tiny_cond [--minutes 10] [--resume CKPT]
    toydiff mnist sample [--checkpoint CKPT | --conditional] --out figs/ [--method ddim --steps 50 --eta 0]
                         [--figures grid,sweep,fixed-init,progression,gif] [--ws 0,5,10] [--w 3]
    toydiff mnist eval   [--checkpoint CKPT | --conditional] --n 1000 [--ws 0,1,3,5] --out eval.json
    toydiff mnist lab    <experiment> ...          (see image_track.lab)
    toydiff mnist distill --out runs/map [--students 4,2,1]         (flow-map distillation of tiny_uncond; or
                          --method progressive --rounds 2 --start-steps 8)

Without ``--checkpoint``, ``sample`` and ``eval`` use the committed ``tiny`` weights (``--conditional`` picks
the class-conditional one). ``--guide [CKPT]`` autoguides an unconditional model (Karras et al. 2024) with a
weaker one (alone: the committed early snapshot of the committed model's run); ``--w`` / ``--ws`` are then
autoguidance scales, applied at steps t < ``--guide-t-max`` (600). Multi-GPU training: ``torchrun --nproc_per_node=N -m image_track.training ...``.
Bad input prints one line on stderr and exits with status 2. ``train`` exits with status 3 if the run
diverges (a NaN or infinite loss or weight): one line names the step, and the checkpoint in ``--out`` stays
the last finite one. ``train`` refuses an ``--out`` that holds a run unless ``--resume`` (same settings) or
``--overwrite`` is given, and locks ``--out`` while it writes (a second writer exits 2 at once).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from toydiff.checks import check_int
from toydiff.processes.registry import all_methods
from toydiff.cli import OneLineParser, check_writable, fail, run_guarded
from toydiff.options import device_arg, float_list, positive, seed_arg
from toydiff.outputs import atomic_write_text, save_figure, save_image
from toydiff.threads import add_threads_flag, configure_threads

__all__ = ["main", "build_parser", "evaluate_model", "HELP"]

HELP = "the MNIST track: train UNet presets, sample and draw them, score them, lab experiments"

PROG = "toydiff mnist"
FIGURES = ("grid", "sweep", "fixed-init", "progression", "gif")


def _figures(text: str) -> list[str]:
    vals = [p.strip() for p in text.split(",") if p.strip()]
    bad = [v for v in vals if v not in FIGURES + ("all",)]
    if bad or not vals:
        raise argparse.ArgumentTypeError(f"figures must be some of {', '.join(FIGURES)} or all, got {text!r}")
    return list(FIGURES) if "all" in vals else vals



def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", default=None, help="checkpoint (default: the committed tiny weights)")
    p.add_argument("--conditional", action="store_true", help="with no --checkpoint: the class-conditional tiny")
    p.add_argument("--guide", nargs="?", const="committed", default=None, metavar="CKPT",
                   help="autoguidance (Karras et al. 2024) for an unconditional model: a weaker checkpoint of the same "
                        "kind (alone: the committed weak tiny model); --w / --ws are then its scales")
    p.add_argument("--guide-t-max", type=int, default=None,
                   help="with --guide: guide only at steps t < this, a limited guidance interval (default 600, "
                        "measured best for the committed model; 0: every step)")
    p.add_argument("--method", default=None, choices=all_methods(),
                   help="sampler, one the model's process offers (default ddim; a flow model: heun; a distilled "
                        "student with none of --method/--steps/--spacing: its own sampler and grid)")
    p.add_argument("--steps", type=positive(int), default=None, help="sampler steps (default 50; a flow model: 10)")
    p.add_argument("--eta", type=float, default=0.0, help="DDIM eta in [0, 1] (default %(default)s)")
    p.add_argument("--spacing", default=None, choices=("linspace", "leading", "trailing", "karras", "logsnr"),
                   help="DDPM models: the step spacing (default: the method's)")
    p.add_argument("--seed", type=seed_arg, default=0, help="image i uses seed + i (default %(default)s)")
    p.add_argument("--batch-size", type=positive(int), default=500, help="images per sampler call")
    p.add_argument("--device", type=device_arg, default="cpu", help="cpu, cuda or cuda:N (default %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser() -> OneLineParser:
    from image_track.training import add_train_arguments

    parser = OneLineParser(prog=PROG, description="MNIST diffusion: train UNet presets, sample and draw them, score "
                                                  "them, lab experiments.\n\n" + __doc__.split("\n\n", 2)[2],
                           epilog="examples:\n" + __doc__.split("\n\n")[1])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser, metavar="SUBCOMMAND",
                                title="subcommands (toydiff mnist SUBCOMMAND --help: its options)")

    add_train_arguments(sub.add_parser(
        "train", help="train a UNet preset (exit status 3 if it diverges)",
        description="Train a UNet preset on MNIST. Exit status 2: bad input, an --out holding a run (without "
                    "--resume/--overwrite) or held by another train; 3: the run diverged (NaN/inf loss or weights; "
                    "the checkpoint stays the last finite one)."))

    s = sub.add_parser("sample", help="sample a checkpoint and draw figures")
    _model_args(s)
    s.add_argument("--out", default="mnist_samples", help="folder for the figures (default %(default)s)")
    s.add_argument("--figures", type=_figures, default=["grid"], help=f"some of {', '.join(FIGURES)}, or all")
    s.add_argument("--w", type=float, default=3.0,
                   help="guidance scale: classifier-free for conditional grids, or autoguidance with --guide (default %(default)s)")
    s.add_argument("--ws", type=float_list, default=[0.0, 5.0, 10.0], help="guidance sweep scales (default 0,5,10)")
    s.add_argument("--label", type=int, default=None, help="digit for the fixed-initialisation / progression runs")
    s.add_argument("--save-tensor", action="store_true", help="also write the grid's samples as samples.safetensors")

    e = sub.add_parser("eval", help="FID-MNIST, accuracy per guidance scale, class histogram")
    _model_args(e)
    e.add_argument("--n", type=positive(int), default=1000, help="samples per setting, 2..10000 (default %(default)s)")
    e.add_argument("--ws", type=float_list, default=None,
                   help="guidance scales (default 0,1,3,5; with --guide, autoguidance scales >= 1, default 1,2,3)")
    e.add_argument("--out", default="mnist_eval.json", help="JSON to write (default %(default)s)")

    from image_track.training.distill_cli import HELP as DISTILL_HELP, add_distill_arguments

    add_distill_arguments(sub.add_parser("distill", help=DISTILL_HELP, description=DISTILL_HELP))

    # parsed by image_track.lab's own parser (main hands it the arguments after "lab"); listed here for --help
    sub.add_parser("lab", add_help=False, help="one figure per lab experiment (denoise, sdedit, inpaint, anagram, "
                                               "hybrid, denoiser, guidance): toydiff mnist lab --help")
    for sp in sub.choices.values():  # the one thread policy (toydiff.threads): --threads N, default 1
        add_threads_flag(sp)
    return parser


def _load(a):
    """The model of ``--checkpoint`` (or the committed one), and ``--guide``'s weak model (or None)."""
    from image_track.sampling import default_checkpoint, default_guide, load_model

    path = Path(a.checkpoint) if a.checkpoint else default_checkpoint(a.conditional)
    if not path.is_file():
        fail(f"{PROG}: error: checkpoint not found: {path}")
    m = load_model(path, device=a.device)
    _resolve_sampler(a, m)
    if a.guide is None:
        return m, None
    from image_track.sampling import AUTOGUIDANCE_T_MAX

    if a.guide_t_max is None:
        a.guide_t_max = AUTOGUIDANCE_T_MAX
    elif a.guide_t_max < 0:
        fail(f"{PROG}: error: --guide-t-max must be >= 0, got {a.guide_t_max}")
    a.guide_t_max = a.guide_t_max or None  # 0: guide at every step
    if m.conditional:
        fail(f"{PROG}: error: --guide (autoguidance) is for unconditional models; use --w for classifier-free guidance")
    guide_path = default_guide() if a.guide == "committed" else Path(a.guide)
    if not guide_path.is_file():
        fail(f"{PROG}: error: --guide checkpoint not found: {guide_path}")
    g = load_model(guide_path, device=a.device)
    if g.model.config != m.model.config or g.process.to_dict() != m.process.to_dict():
        fail(f"{PROG}: error: --guide {guide_path} is not the same kind of model as {path}")
    return m, g.model


def _resolve_sampler(a, m) -> None:
    """``--method`` / ``--steps`` defaults for the model's process (:func:`image_track.sampling.default_sampler`);
    with none of ``--method``, ``--steps``, ``--spacing`` a distilled student runs its own sampler
    (:attr:`~image_track.loaded.LoadedModel.sampler`: e.g. DDIM on its grid (999, 374)). A sampler the process
    does not offer, an ``--eta`` it does not read, or a figure that needs a noise schedule of a process without
    one, is a one-line error."""
    from image_track.sampling import check_sampler, default_sampler

    if a.method is None and a.steps is None and a.spacing is None:  # the checkpoint's own sampler
        own = m.sampler
        a.method, a.steps, a.spacing = own["method"], own["steps"], own["options"].get("spacing")
    method, steps = default_sampler(m.process)
    a.method, a.steps = a.method or method, a.steps or steps
    try:
        check_sampler(m.process, a.method, a.eta)
    except ValueError as e:
        fail(f"{PROG}: error: --{e}")
    needs_schedule = [f for f in ("fixed-init", "progression", "gif") if f in getattr(a, "figures", ())]
    if needs_schedule and m.process.schedule is None:
        fail(f"{PROG}: error: --figures {', '.join(needs_schedule)} need a DDPM model; this is "
             f"{m.process.describe()} (grid, sweep work)")


def _sample_kw(a) -> dict:
    if not 0.0 <= a.eta <= 1.0:
        fail(f"{PROG}: error: --eta must lie in [0, 1], got {a.eta}")
    extra = {"options": {"spacing": a.spacing}} if a.spacing is not None else {}
    return dict(method=a.method, steps=a.steps, eta=a.eta, batch_size=a.batch_size, progress=not a.quiet, **extra)


def _run_sample(a) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from image_track import sampling as S

    out = check_writable(a.out, "--out", folder=True)  # before any work, writing nothing
    m, guide = _load(a)
    kw = _sample_kw(a) | ({"guide": guide, "w": a.w, "guide_t_max": a.guide_t_max} if guide is not None else {})
    nc = m.num_classes
    if a.label is not None and (nc is None or not 0 <= a.label < nc):
        fail(f"{PROG}: error: --label needs a class-conditional model and a label in 0..{(nc or 1) - 1}")
    if "sweep" in a.figures and nc is None:
        fail(f"{PROG}: error: the guidance sweep needs a class-conditional checkpoint")
    written = []  # --out is made with its first file (_into): a refused --steps / --w / --guide leaves nothing
    if "grid" in a.figures:
        labels = S.digit_labels(10, 10, nc) if nc else None
        x = S.generate(m.model, m.process, 100, labels=labels, **({"w": a.w} if nc else {}), seed=a.seed, **kw)
        save_image(S.grid_image(x, nrow=10, scale=3), _into(out, "grid.png"))
        written.append(out / "grid.png")
        if a.save_tensor:
            from toydiff.training.checkpoint import save_checkpoint

            save_checkpoint(out / "samples.safetensors", {"images": x, **({"labels": labels} if nc else {})},
                            {"method": a.method, "steps": a.steps, "eta": a.eta, "seed": a.seed, "w": a.w})
            written.append(out / "samples.safetensors")
    if "sweep" in a.figures:
        fig = S.guidance_sweep_figure(m.model, m.process, a.ws, seed=a.seed, **kw)
        save_figure(fig, _into(out, "guidance_sweep.png"), dpi=120)
        plt.close(fig)
        written.append(out / "guidance_sweep.png")
    if "fixed-init" in a.figures:
        samples = S.fixed_init_samples(m.model, m.process, 10, seed=a.seed, label=a.label,
                                       steps=None if _n_steps(a.steps) >= m.process.schedule.T else a.steps)
        fig = S.fixed_init_figure(samples)
        save_figure(fig, _into(out, "fixed_init.png"), dpi=120)
        plt.close(fig)
        written.append(out / "fixed_init.png")
    if "progression" in a.figures or "gif" in a.figures:
        labels = None if a.label is None else torch.full((4,), a.label)
        w = a.w if nc and labels is not None else None
        keep = None if "gif" in a.figures else S.evenly_spaced_steps(_n_steps(a.steps), 10)
        rec = S.record_progression(m.model, m.process, 4, labels=labels, w=w, method=a.method, steps=a.steps,
                                   seed=a.seed, keep_steps=keep)
        if "progression" in a.figures:
            idx = S.evenly_spaced_steps(len(rec.timesteps), 10)
            sub = _SubRecorder(rec, idx)
            fig = S.progression_figure(sub)
            save_figure(fig, _into(out, "progression.png"), dpi=120)
            plt.close(fig)
            written.append(out / "progression.png")
        if "gif" in a.figures:
            written.append(S.progression_gif(rec, _into(out, "progression.gif")))
    for p in written:
        print(p)
    return 0


def _n_steps(steps: int | list[int]) -> int:
    """A sampler's number of steps: ``--steps``, or the length of a distilled student's explicit grid."""
    return steps if isinstance(steps, int) else len(steps)


def _into(folder: Path, name: str) -> Path:
    """``folder / name``, making ``folder`` first: an output folder appears with the first file written into it."""
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


class _SubRecorder:
    """A view of some rows of a TrajectoryRecorder (for a strip of a few steps out of a full recording)."""

    def __init__(self, rec, rows):
        self.x_t, self.x0_hat = rec.x_t[rows], rec.x0_hat[rows]
        self.timesteps = [rec.timesteps[i] for i in rows]


def evaluate_model(m, n: int, ws: Sequence[float], *, seed: int = 0, guide=None, guide_t_max: int | None = None,
                   **sample_kw) -> dict:
    """Score a loaded model with :mod:`image_track.evaluate` on ``n`` samples per setting.

    Unconditional: :func:`image_track.evaluate.mnist_metrics` (FID-MNIST, KID, precision / recall vs ``n`` test
    digits; their floors, train vs test at the same ``n``, under ``floors``), class histogram,
    KL to uniform, confident fraction; with a ``guide`` model, the same at every autoguidance scale ``w``
    (Karras et al. 2024; w = 1 is the model alone; ``guide_t_max`` limits it to steps t below it). Conditional: the same for the null class (w = 0 is the
    unconditional denoiser), and accuracy / confident fraction / FID for labels ``i mod 10`` at every ``w``.
    """
    import torch

    from image_track import evaluate
    from image_track.sampling import generate

    n = check_int(n, "n", min=4, max=10_000)
    ref = evaluate.MnistReference(n, seed=seed, pad_to_32=m.image_size == 32)

    def scores(x):
        hist = evaluate.class_histogram(x)
        r = evaluate.mnist_metrics(x, ref)
        return {"fid_mnist": r["fid"], "confident_fraction": r["confident"],
                **{k: r[k] for k in ("kid", "kid_sd", "precision", "recall")},
                "class_histogram": [round(v, 4) for v in hist.tolist()], "kl_to_uniform": evaluate.kl_to_uniform(hist)}

    result = {"n": n, "fid_floor": ref.floors["fid_floor"], "floors": ref.floors,
              "sampler": {k: v for k, v in sample_kw.items() if k != "progress"},
              "seed": seed, "conditional": m.conditional, "model": m.model.config,
              "checkpoint_step": m.metadata.get("step")}
    x_u = generate(m.model, m.process, n, seed=seed, **sample_kw)
    result["unconditional"] = scores(x_u)
    if guide is not None:
        result["autoguidance_t_max"] = guide_t_max
        result["autoguidance"] = {
            f"{w:g}": result["unconditional"] if float(w) == 1.0
            else scores(generate(m.model, m.process, n, seed=seed, guide=guide, w=float(w), guide_t_max=guide_t_max,
                                 **sample_kw))
            for w in ws}
    if m.conditional:
        labels = torch.arange(n) % m.num_classes
        per_w = {}
        for w in ws:
            if float(w) == 0.0:  # w = 0 is the unconditional denoiser: the samples above
                per_w[f"{w:g}"] = {"accuracy": evaluate.conditional_accuracy(x_u, labels), **result["unconditional"]}
                continue
            x = generate(m.model, m.process, n, labels=labels, w=float(w), seed=seed, **sample_kw)
            per_w[f"{w:g}"] = {"accuracy": evaluate.conditional_accuracy(x, labels), **scores(x)}
        result["per_w"] = per_w
        best = max(per_w, key=lambda k: (per_w[k]["accuracy"], -per_w[k]["fid_mnist"]))
        result["best_w"] = float(best)
    return result


def _run_eval(a) -> int:
    check_writable(a.out, "--out")
    m, guide = _load(a)
    if a.ws is None:
        a.ws = [1.0, 2.0, 3.0] if guide is not None else [0.0, 1.0, 3.0, 5.0]
    if guide is not None and min(a.ws) < 1:
        fail(f"{PROG}: error: --ws: autoguidance scales must be >= 1, got {min(a.ws):g}")
    result = evaluate_model(m, a.n, a.ws, seed=a.seed, guide=guide, guide_t_max=a.guide_t_max, **_sample_kw(a))
    out = atomic_write_text(a.out, json.dumps(result, indent=1))
    f = result["floors"]
    print(f"floors (real vs real, n={a.n}): FID-MNIST {f['fid_floor']:.2f}, KID {f['kid_floor']:.2g} ± {f['kid_floor_sd']:.2g}, "
          f"precision {f['precision_floor']:.3f}, recall {f['recall_floor']:.3f}, confident {f['confident_floor']:.3f}")
    rows = [("model alone", result["unconditional"])]
    rows += [(f"autoguidance w={w}", r) for w, r in result.get("autoguidance", {}).items()]
    rows += [(f"w={w}", r) for w, r in result.get("per_w", {}).items()]
    for name, r in rows:
        acc = f"accuracy {r['accuracy']:.3f}, " if "accuracy" in r else ""
        print(f"{name}: {acc}FID-MNIST {r['fid_mnist']:.2f}, KID {r['kid']:.3g} ± {r['kid_sd']:.2g}, precision "
              f"{r['precision']:.3f}, recall {r['recall']:.3f}, confident {r['confident_fraction']:.3f}, "
              f"KL to uniform {r['kl_to_uniform']:.4f}")
    print(out)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "lab":  # another module's command line: imported only when asked for
        import importlib

        return int(importlib.import_module("image_track.lab").main(argv[1:]) or 0)
    if not argv:
        print(f"{PROG}: error: a command is required (train, sample, eval, lab, distill)", file=sys.stderr)
        return 2
    if argv[0] in ("-h", "--help"):
        build_parser().print_help()
        return 0

    def run() -> int:
        a = build_parser().parse_args(argv)
        configure_threads(a.threads)
        if a.command == "train":
            from image_track.training import run_from_args

            return run_from_args(a)
        if a.command == "distill":
            from image_track.training.distill_cli import run_distill

            return run_distill(a, PROG)
        return {"sample": _run_sample, "eval": _run_eval}[a.command](a)

    return run_guarded(run, PROG)


if __name__ == "__main__":
    sys.exit(main())
