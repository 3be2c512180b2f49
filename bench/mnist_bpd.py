"""Bits per dimension of the committed MNIST models by the probability-flow ODE (toydiff.evaluation.likelihood).

    PYTHONPATH=. python bench/mnist_bpd.py                 # 8 test images, unconditional tiny model
    PYTHONPATH=. python bench/mnist_bpd.py --n 64 --probes 2

Dequantisation: uniform (Theis et al. 2016): byte k -> y = (k + u)/256, u ~ U[0, 1) from --seed, x = 2y - 1 in
[-1, 1); bpd = (-log p(x) - D log(2/256)) / (D ln 2) (toydiff.evaluation.likelihood.bits_per_dim), an upper bound on the
discrete model's bpd. The divergence is Hutchinson's (Rademacher probes, fixed per image). Test split, first --n.
"""

from __future__ import annotations

import argparse
import time

import torch

from image_track.data import load_mnist
from image_track.loaded import default_checkpoint, load_model
from toydiff.evaluation.likelihood import bits_per_dim, pf_ode_likelihood
from toydiff.threads import configure_threads


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--probes", type=int, default=1)
    p.add_argument("--rtol", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--conditional", action="store_true", help="the class-conditional model, with true labels")
    a = p.parse_args()
    configure_threads(2)
    m = load_model(default_checkpoint(conditional=a.conditional))
    images, labels = load_mnist("test")
    k = ((images[: a.n] + 1) * 127.5).round()  # the bytes back
    g = torch.Generator().manual_seed(a.seed)
    x = (k + torch.rand(k.shape, generator=g)) / 128 - 1
    net = m.model.eval()
    y = labels[: a.n]
    fn = (lambda x_t, t: net(x_t.float(), t, y).double()) if a.conditional else (lambda x_t, t: net(x_t.float(), t).double())
    t0 = time.perf_counter()
    r = pf_ode_likelihood(fn, x.double(), m.schedule, divergence="hutchinson", n_probes=a.probes, generator=g,
                          rtol=a.rtol, atol=a.rtol)
    bpd = bits_per_dim(r.log_prob, 784)
    print(f"| model | test images | dequantisation | probes | rtol | NFE | bpd (mean ± se) | seconds |")
    print(f"|---|---|---|---|---|---|---|---|")
    print(f"| tiny_{'cond' if a.conditional else 'uncond'} | first {a.n} | uniform, seed {a.seed} | {a.probes} | "
          f"{a.rtol:g} | {r.nfe} | {bpd.mean():.3f} ± {bpd.std() / a.n**0.5:.3f} | {time.perf_counter() - t0:.0f} |")


if __name__ == "__main__":
    main()
