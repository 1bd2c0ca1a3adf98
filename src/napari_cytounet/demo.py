"""The demo behind ``cytounet demo``: train, predict and score on the shipped BBBC030 sample.

:func:`run_demo` needs no argument and no network. It trains a UNet on the four
training images shipped in :mod:`napari_cytounet.sample_data` (validating on
the fifth) for a short time budget, saves the model, predicts the validation
image with the *saved* model, scores it against its mask and writes, into an
output folder (never into the package):

* ``model.keras`` and ``model.json``: the trained model and its record;
* ``<name>_prediction.png``: the predicted mask (0/255);
* ``overlay.png``: the image in gray with the predicted outlines in magenta and
  the ground-truth outlines in green (white where they agree);
* ``report.md``: what was done, the scores, the settings and the data's
  attribution.

Examples
--------
>>> from napari_cytounet.demo import run_demo
>>> result = run_demo("cytounet-demo", max_time=30)  # doctest: +SKIP
>>> print(result.format())  # doctest: +SKIP
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .core.files import atomic_write, claim_outputs, refuse_foreign
from .sample_data import SAMPLE_DIR, TRAIN_NAMES, VALIDATION_NAMES

__all__ = [
    "DEFAULT_MAX_TIME",
    "TRAIN_NAMES",
    "VALIDATION_NAMES",
    "DemoResult",
    "overlay_image",
    "run_demo",
]

#: Default training budget in seconds: with start-up, prediction and scoring
#: the demo takes about two minutes on 2 CPU cores.
DEFAULT_MAX_TIME = 90.0

#: Model and training settings of the demo, chosen to learn BBBC030 fast on a CPU.
DEMO_DEPTH = 4
DEMO_FILTERS = 16
DEMO_PATCH_SIZE = 128
DEMO_BATCH_SIZE = 16
DEMO_STEPS_PER_EPOCH = 25

PREDICTION_COLOR = (255, 0, 255)  # magenta
TRUTH_COLOR = (0, 200, 0)  # green
BOTH_COLOR = (255, 255, 255)  # white


@dataclass
class DemoResult:
    """What :func:`run_demo` did and wrote.

    Attributes
    ----------
    out_dir
        The output folder.
    model_path, overlay_path, report_path
        The files written there.
    prediction_paths
        The predicted masks, one per validation image.
    table
        The :class:`~napari_cytounet.core.metrics.ScoreTable` of the validation images.
    summary
        The training summary line.
    seconds
        Wall time of the whole demo.
    stopped
        True when training was stopped early (Ctrl-C).
    """

    out_dir: Path
    model_path: Path
    overlay_path: Path
    report_path: Path
    prediction_paths: list[Path]
    table: Any
    summary: str
    seconds: float
    stopped: bool = False
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def dice(self) -> float:
        """Dice of the predicted validation mask(s), pooled over their pixels."""
        return float(self.table.overall.dice)

    def format(self) -> str:
        """A few lines for the terminal: the score and where the files are."""
        names = ", ".join(r.name for r in self.table.rows)
        o = self.table.overall
        return "\n".join(
            [
                f"Validation ({names}): Dice {o.dice:.3f}, IoU {o.iou:.3f}, "
                f"object F1 {o.object_f1:.3f}.",
                f"Wrote to {self.out_dir}:",
                f"  model    {self.model_path}",
                *(f"  mask     {p}" for p in self.prediction_paths),
                f"  overlay  {self.overlay_path}  (magenta: prediction, green: ground truth)",
                f"  report   {self.report_path}",
                f"Demo finished in {self.seconds:.0f} s.",
            ]
        )


def _to_uint8(image: np.ndarray) -> np.ndarray:
    """Gray image to uint8 by its 1-99.8 percentiles (colour images: their mean)."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3:
        image = image.mean(axis=-1)
    lo, hi = np.percentile(image, [1.0, 99.8])
    scaled = (image - lo) / max(float(hi - lo), 1e-12)
    return (np.clip(scaled, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _outline(mask: np.ndarray, width: int) -> np.ndarray:
    from scipy import ndimage as ndi

    mask = np.asarray(mask) != 0
    inner = ndi.binary_erosion(mask, iterations=width, border_value=1)
    return mask & ~inner


def overlay_image(
    image: np.ndarray,
    prediction: np.ndarray,
    truth: np.ndarray | None = None,
    *,
    width: int = 2,
) -> np.ndarray:
    """An RGB uint8 picture: the image in gray, predicted and true object outlines in colour.

    Predicted outlines are magenta, ground-truth outlines green and pixels on
    both white.

    Parameters
    ----------
    image
        2D image (any dtype; a colour image is shown as its mean intensity).
    prediction, truth
        2D masks (nonzero = object) of the image's height and width.
    width
        Outline width in pixels.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8.

    Examples
    --------
    >>> img = np.zeros((32, 32)); m = np.zeros((32, 32), np.uint8); m[8:24, 8:24] = 1
    >>> rgb = overlay_image(img, m, m)
    >>> rgb.shape, rgb[8, 8].tolist(), rgb[16, 16].tolist()
    ((32, 32, 3), [255, 255, 255], [0, 0, 0])
    """
    gray = _to_uint8(image)
    rgb = np.repeat(gray[..., None], 3, axis=-1)
    pred_line = _outline(prediction, width)
    if truth is not None:
        true_line = _outline(truth, width)
        rgb[true_line] = TRUTH_COLOR
        rgb[pred_line] = PREDICTION_COLOR
        rgb[pred_line & true_line] = BOTH_COLOR
    else:
        rgb[pred_line] = PREDICTION_COLOR
    return rgb


def _load(names: tuple[str, ...]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    from .core.pairs import read_pairs

    data = read_pairs(SAMPLE_DIR, SAMPLE_DIR, names=names)
    return data.images, data.masks


def _given(value: Any, default: Any) -> Any:
    """``value`` unless it was not given (None): 0 is a value, refused by the config."""
    return default if value is None else value


def _write_text(path: Path, text: str) -> Path:
    return atomic_write(path, text)


def _report(result: DemoResult, finished: Any, bundle: Any) -> str:
    t = bundle.training
    u = bundle.unet
    table = result.table
    rows = [
        f"| {r.name} | {r.dice:.3f} | {r.iou:.3f} | {r.precision:.3f} | {r.recall:.3f} | "
        f"{r.object_f1:.3f} ({r.tp} found, {r.fp} false, {r.fn} missed) |"
        for r in table.rows
    ]
    model = result.model_path.name
    return "\n".join(
        [
            "# napari-cytounet demo",
            "",
            f"Created {time.strftime('%Y-%m-%d %H:%M:%S')} by `cytounet demo` "
            f"(napari-cytounet {result.settings.get('version', '?')}).",
            "",
            f"A UNet was trained on the BBBC030 sample shipped with the package "
            f"({', '.join(TRAIN_NAMES)}), validated on {', '.join(VALIDATION_NAMES)}, saved, "
            "re-loaded from the saved file and used to segment the validation image.",
            "",
            f"Training: {finished.summary}",
            "",
            "## Scores on the validation image",
            "",
            "| image | Dice | IoU | precision | recall | object F1 (IoU >= 0.5) |",
            "| --- | --- | --- | --- | --- | --- |",
            *rows,
            "",
            "## Files",
            "",
            f"- `{model}` (+ `{result.model_path.with_suffix('.json').name}`): the trained "
            "model and its record. Use it on your own images with "
            f"`cytounet predict {result.model_path} IMAGES -o OUT_DIR`.",
            *(
                f"- `{p.name}`: the predicted mask (0 = background, 255 = cell)."
                for p in result.prediction_paths
            ),
            f"- `{result.overlay_path.name}`: the validation image in gray, the predicted cell "
            "outlines in magenta and the ground-truth outlines in green (white where both agree).",
            "- `report.md`: this report.",
            "",
            "## Settings",
            "",
            f"- UNet: depth {u.depth}, {u.base_filters} base filters, "
            f"{'batch norm' if u.batch_norm else 'no batch norm'}, "
            f"{int(bundle.model.count_params()):,} parameters.",
            f"- Training: patches {t.patch_size}x{t.patch_size}, batch {t.batch_size}, "
            f"{t.steps_per_epoch} batches per epoch, learning rate {t.learning_rate:g}, "
            f"loss {t.loss}, seed {t.seed}, time budget "
            f"{t.max_time if t.max_time is not None else '-'} s, "
            f"precision {bundle.extra.get('precision', '?')}.",
            "- Prediction: threshold 0.5, holes filled.",
            "",
            "Reproduce with the command line (the sample files are in "
            f"`{SAMPLE_DIR}`, masks named `<name>_mask.png`):",
            "",
            "```",
            f"cytounet train IMAGES MASKS -o {model} --max-time {t.max_time or 90:g} "
            f"--depth {u.depth} --filters {u.base_filters} --patch-size {t.patch_size} "
            f"--batch-size {t.batch_size}",
            "```",
            "",
            "## Data",
            "",
            "Image set BBBC030v1 of the Broad Bioimage Benchmark Collection: Ljosa V, Sokolnicki "
            "KL, Carpenter AE (2012), *Annotated high-throughput microscopy image sets for "
            "validation*, Nature Methods 9(7):637. Images: Koos K et al. (2016), *DIC image "
            "reconstruction using an energy minimization framework to visualize optical path "
            "length distribution*, Scientific Reports 6:30420.",
            "",
        ]
    )


def run_demo(
    out_dir: str | os.PathLike = "cytounet-demo",
    *,
    max_time: float | None = DEFAULT_MAX_TIME,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
    patch_size: int | None = None,
    batch_size: int | None = None,
    depth: int | None = None,
    base_filters: int | None = None,
    seed: int = 0,
    callback: Callable[[Any], None] | None = None,
    stop: threading.Event | None = None,
    jit: bool | None = None,
    overwrite: bool = False,
) -> DemoResult:
    """Train, save, predict, score and draw on the shipped BBBC030 sample.

    Parameters
    ----------
    out_dir
        Folder for the outputs (created if needed). The demo's own earlier outputs
        there are replaced; other files of the same names (a report.md of the user's)
        are refused unless ``overwrite``.
    max_time, epochs
        Training budget: seconds and/or epochs, whichever ends first.
    steps_per_epoch, patch_size, batch_size, depth, base_filters, seed
        Override the demo's training and model settings (``None``: the demo's
        defaults, see ``DEMO_*`` in this module).
    callback
        Receives every training event (see :mod:`napari_cytounet.core.events`).
    stop
        Set this event to stop training early; the demo then goes on with the
        best model so far (and ``DemoResult.stopped`` is True).
    jit
        Compile with XLA (default: on unless ``CYTOUNET_JIT=0``).

    Returns
    -------
    DemoResult

    Raises
    ------
    DataError
        If ``out_dir`` is a file or cannot be created.
    ConfigError
        For nonsense settings.
    """
    from ._version import __version__
    from .core.bundle import load_bundle, save_bundle
    from .core.errors import DataError
    from .core.io import write_image
    from .core.metrics import score
    from .core.training import train_model

    t0 = time.perf_counter()
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise DataError(f"The demo's output folder {out} is a file; choose a folder.")
    config, unet = _demo_configs(
        max_time, epochs, steps_per_epoch, patch_size, batch_size, depth, base_filters, seed
    )
    targets = [out / n for n in ("model.keras", "model.json", "overlay.png", "report.md")]
    targets += [out / f"{name}_prediction.png" for name in VALIDATION_NAMES]
    if out.is_dir() and not overwrite:
        refuse_foreign(out, targets, "--overwrite (overwrite=True)", "demo")
    train_images, train_masks = _load(TRAIN_NAMES)
    val_images, val_masks = _load(VALIDATION_NAMES)

    finished = train_model(
        train_images,
        train_masks,
        config,
        unet,
        validation=(val_images, val_masks),
        names=list(TRAIN_NAMES),
        validation_names=list(VALIDATION_NAMES),
        callback=callback,
        stop=stop,
        jit=jit,
    )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"Cannot create the demo's output folder {out}: {exc}.") from exc
    claim_outputs(out, targets, "demo")
    model_path = save_bundle(finished.bundle, out / "model.keras")
    bundle = load_bundle(model_path)  # predict with the saved model, as a user would

    predictions, prediction_paths = _predict_validation(bundle, val_images, out, jit)
    table = score(predictions, val_masks, names=list(VALIDATION_NAMES))
    overlay_path = write_image(
        out / "overlay.png", overlay_image(val_images[0], predictions[0], val_masks[0])
    )
    result = DemoResult(
        out_dir=out,
        model_path=model_path,
        overlay_path=overlay_path,
        report_path=out / "report.md",
        prediction_paths=prediction_paths,
        table=table,
        summary=finished.summary,
        seconds=0.0,
        stopped=finished.reason == "stopped",
        settings={"version": __version__},
    )
    _write_text(result.report_path, _report(result, finished, bundle))
    result.seconds = time.perf_counter() - t0
    return result


def _demo_configs(
    max_time: float | None,
    epochs: int | None,
    steps_per_epoch: int | None,
    patch_size: int | None,
    batch_size: int | None,
    depth: int | None,
    base_filters: int | None,
    seed: int,
) -> tuple[Any, Any]:
    """The demo's TrainingConfig and UNetConfig: the given settings over the ``DEMO_*`` ones."""
    from .core.config import TrainingConfig, UNetConfig

    config = TrainingConfig(
        epochs=epochs,
        max_time=max_time,
        steps_per_epoch=_given(steps_per_epoch, DEMO_STEPS_PER_EPOCH),
        patch_size=_given(patch_size, DEMO_PATCH_SIZE),
        batch_size=_given(batch_size, DEMO_BATCH_SIZE),
        seed=seed,
    )
    unet = UNetConfig(
        depth=_given(depth, DEMO_DEPTH), base_filters=_given(base_filters, DEMO_FILTERS)
    )
    return config, unet


def _predict_validation(
    bundle: Any, images: list[np.ndarray], out: Path, jit: bool | None
) -> tuple[list[np.ndarray], list[Path]]:
    """Segment the validation images with the saved model; write each mask (0/255 PNG)."""
    from .core.io import write_labels
    from .core.predict import segment

    predictions, paths = [], []
    for name, image in zip(VALIDATION_NAMES, images):
        mask = segment(bundle, image, threshold=0.5, jit=jit)  # the core's one pipeline
        predictions.append(mask)
        paths.append(write_labels(out / f"{name}_prediction.png", mask * np.uint8(255)))
    return predictions, paths
