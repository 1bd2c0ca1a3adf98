"""Models of the seed projects (cytounet, zhixuhao/unet), saved by tf-keras 2.x, load and agree.

The fixtures in tests/data were made by ``scripts/make_seed_models.py`` with tf-keras 2.21 and
each project's own layer structure (narrower, to keep the files small). The reference arrays are
tf-keras's own predictions for inputs scaled by 1/255, as those projects fed them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_cytounet.core.bundle import load_bundle
from napari_cytounet.core.predict import predict_probabilities, segment

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("name", ["cytounet_unet", "zhixuhao_unet"])
def test_seed_model_loads_and_gives_the_same_masks(name):
    bundle = load_bundle(DATA / f"{name}.hdf5")
    assert bundle.legacy is True
    assert bundle.normalization.method == "scale" and bundle.normalization.scale == 255.0
    assert bundle.fixed_input_size == (64, 64)
    assert "tiles" in bundle.extra["fixed_input"]  # the record says how other sizes are run
    images = np.load(DATA / "seed_input.npy")
    reference = np.load(DATA / f"{name}_reference.npy")
    prob = predict_probabilities(bundle, images, jit=False)
    np.testing.assert_allclose(prob, reference, atol=2e-4)
    masks = segment(bundle, images, threshold=0.5, min_size=0, fill_holes=False)
    expected = reference > 0.5
    assert expected.mean() > 0.02  # a real segmentation, not an all-background one
    np.testing.assert_array_equal(masks.astype(bool), expected)


def test_cytounet_conv2d_transpose_groups_key_is_dropped_and_recorded():
    bundle = load_bundle(DATA / "cytounet_unet.hdf5")
    assert bundle.extra["ignored_tf_keras_keys"] == {"Conv2DTranspose": ["groups"]}
    assert bundle.unet.batch_norm is True and bundle.unet.depth == 4
    # the file itself is not modified by loading
    import h5py

    with h5py.File(DATA / "cytounet_unet.hdf5", "r") as fh:
        assert '"groups": 1' in fh.attrs["model_config"]


def test_seed_model_runs_on_other_image_sizes():
    bundle = load_bundle(DATA / "cytounet_unet.hdf5")
    image = np.random.default_rng(0).integers(0, 255, (90, 130), dtype=np.uint8)
    prob = predict_probabilities(bundle, image, jit=False)
    assert prob.shape == (90, 130) and np.isfinite(prob).all()
