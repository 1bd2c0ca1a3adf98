"""The data-quality tutorial: outline-only labels versus filled masks on BBBC030v1.

Reproduces the lesson that motivated napari-cytounet. The BBBC030v1 CHO cell
images come with two kinds of labels: ``outlines/`` (the original annotation,
a thin line around each cell) and ``masks/`` (the same outlines filled). This
script

1. runs the data quality check on both label folders, with the core API and
   with ``cytounet check`` (and shows that ``cytounet train`` refuses outline
   masks without ``--force``), *before* any training;
2. trains the same small UNet twice, with the same seed, settings and time
   budget: once on the outlines, once on the filled masks, validating both on
   the filled masks of the validation split;
3. plots both runs' loss and Dice curves into
   ``docs/images/data-quality-curves.png`` and writes the figures to
   ``docs/images/data-quality-results.json``.

Usage (from the repository root)::

    python scripts/data_quality_tutorial.py                      # 120 s per run
    python scripts/data_quality_tutorial.py --epochs 15 --steps-per-epoch 6   # 720 patches each
    python scripts/data_quality_tutorial.py --max-time 90 --data /path/to/bbbc030

A time budget is what a user sets; an epoch budget gives both runs exactly the
same number of patches even on a busy machine (the docs figure uses one).

The data folder must hold ``train/{images,masks,outlines}`` and
``validation/{images,masks}`` (the layout of the cytounet examples). Attribution:
image set BBBC030v1 of the Broad Bioimage Benchmark Collection (Ljosa et al.,
Nature Methods 2012), images by Koos et al. (Scientific Reports 2016).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "bbbc030"
DEFAULT_PNG = ROOT / "docs" / "images" / "data-quality-curves.png"
DEFAULT_JSON = ROOT / "docs" / "images" / "data-quality-results.json"

RUNS = (
    ("outlines", "outline-only labels (outlines/)", "#d62728"),
    ("masks", "filled masks (masks/)", "#1f77b4"),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Train on BBBC030 outlines and on filled masks; plot both runs.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="BBBC030 folder with train/ and validation/"
    )
    parser.add_argument(
        "--max-time",
        type=float,
        default=None,
        help="training time budget of each run, in seconds (default: 120 s "
        "unless --epochs is given)",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="train each run for this many epochs instead (the same number of "
        "patches for both runs, whatever the machine's load)",
    )
    parser.add_argument(
        "--steps-per-epoch",
        type=int,
        default=12,
        help="batches per epoch (one point of the curves per epoch)",
    )
    parser.add_argument("--patch-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--filters", type=int, default=16, help="base filters of the UNet")
    parser.add_argument(
        "--validation-patches",
        type=int,
        default=16,
        help="fixed validation patches scored after every epoch",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_PNG, help="the plot (PNG)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="the figures (JSON)")
    parser.add_argument(
        "--skip-cli", action="store_true", help="do not run the `cytounet` command (core API only)"
    )
    parser.add_argument(
        "--replot",
        action="store_true",
        help="only redraw the plot from the JSON file of an earlier run",
    )
    args = parser.parse_args(argv)
    if args.epochs is None and args.max_time is None:
        args.max_time = 120.0
    return args


def budget(args: argparse.Namespace) -> str:
    """The training budget of each run, in words."""
    parts = []
    if args.epochs is not None:
        parts.append(
            f"{args.epochs} epochs of {args.steps_per_epoch} batches of {args.batch_size} patches"
        )
    if args.max_time is not None:
        parts.append(f"{args.max_time:g} s")
    return " or ".join(parts)


def banner(text: str) -> None:
    print(f"\n=== {text} ===", flush=True)


def cytounet_command() -> list[str] | None:
    """How to call the ``cytounet`` command of this environment, if it is installed."""
    exe = shutil.which(
        "cytounet", path=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    )
    return [exe] if exe else None


def run_cli(args: list[str], timeout: float = 600, strip: Path | None = None) -> tuple[int, str]:
    """Run ``cytounet ARGS``; return its exit code and its output (stdout + stderr).

    ``strip``: a folder whose path is removed from the output (to keep local paths
    out of the saved results).
    """
    command = cytounet_command()
    if command is None:
        return -1, "(the `cytounet` command is not installed in this environment)"
    proc = subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    output = (proc.stdout + proc.stderr).strip()
    if strip is not None:
        output = output.replace(str(strip.resolve()) + os.sep, "").replace(str(strip) + os.sep, "")
    return proc.returncode, output


def quality_checks(data: Path, skip_cli: bool) -> dict:
    """Check both label folders with the core API and with ``cytounet check``."""
    from napari_cytounet.core.quality import check_folders

    results: dict = {}
    images = data / "train" / "images"
    for labels, title, _ in RUNS:
        folder = data / "train" / labels
        banner(f"Quality check of {title}")
        t0 = time.perf_counter()
        report = check_folders(images, folder)
        seconds = time.perf_counter() - t0
        print(report.format())
        print(f"(core API: check_folders took {seconds:.1f} s)")
        entry = {
            "ok": report.ok,
            "summary": report.summary(),
            "codes": report.codes(),
            "seconds": round(seconds, 2),
            "first_issue": str(report.issues[0]) if report.issues else None,
        }
        if not skip_cli:
            rel_images, rel_folder = _display(images), _display(folder)
            code, output = run_cli(["check", str(images), str(folder)], strip=data.parent)
            print(f"\n$ cytounet check {rel_images} {rel_folder}\n{output}\n(exit code {code})")
            entry["cli_exit_code"] = code
            entry["cli_output"] = output
        results[labels] = entry

    if not skip_cli and cytounet_command() is not None:
        banner("cytounet train refuses outline-only masks")
        with tempfile.TemporaryDirectory() as tmp:
            model = Path(tmp) / "outlines.keras"
            code, output = run_cli(
                [
                    "train",
                    str(images),
                    str(data / "train" / "outlines"),
                    "-o",
                    str(model),
                    "--epochs",
                    "1",
                ],
                strip=data.parent,
            )
            print(
                f"$ cytounet train {_display(images)} {_display(data / 'train' / 'outlines')} "
                f"-o outlines.keras --epochs 1\n{output}\n(exit code {code}; model written: "
                f"{model.exists()})"
            )
            results["train_refusal"] = {
                "exit_code": code,
                "output": output,
                "model_written": model.exists(),
            }
    return results


def _display(path: Path) -> str:
    """A path as short as possible for printing (relative to the data's parent)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        parts = path.parts
        return str(Path(*parts[-3:])) if len(parts) >= 3 else str(path)


def load_split(data: Path, split: str, labels: str) -> tuple[list, list, list[str]]:
    """Images, labels and names of one split, paired by file stem."""
    from napari_cytounet.core.pairs import read_pairs

    pairs = read_pairs(data / split / "images", data / split / labels)
    return pairs.images, pairs.masks, pairs.names


def train_run(labels: str, title: str, args: argparse.Namespace, validation: tuple) -> dict:
    """Train one model on ``train/<labels>``; return its per-epoch history and final figures."""
    from napari_cytounet.core.config import TrainingConfig, UNetConfig
    from napari_cytounet.core.events import EpochEnd, TrainingFinished, TrainingStarted
    from napari_cytounet.core.training import train

    images, masks, names = load_split(args.data, "train", labels)
    config = TrainingConfig(
        epochs=args.epochs,
        max_time=args.max_time,
        steps_per_epoch=args.steps_per_epoch,
        patch_size=args.patch_size,
        batch_size=args.batch_size,
        validation_patches=args.validation_patches,
        seed=args.seed,
    )
    unet = UNetConfig(depth=args.depth, base_filters=args.filters)
    banner(f"Training on {title}: {len(images)} images, budget {budget(args)}")
    history = {
        "epoch": [],
        "elapsed": [],
        "patches": [],
        "loss": [],
        "dice": [],
        "val_loss": [],
        "val_dice": [],
    }
    finished = None
    val_images, val_masks, val_names = validation
    for event in train(
        images,
        masks,
        config,
        unet,
        validation=(val_images, val_masks),
        names=names,
        validation_names=val_names,
    ):
        if isinstance(event, TrainingStarted):
            print(
                f"{event.parameters:,} parameters, patches {event.patch_size}x"
                f"{event.patch_size}, batch {event.batch_size}, {event.precision}",
                flush=True,
            )
        elif isinstance(event, EpochEnd):
            for key in history:
                history[key].append(getattr(event, key))
            print(
                f"epoch {event.epoch:3d}  {event.elapsed:6.1f} s  loss {event.loss:.4f}  "
                f"Dice {event.dice:.3f}  val_loss {event.val_loss:.4f}  "
                f"val_Dice {event.val_dice:.3f}",
                flush=True,
            )
        elif isinstance(event, TrainingFinished):
            finished = event
    assert finished is not None
    print(finished.summary, flush=True)
    extra = finished.bundle.extra
    return {
        "labels": labels,
        "title": title,
        "history": history,
        "epochs": finished.epochs_run,
        "patches": finished.patches,
        "seconds": round(finished.seconds, 1),
        "patches_per_second": round(finished.patches_per_second, 2),
        "final_loss": history["loss"][-1],
        "final_dice": history["dice"][-1],
        "final_val_loss": history["val_loss"][-1],
        "final_val_dice": history["val_dice"][-1],
        "best_val_dice": max(history["val_dice"]),
        "saved_model_val_dice": extra.get("final_val_dice"),
        "summary": finished.summary,
    }


def plot(runs: list[dict], args: argparse.Namespace) -> None:
    """Loss and Dice against patches trained: both runs, training solid, validation dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {labels: colour for labels, _, colour in RUNS}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    for run in runs:
        h, colour = run["history"], colours[run["labels"]]
        for ax, key in zip(axes, ("loss", "dice")):
            ax.plot(
                h["patches"], h[key], "-o", ms=3, color=colour, label=f"{run['title']}: training"
            )
            ax.plot(
                h["patches"],
                h[f"val_{key}"],
                "--s",
                ms=3,
                color=colour,
                alpha=0.8,
                label=f"{run['title']}: validation (filled masks)",
            )
    axes[0].set_title("Loss (BCE + Dice)")
    axes[0].set_ylabel("loss")
    axes[1].set_title("Dice")
    axes[1].set_ylabel("Dice")
    axes[1].set_ylim(0, 1)
    for ax in axes:
        ax.set_xlabel("patches trained")
        ax.grid(alpha=0.3)
    axes[1].legend(loc="center right", fontsize=8)
    fig.suptitle(
        "BBBC030v1: outline-only labels vs filled masks\n"
        f"(same UNet, seed and budget: {budget(args)} per run)",
        fontsize=11,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    plt.close(fig)
    print(f"Wrote {args.out}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.replot:
        saved = json.loads(args.json.read_text())
        for key in ("epochs", "max_time", "steps_per_epoch", "batch_size"):
            setattr(args, key, saved["settings"][key])
        plot(saved["runs"], args)
        return 0

    for sub in (
        "train/images",
        "train/masks",
        "train/outlines",
        "validation/images",
        "validation/masks",
    ):
        if not (args.data / sub).is_dir():
            print(
                f"error: {args.data / sub} is missing; pass --data with the BBBC030 folder "
                "(train/{images,masks,outlines}, validation/{images,masks}).",
                file=sys.stderr,
            )
            return 2

    t0 = time.perf_counter()
    checks = quality_checks(args.data, args.skip_cli)
    validation = load_split(args.data, "validation", "masks")
    runs = [train_run(labels, title, args, validation) for labels, title, _ in RUNS]
    plot(runs, args)

    banner("Result")
    print(
        f"{'labels':<34}{'epochs':>7}{'patches':>9}{'loss':>9}{'Dice':>7}"
        f"{'val_loss':>10}{'val_Dice':>10}{'best val':>10}"
    )
    for r in runs:
        print(
            f"{r['title']:<34}{r['epochs']:>7}{r['patches']:>9}{r['final_loss']:>9.4f}"
            f"{r['final_dice']:>7.3f}{r['final_val_loss']:>10.4f}{r['final_val_dice']:>10.3f}"
            f"{r['best_val_dice']:>10.3f}"
        )
    result = {
        "data": "BBBC030v1 (train cho21-cho40, validation cho01-cho20)",
        "settings": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in vars(args).items()
            if k not in ("out", "json", "data")
        },
        "quality_check": checks,
        "runs": runs,
        "total_seconds": round(time.perf_counter() - t0, 1),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"Wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
