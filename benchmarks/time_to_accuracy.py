"""Time to accuracy on BBBC030: train with a time budget, score full validation images.

Trains the default model on the shared BBBC030 train split (20 DIC images) for
``--max-time`` seconds exactly as ``cytounet train --max-time`` does, then
predicts the 20 full-size validation images with the *saved* model (inference
mode, tiled) and reports the Dice of the thresholded masks against the filled
validation masks: pooled over all pixels and as a per-image mean.

Usage::

    python benchmarks/time_to_accuracy.py --max-time 300 [--data ../shared/data/bbbc030]

Prints one JSON line with the figures (and writes it to ``--json`` if given).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from _results import emit

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "bbbc030"


def load_split(data: Path, split: str, labels: str = "masks") -> tuple[list, list, list]:
    """Read a BBBC030 split: (images, masks, names), in the order of the file names."""
    from napari_cytounet.core.pairs import read_pairs

    names = sorted(p.stem for p in (data / split / "images").glob("*.png"))
    pairs = read_pairs(data / split / "images", data / split / labels, names=names)
    return pairs.images, pairs.masks, pairs.names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--max-time", type=float, default=300.0)
    parser.add_argument("--patch-size", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--filters", type=int, default=None)
    parser.add_argument("--depth", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from napari_cytounet.core.bundle import load_bundle, save_bundle
    from napari_cytounet.core.config import TrainingConfig, UNetConfig
    from napari_cytounet.core.events import EpochEnd, TrainingFinished
    from napari_cytounet.core.metrics import dice
    from napari_cytounet.core.predict import predict_probabilities
    from napari_cytounet.core.training import train

    t_load = time.perf_counter()
    train_images, train_masks, train_names = load_split(args.data, "train")
    val_images, val_masks, val_names = load_split(args.data, "validation")
    load_seconds = time.perf_counter() - t_load

    given = {"patch_size": args.patch_size, "batch_size": args.batch_size, "learning_rate": args.lr}
    config = TrainingConfig(  # a value given is used (0 is refused by the config)
        epochs=None,
        max_time=args.max_time,
        seed=args.seed,
        **{k: v for k, v in given.items() if v is not None},
    )
    architecture = {"depth": args.depth, "base_filters": args.filters}
    unet = UNetConfig(**{k: v for k, v in architecture.items() if v is not None})
    t0 = time.perf_counter()
    finished = None
    curve = []
    for event in train(
        train_images,
        train_masks,
        config,
        unet,
        validation=(val_images, val_masks),
        names=train_names,
        validation_names=val_names,
    ):
        if isinstance(event, EpochEnd):
            curve.append(
                {
                    "epoch": event.epoch,
                    "seconds": round(event.elapsed, 1),
                    "loss": round(event.loss, 4),
                    "dice": round(event.dice, 4),
                    "val_loss": round(event.val_loss, 4),
                    "val_dice": round(event.val_dice, 4),
                }
            )
            print(
                f"epoch {event.epoch:3d} {event.elapsed:6.1f}s loss {event.loss:.4f} "
                f"dice {event.dice:.3f} val_loss {event.val_loss:.4f} "
                f"val_dice {event.val_dice:.3f}",
                flush=True,
            )
        elif isinstance(event, TrainingFinished):
            finished = event
    train_wall = time.perf_counter() - t0
    print(finished.summary, flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        path = save_bundle(finished.bundle, Path(tmp) / "bbbc030.keras")
        bundle = load_bundle(path)  # score the saved model, as a user would use it
        t1 = time.perf_counter()
        inter = total = 0
        per_image = []
        for image, mask in zip(val_images, val_masks):
            prob = predict_probabilities(bundle, image)
            pred = prob > 0.5
            truth = mask > 0
            inter += int(np.logical_and(pred, truth).sum())
            total += int(pred.sum() + truth.sum())
            per_image.append(dice(pred, truth))
        predict_seconds = time.perf_counter() - t1

    result = {
        "benchmark": "time_to_accuracy_bbbc030",
        "max_time": args.max_time,
        "patch_size": finished.patch_size,
        "batch_size": config.batch_size,
        "unet": bundle.unet.to_dict(),
        "patches": finished.patches,
        "train_seconds": round(finished.seconds, 1),
        "train_wall_seconds": round(train_wall, 1),
        "load_seconds": round(load_seconds, 1),
        "patches_per_second": round(finished.patches_per_second, 2),
        "epochs": finished.epochs_run,
        "precision": finished.bundle.extra["precision"],
        "val_dice_pooled": round(2 * inter / total, 4),
        "val_dice_mean": round(float(np.mean(per_image)), 4),
        "val_dice_min": round(float(np.min(per_image)), 4),
        "predict_seconds_20_images": round(predict_seconds, 1),
        "cpu_count": os.cpu_count(),
        "curve": curve,  # per epoch: validation on fixed patches of the validation images
    }
    emit(result, args.json)


if __name__ == "__main__":
    main()
