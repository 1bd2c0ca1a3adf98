"""The documentation builds, and every image it shows is in the repository.

``mkdocs build --strict`` fails on any broken link, missing page or unknown anchor, so the first
test is the guard against docs that rot. The image test is cheap and catches a screenshot that
was renamed or never committed (mkdocs does not check images).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
REPO_SLUG = "napari-cytounet/napari-cytounet"
#: Absolute URLs that point into this repository's files (README images on PyPI and GitHub).
REPO_FILE_URLS = (
    re.compile(rf"^https://raw\.githubusercontent\.com/{REPO_SLUG}/[^/]+/(?P<path>.+)$"),
    re.compile(rf"^https://github\.com/{REPO_SLUG}/(?:raw|blob)/[^/]+/(?P<path>.+)$"),
)
#: ``![alt](target "title")`` and ``<img src="target">``
MARKDOWN_IMAGE = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_IMAGE = re.compile(r"<img\b[^>]*\bsrc\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
#: Largest image the docs may carry (screenshots are quantised to stay well below).
MAX_IMAGE_BYTES = 500_000


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def image_targets(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)  # code blocks are not images
    return MARKDOWN_IMAGE.findall(text) + HTML_IMAGE.findall(text)


def local_file(source: Path, target: str) -> Path | None:
    """The repository file an image target refers to, or ``None`` for an external image."""
    for pattern in REPO_FILE_URLS:
        match = pattern.match(target)
        if match:
            return ROOT / unquote(match["path"])
    if urlparse(target).scheme:  # badges and other external images
        return None
    return (source.parent / unquote(target.split("#")[0])).resolve()


def test_every_referenced_image_exists():
    checked, missing, too_big = 0, [], []
    for md in markdown_files():
        for target in image_targets(md):
            path = local_file(md, target)
            if path is None:
                continue
            checked += 1
            where = f"{md.relative_to(ROOT)}: {target}"
            if not path.is_file():
                missing.append(where)
            elif path.stat().st_size > MAX_IMAGE_BYTES:
                too_big.append(f"{where} ({path.stat().st_size / 1000:.0f} kB)")
    assert checked >= 8, f"expected the screenshots to be referenced, found {checked} images"
    assert not missing, "images referenced but not in the repository:\n" + "\n".join(missing)
    assert not too_big, (
        f"images over {MAX_IMAGE_BYTES // 1000} kB (shrink them; scripts/make_screenshots.py "
        "quantises its PNGs):\n" + "\n".join(too_big)
    )


def test_readme_hero_image_is_the_train_widget_screenshot():
    targets = image_targets(ROOT / "README.md")
    assert any(t.endswith("docs/images/train-widget.png") for t in targets), targets


def test_screenshot_script_help_needs_no_display():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_screenshots.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "--quick" in result.stdout and "--out" in result.stdout


@pytest.mark.slow
def test_mkdocs_build_strict(tmp_path):
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("mkdocs is not installed: pip install -e '.[docs]' to build the docs")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, (
        f"mkdocs build --strict failed (exit {result.returncode}):\n{result.stdout}\n"
        f"{result.stderr}"
    )
    assert (tmp_path / "site" / "tutorial-human-in-the-loop" / "index.html").is_file()
    for page in ("train", "predict", "score", "quality", "models"):
        assert (tmp_path / "site" / "widgets" / page / "index.html").is_file(), page
