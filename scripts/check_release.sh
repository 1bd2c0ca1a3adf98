#!/usr/bin/env bash
# Release check for napari-cytounet: what a user gets from `pip install napari-cytounet`.
#
#   1. `python -m build` makes an sdist and, from that sdist, a wheel;
#   2. `twine check --strict` accepts both (metadata and README render on PyPI / the napari hub);
#   3. the wheel and the sdist carry what they must: napari.yaml inside the package, the sample
#      data, the licence, the hub metadata (Framework :: napari classifier, ...);
#   4. the wheel is installed into a fresh virtual environment, and from that environment:
#      the installed package is the wheel's copy (not the editable source tree), npe2 validates
#      and discovers the plugin, `cytounet --version` runs, and a real napari viewer opens under
#      Xvfb with every widget of the manifest docked and every sample opened.
#
# Usage: bash scripts/check_release.sh            (from anywhere; exit code 0 = release is good)
# Environment:
#   PYTHON=python3.11             interpreter to build with and base the venv on (default: python)
#   CHECK_RELEASE_KEEP=1          keep the work folder (dist/, venv/) and print where it is
#   CHECK_RELEASE_NO_ISOLATION=1  build without an isolated build env (offline machines that
#                                 already have setuptools and wheel)
#
# About the virtual environment and --system-site-packages (a deliberate trade-off):
#   A venv WITHOUT the system site-packages would prove that the dependency list is complete, but
#   it would download and install TensorFlow, napari, Qt and the rest (about 1.5 GB, of which
#   TensorFlow is ~600 MB) on every run: too slow and too network-hungry for CI. Instead the venv
#   is created WITH --system-site-packages, so the dependencies come from the environment the
#   tests already use, and the wheel is installed into it with `pip install --no-deps`. What this
#   still proves: the wheel installs, its files (manifest, sample data, entry points, console
#   script) are complete and work from site-packages rather than from the source tree. What it
#   does not prove: that every dependency is declared in pyproject.toml (the test suite imports
#   from the same environment, and `pip check` below catches declared-but-missing ones).
#   When PYTHON runs inside a virtual environment, --system-site-packages would reach the base
#   interpreter's packages instead of that environment's, so the venv is then linked to
#   PYTHON's own site-packages by a .pth file (see step 4); step 4a checks that the
#   dependencies come from PYTHON's environment either way.
#   Because the system environment typically holds an *editable* install of this same package,
#   the script verifies explicitly that Python, importlib.metadata and npe2 all resolve
#   napari_cytounet to the venv's copy.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/cytounet-release.XXXXXX")"
START=$SECONDS

cleanup() {
  if [ "${CHECK_RELEASE_KEEP:-0}" = "1" ]; then
    echo "Kept the work folder: $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

step() { printf '\n== %s ==\n' "$*"; }
fail() { printf 'RELEASE CHECK FAILED: %s\n' "$*" >&2; exit 1; }

export PIP_DISABLE_PIP_VERSION_CHECK=1
export TF_CPP_MIN_LOG_LEVEL=2

# ---------------------------------------------------------------------------------------------
step "1. Build the sdist and the wheel"
build_args=(--outdir "$WORK/dist")
if [ "${CHECK_RELEASE_NO_ISOLATION:-0}" = "1" ]; then build_args+=(--no-isolation); fi
(cd "$ROOT" && "$PYTHON" -m build "${build_args[@]}" .) > "$WORK/build.log" 2>&1 \
  || { tail -40 "$WORK/build.log"; fail "python -m build failed (log above)"; }
shopt -s nullglob
wheels=("$WORK"/dist/*.whl)
sdists=("$WORK"/dist/*.tar.gz)
shopt -u nullglob
[ "${#wheels[@]}" -eq 1 ] || fail "expected one wheel in $WORK/dist, found ${#wheels[@]}"
[ "${#sdists[@]}" -eq 1 ] || fail "expected one sdist in $WORK/dist, found ${#sdists[@]}"
WHEEL="${wheels[0]}"
SDIST="${sdists[0]}"
echo "built $(basename "$SDIST") and $(basename "$WHEEL")"

# ---------------------------------------------------------------------------------------------
step "2. twine check"
"$PYTHON" -m twine check --strict "$WHEEL" "$SDIST" || fail "twine check rejected the distributions"

# ---------------------------------------------------------------------------------------------
step "3. Contents of the wheel and the sdist"
"$PYTHON" - "$WHEEL" "$SDIST" <<'PY' || fail "the distributions are incomplete (see above)"
import sys
import tarfile
import zipfile
from email.parser import Parser

wheel, sdist = sys.argv[1], sys.argv[2]
problems = []
names = zipfile.ZipFile(wheel).namelist()

def need(condition, what):
    print(("ok       " if condition else "MISSING  ") + what)
    if not condition:
        problems.append(what)

need("napari_cytounet/napari.yaml" in names, "wheel: napari_cytounet/napari.yaml")
pngs = [n for n in names if n.startswith("napari_cytounet/sample_data/") and n.endswith(".png")]
need(len(pngs) >= 2, f"wheel: sample data PNGs ({len(pngs)} found)")
need("napari_cytounet/sample_data/README.md" in names, "wheel: sample data attribution README")
need(any(n.startswith("napari_cytounet/core/") for n in names), "wheel: napari_cytounet/core")
need(any(n.startswith("napari_cytounet/widgets/") for n in names), "wheel: napari_cytounet/widgets")
need("napari_cytounet/cli/__init__.py" in names, "wheel: napari_cytounet/cli/__init__.py")
need(not any("/tests/" in n or n.startswith("tests/") for n in names), "wheel: no tests packaged")
need(any(n.endswith(".dist-info/licenses/LICENSE") or n.endswith(".dist-info/LICENSE")
         for n in names), "wheel: LICENSE in dist-info")

dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
with zipfile.ZipFile(wheel) as zf:
    meta = Parser().parsestr(zf.read(f"{dist_info}/METADATA").decode())
    entry_points = zf.read(f"{dist_info}/entry_points.txt").decode()
classifiers = meta.get_all("Classifier") or []
need("Framework :: napari" in classifiers, "metadata: classifier 'Framework :: napari'")
need(bool(meta.get("Summary")), "metadata: description (Summary)")
need(meta.get("License-Expression") == "BSD-3-Clause" or "BSD" in (meta.get("License") or ""),
     "metadata: licence BSD-3-Clause")
need(bool(meta.get("Requires-Python")), "metadata: Requires-Python")
need(any(c.startswith("Programming Language :: Python :: 3.") for c in classifiers),
     "metadata: Python version classifiers")
urls = meta.get_all("Project-URL") or []
need(len(urls) >= 3, f"metadata: project URLs ({len(urls)} found)")
need(meta.get("Description-Content-Type") == "text/markdown", "metadata: README as markdown")
need("[napari.manifest]" in entry_points and "napari-cytounet" in entry_points,
     "entry point: napari.manifest")
need("cytounet = napari_cytounet.cli:main" in entry_points.replace("  ", " "),
     "entry point: cytounet console script")

members = tarfile.open(sdist).getnames()
top = members[0].split("/")[0]
for path in ("pyproject.toml", "README.md", "LICENSE", "src/napari_cytounet/napari.yaml"):
    need(f"{top}/{path}" in members, f"sdist: {path}")
if problems:
    sys.exit(1)
PY

# ---------------------------------------------------------------------------------------------
step "4. Install the wheel into a fresh virtual environment"
# The dependencies come from the environment PYTHON runs in. `venv --system-site-packages`
# only reaches the *base* interpreter's site-packages, so when PYTHON is itself inside a
# virtual environment (the README's `python -m venv` + `pip install -e ".[test]"`), the new
# venv is made without them and a .pth file adds PYTHON's own site-packages instead (with
# site.addsitedir, so that their .pth files are processed as for a system site).
IN_VENV="$("$PYTHON" -c 'import sys; print(int(sys.prefix != sys.base_prefix))')"
if [ "$IN_VENV" = "1" ]; then
  "$PYTHON" -m venv "$WORK/venv"
  VPY="$WORK/venv/bin/python"
  parent_sites="$("$PYTHON" -c 'import site; print(repr(site.getsitepackages()))')"
  venv_site="$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  printf 'import site; list(map(site.addsitedir, %s))\n' "$parent_sites" \
    > "$venv_site/_cytounet_parent_env.pth"
  echo "PYTHON runs in a virtual environment: the release venv uses its packages ($parent_sites)"
else
  "$PYTHON" -m venv --system-site-packages "$WORK/venv"
  VPY="$WORK/venv/bin/python"
fi
export CHECK_RELEASE_PARENT_PREFIX="$("$PYTHON" -c 'import sys; print(sys.prefix)')"
"$VPY" -m pip install --quiet --no-deps --no-index "$WHEEL" \
  || fail "pip could not install the wheel"
# Declared dependencies that are missing or incompatible in this environment:
"$VPY" -m pip check > "$WORK/pip-check.log" 2>&1 || {
  grep -i "napari-cytounet" "$WORK/pip-check.log" && fail "pip check: napari-cytounet's requirements are not met"
  echo "(pip check reports problems of other packages only; ignored)"
}

step "4a. The installed package is the wheel's copy, not the source tree"
(cd "$WORK" && "$VPY" - "$WORK/venv" <<'PY') || fail "the venv does not use the wheel's copy"
import importlib.metadata as md
import importlib.resources as res
import sys
from pathlib import Path

venv = Path(sys.argv[1]).resolve()
import napari_cytounet

where = Path(napari_cytounet.__file__).resolve()
print(f"napari_cytounet {napari_cytounet.__version__} from {where}")
assert venv in where.parents, f"napari_cytounet is imported from {where}, not from the venv"
dist = md.distribution("napari-cytounet")
files = [str(f) for f in dist.files or []]
located = Path(dist.locate_file("napari_cytounet/__init__.py")).resolve()
print(f"distribution metadata: {located}")
assert venv in located.parents, f"importlib.metadata resolves to {located}"
assert not any("__editable__" in f for f in files), "the distribution found is the editable one"
manifest = res.files("napari_cytounet") / "napari.yaml"
assert manifest.is_file(), "napari.yaml is not inside the installed package"
samples = [p for p in (res.files("napari_cytounet") / "sample_data").iterdir()
           if p.name.endswith(".png")]
assert samples, "no sample PNG in the installed package"
print(f"napari.yaml and {len(samples)} sample PNGs found in the installed package")
import os

import napari

parent = Path(os.environ["CHECK_RELEASE_PARENT_PREFIX"]).resolve()
napari_at = Path(napari.__file__).resolve()
print(f"dependencies from {parent} (napari from {napari_at})")
assert parent in napari_at.parents, f"napari comes from {napari_at}, not from {parent}"
PY

step "4b. npe2 validates and discovers the plugin"
(cd "$WORK" && "$VPY" -m npe2 validate napari-cytounet) || fail "npe2 validate napari-cytounet"
(cd "$WORK" && "$VPY" - "$WORK/venv" <<'PY') || fail "npe2 does not find the installed plugin"
import sys
from pathlib import Path

import npe2

venv = Path(sys.argv[1]).resolve()
pm = npe2.PluginManager.instance()
pm.discover()
assert "napari-cytounet" in pm._manifests, f"npe2 found {sorted(pm._manifests)}"
mf = pm.get_manifest("napari-cytounet")
print(f"npe2: {mf.name} {mf.package_version!s}, display name {mf.display_name!r}, "
      f"categories {list(mf.categories)}")
assert mf.display_name, "the manifest has no display_name"
assert set(mf.categories) >= {"Segmentation", "Annotation"}, f"categories: {mf.categories}"
widgets = [w.display_name for w in mf.contributions.widgets or []]
samples = [s.key for s in mf.contributions.sample_data or []]
print(f"widgets: {widgets}\nsamples: {samples}")
assert widgets, "the manifest contributes no widget"
assert samples, "the manifest contributes no sample data"
PY

step "4c. cytounet --version"
version_line="$(cd "$WORK" && "$WORK/venv/bin/cytounet" --version 2>&1)" \
  || { echo "$version_line"; fail "cytounet --version exited non-zero"; }
echo "$version_line"
wheel_version="$(basename "$WHEEL" | cut -d- -f2)"
case "$version_line" in
  *"$wheel_version"*) ;;
  *) fail "cytounet --version does not print the wheel's version $wheel_version" ;;
esac

step "4d. A real napari viewer with every widget and sample of the plugin (Xvfb)"
cat > "$WORK/open_napari.py" <<'PY'
"""Open napari with the installed plugin: dock every widget, open every sample, close."""
import sys
import time
from pathlib import Path

venv = Path(sys.argv[1]).resolve()
t0 = time.perf_counter()
import napari
import npe2
from qtpy.QtWidgets import QApplication

import napari_cytounet

assert venv in Path(napari_cytounet.__file__).resolve().parents, napari_cytounet.__file__
pm = npe2.PluginManager.instance()
pm.discover()
mf = pm.get_manifest("napari-cytounet")
viewer = napari.Viewer(show=True, title="napari-cytounet release check")
app = QApplication.instance()
for contribution in mf.contributions.widgets or []:
    name = contribution.display_name
    dock, widget = viewer.window.add_plugin_dock_widget("napari-cytounet", name)
    assert dock is not None and widget is not None, f"widget {name!r} did not dock"
    app.processEvents()
    print(f"docked widget {name!r}: {type(widget).__name__}")
for sample in mf.contributions.sample_data or []:
    before = len(viewer.layers)
    viewer.open_sample("napari-cytounet", sample.key)
    app.processEvents()
    added = [layer.name for layer in list(viewer.layers)[before:]]
    assert added, f"sample {sample.key!r} added no layer"
    print(f"opened sample {sample.key!r}: {added}")
viewer.close()
app.processEvents()
print(f"napari opened and closed with the plugin in {time.perf_counter() - t0:.1f} s")
PY
run_viewer=("$VPY" "$WORK/open_napari.py" "$WORK/venv")
if [ -n "${DISPLAY:-}" ] && [ "${CHECK_RELEASE_USE_DISPLAY:-0}" = "1" ]; then
  (cd "$WORK" && "${run_viewer[@]}")
elif command -v xvfb-run > /dev/null; then
  (cd "$WORK" && xvfb-run -a -s "-screen 0 1600x1000x24" "${run_viewer[@]}")
else
  fail "xvfb-run is not installed (apt-get install xvfb xauth), so napari cannot be opened"
fi || fail "napari could not open the plugin's widgets and samples"

printf '\nRELEASE CHECK PASSED in %d s: %s and %s\n' "$((SECONDS - START))" \
  "$(basename "$SDIST")" "$(basename "$WHEEL")"
