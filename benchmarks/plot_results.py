"""Plots of the recorded benchmark results, for docs/benchmarks.md.

Reads the JSON lines that the benchmark scripts wrote with ``--json`` into
``benchmarks/results/`` and draws:

* ``docs/images/bench-time-to-accuracy.png``: validation loss and Dice per epoch
  against training time (``time_to_accuracy*.json``, one curve per file);
* ``docs/images/bench-throughput.png``: training patches/s of a plain float32
  Keras ``fit`` and of napari-cytounet (``training_throughput.json``);
* ``docs/images/bench-interactive.png``: Dice per round of the interactive loop and
  of the random-forest baseline, on the image and on other images
  (``interactive_*.json``, one panel per data set).

Usage::

    python benchmarks/plot_results.py [--results benchmarks/results] [--out docs/images]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load(path: Path) -> dict:
    return json.loads(path.read_text().strip().splitlines()[-1])


def plot_time_to_accuracy(files: list[Path], out: Path) -> Path | None:
    """Validation Dice and loss per epoch against seconds of training, one line per run."""
    import matplotlib.pyplot as plt

    runs = [(f, _load(f)) for f in files]
    runs = [(f, r) for f, r in runs if r.get("curve")]
    if not runs:
        return None
    fig, (ax_dice, ax_loss) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=110)
    for _, r in runs:
        xs = [p["seconds"] for p in r["curve"]]
        label = (
            f"{r['precision']}, {r['patch_size']} px x {r['batch_size']}: "
            f"final Dice {r['val_dice_pooled']:.3f} (20 full images)"
        )
        ax_dice.plot(xs, [p["val_dice"] for p in r["curve"]], marker="o", ms=3, label=label)
        (line,) = ax_loss.plot(xs, [p["val_loss"] for p in r["curve"]], marker="o", ms=3)
        ax_loss.plot(
            xs, [p["loss"] for p in r["curve"]], ls="--", alpha=0.6, color=line.get_color()
        )
    ax_dice.axhline(0.92, color="gray", ls=":", lw=1)
    ax_dice.text(2, 0.922, "target 0.92", color="gray", fontsize=8, va="bottom")
    ax_dice.set(xlabel="training time (s)", ylabel="validation Dice (patches)", ylim=(0.5, 1.0))
    ax_loss.set(xlabel="training time (s)", ylabel="loss (solid: validation, dashed: training)")
    ax_dice.legend(fontsize=7, loc="lower right")
    ax_dice.grid(alpha=0.3)
    ax_loss.grid(alpha=0.3)
    fig.suptitle("BBBC030: default model, cytounet train --max-time 300, 2 CPU cores", fontsize=10)
    fig.tight_layout()
    target = out / "bench-time-to-accuracy.png"
    fig.savefig(target)
    plt.close(fig)
    return target


def plot_throughput(file: Path, out: Path) -> Path | None:
    """Bar chart of training patches/s: plain Keras fit (float32) and napari-cytounet."""
    import matplotlib.pyplot as plt

    if not file.is_file():
        return None
    r = _load(file)
    bars = [("Keras fit\nfloat32", r["baseline_keras_fit_float32_patches_per_s"])]
    if "cytounet_float32_patches_per_s" in r:
        bars.append(("napari-cytounet\nfloat32", r["cytounet_float32_patches_per_s"]))
    bars.append((f"napari-cytounet\n{r['cytounet_precision']}", r["cytounet_patches_per_s"]))
    fig, ax = plt.subplots(figsize=(6, 3.4), dpi=110)
    names, values = zip(*bars)
    ax.bar(names, values, color=["#999999", "#6baed6", "#08519c"][: len(bars)])
    for i, v in enumerate(values):
        ax.text(i, v, f"{v:.1f}", ha="center", va="bottom", fontsize=9)
    ax.set_ylabel(f"training patches/s ({r['patch_size']} px, batch {r['batch_size']})")
    ax.set_title("Same UNet, same CPU (2 cores)", fontsize=10)
    ax.margins(y=0.15)
    fig.tight_layout()
    target = out / "bench-throughput.png"
    fig.savefig(target)
    plt.close(fig)
    return target


def plot_interactive(files: list[Path], out: Path) -> Path | None:
    """Dice per correction round, InteractiveSession vs the raw-feature forest, per data set."""
    import matplotlib.pyplot as plt

    runs = [_load(f) for f in files]
    if not runs:
        return None
    cols = min(4, len(runs))
    rows_of_panels = -(-len(runs) // cols)
    fig, axes = plt.subplots(rows_of_panels, cols, figsize=(4.2 * cols, 3.6 * rows_of_panels),
                             dpi=110, squeeze=False)  # fmt: skip
    for ax in axes.flat[len(runs) :]:
        ax.set_visible(False)
    for ax, r in zip(axes.flat, runs):
        players = (
            ("session", "InteractiveSession", "#08519c"),
            ("forest", "random forest", "#999999"),
            ("forest_with_edits", "forest + stroke edits", "#d95f02"),
        )
        for key, name, color in players:
            rows = r.get(key)
            if not rows:
                continue
            xs = [row["round"] for row in rows]
            ax.plot(xs, [row["dice"] for row in rows], marker="o", color=color,
                    label=f"{name}: image")  # fmt: skip
            if rows[0].get("others_dice") is not None:
                ax.plot(xs, [row["others_dice"] for row in rows], marker="s", ls="--",
                        color=color, label=f"{name}: other images")  # fmt: skip
        if "model_dice" in r["session"][0]:  # the UNet's own mask, before the strokes
            ax.plot([row["round"] for row in r["session"]],
                    [row["model_dice"] for row in r["session"]], marker=".", ls=":",
                    color="#08519c", alpha=0.6, label="UNet alone (no stroke edits)")  # fmt: skip
        for row in r["session"]:
            ax.annotate(f"{row['seconds']:.0f} s", (row["round"], row["dice"]),
                        textcoords="offset points", xytext=(0, 6), fontsize=7,
                        ha="center", color="#08519c")  # fmt: skip
        parts = Path(r["data"]).parts
        data = " ".join(parts[-3:-1]) if "/" in r["data"] else f"synthetic {r['data']}"
        ax.set(title=f"{data}: {r['image']}", xlabel="round (0 = first strokes)",
               ylabel="Dice", xticks=[0, 1, 2])  # fmt: skip
        ax.axhline(0.95, color="gray", ls=":", lw=1)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="lower right")
    fig.suptitle("Interactive loop (5 s, then 2 corrections of 20 s), 2 CPU cores", fontsize=10)
    fig.tight_layout()
    target = out / "bench-interactive.png"
    fig.savefig(target)
    plt.close(fig)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    args.out.mkdir(parents=True, exist_ok=True)
    written = [
        plot_time_to_accuracy(sorted(args.results.glob("time_to_accuracy*.json")), args.out),
        plot_throughput(args.results / "training_throughput.json", args.out),
        plot_interactive(sorted(args.results.glob("interactive_*.json")), args.out),
    ]
    for path in written:
        if path is not None:
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
