"""Categorical data with a known table: the probability of every sequence of length L over V symbols.

    dist = TableDistribution(probs)            # probs [V] * L, summing to 1
    x = dist.sample(1000, generator=g)         # [1000, L] long in {0, …, V − 1}
    dist.log_prob(x)                           # [1000] float64
    fn = dist.denoiser(toydiff.discrete.masked(T=None, V=dist.V))   # the exact p(x₀ⁱ | x_t), [B, L, V]

The data sets below (a Markov chain over symbols, a few "words" with typos, binary shapes on a pixel grid) are
built as tables, so every question about them (entropy, marginals, the exact denoiser, the KL of a sampler's
output) is answered by enumeration over the V^L sequences (at most :data:`MAX_STATES`).
"""

from __future__ import annotations

from typing import Callable

import torch

from toydiff.checks import check_choice, check_int, check_number

__all__ = ["TableDistribution", "MAX_STATES", "markov_chain", "words", "shapes", "templates_with_typos",
           "DATASETS", "dataset", "SHAPES"]

#: the largest table (V^L sequences) a TableDistribution holds: every oracle enumerates it per batch row
MAX_STATES = 1 << 20


class TableDistribution:
    """A distribution over sequences ``[L]`` of symbols ``{0, …, V − 1}`` given by its full table.

    Args:
        probs: a tensor of shape ``[V] * L`` (``probs[x_1, …, x_L]``) of non-negative numbers summing to 1
            (within 1e-6, 1e-4 for a float32 tensor; held in float64, renormalised).
    """

    def __init__(self, probs):
        tol = 1e-6 if not isinstance(probs, torch.Tensor) or probs.dtype == torch.float64 else 1e-4
        probs = torch.as_tensor(probs, dtype=torch.float64)
        if probs.ndim < 1 or len(set(probs.shape)) != 1 or probs.shape[0] < 2:
            raise ValueError(f"probs must have shape [V] * L with V >= 2, got {tuple(probs.shape)}")
        if probs.numel() > MAX_STATES:
            raise ValueError(f"probs: {probs.numel()} sequences is more than {MAX_STATES} (V^L is enumerated)")
        if not bool(torch.isfinite(probs).all()) or bool((probs < 0).any()):
            raise ValueError("probs must be finite and non-negative")
        total = float(probs.sum())
        if abs(total - 1.0) > tol:
            raise ValueError(f"probs must sum to 1, got {total:.9g}")
        self.probs = probs / total
        self.V, self.L = int(probs.shape[0]), int(probs.ndim)
        self._states: torch.Tensor | None = None

    def __repr__(self) -> str:
        return f"TableDistribution(V={self.V}, L={self.L}, entropy={self.entropy():.4f} nats)"

    @property
    def n_states(self) -> int:
        """V^L, the number of sequences."""
        return self.probs.numel()

    @property
    def states(self) -> torch.Tensor:
        """Every sequence, ``[V^L, L]`` long, in the table's (row-major) order."""
        if self._states is None:
            self._states = self.decode(torch.arange(self.n_states))
        return self._states

    def decode(self, index: torch.Tensor) -> torch.Tensor:
        """Flat table indices ``[n]`` → sequences ``[n, L]`` long."""
        powers = self.V ** torch.arange(self.L - 1, -1, -1)
        return (index[:, None] // powers) % self.V

    def index(self, x: torch.Tensor) -> torch.Tensor:
        """Sequences ``x [n, L]`` → their flat table indices ``[n]`` (a ValueError for a symbol outside 0 … V − 1)."""
        x = self._check_x(x)
        return (x * self.V ** torch.arange(self.L - 1, -1, -1)).sum(-1)

    def _check_x(self, x) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.is_floating_point() or x.ndim != 2 or x.shape[1] != self.L:
            raise TypeError(f"x must be an integer tensor [n, {self.L}], got "
                            f"{getattr(x, 'dtype', type(x).__name__)} {tuple(getattr(x, 'shape', ()))}")
        if x.numel() and (int(x.min()) < 0 or int(x.max()) >= self.V):
            raise ValueError(f"x: symbols must lie in 0 … {self.V - 1}")
        return x.long()

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` independent sequences ``[n, L]`` long (categorical draws from the flat table)."""
        n = check_int(n, "n", min=1)
        idx = torch.multinomial(self.probs.reshape(-1), n, replacement=True, generator=generator)
        return self.decode(idx)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) of sequences ``x [n, L]``, ``[n]`` float64 (−inf off the support)."""
        return self.probs.reshape(-1)[self.index(x)].log()

    def counts(self, x: torch.Tensor) -> torch.Tensor:
        """How often each sequence occurs in ``x [n, L]``: ``[V^L]`` float64 in the table's order."""
        return torch.bincount(self.index(x), minlength=self.n_states).to(torch.float64)

    def marginals(self) -> torch.Tensor:
        """The per-position marginals p(xⁱ = v), ``[L, V]`` float64."""
        return torch.stack([self.probs.sum(dim=[d for d in range(self.L) if d != i]) if self.L > 1 else self.probs
                            for i in range(self.L)])

    def entropy(self) -> float:
        """H(X) in nats: the negative log-likelihood floor of any model, and the Bayes floor of MDLM's
        continuous-time loss (:func:`toydiff.discrete.judge.mdlm_floor`)."""
        p = self.probs[self.probs > 0]
        return float(-(p * p.log()).sum())

    def denoiser(self, process, *, chunk: int = 1 << 22) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """The exact ``fn(x_t [B, L] long, t [B]) -> p(x₀ⁱ = v | x_t) [B, L, V]`` under ``process``
        (:func:`toydiff.discrete.exact.table_denoiser`)."""
        from toydiff.discrete.exact import table_denoiser
        return table_denoiser(self.probs, process, chunk=chunk)


def _smoothed(template: torch.Tensor, V: int, typo: float) -> torch.Tensor:
    """Per-position rows ``[L, V]``: the template's symbol with 1 − typo, each other symbol typo / (V − 1)."""
    rows = torch.full((template.numel(), V), typo / (V - 1), dtype=torch.float64)
    rows[torch.arange(template.numel()), template] = 1.0 - typo
    return rows


def _outer(rows: torch.Tensor) -> torch.Tensor:
    """The product distribution of independent positions with rows ``[L, V]``: a table ``[V] * L``."""
    table = rows[0]
    for r in rows[1:]:
        table = table[..., None] * r
    return table


def templates_with_typos(templates, V: int, typo: float, weights=None) -> TableDistribution:
    """A mixture of template sequences ``[W, L]`` (weights ``[W]``, default equal), each position of a draw
    replaced independently with probability ``typo`` by one of the other V − 1 symbols, uniformly."""
    templates = torch.as_tensor(templates, dtype=torch.long)
    V, typo = check_int(V, "V", min=2), check_number(typo, "typo", min=0.0, max=1.0)
    if templates.ndim != 2 or int(templates.min()) < 0 or int(templates.max()) >= V:
        raise ValueError(f"templates must be [W, L] with symbols in 0 … {V - 1}")
    w = torch.ones(len(templates), dtype=torch.float64) if weights is None else torch.as_tensor(weights, dtype=torch.float64)
    if w.shape != (len(templates),) or bool((w < 0).any()) or float(w.sum()) <= 0:
        raise ValueError(f"weights must be [{len(templates)}] non-negative with a positive sum")
    w = w / w.sum()
    return TableDistribution(sum(wi * _outer(_smoothed(tp, V, typo)) for wi, tp in zip(w, templates)))


def markov_chain(V: int = 4, L: int = 6, stay: float = 0.6, up: float = 0.3) -> TableDistribution:
    """A Markov chain over V symbols on a ring: from s, stay with ``stay``, go to s + 1 (mod V) with ``up``, to
    each other symbol with an equal share of the rest; x¹ uniform. Its table is π(x¹) ∏ P(xⁱ⁻¹, xⁱ)."""
    V, L = check_int(V, "V", min=3), check_int(L, "L", min=1)
    stay, up = check_number(stay, "stay", min=0.0, max=1.0), check_number(up, "up", min=0.0, max=1.0)
    if stay + up > 1.0:
        raise ValueError(f"stay + up must be at most 1, got {stay + up}")
    P = torch.zeros(V, V, dtype=torch.float64)
    for s in range(V):
        P[s] = (1.0 - stay - up) / (V - 2)
        P[s, s], P[s, (s + 1) % V] = stay, up
    table = torch.full((V,), 1.0 / V, dtype=torch.float64)
    for _ in range(L - 1):
        table = table[..., None] * P  # [..., V (x^{i-1}), 1] * P [V, V] -> [..., V, V]
    return TableDistribution(table)


#: the default words of :func:`words` over the symbols a … e (V = 5)
WORDS = ("abcde", "badce", "cabed", "ecdab")


def words(vocab: str = "abcde", items: tuple[str, ...] = WORDS, typo: float = 0.05) -> TableDistribution:
    """A mixture of equally likely ``items`` (strings of one length over ``vocab``) with typos (each letter
    replaced with probability ``typo`` by another): V = len(vocab), L = the words' length."""
    if len({len(w) for w in items}) != 1:
        raise ValueError(f"items must all have one length, got {items!r}")
    bad = sorted({c for w in items for c in w} - set(vocab))
    if bad:
        raise ValueError(f"items use letters outside vocab {vocab!r}: {bad}")
    templates = [[vocab.index(c) for c in w] for w in items]
    return templates_with_typos(templates, len(vocab), typo)


#: binary shapes on a 3 × 3 grid (row-major, 1 = ink)
SHAPES = {
    "bar": "000111000", "column": "010010010", "diagonal": "100010001", "cross": "010111010", "ring": "111101111",
}


def shapes(names: tuple[str, ...] = tuple(SHAPES), flip: float = 0.03) -> TableDistribution:
    """Binary 3 × 3 pictures (V = 2, L = 9): one of ``names`` of :data:`SHAPES`, equally likely, each pixel
    flipped with probability ``flip``."""
    for n in names:
        check_choice(n, "names", tuple(SHAPES))
    return templates_with_typos([[int(c) for c in SHAPES[n]] for n in names], 2, flip)


#: the data sets by name (their defaults: V^L of 4096, 3125 and 512 sequences)
DATASETS: dict[str, Callable[..., TableDistribution]] = {"markov": markov_chain, "words": words, "shapes": shapes}


def dataset(name: str, **kwargs) -> TableDistribution:
    """The data set ``name`` of :data:`DATASETS` built with ``kwargs``."""
    return DATASETS[check_choice(name, "name", tuple(DATASETS))](**kwargs)
