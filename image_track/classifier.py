"""A small MNIST CNN classifier: the judge for generated digits (accuracy, confidence, Fréchet distance).

Architecture (LeNet-style, as in the Keras "mnist_cnn" example but pooled twice to stay small):
``conv3x3(32) - ReLU - maxpool2 - conv3x3(64) - ReLU - maxpool2 - dropout - FC(96) - ReLU - dropout - FC(10)``, on ``[B, 1, 28, 28]`` images in ``[-1, 1]``;
32x32 inputs (padded MNIST) are centre-cropped to 28x28. The 96-wide penultimate layer is the feature
space of :func:`image_track.evaluate.fid_mnist`.

Train with ``python -m image_track.classifier --out image_track/weights/classifier.safetensors``; the
weights are stored in float16 with the test accuracy, the command and the seed in the metadata.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from toydiff.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from toydiff.checks import check_int
from toydiff.threads import configure_threads

__all__ = ["ClassifierConfig", "MNISTClassifier", "DEFAULT_WEIGHTS", "load_classifier", "classify",
           "features", "train_classifier", "main"]

DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "classifier.safetensors"


@dataclass(frozen=True)
class ClassifierConfig:
    c1: int = 32
    c2: int = 64
    hidden: int = 96
    dropout: float = 0.25
    num_classes: int = 10


def _as_28(images: torch.Tensor) -> torch.Tensor:
    """Check ``[B, 1, H, W]`` and centre-crop 32x32 to 28x28."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"images must have shape [B, 1, 28|32, 28|32], got {tuple(images.shape)}")
    size = tuple(images.shape[-2:])
    if size == (32, 32):
        return images[..., 2:30, 2:30]
    if size != (28, 28):
        raise ValueError(f"images must be 28x28 or 32x32, got {size}")
    return images


class MNISTClassifier(nn.Module):
    """``forward(x [B, 1, 28|32, 28|32] in [-1, 1]) -> logits [B, 10]``; ``features(x) -> [B, hidden]``."""

    def __init__(self, config: ClassifierConfig = ClassifierConfig()):
        super().__init__()
        c = config
        self.config = c
        self.conv1 = nn.Conv2d(1, c.c1, 3)        # 28 -> 26, pooled to 13
        self.conv2 = nn.Conv2d(c.c1, c.c2, 3)     # 13 -> 11, pooled to 5
        self.fc1 = nn.Linear(c.c2 * 5 * 5, c.hidden)
        self.fc2 = nn.Linear(c.hidden, c.num_classes)
        self.drop = nn.Dropout(c.dropout)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = F.max_pool2d(F.relu(self.conv1(_as_28(x))), 2)  # [B, c1, 13, 13]
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)          # [B, c2, 5, 5]
        return F.relu(self.fc1(self.drop(h.flatten(1))))   # [B, hidden]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(self.features(x)))


def load_classifier(path: str | Path = DEFAULT_WEIGHTS, device: str | torch.device = "cpu") -> MNISTClassifier:
    """The trained classifier in eval mode (float32), from a checkpoint written by :func:`main`."""
    tensors, meta = load_checkpoint(path)
    if meta.get("kind") != "mnist_classifier":
        raise CheckpointError(f"{path} is not an MNIST classifier checkpoint (kind={meta.get('kind')!r})")
    model = MNISTClassifier(ClassifierConfig(**meta["config"]))
    model.load_state_dict({k: v.float() for k, v in tensors.items()})
    model.metadata = meta
    return model.to(device).eval()


@torch.no_grad()
def _batched(fn, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    return torch.cat([fn(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])


def classify(images: torch.Tensor, classifier: MNISTClassifier | None = None, batch_size: int = 1000) -> torch.Tensor:
    """Class probabilities ``[B, 10]`` for images ``[B, 1, 28|32, 28|32]`` in ``[-1, 1]``."""
    batch_size = check_int(batch_size, "batch_size", min=1)
    clf = classifier if classifier is not None else _default()
    dev = next(clf.parameters()).device
    return _batched(lambda x: clf(x.to(dev).float()).softmax(-1).cpu(), images, batch_size)


def features(images: torch.Tensor, classifier: MNISTClassifier | None = None, batch_size: int = 1000) -> torch.Tensor:
    """Penultimate-layer features ``[B, 96]`` (float32) for images ``[B, 1, 28|32, 28|32]`` in ``[-1, 1]``."""
    batch_size = check_int(batch_size, "batch_size", min=1)
    clf = classifier if classifier is not None else _default()
    dev = next(clf.parameters()).device
    return _batched(lambda x: clf.features(x.to(dev).float()).cpu(), images, batch_size)


_DEFAULT: list[MNISTClassifier] = []


def _default() -> MNISTClassifier:
    if not _DEFAULT:
        _DEFAULT.append(load_classifier())
    return _DEFAULT[0]


# ------------------------------------------------------------------------------------------- training


def _shift(x: torch.Tensor, generator: torch.Generator, max_shift: int = 2) -> torch.Tensor:
    """Random translation by up to ``max_shift`` pixels (pad with -1, random crop), one per batch."""
    dx, dy = torch.randint(-max_shift, max_shift + 1, (2,), generator=generator).tolist()
    padded = F.pad(x, (max_shift,) * 4, value=-1.0)
    h, w = x.shape[-2:]
    return padded[..., max_shift + dy:max_shift + dy + h, max_shift + dx:max_shift + dx + w]


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> float:
    model.eval()
    pred = _batched(lambda x: model(x).argmax(-1), images, batch_size)
    return (pred == labels).float().mean().item()


def train_classifier(epochs: int = 6, batch_size: int = 128, lr: float = 1e-3, seed: int = 0,
                     log=print) -> tuple[MNISTClassifier, float]:
    """Train on the 60 000 MNIST training images with Adam and small random shifts; return (model, test acc)."""
    from image_track.data import load_mnist, make_loader

    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # dropout masks
    x_train, y_train = load_mnist("train")
    x_test, y_test = load_mnist("test")
    model = MNISTClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loader = make_loader(x_train, y_train, batch_size, generator=gen)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * len(loader))
    for epoch in range(epochs):
        model.train()
        t0 = time.perf_counter()
        for x, y in loader:
            loss = F.cross_entropy(model(_shift(x, gen)), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        acc = accuracy(model, x_test, y_test)
        log(f"epoch {epoch + 1}/{epochs}: loss {loss.item():.4f}, test accuracy {acc:.4f} "
            f"({time.perf_counter() - t0:.0f} s)")
    model.eval()
    return model, acc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m image_track.classifier", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    configure_threads(args.threads)
    t0 = time.perf_counter()
    model, acc = train_classifier(epochs=args.epochs, seed=args.seed)
    seconds = time.perf_counter() - t0
    half = {k: v.half() for k, v in model.state_dict().items()}
    model.load_state_dict({k: v.float() for k, v in half.items()})
    from image_track.data import load_mnist
    acc16 = accuracy(model, *load_mnist("test"))
    command = "python -m image_track.classifier " + " ".join(sys.argv[1:] if argv is None else argv)
    save_checkpoint(args.out, half, {
        "kind": "mnist_classifier", "config": asdict(model.config), "test_accuracy": acc16,
        "test_accuracy_float32": acc, "command": command.strip(), "seed": args.seed, "epochs": args.epochs,
        "train_seconds": round(seconds, 1), "storage": "float16", "input": "[B,1,28,28] in [-1,1]"})
    print(f"saved {args.out}: test accuracy {acc16:.4f} (float16), {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
