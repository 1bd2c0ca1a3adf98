"""No widget imports another widget's module: widgets share only the shared modules.

The widget modules are the ones ``napari.yaml`` registers as dock widgets. Each may import the
shared modules listed in :data:`SHARED` and its own parts (modules named after it, e.g.
``_train_data`` for ``_train``), nothing else of ``napari_cytounet.widgets``. Shared modules
import only shared modules, and every module of the package is one of the three kinds, so a
new module has to be placed in one of them. Imports are read with ``ast`` (also those inside
functions); nothing is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "napari_cytounet.widgets"
WIDGETS = ROOT / "src" / "napari_cytounet" / "widgets"
MANIFEST = ROOT / "src" / "napari_cytounet" / "napari.yaml"

#: The modules every widget may import (plumbing, and sections more than one widget can use).
SHARED = frozenset(
    {
        "_common",  # notifications, JobRunner, small UI helpers
        "_jobs",  # the jobs run in the engine, and start_job
        "_layers",  # napari layers <-> arrays, output layers
        "_settings",  # persistent settings of the fields
        "_session",  # the viewer's current model, shared by the widgets
        "_scroll",  # the scrolling dock every widget is
        "_plot",  # the training plot (Train, Model)
        "_live",  # the Live section (Train, Predict)
        "_export",  # the "Export for bioimage.io" section (Model)
    }
)


def widget_modules() -> set[str]:
    """The modules of the dock widgets that napari.yaml registers."""
    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    commands = {c["id"]: c["python_name"] for c in manifest["contributions"]["commands"]}
    modules = set()
    for widget in manifest["contributions"]["widgets"]:
        module = commands[widget["command"]].split(":")[0]
        assert module.startswith(PACKAGE + "."), module
        modules.add(module.rsplit(".", 1)[1])
    return modules


def modules() -> dict[str, Path]:
    return {p.stem: p for p in sorted(WIDGETS.glob("*.py")) if p.stem != "__init__"}


def owner(name: str, widgets: set[str]) -> str | None:
    """The widget a module is a part of (``_train_data`` -> ``_train``), if any."""
    matches = [w for w in widgets if name.startswith(w + "_")]
    return max(matches, key=len) if matches else None


def imported_modules(path: Path) -> set[str]:
    """The modules of the widgets package that ``path`` imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:  # from . import _x / from ._x import y
                names = [node.module] if node.module else [a.name for a in node.names]
            elif node.level == 0 and node.module and node.module.startswith(PACKAGE + "."):
                names = [node.module[len(PACKAGE) + 1 :]]
            elif node.level == 0 and node.module == PACKAGE:
                names = [a.name for a in node.names]
            else:
                continue
            found.update(n.split(".")[0] for n in names if n)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PACKAGE + "."):
                    found.add(alias.name[len(PACKAGE) + 1 :].split(".")[0])
    return found


def test_every_module_is_a_widget_a_part_of_one_or_shared():
    widgets = widget_modules()
    assert widgets == {"_train", "_predict", "_score", "_check", "_models"}, widgets
    assert not widgets & SHARED
    unplaced = [
        name
        for name in modules()
        if name not in widgets and name not in SHARED and owner(name, widgets) is None
    ]
    assert not unplaced, (
        f"{unplaced}: name a widget's part after it (e.g. _train_data), or add a module "
        "that several widgets use to SHARED in this test"
    )
    assert set(modules()) >= SHARED, SHARED - set(modules())


def test_no_widget_imports_another_widgets_module():
    widgets = widget_modules()
    wrong = {}
    for name, path in modules().items():
        mine = owner(name, widgets) or (name if name in widgets else None)
        for target in imported_modules(path) & set(modules()):
            if name in SHARED:
                allowed = target in SHARED
            else:
                allowed = target in SHARED or (mine is not None and owner(target, widgets) == mine)
            if not allowed:
                wrong.setdefault(name, []).append(target)
    assert not wrong, (
        f"widget modules import other widgets' modules: {wrong}. Move what they share into a "
        f"shared module ({', '.join(sorted(SHARED))})."
    )


def test_the_import_reader_sees_every_kind_of_import(tmp_path):
    source = tmp_path / "sample.py"
    source.write_text(
        "from . import _layers\n"
        "from ._common import JobRunner\n"
        "import napari_cytounet.widgets._plot\n"
        "from napari_cytounet.widgets import _score\n"
        "from napari_cytounet.widgets._train import TrainWidget\n"
        "def f():\n"
        "    from ._predict import PredictWidget\n"
        "from napari_cytounet.core import config\n"
        "from .. import engine\n",
        encoding="utf-8",
    )
    assert imported_modules(source) == {
        "_layers",
        "_common",
        "_plot",
        "_score",
        "_train",
        "_predict",
    }
