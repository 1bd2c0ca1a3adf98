"""The demo (``cytounet demo``): trains on the shipped sample, writes model, mask, overlay, report.

Runs with a tiny model and a few batches; XLA off (``CYTOUNET_JIT=0``).
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_cytounet import demo
from napari_cytounet.cli import main
from napari_cytounet.sample_data import SAMPLE_DIR

TINY = {
    "DEMO_DEPTH": 2,
    "DEMO_FILTERS": 4,
    "DEMO_PATCH_SIZE": 64,
    "DEMO_BATCH_SIZE": 2,
    "DEMO_STEPS_PER_EPOCH": 2,
}


@pytest.fixture(autouse=True)
def _no_xla(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CYTOUNET_JIT", "0")


def package_files() -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in SAMPLE_DIR.parent.rglob("*") if p.is_file()}


def test_overlay_image_colours() -> None:
    image = np.linspace(0, 1000, 40 * 50, dtype=np.float32).reshape(40, 50)
    truth = np.zeros((40, 50), np.uint8)
    truth[5:20, 5:20] = 255
    pred = np.zeros((40, 50), np.uint8)
    pred[5:20, 5:20] = 1
    pred[25:35, 30:45] = 1
    rgb = demo.overlay_image(image, pred, truth)
    assert rgb.shape == (40, 50, 3) and rgb.dtype == np.uint8
    assert rgb[5, 10].tolist() == list(demo.BOTH_COLOR)  # outlines agree
    assert rgb[25, 35].tolist() == list(demo.PREDICTION_COLOR)  # predicted only
    assert rgb[12, 12, 0] == rgb[12, 12, 1] == rgb[12, 12, 2]  # inside: gray image
    only_truth = demo.overlay_image(image, np.zeros_like(pred), truth)
    assert only_truth[5, 10].tolist() == list(demo.TRUTH_COLOR)


def test_run_demo_writes_model_mask_overlay_and_report(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from napari_cytounet.core.bundle import load_bundle
    from napari_cytounet.core.io import read_image, read_mask

    for name, value in TINY.items():
        monkeypatch.setattr(demo, name, value)
    before = package_files()
    events = []
    out = tmp_path / "demo"
    result = demo.run_demo(out, max_time=5, epochs=1, callback=events.append)

    assert result.out_dir == out
    assert result.model_path == out / "model.keras" and result.model_path.is_file()
    assert (out / "model.json").is_file()
    assert load_bundle(result.model_path).unet.depth == 2
    assert result.overlay_path == out / "overlay.png"
    overlay = read_image(result.overlay_path)
    assert overlay.shape == (1032, 1376, 3) and overlay.dtype == np.uint8
    assert (overlay == demo.TRUTH_COLOR).all(axis=-1).any()  # the truth is outlined
    [mask_path] = result.prediction_paths
    assert mask_path.name == "cho01_prediction.png"
    assert read_mask(mask_path).shape == (1032, 1376)
    report = result.report_path.read_text()
    assert "Dice" in report and "BBBC030v1" in report and "cytounet predict" in report
    assert 0.0 <= result.dice <= 1.0
    assert [r.name for r in result.table.rows] == ["cho01"]
    assert "Dice" in result.format() and str(out) in result.format()
    assert type(events[0]).__name__ == "TrainingStarted"
    assert type(events[-1]).__name__ == "TrainingFinished"
    assert package_files() == before  # nothing written into the package


def test_cli_demo(tmp_path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in TINY.items():
        monkeypatch.setattr(demo, name, value)
    out = tmp_path / "out"
    code = main(["-q", "demo", "--out", str(out), "--max-time", "2"])
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr
    assert "Dice" in stdout and str(out / "overlay.png") in stdout and "patches/s" in stdout
    assert sorted(p.name for p in out.iterdir()) == [
        ".cytounet-outputs.json",  # the list of the demo's own files (see docs/reliability.md)
        "cho01_prediction.png",
        "model.json",
        "model.keras",
        "overlay.png",
        "report.md",
    ]


def test_cli_demo_refuses_a_file_as_output(tmp_path, capsys: pytest.CaptureFixture) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    code = main(["demo", "--out", str(target)])
    _, err = capsys.readouterr()
    assert code == 2
    assert err.startswith("cytounet: error: ") and len(err.strip().splitlines()) == 1
    assert target.read_text() == "keep me"


def test_cli_demo_reruns_over_its_own_outputs(
    tmp_path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in TINY.items():
        monkeypatch.setattr(demo, name, value)
    out = tmp_path / "out"
    assert main(["-q", "demo", "--out", str(out), "--max-time", "1"]) == 0
    assert main(["-q", "demo", "--out", str(out), "--max-time", "1"]) == 0  # its own files
    (out / "report.md").unlink()
    (out / ".cytounet-outputs.json").unlink()  # now report.md would be a stranger's
    (out / "report.md").write_text("# mine\n")
    assert main(["-q", "demo", "--out", str(out), "--max-time", "1"]) == 1
    assert (out / "report.md").read_text() == "# mine\n"
    assert main(["-q", "demo", "--out", str(out), "--max-time", "1", "--overwrite"]) == 0
    assert (out / "report.md").read_text() != "# mine\n"
