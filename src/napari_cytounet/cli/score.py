"""``cytounet score``: compare predicted masks with ground truth (Dice, IoU, object F1).

Examples
--------
>>> from napari_cytounet.cli import main
>>> main(["score", "predictions", "val/masks", "--csv", "scores.csv"])  # doctest: +SKIP
0
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..core.errors import DataError
from ._common import EXIT_OK, UsageError, add_command, add_overwrite, probability, say, warn

HELP = "compare predicted masks with ground truth (Dice, IoU, object F1)"
SUMMARY = "Score predicted masks against ground truth."

EPILOG = """\
Predictions are matched to ground-truth masks by file name stem (cho01.png with
cho01.png or cho01_mask.png); nonzero pixels are foreground. Prints Dice, IoU,
pixel precision/recall and object precision/recall/F1 (objects matched one to
one at IoU >= 0.5) per image, their mean over images and the pooled overall row.

examples:
  cytounet score predictions data/validation/masks
  cytounet score predictions data/validation/masks --csv scores.csv
"""


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``score`` to the subparsers ``sub``."""
    p = add_command(sub, common, "score", HELP, SUMMARY, EPILOG)
    p.add_argument("predictions", metavar="PRED_DIR", help="folder of predicted masks")
    p.add_argument("truth", metavar="TRUTH_DIR", help="folder of ground-truth masks")
    p.add_argument("--csv", metavar="FILE", help="also write the table as CSV")
    add_overwrite(p, "replace --csv FILE even if it is not an earlier score table")
    p.add_argument(
        "--iou-threshold", type=probability, default=0.5, metavar="IOU",
        help="IoU for an object to count as found (default 0.5)",
    )  # fmt: skip
    p.set_defaults(func=run)


def _read_label_image(path: Path) -> Any:
    from ..core.io import read_image, read_mask

    image = read_image(path)
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        return read_mask(path)  # raises its "colour mask" message
    return image


def _csv_path(args: argparse.Namespace) -> Path | None:
    """Validate ``--csv FILE`` before any work (UsageError)."""
    from ..core.io import IMAGE_EXTENSIONS
    from ..core.metrics import ScoreTable

    if args.csv is None:
        return None
    csv_path = Path(args.csv).expanduser()
    if csv_path.is_dir():
        raise UsageError(f"--csv {args.csv} is a folder; name a file, e.g. --csv scores.csv")
    if csv_path.suffix.lower() in IMAGE_EXTENSIONS:
        raise UsageError(
            f"--csv {args.csv} names an image file, which would be overwritten; "
            "use e.g. --csv scores.csv"
        )
    if csv_path.exists() and not args.overwrite and not ScoreTable.is_score_csv(csv_path):
        raise UsageError(
            f"--csv {args.csv} exists and is not a score table written by cytounet; "
            "name another file, or pass --overwrite to replace it"
        )
    return csv_path


def _score_pair(pred_path: Path, truth_path: Path, iou_threshold: float) -> list:
    """The score rows of one prediction: one per image, or per plane of a stack."""
    from ..core.metrics import score

    pred, truth = _read_label_image(pred_path), _read_label_image(truth_path)
    stem = pred_path.stem
    if pred.shape != truth.shape:
        raise DataError(
            f"{stem}: the prediction {pred_path.name} is {'x'.join(map(str, pred.shape))} "
            f"but the truth {truth_path.name} is {'x'.join(map(str, truth.shape))}; "
            "score predictions made from the same images."
        )
    table = score(pred, truth, iou_threshold=iou_threshold)
    if pred.ndim == 2:
        return [replace(row, name=stem) for row in table.rows]
    return [replace(row, name=f"{stem} {row.name}") for row in table.rows]  # "cho01 plane 3"


def run(args: argparse.Namespace) -> int:
    """Run ``cytounet score``; returns the exit code (raises the CLI's errors)."""
    from ..core.io import pair_folders
    from ..core.metrics import ScoreTable

    csv_path = _csv_path(args)
    pairing = pair_folders(args.predictions, args.truth)
    rows = []
    for pred_path, truth_path in pairing.pairs:
        rows.extend(_score_pair(pred_path, truth_path, args.iou_threshold))
    table = ScoreTable.from_rows(rows, args.iou_threshold)
    say(table.format())
    mean, overall = table.mean, table.overall
    say(
        f"Mean over {len(rows)} image(s): Dice {mean.dice:.3f}, IoU {mean.iou:.3f}, "
        f"object F1 {mean.object_f1:.3f} (IoU >= {args.iou_threshold:g}); pooled over all "
        f"pixels: Dice {overall.dice:.3f}, IoU {overall.iou:.3f}."
    )
    for path in pairing.unpaired_images:
        warn(f"the prediction {path.name} has no ground truth in {args.truth}; not scored")
    for path in pairing.unpaired_masks:
        warn(f"the ground truth {path.name} has no prediction in {args.predictions}; not scored")
    if csv_path is not None:
        say(f"Wrote {table.to_csv(csv_path)}.")
    return EXIT_OK
