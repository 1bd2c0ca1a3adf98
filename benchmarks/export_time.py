"""Time of ``export_bioimageio`` for the default UNet (depth 4, 16 filters), and of test_model.

Target (issue #10): the export of the default model takes < 10 s on 2 CPU cores.
The first export in a process also pays for importing bioimageio.spec/core
(reported separately); the figure that counts is the export itself, with and
without the TensorFlow SavedModel entry.

Usage::

    python benchmarks/export_time.py [--repeats 3] [--test] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _results import emit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--test", action="store_true", help="also time bioimageio.core test_model")
    parser.add_argument("--json", type=Path, default=None, help="also write the JSON line here")
    args = parser.parse_args()

    import keras

    from napari_cytounet.core.bundle import ModelBundle
    from napari_cytounet.core.config import UNetConfig
    from napari_cytounet.core.export import ExportOptions, export_bioimageio, test_package
    from napari_cytounet.core.model import build_unet

    keras.utils.set_random_seed(0)
    unet = UNetConfig()
    bundle = ModelBundle(model=build_unet(unet), unet=unet, name="default UNet")
    t0 = time.perf_counter()
    import bioimageio.core  # noqa: F401

    import_seconds = time.perf_counter() - t0
    full, keras_only, size = [], [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            result = export_bioimageio(bundle, Path(tmp) / f"full{i}.zip")
            full.append(result.seconds)
            size = result.path.stat().st_size
            options = ExportOptions(saved_model=False)
            keras_only.append(export_bioimageio(bundle, Path(tmp) / f"k{i}.zip", options).seconds)
        test_seconds = None
        if args.test:
            t0 = time.perf_counter()
            status = test_package(result.path).status
            test_seconds = round(time.perf_counter() - t0, 2)
            assert status == "passed", status
    emit(
        {
            "benchmark": "export_time",
            "model": "UNetConfig() depth 4, 16 filters",
            "parameters": int(bundle.model.count_params()),
            "cpus": os.cpu_count(),
            "import_bioimageio_seconds": round(import_seconds, 2),
            "export_seconds_first": round(full[0], 2),
            "export_seconds_best": round(min(full), 2),
            "export_keras_only_seconds_best": round(min(keras_only), 2),
            "package_bytes": size,
            "test_model_seconds": test_seconds,
            "target_seconds": 10,
        },
        args.json,
    )


if __name__ == "__main__":
    main()
