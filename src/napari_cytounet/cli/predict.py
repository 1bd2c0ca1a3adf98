"""``cytounet predict``: segment image files (or zarr data) with a trained model.

Every image goes through the core's one prediction pipeline,
:func:`~napari_cytounet.core.predict.iter_segment`, which yields progress and
ends with :class:`~napari_cytounet.core.events.PredictionFinished`; zarr input
or output goes block by block through :mod:`.predict_zarr`.

Examples
--------
>>> from napari_cytounet.cli import main
>>> main(["predict", "cells.keras", "images", "-o", "predictions"])  # doctest: +SKIP
0
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core.config import DEFAULT_TILE_SIZE
from ..core.errors import DataError, ModelError
from ..core.views import VIEW_COUNTS
from ._common import (
    EXIT_OK,
    UsageError,
    add_command,
    add_flags,
    add_overwrite,
    first_few,
    nearest_existing,
    pixels,
    plural,
    probability,
    quiet_tensorflow,
    say,
    tile_pixels,
    warn,
)

HELP = "segment images with a trained model"
SUMMARY = "Segment images with a trained model."

EPILOG = """\
Writes one mask per image into OUT_DIR with the image's file name stem and
height/width: binary masks as 0/255 (8-bit), instance labels (--instances) as
label ids, multi-class models as class indices. With --probabilities, float32
probability maps go to OUT_DIR/probabilities/<stem>.tif. Existing outputs of the
same name are replaced; OUT_DIR must not be the folder of the input images.

examples:
  cytounet predict cells.keras data/validation/images -o predictions
  cytounet predict cells.keras cho01.png -o out --threshold 0.4 --min-size 200
  cytounet predict cells.keras images -o out --instances --split-touching --probabilities
  cytounet predict cells.keras stack.zarr -o masks.zarr --scheduler tcp://127.0.0.1:8786
"""

MASK_FORMATS = ("png", "tif")
FLAGS = {
    "--instances": "write instance labels (1, 2, 3... per object) instead of a binary mask",
    "--split-touching": "split touching objects (distance watershed); implies --instances",
    "--probabilities": "also write float32 probability maps (TIFF) to OUT_DIR/probabilities/",
}
#: Images kept in memory between the check of all inputs and the prediction.
CACHE_BYTES = 512 * 2**20


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``predict`` to the subparsers ``sub``."""
    p = add_command(sub, common, "predict", HELP, SUMMARY, EPILOG)
    p.add_argument(
        "model", metavar="MODEL.keras",
        help="trained model (.keras, legacy .h5, or a bioimage.io .zip / rdf.yaml)",
    )  # fmt: skip
    p.add_argument("images", metavar="IMAGES", help="an image file or a folder of images")
    p.add_argument(
        "-o", "--output", metavar="OUT_DIR", required=True,
        help="folder for the masks (created if needed)",
    )  # fmt: skip
    p.add_argument(
        "--threshold", type=probability, default=0.5, metavar="P",
        help="foreground where the probability is above this (default 0.5)",
    )  # fmt: skip
    p.add_argument(
        "--min-size", type=pixels, default=0, metavar="PX",
        help="remove objects smaller than this (default 0: keep all)",
    )  # fmt: skip
    add_flags(p, FLAGS)
    p.add_argument(
        "--tile-size", type=tile_pixels, metavar="PX", default=DEFAULT_TILE_SIZE,
        help=f"predict in tiles of this size to bound memory (default {DEFAULT_TILE_SIZE})",
    )  # fmt: skip
    p.add_argument(
        "--views", type=int, choices=VIEW_COUNTS, default=1, metavar="N",
        help="average each tile over N flipped/rotated views: 1 (default), 2, 4 or 8; "
        "a little more accurate at object edges, N times the time",
    )  # fmt: skip
    p.add_argument(
        "--format", choices=MASK_FORMATS, default="png",
        help="file format of the masks (default png; stacks are always tif)",
    )  # fmt: skip
    add_overwrite(
        p, "replace files in OUT_DIR that cytounet did not write (it always replaces its own)"
    )
    p.add_argument(
        "--scheduler", metavar="WHERE",
        help="zarr data: threads (default), processes or a dask scheduler tcp://host:port",
    )  # fmt: skip
    p.set_defaults(func=run)


# ---------------------------------------------------------------------------
# inputs and outputs


def list_inputs(text: str) -> list[Path]:
    """An image file, or the images of a folder (raises DataError)."""
    from ..core.io import IMAGE_EXTENSIONS, list_images

    path = Path(text).expanduser()
    if path.is_file():
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            raise DataError(
                f"'{path}' is not a supported image ({path.suffix or 'no suffix'}); use a "
                f"{', '.join(IMAGE_EXTENSIONS)} file or a folder of them."
            )
        return [path]
    if not path.exists() and path.suffix.lower() in IMAGE_EXTENSIONS:
        raise DataError(f"No image file '{path}'; check the path (or give a folder of images).")
    return list_images(path)


def check_out_dir(text: str, inputs: Sequence[Path]) -> Path:
    """Validate ``-o OUT_DIR``: a writable folder other than the inputs' (UsageError)."""
    out = Path(text).expanduser()
    if out.exists() and not out.is_dir():
        raise UsageError(f"-o {text} is a file; give a folder for the masks, e.g. -o predictions")
    resolved = out.resolve()
    if any(p.parent.resolve() == resolved for p in inputs):
        raise UsageError(
            f"-o {text} is the folder of the input images; write the masks to a separate "
            "folder, e.g. -o predictions"
        )
    base = nearest_existing(out)
    if not os.access(base, os.W_OK):
        raise UsageError(f"-o {text}: {base} is not writable; choose another folder")
    return out


def _check_stems(inputs: Sequence[Path]) -> None:
    """Two inputs with one stem would write the same mask file (DataError)."""
    stems: dict[str, Path] = {}
    for path in inputs:
        other = stems.setdefault(path.stem.casefold(), path)
        if other is not path:
            raise DataError(
                f"'{other.name}' and '{path.name}' share the name '{path.stem}', so their masks "
                "would overwrite each other; rename one or move it out of the folder."
            )


def _targets(out_dir: Path, inputs: Sequence[Path], suffix: str, args: Any) -> list:
    """The files ``cytounet predict`` will write (masks, probability maps)."""
    targets = [out_dir / f"{path.stem}{suffix}" for path in inputs]
    if args.probabilities:
        targets += [out_dir / "probabilities" / f"{path.stem}.tif" for path in inputs]
    return targets


def guard_outputs(folder: Path, targets: list[Path], overwrite: bool) -> None:
    """Refuse to replace files this program did not write (unless --overwrite); claim them."""
    from ..core.files import claim_outputs, refuse_foreign

    if folder.is_dir() and not overwrite:
        refuse_foreign(folder, targets, "--overwrite", "predictions")
    claim_outputs(folder, targets, "predict")


def _report_partial(written: list[Path], inputs: Sequence[Path], out_dir: Path) -> None:
    """After a failure or Ctrl-C: which outputs were written, which were not (with paths)."""
    done = {w.stem for w in written if w.parent == out_dir}
    missing = [p for p in inputs if p.stem not in done]
    warn(f"written before the stop ({len(written)} file(s)): {first_few(written) or 'none'}")
    if missing:
        warn(
            f"not written ({len(missing)} image(s) without a mask in {out_dir}): "
            f"{first_few(missing)}"
        )


def refuse_instances(bundle: Any, args: argparse.Namespace, model_path: Path) -> None:
    """--instances/--split-touching need a binary model (UsageError)."""
    if bundle.classes > 1 and (args.instances or args.split_touching):
        raise UsageError(
            f"--instances/--split-touching work with binary models, but {model_path.name} has "
            f"{bundle.classes} classes; drop the option"
        )


# ---------------------------------------------------------------------------
# the command


class _Input:
    """One input image: its channel axis, its tiles and (while cached) its pixels."""

    def __init__(self, path: Path, axis: int | None, tiles: int, image: Any) -> None:
        self.path, self.axis, self.tiles, self.image = path, axis, tiles, image

    def take(self) -> Any:
        """The pixels (read again when they were not cached), released from the cache."""
        from ..core.io import read_image

        image, self.image = self.image, None
        return image if image is not None else read_image(self.path)


def _tiles(image: Any, axis: int | None, bundle: Any, tile_size: int) -> int:
    """Tiles the image takes (all planes); a tile too small for the model is a UsageError."""
    import numpy as np

    from ..core.predict import TilePlan

    spatial = image.shape[:-1] if axis is not None else image.shape
    h, w = spatial[-2:]
    planes = int(np.prod(spatial[:-2])) if len(spatial) > 2 else 1
    divisor = bundle.unet.divisor
    if bundle.fixed_input_size is None:
        try:
            TilePlan(h, w, divisor, tile_size, None)
        except DataError as exc:
            overlap = TilePlan(h, w, divisor, None, None).overlap
            raise UsageError(
                f"--tile-size {tile_size} is too small for this model, whose tiles "
                f"overlap by {overlap} px; use at least {2 * overlap} (default {DEFAULT_TILE_SIZE})"
            ) from exc
    plan = TilePlan(h, w, divisor, tile_size, None, bundle.fixed_input_size)
    return plan.n_tiles * planes


def _read_inputs(inputs: Sequence[Path], bundle: Any, tile_size: int) -> list[_Input]:
    """Read and check every input first: a bad image stops the run before any write."""
    import numpy as np

    from ..core.data import channel_axis_for
    from ..core.io import read_image

    read, cached = [], 0
    for path in inputs:
        image = read_image(path)
        axis = channel_axis_for(image.shape, bundle.in_channels, path.name)
        if image.dtype.kind == "f" and not np.isfinite(image).all():
            raise DataError(
                f"{path.name} contains NaN or infinite values; fix the image (e.g. Fiji "
                "'Remove NaNs') or move it out of the folder."
            )
        keep = cached + image.nbytes <= CACHE_BYTES
        cached += image.nbytes if keep else 0
        tiles = _tiles(image, axis, bundle, tile_size)
        read.append(_Input(path, axis, tiles, image if keep else None))
        del image
    return read


def _progress_bar(total: int, quiet: bool) -> Any:
    if quiet:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="tile", file=sys.stderr, dynamic_ncols=True, desc="Predicting")


def run(args: argparse.Namespace) -> int:
    """Run ``cytounet predict``; returns the exit code (raises the CLI's errors)."""
    from .predict_zarr import is_zarr_job, predict_zarr

    if is_zarr_job(args):  # a .zarr input or output: lazy, block by block
        return predict_zarr(args)
    model_path = Path(args.model).expanduser()
    if not model_path.exists():
        raise ModelError(f"No model file at {model_path}; check the path or train one first.")
    inputs = list_inputs(args.images)
    out_dir = check_out_dir(args.output, inputs)
    _check_stems(inputs)
    quiet_tensorflow(args.debug)
    from ..core.bundle import load_bundle

    bundle = load_bundle(model_path)
    refuse_instances(bundle, args, model_path)
    images = _read_inputs(inputs, bundle, args.tile_size)
    suffix = ".tif" if args.format == "tif" else ".png"
    guard_outputs(out_dir, _targets(out_dir, inputs, suffix, args), args.overwrite)
    bar = _progress_bar(sum(item.tiles for item in images), args.quiet)
    written: list[Path] = []
    t0 = time.perf_counter()
    try:
        for item in images:
            _predict_one(bundle, item, args, out_dir, suffix, bar, written)
    except BaseException:
        _report_partial(written, inputs, out_dir)
        raise
    finally:
        if bar is not None:
            bar.close()
    masks = [w for w in written if w.parent == out_dir]
    what = "instance label image" if args.instances or args.split_touching else "mask"
    extra = f" and probability maps to {out_dir / 'probabilities'}" if args.probabilities else ""
    say(
        f"Wrote {len(masks)} {plural(len(masks), what)} to {out_dir}{extra} "
        f"({time.perf_counter() - t0:.1f} s)."
    )
    return EXIT_OK


def _predict_one(
    bundle: Any,
    item: _Input,
    args: argparse.Namespace,
    out_dir: Path,
    suffix: str,
    bar: Any,
    written: list[Path],
) -> None:
    """Segment one image with the core pipeline; write its mask (and probabilities)."""
    import numpy as np

    from ..core.events import PredictionFinished
    from ..core.io import write_image, write_labels
    from ..core.predict import iter_segment

    instances = args.instances or args.split_touching
    finished = None
    done = 0
    for event in iter_segment(
        bundle, item.take(), channel_axis=item.axis, threshold=args.threshold,
        min_size=args.min_size, instances=instances, split_touching=args.split_touching,
        tile_size=args.tile_size, views=args.views,
    ):  # fmt: skip
        if isinstance(event, PredictionFinished):
            finished = event
        elif bar is not None:
            bar.update(event.done - done)
            bar.set_postfix_str(item.path.name, refresh=False)
            done = event.done
        else:
            done = event.done
    labels = finished.labels
    if bundle.classes == 1 and not instances:
        labels = labels * np.uint8(255)
    file_suffix = suffix
    if labels.ndim > 2 or (suffix == ".png" and labels.max(initial=0) > 65535):
        file_suffix = ".tif"
    target = out_dir / f"{item.path.stem}{file_suffix}"
    if file_suffix != suffix:  # a stack or many labels: TIFF, not the claimed name
        guard_outputs(out_dir, [target], args.overwrite)
    written.append(write_labels(target, labels))
    if args.probabilities:
        probabilities = finished.probabilities.astype(np.float32, copy=False)
        target = out_dir / "probabilities" / f"{item.path.stem}.tif"
        written.append(write_image(target, probabilities))
