"""``cytounet export``: write a model as a bioimage.io model package.

Nothing heavy is imported until the command runs.

Examples
--------
>>> from napari_cytounet.cli import main
>>> main(["export", "cells.keras", "-o", "cells.zip", "--author", "A. Biologist"])  # doctest: +SKIP
0
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..core.errors import ModelError
from ._common import add_command, add_overwrite, probability

HELP = "export a model as a bioimage.io package (for deepImageJ, ilastik, ...)"
SUMMARY = "Export a model as a bioimage.io model package (.bioimageio.zip)."

EPILOG = """\
The package holds the Keras weights (and a TensorFlow SavedModel converted
from them), the normalisation as bioimage.io preprocessing, test input and
output arrays cut from a real image (default: the BBBC030 sample shipped with
napari-cytounet; --sample for your own), a cover image, a README with the
training record, and citations. bioimage.io tools (bioimageio.core in Python,
deepImageJ, ilastik, ...) run it; upload it at https://bioimage.io.

Needs the optional libraries: pip install 'napari-cytounet[bioimageio]'.

Examples:
  cytounet export cells.keras -o cells.bioimageio.zip
  cytounet export cells.keras -o cells.zip --name "CHO cells DIC" \\
      --author "A. Biologist" --author "B. Coder" --license CC-BY-4.0 --test
"""


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``export`` to the subparsers ``sub``."""
    p = add_command(sub, common, "export", HELP, SUMMARY, EPILOG)
    p.add_argument("model", metavar="MODEL.keras", help="trained model (.keras or legacy .h5)")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="NAME.bioimageio.zip",
        help="package to write (.bioimageio.zip is added when the name has no .zip)",
    )
    p.add_argument("--name", help="model name on bioimage.io (5-128 letters, digits, spaces)")
    p.add_argument("--description", help="one or two sentences on what the model segments")
    p.add_argument(
        "--author",
        action="append",
        metavar="NAME",
        help="an author (repeat for several; default 'napari-cytounet user')",
    )
    p.add_argument("--license", default="CC-BY-4.0", help="SPDX licence id (default CC-BY-4.0)")
    p.add_argument("--cite-text", metavar="TEXT", help="an extra citation's text (your paper)")
    p.add_argument("--cite-doi", metavar="DOI", help="its DOI, e.g. 10.1234/abcd")
    p.add_argument("--cite-url", metavar="URL", help="or its URL")
    p.add_argument("--tag", action="append", metavar="TAG", help="a search tag (repeatable)")
    p.add_argument(
        "--threshold",
        type=probability,
        default=0.5,
        help="probability threshold stated in the package (default 0.5)",
    )
    p.add_argument(
        "--sample",
        metavar="IMAGE",
        help="a real image for the test data and cover (default: the shipped BBBC030 cho01)",
    )
    p.add_argument(
        "--no-saved-model",
        action="store_true",
        help="leave out the TensorFlow SavedModel weights (smaller, faster)",
    )
    add_overwrite(p, "replace an existing package")
    p.add_argument(
        "--test",
        action="store_true",
        help="run bioimageio.core's test_model on the package afterwards (offline)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``cytounet export``; returns the exit code (0, or 1 when --test fails)."""
    from ..core.bioimageio_io import require_bioimageio
    from ..core.export import ExportOptions, package_path

    model_path = Path(args.model).expanduser()
    if not model_path.is_file():
        raise ModelError(f"No model file at {model_path}; check the path or train one first.")
    target = package_path(args.output, args.overwrite)  # refuse before the slow part
    require_bioimageio("cytounet export")
    options = ExportOptions(
        name=args.name,
        description=args.description,
        authors=args.author or ["napari-cytounet user"],
        license=args.license,
        cite_text=args.cite_text,
        cite_doi=args.cite_doi,
        cite_url=args.cite_url,
        tags=args.tag or [],
        threshold=args.threshold,
        saved_model=not args.no_saved_model,
    )
    from ..core.bundle import load_bundle
    from ..core.export import export_bioimageio, test_package
    from ..core.io import read_image

    sample = read_image(Path(args.sample).expanduser()) if args.sample else None
    bundle = load_bundle(model_path)
    result = export_bioimageio(bundle, target, options, sample_image=sample, overwrite=True)
    print(f"Exported {result.path} ({', '.join(result.weight_formats)}) in {result.seconds:.1f} s.")
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    if not args.test:
        return 0
    summary = test_package(result.path)
    failed = [d.name for d in summary.details if d.status == "failed"]
    print(f"bioimageio.core test_model: {summary.status}" + (f" ({failed[0]})" if failed else ""))
    return 0 if summary.status == "passed" else 1
