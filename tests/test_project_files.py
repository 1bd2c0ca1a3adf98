"""The project's own files agree with each other: CI, README, manifest, dependencies.

The GitHub workflow cannot run here, so these tests read it and check that every test job runs
the command README.md gives for the tests (directly, or through ``.ci/run``), that the matrix
covers Linux, macOS and Windows, and that packages are built, inspected and published on tags.
They also check that the runtime dependencies in ``pyproject.toml`` are what the package's code
imports, and that the manifest shipped inside the package is the one at the top level.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "test_and_deploy.yml"

#: import name -> distribution name, where they differ
DISTRIBUTIONS = {
    "skimage": "scikit-image",
    "yaml": "pyyaml",
    "sklearn": "scikit-learn",
    "bioimageio": "bioimageio.core",
}


def readme_test_command() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### Run the tests", 1)[1]
    block = re.search(r"```bash\n(.+?)\n```", section, re.DOTALL)
    assert block, "README.md has no bash block under 'Run the tests'"
    return block.group(1).strip()


def workflow() -> dict:
    data = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def test_ci_entry_point_runs_the_readme_command():
    command = readme_test_command()
    assert command in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_every_test_job_runs_the_readme_command():
    command = readme_test_command()
    test_job = workflow()["jobs"]["test"]
    runs = [step.get("run", "") for step in test_job["steps"]]
    linux = [r for r in runs if r.strip() == "bash .ci/run"]
    others = [r for r in runs if command in r]
    assert linux and others, runs


def test_matrix_covers_three_systems_and_the_oldest_napari():
    matrix = workflow()["jobs"]["test"]["strategy"]["matrix"]
    assert set(matrix["platform"]) == {"ubuntu-latest", "macos-latest", "windows-latest"}
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    classifiers = pyproject["project"]["classifiers"]
    versions = {c.rsplit(" ", 1)[1] for c in classifiers if re.search(r":: 3\.\d+$", c)}
    assert set(matrix["python-version"]) == versions
    oldest = [inc["napari"] for inc in matrix.get("include", [])]
    napari_floor = next(
        d for d in pyproject["project"]["dependencies"] if d.startswith("napari")
    ).split(">=")[1]
    assert any(o.startswith(napari_floor) for o in oldest), (oldest, napari_floor)


def test_packages_are_inspected_and_published_on_tags():
    jobs = workflow()["jobs"]
    uses = [s.get("uses", "") for s in jobs["build"]["steps"]]
    assert any(u.startswith("hynek/build-and-inspect-python-package") for u in uses)
    deploy = jobs["deploy"]
    assert "refs/tags/v" in deploy["if"]
    assert deploy["permissions"]["id-token"] == "write"
    assert set(deploy["needs"]) == {"test", "build"}
    assert workflow()["on"]["push"]["tags"] == ["v*"]


def test_pre_commit_runs_ruff_and_the_plugin_checks():
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    hooks = {hook["id"] for repo in config["repos"] for hook in repo["hooks"]}
    assert {"ruff", "ruff-format", "napari-plugin-checks"} <= hooks


def test_manifest_inside_the_package_is_the_top_level_one():
    top = (ROOT / "napari.yaml").read_text(encoding="utf-8")
    assert top == (ROOT / "src" / "napari_cytounet" / "napari.yaml").read_text(encoding="utf-8")
    menus = yaml.safe_load(top)["contributions"]["menus"]
    assert {item["command"] for item in menus["napari/layers/segment"]} == {
        "napari-cytounet.train_widget",
        "napari-cytounet.predict_widget",
    }
    assert menus["napari/layers/measure"] == [{"command": "napari-cytounet.score_widget"}]
    assert menus["napari/layers/data"] == [{"command": "napari-cytounet.check_widget"}]


def _third_party_imports() -> set[str]:
    stdlib = set(sys.stdlib_module_names)
    names = set()
    for path in (ROOT / "src" / "napari_cytounet").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in stdlib and n not in ("napari_cytounet", "__future__")}


def _declared(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_runtime_dependencies_are_what_the_code_imports():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = _declared(project["dependencies"])
    optional = set().union(*(_declared(v) for v in project["optional-dependencies"].values()))
    imported = {DISTRIBUTIONS.get(n, n).lower() for n in _third_party_imports()}
    missing = {n for n in imported - runtime if n not in optional}
    assert not missing, f"imported by the package but not declared: {sorted(missing)}"
    unused = runtime - imported - {"imagecodecs"}  # imagecodecs: tifffile's LZW codec plug-in
    assert not unused, f"declared but never imported: {sorted(unused)}"
    assert "npe2" not in runtime, "npe2 is used by the tests only"


def test_no_function_over_80_lines_and_no_file_over_600():
    """The size rules of the code (issue #12), checked by scripts/code_size.py over src."""
    import subprocess

    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "code_size.py"), str(ROOT / "src")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
