"""Model bundles: round trip, record, atomic saves, refusing bad files, legacy HDF5."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from napari_cytounet.core.bundle import (
    RECORD_NAME,
    load_bundle,
    record_path,
    save_bundle,
)
from napari_cytounet.core.config import UNetConfig
from napari_cytounet.core.errors import ModelError
from napari_cytounet.core.predict import predict_probabilities

RECORD_KEYS = {
    "unet",
    "normalization",
    "label_mode",
    "classes",
    "patch_size",
    "history",
    "data",
    "versions",
    "created",
    "training",
    "name",
    "format_version",
    "extra",
    "legacy",
}


def predict(bundle, image, **kwargs):
    return predict_probabilities(bundle, image, tile_size=None, jit=False, **kwargs)


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def small_bundle(make_bundle):
    return make_bundle(UNetConfig(depth=2, base_filters=2), name="small")


# ---------------------------------------------------------------------------
# round trip


def test_round_trip_of_a_trained_bundle(trained_run, tmp_path):
    bundle = trained_run.finished.bundle
    path = save_bundle(bundle, tmp_path / "cells")
    assert path == tmp_path / "cells.keras" and bundle.path == path
    assert files_in(tmp_path) == ["cells.json", "cells.keras"]

    loaded = load_bundle(path)
    image = trained_run.val_image
    np.testing.assert_array_equal(predict(loaded, image), predict(bundle, image))
    assert loaded.unet == bundle.unet
    assert loaded.normalization == bundle.normalization
    assert loaded.label_mode == "dense" and loaded.classes == 1
    assert loaded.patch_size == 32
    assert loaded.training.to_dict() == bundle.training.to_dict()
    assert loaded.history == json.loads(json.dumps(bundle.history))
    assert loaded.data_summary == json.loads(json.dumps(bundle.data_summary))
    assert loaded.extra["best_epoch"] == trained_run.finished.best_epoch
    assert loaded.created == bundle.created and loaded.legacy is False
    assert loaded.path == path
    assert "depth 2" in loaded.describe() and "history: 3 epoch(s)" in loaded.describe()


def test_record_beside_and_inside_the_file(trained_run, tmp_path):
    from napari_cytounet.core.data import content_hash

    bundle = trained_run.finished.bundle
    path = save_bundle(bundle, tmp_path / "m.keras")
    beside = json.loads(record_path(path).read_text())
    with zipfile.ZipFile(path) as archive:
        inside = json.loads(archive.read(RECORD_NAME))
    assert beside == inside
    assert set(inside) >= RECORD_KEYS
    assert inside["unet"] == {**UNetConfig(depth=2, base_filters=4).to_dict()}
    assert inside["normalization"]["method"] == "percentile"
    assert inside["label_mode"] == "dense" and inside["classes"] == 1
    assert inside["patch_size"] == 32
    assert len(inside["history"]["loss"]) == 3
    assert inside["data"]["count"] == 1
    item = inside["data"]["train"]["items"][0]
    assert item["image_sha256"] == content_hash(trained_run.image)
    assert item["shape"] == [96, 96]
    assert inside["data"]["validation"]["count"] == 1
    assert {"napari-cytounet", "tensorflow", "keras", "numpy", "python"} <= set(inside["versions"])
    assert inside["created"]


def test_save_fills_date_and_versions(small_bundle, tmp_path):
    assert small_bundle.created == "" and small_bundle.versions == {}
    save_bundle(small_bundle, tmp_path / "s.keras")
    record = json.loads((tmp_path / "s.json").read_text())
    assert record["created"].startswith("20") and record["versions"]["keras"]
    assert record["training"] is None and record["patch_size"] is None
    loaded = load_bundle(tmp_path / "s.keras")
    assert loaded.training is None and loaded.name == "small"


def test_saved_files_get_normal_permissions(small_bundle, tmp_path):
    """Not mkstemp's private 0600: the umask default for new files, the old mode on overwrite."""
    import os
    import stat

    old_umask = os.umask(0o022)
    try:
        path = save_bundle(small_bundle, tmp_path / "p.keras")
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        assert stat.S_IMODE(path.with_suffix(".json").stat().st_mode) == 0o644
        path.chmod(0o640)
        save_bundle(small_bundle, path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
    finally:
        os.umask(old_umask)


def test_save_into_a_missing_folder_is_refused(small_bundle, tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        save_bundle(small_bundle, tmp_path / "nope" / "m.keras")
    assert files_in(tmp_path) == []


# ---------------------------------------------------------------------------
# atomic saves


@pytest.fixture
def saved(small_bundle, tmp_path):
    path = save_bundle(small_bundle, tmp_path / "m.keras")
    return small_bundle, path, path.read_bytes(), record_path(path).read_bytes()


def test_failed_rename_leaves_the_old_model(saved, monkeypatch):
    bundle, path, old_bytes, old_record = saved
    real_replace = os.replace

    def failing_replace(src, dst, *args, **kwargs):
        if Path(dst) == path:
            raise OSError(28, "No space left on device")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", failing_replace)
    bundle.history = {"loss": [0.1]}  # a change that would show in the new file
    with pytest.raises(ModelError, match="No space left"):
        save_bundle(bundle, path)
    assert path.read_bytes() == old_bytes
    assert record_path(path).read_bytes() == old_record
    assert files_in(path.parent) == ["m.json", "m.keras"]
    monkeypatch.undo()
    assert load_bundle(path).history == {}


def test_interrupted_write_leaves_the_old_model(saved, monkeypatch):
    bundle, path, old_bytes, old_record = saved
    real_save = type(bundle.model).save

    def interrupted(model, filepath, *args, **kwargs):
        Path(filepath).write_bytes(b"PK\x03\x04 half a file")  # partial output, then Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(type(bundle.model), "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_bundle(bundle, path)
    monkeypatch.setattr(type(bundle.model), "save", real_save)
    assert path.read_bytes() == old_bytes
    assert record_path(path).read_bytes() == old_record
    assert files_in(path.parent) == ["m.json", "m.keras"]
    load_bundle(path)


def test_overwrite_replaces_the_model(saved, make_bundle):
    _, path, old_bytes, _ = saved
    other = make_bundle(UNetConfig(depth=3, base_filters=2), seed=1)
    save_bundle(other, path)
    assert path.read_bytes() != old_bytes
    assert load_bundle(path).unet.depth == 3
    assert files_in(path.parent) == ["m.json", "m.keras"]


# ---------------------------------------------------------------------------
# refusing bad files


def test_missing_path_and_folder(tmp_path):
    with pytest.raises(ModelError, match="No model file"):
        load_bundle(tmp_path / "missing.keras")
    (tmp_path / "folder.keras").mkdir()
    with pytest.raises(ModelError, match="folder"):
        load_bundle(tmp_path / "folder.keras")
    with pytest.raises(ModelError, match="folder"):
        load_bundle(tmp_path)


def test_wrong_suffix(tmp_path):
    path = tmp_path / "model.txt"
    path.write_text("hello")
    with pytest.raises(ModelError, match="not a model file"):
        load_bundle(path)


@pytest.mark.parametrize("damage", ["truncated", "empty", "random", "flipped", "plain zip"])
def test_corrupt_files_are_model_errors(saved, damage):
    _, path, data, _ = saved
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "random":
        path.write_bytes(np.random.default_rng(0).bytes(5000))
    elif damage == "flipped":
        # damage the compressed payload in the middle of the archive, keep the directory
        middle = bytearray(data)
        for i in range(len(data) // 3, len(data) // 3 + 64):
            middle[i] ^= 0xFF
        path.write_bytes(bytes(middle))
    else:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("readme.txt", "not a model")
    with pytest.raises(ModelError) as info:
        load_bundle(path)
    assert path.name in str(info.value)


def test_tampered_record_is_detected(saved, tmp_path):
    _, path, _, _ = saved

    def rewrite(change):
        with zipfile.ZipFile(path) as archive:
            entries = {n: archive.read(n) for n in archive.namelist()}
        record = json.loads(entries[RECORD_NAME])
        change(record)
        entries[RECORD_NAME] = json.dumps(record).encode()
        target = tmp_path / "tampered.keras"
        with zipfile.ZipFile(target, "w") as archive:
            for name, data in entries.items():
                archive.writestr(name, data)
        return target

    with pytest.raises(ModelError, match="2 class"):
        load_bundle(rewrite(lambda r: r["unet"].update(classes=2)))
    with pytest.raises(ModelError, match="damaged"):
        load_bundle(rewrite(lambda r: r.pop("unet")))
    with pytest.raises(ModelError, match="damaged"):
        load_bundle(rewrite(lambda r: r["unet"].update(depth=9)))


def test_lambda_layer_is_refused_in_safe_mode(tmp_path):
    import keras

    inputs = keras.Input((None, None, 1))
    outputs = keras.layers.Lambda(lambda x: x * 2.0)(inputs)
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(ModelError, match="code") as info:
        load_bundle(path)
    assert "Lambda" in str(info.value) and "lambda.keras" in str(info.value)


def test_plain_keras_model_loads_with_inferred_architecture(tmp_path, make_bundle):
    source = make_bundle(UNetConfig(depth=3, base_filters=4))
    path = tmp_path / "plain.keras"
    source.model.save(path)  # no napari-cytounet record
    loaded = load_bundle(path)
    assert loaded.legacy is True
    assert loaded.unet == UNetConfig(depth=3, base_filters=4)
    assert loaded.fixed_input_size is None
    image = np.random.default_rng(0).random((40, 48)).astype(np.float32)
    # float32 for both: a legacy model runs as saved, a cytounet one would switch to bfloat16
    # on a CPU with AVX512-BF16 (and runs with BatchNorm folded: equal to float rounding)
    np.testing.assert_allclose(
        predict(loaded, image, precision="float32"),
        predict(source, image, precision="float32"),
        atol=1e-5,
    )


# ---------------------------------------------------------------------------
# legacy HDF5


def legacy_unet(size: int = 128):
    """A small zhixuhao-style UNet with a fixed input size, as tf.keras saved them."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, 1))
    c1 = layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    p1 = layers.MaxPooling2D()(c1)
    c2 = layers.Conv2D(8, 3, padding="same", activation="relu")(p1)
    p2 = layers.MaxPooling2D()(c2)
    c3 = layers.Conv2D(8, 3, padding="same", activation="relu")(p2)
    u2 = layers.Concatenate()([layers.UpSampling2D()(c3), c2])
    c4 = layers.Conv2D(8, 3, padding="same", activation="relu")(u2)
    u1 = layers.Concatenate()([layers.UpSampling2D()(c4), c1])
    c5 = layers.Conv2D(4, 3, padding="same", activation="relu")(u1)
    outputs = layers.Conv2D(1, 1, activation="sigmoid")(c5)
    return keras.Model(inputs, outputs)


def test_legacy_h5_unet_loads_and_predicts(tmp_path):
    model = legacy_unet()
    path = tmp_path / "unet_membrane.hdf5"
    model.save(path)  # Keras' legacy HDF5 writer
    bundle = load_bundle(path)
    assert bundle.legacy is True
    assert bundle.normalization.method == "scale" and bundle.normalization.scale == 255.0
    assert bundle.fixed_input_size == (128, 128)
    assert bundle.unet.depth == 2 and bundle.unet.base_filters == 4 and bundle.classes == 1
    image = np.random.default_rng(0).integers(0, 255, (150, 170), dtype=np.uint8)
    prob = predict_probabilities(bundle, image, jit=False)
    assert prob.shape == (150, 170) and prob.dtype == np.float32
    assert np.isfinite(prob).all() and prob.min() >= 0 and prob.max() <= 1
    # the image is scaled by 1/255 exactly as in tf.keras training: compare one whole tile
    tile = image[:128, :128]
    direct = np.asarray(model(tile[None, ..., None].astype(np.float32) / 255.0))[0, ..., 0]
    small = predict_probabilities(bundle, tile, jit=False, overlap=32)
    np.testing.assert_allclose(small[40:88, 40:88], direct[40:88, 40:88], atol=1e-3)
    # prediction only
    from napari_cytounet.core.training import train

    with pytest.raises(ModelError, match="legacy"):
        next(train([image], [image > 128], initial=bundle, jit=False))


def test_legacy_pointwise_model_uses_scale_255(tmp_path):
    import keras

    inputs = keras.Input((64, 64, 1))
    outputs = keras.layers.Conv2D(
        1, 1, activation="sigmoid", kernel_initializer="ones", bias_initializer="zeros"
    )(inputs)
    path = tmp_path / "pointwise.h5"
    keras.Model(inputs, outputs).save(path)
    bundle = load_bundle(path)
    image = np.random.default_rng(1).integers(0, 255, (90, 70), dtype=np.uint8)
    prob = predict_probabilities(bundle, image, jit=False, overlap=16)
    expected = 1 / (1 + np.exp(-image.astype(np.float64) / 255.0))
    np.testing.assert_allclose(prob, expected, atol=1e-5)


def test_weights_only_h5_is_refused(tmp_path):
    path = tmp_path / "unet.weights.h5"
    legacy_unet().save_weights(path)
    with pytest.raises(ModelError, match="weights only"):
        load_bundle(path)


def test_corrupt_h5_is_refused(tmp_path):
    path = tmp_path / "broken.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    with pytest.raises(ModelError, match=r"broken\.h5"):
        load_bundle(path)


def test_inference_model_is_folded_reused_and_follows_weights_trained_in_place(make_bundle):
    import keras

    bundle = make_bundle(UNetConfig(depth=2, base_filters=4))
    first = bundle.inference_model("float32")
    assert not [la for la in first.layers if isinstance(la, keras.layers.BatchNormalization)]
    x = np.random.default_rng(0).random((1, 16, 16, 1)).astype(np.float32)
    before = np.asarray(first(x, training=False))
    # a training round that changes the live model's weights in place
    bundle.model.set_weights([w + 0.05 for w in bundle.model.get_weights()])
    again = bundle.inference_model("float32")
    assert again is first  # built once: its compiled prediction function is kept
    after = np.asarray(again(x, training=False))
    assert np.abs(after - before).max() > 1e-3
    np.testing.assert_allclose(after, np.asarray(bundle.model(x, training=False)), atol=1e-5)
