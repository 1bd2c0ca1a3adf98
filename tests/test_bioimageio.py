"""bioimage.io model packages: export, bioimageio.core's test_model, round trips, import, bad cases.

All offline: a test fails if anything tries to open a network connection. The
round-trip figures are printed (run with ``-s`` to see them).
"""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("bioimageio.core", reason="needs the napari-cytounet[bioimageio] extra")

from napari_cytounet.core.errors import ModelError


@pytest.fixture(scope="module", autouse=True)
def no_network():
    """Fail on any HTTP request (bioimageio.spec/core use httpx), for the module's fixtures too."""
    import httpx

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[1:2]}")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(httpx.Client, "send", refuse)
        yield


@pytest.fixture(scope="module")
def sample():
    """The shipped BBBC030 validation image and mask (real DIC CHO cells)."""
    from napari_cytounet.core.io import read_image, read_mask
    from napari_cytounet.sample_data import sample_paths

    image, mask = sample_paths("cho01")
    return read_image(image), read_mask(mask) > 0


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny UNet (depth 2, 4 filters) trained briefly on two shipped BBBC030 images, saved."""
    from napari_cytounet.core.bundle import save_bundle
    from napari_cytounet.core.config import TrainingConfig, UNetConfig
    from napari_cytounet.core.io import read_image, read_mask
    from napari_cytounet.core.training import train
    from napari_cytounet.sample_data import sample_paths

    names = ("cho21", "cho22")
    images = [read_image(sample_paths(n)[0]) for n in names]
    masks = [read_mask(sample_paths(n)[1]) for n in names]
    config = TrainingConfig(
        epochs=3,
        steps_per_epoch=8,
        patch_size=64,
        batch_size=8,
        learning_rate=1e-2,
        seed=0,
        precision="float32",
        validation_patches=0,
    )
    events = list(train(images, masks, config, UNetConfig(depth=2, base_filters=4), jit=False))
    bundle = events[-1].bundle
    bundle.name = "CHO cells tiny"
    path = save_bundle(bundle, tmp_path_factory.mktemp("model") / "cells.keras")
    return bundle, path


@pytest.fixture(scope="module")
def package(trained, tmp_path_factory):
    """The trained model exported with both weight formats."""
    from napari_cytounet.core.export import ExportOptions, export_bioimageio

    options = ExportOptions(
        authors=["A. Biologist", "B. Coder"],
        license="MIT",
        cite_text="Our paper",
        cite_doi="10.1234/example.5678",
        tags=["cho"],
    )
    target = tmp_path_factory.mktemp("export") / "cells"
    return export_bioimageio(trained[0], target, options)


def _rdf(path: Path) -> dict:
    import yaml

    with zipfile.ZipFile(path) as archive:
        return yaml.safe_load(archive.read("rdf.yaml"))


# ---------------------------------------------------------------------------
# export


def test_export_writes_a_complete_package(package, trained):
    bundle = trained[0]
    assert package.path.name == "cells.bioimageio.zip"
    assert package.weight_formats == ("keras_v3", "tensorflow_saved_model_bundle")
    assert package.notes == []
    rdf = _rdf(package.path)
    assert rdf["format_version"].startswith("0.5")
    assert [a["name"] for a in rdf["authors"]] == ["A. Biologist", "B. Coder"]
    assert rdf["license"] == "MIT"
    dois = [c.get("doi") for c in rdf["cite"]]
    assert "10.1007/978-3-319-24574-4_28" in dois and "10.1234/example.5678" in dois
    assert any("napari-cytounet" in c.get("url", "") for c in rdf["cite"])
    (inp,), (out,) = rdf["inputs"], rdf["outputs"]
    assert [a["type"] for a in inp["axes"]] == ["batch", "space", "space", "channel"]
    # step 2**depth (depth 2); the minimum leaves room for the halo cropped on both sides
    assert inp["axes"][1]["size"] == {"min": 2 * 16 + 4, "step": 4}
    assert out["axes"][1]["halo"] == 16 and out["axes"][2]["halo"] == 16
    scale = next(p for p in inp["preprocessing"] if p["id"] == "scale_range")["kwargs"]
    assert scale["min_percentile"] == bundle.normalization.low
    assert scale["max_percentile"] == bundle.normalization.high
    assert scale["axes"] == ["y", "x"]  # per image and channel
    assert "clip" not in [p["id"] for p in inp["preprocessing"]]
    assert out["axes"][1]["size"] == {"tensor_id": "raw", "axis_id": "y"}
    with zipfile.ZipFile(package.path) as archive:
        names = set(archive.namelist())
        record = json.loads(archive.read("training_record.json"))
        readme = archive.read("README.md").decode()
        test_input = np.load(archive.open("test_input.npy"))
        cover = archive.read("cover.png")
    assert {"weights.keras", "tf_saved_model_bundle.zip", "cover.png"} <= names
    assert "training_history.csv" in names
    assert record["history"]["loss"] == bundle.history["loss"]
    assert "How it was trained" in readme and "threshold it at 0.5" in readme
    assert test_input.shape == (1, 256, 256, 1) and test_input.std() > 1  # real image content
    import imageio.v3 as iio

    h, w, _ = iio.imread(cover).shape
    assert w == 2 * h


@pytest.mark.slow
def test_package_passes_bioimageio_test_model_offline(package, tmp_path, monkeypatch):
    import os

    from napari_cytounet.core.export import test_package

    monkeypatch.chdir(tmp_path)
    environment = dict(os.environ)
    summary = test_package(package.path)
    assert list(tmp_path.iterdir()) == []  # TF weights unpacked elsewhere, not here
    failed = [(d.name, [e.msg for e in d.errors]) for d in summary.details if d.status != "passed"]
    assert summary.status == "passed", failed
    names = " ".join(d.name for d in summary.details)
    assert "keras_v3" in names and "tensorflow_saved_model_bundle" in names
    # bioimageio.core (imported by this module before the package) must not have switched the
    # processes started after it (engine, Dask workers, CLI runs) to Keras on PyTorch
    # nor switched oneDNN off for them (test_model sets TF_ENABLE_ONEDNN_OPTS=0): Dask workers
    # started afterwards computed other masks than this process
    assert os.environ["KERAS_BACKEND"] == "tensorflow"
    assert dict(os.environ) == environment


def test_bioimageio_imported_first_leaves_children_on_tensorflow(tmp_path):
    """A user's script that imports bioimageio.core first, then exports: children stay on TF."""
    import os
    import subprocess

    code = (
        "import os; os.environ.pop('KERAS_BACKEND', None)\n"
        "import bioimageio.core\n"
        "from napari_cytounet.core.bioimageio_io import require_bioimageio\n"
        "require_bioimageio()\n"
        "from bioimageio.core.backends import keras_backend\n"
        "print(os.environ['KERAS_BACKEND'])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "tensorflow"


# ---------------------------------------------------------------------------
# round trips and import


@pytest.mark.slow
def test_round_trip_masks_agree(package, trained, sample):
    from napari_cytounet.core.bioimageio_io import load_bioimageio
    from napari_cytounet.core.bundle import load_bundle
    from napari_cytounet.core.predict import predict_probabilities

    image, truth = sample
    original = predict_probabilities(load_bundle(trained[1]), image) >= 0.5
    reloaded = load_bundle(package.path)  # load_bundle dispatches on the .zip suffix
    assert type(reloaded).__name__ == "ModelBundle" and not reloaded.legacy
    assert reloaded.history == trained[0].history
    own = predict_probabilities(reloaded, image) >= 0.5
    external = load_bioimageio(package.path, runner="bioimageio")
    assert type(external).__name__ == "BioimageioBundle"
    core = predict_probabilities(external, image) >= 0.5
    own_agree, core_agree = (own == original).mean(), (core == original).mean()
    dice = 2 * (original & truth).sum() / (original.sum() + truth.sum())
    print(
        f"\nround trip on cho01 {image.shape}: project reload {own_agree:.4%}, "
        f"bioimageio.core {core_agree:.4%} (Dice of the original vs truth {dice:.3f})"
    )
    assert own_agree > 0.999
    assert core_agree > 0.99
    assert dice > 0.5  # a real segmentation, not an empty mask


def _foreign_package(tmp: Path, fmt: str) -> tuple[Path, object]:
    """A non-cytounet Keras model with its own pre/post-processing, packaged by bioimageio.spec."""
    import keras
    import tensorflow as tf
    from bioimageio.spec import save_bioimageio_package
    from bioimageio.spec.model import v0_5

    keras.utils.set_random_seed(1)
    inputs = keras.Input((None, None, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.UpSampling2D(2)(x)
    outputs = keras.layers.Conv2D(1, 1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)
    weights = tmp / ("foreign.keras" if fmt == "keras_v3" else "foreign.h5")
    model.save(weights)
    rng = np.random.default_rng(0)
    test_in = rng.normal(50.0, 10.0, (1, 32, 32, 1)).astype(np.float32)
    norm = (test_in - test_in.mean()) / (test_in.std() + 1e-6)
    test_out = (np.asarray(model(norm)) > 0.5).astype(np.float32)
    np.save(tmp / "in.npy", test_in)
    np.save(tmp / "out.npy", test_out)
    space = v0_5.ParameterizedSize(min=8, step=8)
    ref = v0_5.TensorId("input0")
    entry = (
        v0_5.KerasV3WeightsDescr(
            source=weights,
            keras_version=v0_5.Version(keras.__version__),
            backend=("tensorflow", v0_5.Version(tf.__version__)),
        )
        if fmt == "keras_v3"
        else v0_5.KerasHdf5WeightsDescr(
            source=weights, tensorflow_version=v0_5.Version(tf.__version__)
        )
    )
    descr = v0_5.ModelDescr(
        name="foreign binarizer",
        description="a small Keras net, not from napari-cytounet",
        authors=[v0_5.Author(name="Someone Else")],
        cite=[v0_5.CiteEntry(text="none", doi=v0_5.Doi("10.1234/abc"))],
        license=v0_5.LicenseId("MIT"),
        inputs=[
            v0_5.InputTensorDescr(
                id=ref,
                axes=[
                    v0_5.BatchAxis(),
                    v0_5.SpaceInputAxis(id=v0_5.AxisId("y"), size=space),
                    v0_5.SpaceInputAxis(id=v0_5.AxisId("x"), size=space),
                    v0_5.ChannelAxis(channel_names=[v0_5.Identifier("c0")]),
                ],
                test_tensor=v0_5.FileDescr(source=tmp / "in.npy"),
                preprocessing=[v0_5.ZeroMeanUnitVarianceDescr()],
            )
        ],
        outputs=[
            v0_5.OutputTensorDescr(
                id=v0_5.TensorId("output0"),
                axes=[
                    v0_5.BatchAxis(),
                    v0_5.SpaceOutputAxis(
                        id=v0_5.AxisId("y"), size=v0_5.SizeReference(tensor_id=ref, axis_id="y")
                    ),
                    v0_5.SpaceOutputAxis(
                        id=v0_5.AxisId("x"), size=v0_5.SizeReference(tensor_id=ref, axis_id="x")
                    ),
                    v0_5.ChannelAxis(channel_names=[v0_5.Identifier("fg")]),
                ],
                test_tensor=v0_5.FileDescr(source=tmp / "out.npy"),
                postprocessing=[v0_5.BinarizeDescr(kwargs=v0_5.BinarizeKwargs(threshold=0.5))],
            )
        ],
        weights=v0_5.WeightsDescr(**{fmt: entry}),
    )
    return save_bioimageio_package(descr, output_path=tmp / f"foreign-{fmt}.zip"), model


@pytest.mark.parametrize("fmt", ["keras_v3", "keras_hdf5"])
def test_foreign_keras_package_runs_with_its_own_processing(tmp_path, fmt):
    from napari_cytounet.core.bundle import load_bundle
    from napari_cytounet.core.predict import predict_probabilities, segment

    path, model = _foreign_package(tmp_path, fmt)
    bundle = load_bundle(path)
    assert type(bundle).__name__ == "BioimageioBundle" and bundle.legacy
    assert "zero_mean_unit_variance" in bundle.describe()
    rng = np.random.default_rng(3)
    image = rng.normal(100.0, 20.0, (2, 50, 70)).astype(np.float32)  # a stack of 2 planes
    prob = predict_probabilities(bundle, image)
    assert prob.shape == image.shape
    assert set(np.unique(prob)) <= {0.0, 1.0}  # its binarize postprocessing ran
    for plane, got in zip(image, prob):
        padded = np.pad(plane, ((0, 6), (0, 2)), mode="reflect")  # to 56 x 72 (steps of 8)
        norm = (padded - padded.mean()) / (padded.std() + 1e-6)  # its own normalisation
        expected = np.asarray(model(norm[None, ..., None]))[0, :50, :70, 0] > 0.5
        assert (expected == (got > 0.5)).mean() > 0.999
    labels = segment(bundle, image[0])
    assert labels.shape == (50, 70)
    # it travels to a worker process by path, and cannot be re-exported
    import pickle

    again = pickle.loads(pickle.dumps(bundle))
    assert type(again) is type(bundle) and again.path == bundle.path
    np.testing.assert_array_equal(predict_probabilities(again, image[0]), prob[0])
    from napari_cytounet.core.export import export_bioimageio

    with pytest.raises(ModelError, match="made elsewhere"):
        export_bioimageio(bundle, tmp_path / "again.zip")


# ---------------------------------------------------------------------------
# bad cases


def test_corrupt_and_foreign_zip_files_get_clear_messages(tmp_path):
    from napari_cytounet.core.bundle import load_bundle

    corrupt = tmp_path / "broken.bioimageio.zip"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ModelError, match="corrupt or truncated"):
        load_bundle(corrupt)
    other = tmp_path / "photos.zip"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("a.txt", "hello")
    with pytest.raises(ModelError, match=r"holds no rdf\.yaml"):
        load_bundle(other)


def test_unsupported_weight_format_is_refused(package, tmp_path):
    import yaml

    from napari_cytounet.core.bundle import load_bundle

    rdf = _rdf(package.path)
    del rdf["weights"]["keras_v3"]
    del rdf["weights"]["tensorflow_saved_model_bundle"]["parent"]
    edited = tmp_path / "tf-only.zip"
    with zipfile.ZipFile(package.path) as src, zipfile.ZipFile(edited, "w") as dst:
        for name in src.namelist():
            if name not in ("rdf.yaml", "weights.keras"):
                dst.writestr(name, src.read(name))
        dst.writestr("rdf.yaml", yaml.safe_dump(rdf))
    with pytest.raises(ModelError, match=r"tensorflow_saved_model_bundle weights.*keras_v3 or"):
        load_bundle(edited)


def test_3d_package_is_refused(tmp_path):
    import yaml

    path, _ = _foreign_package(tmp_path, "keras_v3")
    with zipfile.ZipFile(path) as archive:
        rdf = yaml.safe_load(archive.read("rdf.yaml"))
    rdf["inputs"][0]["axes"].insert(1, {"type": "space", "id": "z", "size": 1})
    rdf["outputs"][0]["axes"].insert(1, {"type": "space", "id": "z", "size": 1})
    folder = tmp_path / "unzipped"
    with zipfile.ZipFile(path) as archive:
        archive.extractall(folder)
    for name in ("in.npy", "out.npy"):
        np.save(folder / name, np.load(folder / name)[:, None])
        for t in rdf["inputs"] + rdf["outputs"]:
            if t["test_tensor"]["source"] == name:
                t["test_tensor"].pop("sha256", None)
    (folder / "rdf.yaml").write_text(yaml.safe_dump(rdf))
    from napari_cytounet.core.bundle import load_bundle

    with pytest.raises(ModelError, match=r"axes \(batch, z, y, x, c.*2D image input"):
        load_bundle(folder / "rdf.yaml")


def test_missing_extra_says_how_to_install(monkeypatch, trained, package, tmp_path):
    from napari_cytounet.cli import main
    from napari_cytounet.core.bioimageio_io import MissingExtraError
    from napari_cytounet.core.bundle import load_bundle
    from napari_cytounet.core.export import export_bioimageio

    for name in [m for m in sys.modules if m.startswith("bioimageio")]:
        monkeypatch.setitem(sys.modules, name, None)  # as if the extra were not installed
    hint = r"pip install 'napari-cytounet\[bioimageio\]'"
    with pytest.raises(MissingExtraError, match=hint):
        load_bundle(package.path)
    with pytest.raises(MissingExtraError, match=hint):
        export_bioimageio(trained[0], tmp_path / "x.zip")
    assert not (tmp_path / "x.zip").exists()
    code = main(["export", str(trained[1]), "-o", str(tmp_path / "y.zip")])
    assert code == 1


def test_export_refuses_bad_options_before_writing(trained, tmp_path):
    from napari_cytounet.core.export import ExportOptions, export_bioimageio

    with pytest.raises(ModelError, match=r"not valid on bioimage\.io"):
        export_bioimageio(trained[0], tmp_path / "a.zip", ExportOptions(name="x/y"))
    with pytest.raises(ModelError, match="threshold"):
        export_bioimageio(trained[0], tmp_path / "a.zip", ExportOptions(threshold=1.5))
    existing = tmp_path / "keep.zip"
    existing.write_bytes(b"mine")
    with pytest.raises(ModelError, match="already exists"):
        export_bioimageio(trained[0], existing, overwrite=False)
    assert existing.read_bytes() == b"mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.zip"]


# ---------------------------------------------------------------------------
# command line


def test_cli_export_then_predict_with_the_package(trained, sample, tmp_path, capsys):
    from napari_cytounet.cli import main
    from napari_cytounet.core.io import read_mask, write_image

    out = tmp_path / "pkg.bioimageio.zip"
    args = ["export", str(trained[1]), "-o", str(out), "--no-saved-model", "--author", "Me"]
    assert main([*args, "--name", "CHO cells", "--test"]) == 0
    text = capsys.readouterr().out
    assert "Exported" in text and "(keras_v3)" in text and "test_model: passed" in text
    assert main(args) == 1  # exists, no --overwrite
    assert "already exists" in capsys.readouterr().err
    image = tmp_path / "img" / "cho01.tif"
    image.parent.mkdir()
    write_image(image, sample[0][:200, :300])
    assert main(["predict", str(out), str(image.parent), "-o", str(tmp_path / "masks")]) == 0
    mask = read_mask(tmp_path / "masks" / "cho01.png")
    assert mask.shape == (200, 300) and mask.any()
