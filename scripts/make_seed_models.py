"""Build the seed projects' UNets with tf-keras 2.x and save them as their users did (.hdf5).

Fixtures for ``tests/test_seed_models.py``: models written by **tf-keras** (Keras 2, the
``keras`` that cytounet and zhixuhao/unet used), which Keras 3 refuses to deserialise as is
(``Conv2DTranspose`` carries ``groups: 1``, layers carry tf-keras-only keys). Run it in a
throwaway environment that has tf-keras::

    python -m venv --system-site-packages /tmp/tfk
    /tmp/tfk/bin/pip install "tf-keras==2.21.*"      # the version matching TensorFlow
    TF_USE_LEGACY_KERAS=1 /tmp/tfk/bin/python scripts/make_seed_models.py tests/data

The layer structure is transcribed from the projects' own code:

* ``cytounet_unet`` follows ``cytounet/model.py::unet`` (Nelson-Gon/cytounet, master): two
  ``apply_conv`` blocks (Conv2D-BatchNorm-Conv2D) per stage, MaxPooling, ``Conv2DTranspose``
  up-sampling (kernel 2, 2, 3, 3) and a sigmoid 1x1 output. cytounet's filters are
  16-32-64-128-256 (about 1.9 M parameters, 23 MB as HDF5); here every width is divided by
  ``WIDTH`` (4) so that the file stays small. Nothing else changes.
* ``zhixuhao_unet`` follows ``model.py::unet`` (zhixuhao/unet): Conv2D pairs, Dropout(0.5),
  UpSampling2D + Conv2D(2x2), the extra Conv2D(2) before the sigmoid. Its 64..1024 filters
  (31 M parameters, 120 MB) are divided by 16.

The input size is fixed at 64x64 (cytounet's default is 256x256; any multiple of 16 works the
same). Weights are seeded, then trained for a few steps on a synthetic disk image so that the
BatchNorm statistics are not the defaults. Reference outputs are the tf-keras predictions for
inputs scaled by 1/255, as cytounet's ``generate_test_data`` (``rescale=1/255.``) fed them.

Writes ``cytounet_unet.hdf5``, ``zhixuhao_unet.hdf5``, ``seed_input.npy`` (uint8, (2, 64, 64))
and ``<model>_reference.npy`` (float32 probabilities, (2, 64, 64)).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

SIZE = 64
WIDTH = 4  # cytounet's widths divided by this
ZWIDTH = 16  # zhixuhao's widths divided by this


def _layers():
    import tf_keras

    return tf_keras, tf_keras.layers


def cytounet_unet(input_size=(SIZE, SIZE, 1)):
    """cytounet's ``unet()`` (layered_conv=True, no regulariser) at 1/WIDTH of its widths."""
    tf_keras, L = _layers()

    def apply_conv(x, filters):
        x = L.Conv2D(filters, 3, activation="relu", kernel_initializer="he_normal", padding="same")(
            x
        )
        x = L.BatchNormalization()(x)
        return L.Conv2D(
            filters, 3, activation="relu", kernel_initializer="he_normal", padding="same"
        )(x)

    f = [n // WIDTH for n in (16, 32, 64, 128, 256)]
    inputs = L.Input(input_size)
    s1 = apply_conv(inputs, f[0])
    s2 = apply_conv(L.MaxPooling2D((2, 2))(s1), f[1])
    s3 = apply_conv(L.MaxPooling2D((2, 2))(s2), f[2])
    s4 = apply_conv(L.MaxPooling2D((2, 2))(s3), f[3])
    s5 = apply_conv(L.MaxPooling2D(pool_size=(2, 2))(s4), f[4])
    up6 = L.Conv2DTranspose(f[3], 2, strides=(2, 2), padding="same")(s5)
    s6 = apply_conv(L.concatenate([up6, s4], axis=3), f[3])
    up7 = L.Conv2DTranspose(f[2], 2, strides=(2, 2), padding="same")(s6)
    s7 = apply_conv(L.concatenate([up7, s3]), f[2])
    up8 = L.Conv2DTranspose(f[1], 3, strides=(2, 2), padding="same")(s7)
    s8 = apply_conv(L.concatenate([up8, s2]), f[1])
    up9 = L.Conv2DTranspose(f[0], 3, strides=(2, 2), padding="same")(s8)
    s9 = apply_conv(L.concatenate([up9, s1], axis=3), f[0])
    outputs = L.Conv2D(1, 1, activation="sigmoid", padding="same")(s9)
    model = tf_keras.Model(inputs=inputs, outputs=outputs, name="unet_complex")
    model.compile(
        optimizer=tf_keras.optimizers.Adam(learning_rate=1e-3),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    return model


def zhixuhao_unet(input_size=(SIZE, SIZE, 1)):
    """zhixuhao/unet's ``unet()`` at 1/ZWIDTH of its widths."""
    tf_keras, L = _layers()

    def conv(n, k=3):
        return L.Conv2D(
            n // ZWIDTH if n > 2 else n,
            k,
            activation="relu",
            padding="same",
            kernel_initializer="he_normal",
        )

    inputs = L.Input(input_size)
    c1 = conv(64)(conv(64)(inputs))
    c2 = conv(128)(conv(128)(L.MaxPooling2D(pool_size=(2, 2))(c1)))
    c3 = conv(256)(conv(256)(L.MaxPooling2D(pool_size=(2, 2))(c2)))
    d4 = L.Dropout(0.5)(conv(512)(conv(512)(L.MaxPooling2D(pool_size=(2, 2))(c3))))
    d5 = L.Dropout(0.5)(conv(1024)(conv(1024)(L.MaxPooling2D(pool_size=(2, 2))(d4))))
    x = d5
    for skip, n in ((d4, 512), (c3, 256), (c2, 128), (c1, 64)):
        up = conv(n, 2)(L.UpSampling2D(size=(2, 2))(x))
        x = conv(n)(conv(n)(L.concatenate([skip, up], axis=3)))
    x = conv(2)(x)
    outputs = L.Conv2D(1, 1, activation="sigmoid")(x)
    model = tf_keras.Model(inputs=inputs, outputs=outputs)
    model.compile(
        optimizer=tf_keras.optimizers.Adam(learning_rate=1e-3),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    return model


def disks(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Bright disks on a noisy background (uint8 images, 0/1 masks)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    images = np.empty((n, SIZE, SIZE), np.uint8)
    masks = np.zeros((n, SIZE, SIZE), np.float32)
    for i in range(n):
        for _ in range(4):
            cy, cx, r = rng.integers(8, SIZE - 8), rng.integers(8, SIZE - 8), rng.integers(4, 9)
            masks[i][(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 1
        noisy = 60 + 120 * masks[i] + rng.normal(0, 20, (SIZE, SIZE))
        images[i] = np.clip(noisy, 0, 255).astype(np.uint8)
    return images, masks


def main(out: Path) -> None:
    import tensorflow as tf
    import tf_keras

    out.mkdir(parents=True, exist_ok=True)
    train_x, train_y = disks(8, seed=1)
    test_x, _ = disks(2, seed=2)
    np.save(out / "seed_input.npy", test_x)
    for name, build in (("cytounet_unet", cytounet_unet), ("zhixuhao_unet", zhixuhao_unet)):
        for seed in range(5):  # zhixuhao's ReLU before the sigmoid can start dead: reseed
            tf_keras.utils.set_random_seed(seed)
            model = build()
            model.fit(
                train_x[..., None] / 255.0, train_y[..., None], batch_size=2, epochs=10, verbose=0
            )
            reference = model.predict(test_x[..., None] / 255.0, verbose=0)[..., 0]
            if 0.02 < (reference > 0.5).mean() < 0.5:
                break
        # cytounet saved with model.save / ModelCheckpoint (optimizer state included); the
        # zhixuhao fixture leaves the optimizer out to keep the file small
        model.save(out / f"{name}.hdf5", include_optimizer=name.startswith("cytounet"))
        np.save(out / f"{name}_reference.npy", reference.astype(np.float32))
        size = (out / f"{name}.hdf5").stat().st_size
        print(
            f"{name}: {model.count_params()} parameters, {size / 1024:.0f} KiB, "
            f"tf-keras {tf_keras.__version__}, TensorFlow {tf.__version__}, "
            f"reference foreground {(reference > 0.5).mean():.3f}"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "tests/data"))
