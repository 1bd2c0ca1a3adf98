"""The zarr branch of ``cytounet predict``: a ``.zarr`` input or output, block by block.

``cytounet predict MODEL INPUT -o OUTPUT.zarr`` reads INPUT (a zarr array, an
OME-Zarr image, whose level 0 is used, or an image file) lazily and writes a
zarr array of the same leading shape through
:func:`~napari_cytounet.core.zarr_io.iter_predict_to_zarr`. ``--scheduler``
chooses where the blocks run; an interrupted run resumes when the same command
is given again.

Examples
--------
>>> from napari_cytounet.cli import main
>>> main(["predict", "m.keras", "stack.zarr", "-o", "masks.zarr"])  # doctest: +SKIP
0
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..core.errors import DataError, ModelError
from ._common import EXIT_INTERRUPTED, EXIT_OK, UsageError, quiet_tensorflow, say
from .predict import refuse_instances

LOCAL_SCHEDULERS = ("threads", "processes")


ZARR_FILES = ("zarr.json", ".zarray", ".zgroup", ".zattrs")


def _is_zarr(text: str) -> bool:
    """A ``.zarr`` path, or a folder inside a store (e.g. an OME-Zarr image in a plate)."""
    path = Path(text).expanduser()
    if str(text).rstrip("/\\").lower().endswith(".zarr"):
        return True
    return path.is_dir() and any((path / name).is_file() for name in ZARR_FILES)


def is_zarr_job(args: argparse.Namespace) -> bool:
    """Whether ``predict`` reads or writes zarr; refuses ``--scheduler`` otherwise.

    Examples
    --------
    >>> is_zarr_job(argparse.Namespace(images="a.zarr", output="b.zarr", scheduler=None))
    True
    """
    zarr_job = _is_zarr(args.images) or _is_zarr(args.output)
    if not zarr_job and getattr(args, "scheduler", None) is not None:
        raise UsageError(
            "--scheduler applies to zarr data; give a .zarr input or -o NAME.zarr, or drop it"
        )
    return zarr_job


def _check_args(args: argparse.Namespace) -> str:
    """Validate the zarr-specific combination of options; returns the scheduler."""
    if not _is_zarr(args.output):
        raise UsageError(
            f"a .zarr input is written to a zarr array: give -o NAME.zarr (not {args.output})"
        )
    if args.probabilities:
        raise UsageError("--probabilities is not available with a .zarr output; drop it")
    if args.views != 1:
        raise UsageError(
            "--views is not available for zarr data yet; drop it (or predict in-memory images)"
        )
    scheduler = args.scheduler or "threads"
    if scheduler not in LOCAL_SCHEDULERS and "://" not in scheduler:
        raise UsageError(
            f"--scheduler {scheduler}: use threads, processes or a dask scheduler address "
            "such as tcp://127.0.0.1:8786"
        )
    src = Path(args.images).expanduser().resolve()
    out = Path(args.output).expanduser().resolve()
    if src == out:
        raise UsageError("-o is the input store; write the masks to another .zarr path")
    return scheduler


def _open_input(path_text: str, bundle: Any) -> tuple[Any, int | None]:
    """The input array (lazy for zarr) and its channel axis for this model."""
    from ..core.zarr_io import open_zarr_image

    wanted = bundle.in_channels
    if _is_zarr(path_text):
        array, axes = open_zarr_image(path_text)
        if wanted == 1:
            return array, None
        if axes and "c" in axes:
            return array, axes.index("c")
        return array, -1
    from ..core.io import read_image

    path = Path(path_text).expanduser()
    if not path.is_file():
        raise DataError(f"No image file or zarr store at {path}; check the path.")
    image = read_image(path)
    if wanted == 1 and image.ndim == 3 and image.shape[-1] in (3, 4):
        raise DataError(
            f"{path.name} is a colour image and the model takes one channel; convert it to "
            "gray first, or write masks to a folder instead of a .zarr store."
        )
    return image, (-1 if wanted > 1 else None)


def predict_zarr(args: argparse.Namespace) -> int:
    """Run ``cytounet predict`` for zarr input or output; returns the exit code.

    Examples
    --------
    >>> predict_zarr(parsed_args)  # doctest: +SKIP
    0
    """
    scheduler = _check_args(args)
    model_path = Path(args.model).expanduser()
    if not model_path.is_file():
        raise ModelError(f"No model file at {model_path}; check the path or train one first.")
    if _is_zarr(args.images) and not Path(args.images).expanduser().exists():
        raise DataError(f"No zarr store at {Path(args.images).expanduser()}; check the path.")
    from ..core.zarr_io import connect

    where: Any = scheduler
    if scheduler not in LOCAL_SCHEDULERS:
        where = connect(scheduler)  # a clear error within seconds, before TensorFlow loads
    try:
        return _predict(args, model_path, where)
    finally:
        if where is not scheduler:
            where.close()


def _predict(args: argparse.Namespace, model_path: Path, where: Any) -> int:
    quiet_tensorflow(args.debug)
    from ..core.bundle import load_bundle
    from ..core.zarr_io import ZarrPrediction, iter_predict_to_zarr

    bundle = load_bundle(model_path)
    refuse_instances(bundle, args, model_path)
    instances = args.instances or args.split_touching
    image, axis = _open_input(args.images, bundle)
    bar = None
    result = None
    try:
        events = iter_predict_to_zarr(
            bundle,
            image,
            args.output,
            scheduler=where,
            channel_axis=axis,
            threshold=args.threshold,
            min_size=args.min_size,
            instances=instances,
            split_touching=args.split_touching,
            mask_value=255,
            tile_size=args.tile_size,
        )
        for event in events:
            if isinstance(event, ZarrPrediction):
                result = event
            elif not args.quiet:
                if bar is None:
                    from tqdm import tqdm

                    bar = tqdm(
                        total=event.total,
                        unit="block",
                        file=sys.stderr,
                        dynamic_ncols=True,
                        desc="Predicting",
                    )
                bar.update(event.done - bar.n)
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        print(
            f"cytounet: interrupted; blocks already written are kept in {args.output}: run the "
            "same command again to resume",
            file=sys.stderr,
            flush=True,
        )
        return EXIT_INTERRUPTED
    finally:
        if bar is not None:
            bar.close()
    what = "instance labels" if instances else "masks"
    skipped = f", {result.skipped} found done earlier" if result.skipped else ""
    say(
        f"Wrote {what} {'x'.join(map(str, result.shape))} ({result.dtype}) to {result.path} "
        f"({result.blocks} blocks predicted{skipped}; {result.seconds:.1f} s)."
    )
    return EXIT_OK
