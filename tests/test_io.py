"""Tests of napari_cytounet.core.io: listing, reading, pairing and writing image files."""

from __future__ import annotations

import os
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from bbbc030_data import full_bbbc030
from napari_cytounet.core.errors import DataError
from napari_cytounet.core.io import (
    IMAGE_EXTENSIONS,
    Pairing,
    list_images,
    output_path,
    pair_folders,
    read_image,
    read_mask,
    write_image,
    write_labels,
)

BBBC030 = full_bbbc030() or Path("/nonexistent/bbbc030")


def gray(shape=(20, 30), dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random(shape) * np.iinfo(dtype).max).astype(dtype)


def touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")


# ---------------------------------------------------------------------------
# listing


def test_extensions():
    assert IMAGE_EXTENSIONS == (".tif", ".tiff", ".png", ".jpg", ".jpeg")


def test_list_images_filters_and_sorts(tmp_path):
    touch(tmp_path, "img10.png", "img2.TIF", "img1.jpeg", "notes.txt", ".hidden.png", "._img3.png")
    (tmp_path / "sub.png").mkdir()
    names = [p.name for p in list_images(tmp_path)]
    assert names == ["img1.jpeg", "img2.TIF", "img10.png"]


def test_list_images_missing_file_or_empty(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        list_images(tmp_path / "nope")
    touch(tmp_path, "a.png")
    with pytest.raises(DataError, match="is a file, not a folder"):
        list_images(tmp_path / "a.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=r"holds no image \(it is empty\)"):
        list_images(empty)
    touch(empty, "readme.txt")
    with pytest.raises(DataError, match=r"readme\.txt.*\.tif"):
        list_images(empty)


# ---------------------------------------------------------------------------
# reading


def test_read_lzw_tiff(tmp_path):
    data = gray((40, 50), np.uint16)
    path = tmp_path / "lzw.tif"
    tifffile.imwrite(path, data, compression="lzw")
    with tifffile.TiffFile(path) as tif:
        assert tif.pages[0].compression == tifffile.COMPRESSION.LZW
    out = read_image(path)
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, data)


def test_read_tiff_stack_and_singleton(tmp_path):
    stack = gray((3, 16, 16))
    tifffile.imwrite(tmp_path / "s.tiff", stack, photometric="minisblack")
    assert read_image(tmp_path / "s.tiff").shape == (3, 16, 16)
    tifffile.imwrite(tmp_path / "one.tif", stack[:1], photometric="minisblack")
    assert read_image(tmp_path / "one.tif").shape == (16, 16)


def test_rgb_with_identical_channels_is_grayscale(tmp_path):
    g = gray()
    iio.imwrite(tmp_path / "rgb.png", np.dstack([g, g, g]))
    out = read_image(tmp_path / "rgb.png")
    assert out.shape == g.shape
    np.testing.assert_array_equal(out, g)
    # opaque alpha is dropped too
    iio.imwrite(tmp_path / "rgba.png", np.dstack([g, g, g, np.full_like(g, 255)]))
    assert read_image(tmp_path / "rgba.png").shape == g.shape
    # a real colour image stays colour; a translucent alpha is kept
    colour = np.dstack([g, gray(seed=1), gray(seed=2)])
    iio.imwrite(tmp_path / "colour.png", colour)
    assert read_image(tmp_path / "colour.png").shape == (*g.shape, 3)
    alpha = np.dstack([g, g, g, gray(seed=3)])
    iio.imwrite(tmp_path / "alpha.png", alpha)
    assert read_image(tmp_path / "alpha.png").shape == (*g.shape, 4)


@pytest.mark.skipif(not BBBC030.is_dir(), reason="shared BBBC030 data not available")
def test_read_bbbc030_rgb_png_as_grayscale():
    path = BBBC030 / "train" / "images" / "cho21.png"
    raw = iio.imread(path)
    assert raw.shape == (1032, 1376, 3)
    image = read_image(path)
    assert image.shape == (1032, 1376)
    np.testing.assert_array_equal(image, raw[..., 0])
    mask = read_mask(BBBC030 / "train" / "masks" / "cho21.png")
    assert mask.shape == (1032, 1376)
    assert set(np.unique(mask)) == {0, 255}


def test_read_mask_rejects_colour(tmp_path):
    g = gray()
    iio.imwrite(tmp_path / "colour.png", np.dstack([g, gray(seed=1), g]))
    with pytest.raises(DataError, match="single-channel"):
        read_mask(tmp_path / "colour.png")
    tifffile.imwrite(tmp_path / "stack.tif", gray((2, 8, 8)), photometric="minisblack")
    with pytest.raises(DataError, match="not a 2D"):
        read_mask(tmp_path / "stack.tif")


def test_read_mask_palette_png_gives_indices(tmp_path):
    from PIL import Image

    labels = np.zeros((10, 12), np.uint8)
    labels[2:5, 2:5] = 1
    labels[6:9, 6:10] = 2
    image = Image.fromarray(labels, mode="P")
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    image.save(tmp_path / "palette.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "palette.png"), labels)
    assert read_image(tmp_path / "palette.png").shape == (10, 12, 3)  # images keep colours


def test_corrupt_files_raise_data_error_with_path(tmp_path):
    good = write_image(tmp_path / "good.png", gray((100, 100)))
    data = good.read_bytes()
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"truncated\.png.*corrupt, truncated"):
        read_image(truncated)
    fake = tmp_path / "fake.tif"
    fake.write_text("this is not a TIFF\n")
    with pytest.raises(DataError, match=r"fake\.tif"):
        read_image(fake)
    with pytest.raises(DataError, match="does not exist"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "x.bmp").write_bytes(b"BM")
    with pytest.raises(DataError, match="not a supported image"):
        read_image(tmp_path / "x.bmp")


# ---------------------------------------------------------------------------
# pairing


def test_pair_folders_by_stem_and_mask_suffix(tmp_path):
    touch(tmp_path / "img", "a.png", "b.tif", "c.png", "d.png")
    touch(tmp_path / "lab", "a.png", "B_mask.tif", "c_labels.png", "orphan.png")
    pairing = pair_folders(tmp_path / "img", tmp_path / "lab")
    assert isinstance(pairing, Pairing)
    assert pairing.names == ["a", "b", "c"]
    assert [(i.name, m.name) for i, m in pairing.pairs] == [
        ("a.png", "a.png"),
        ("b.tif", "B_mask.tif"),
        ("c.png", "c_labels.png"),
    ]
    assert [p.name for p in pairing.unpaired_images] == ["d.png"]
    assert [p.name for p in pairing.unpaired_masks] == ["orphan.png"]
    assert len(pairing) == 3


def test_pair_folders_exact_stem_wins(tmp_path):
    touch(tmp_path / "img", "a.png")
    touch(tmp_path / "lab", "a.png", "a_mask.png")
    pairing = pair_folders(tmp_path / "img", tmp_path / "lab")
    assert pairing.pairs[0][1].name == "a.png"
    assert [p.name for p in pairing.unpaired_masks] == ["a_mask.png"]


def test_pair_folders_same_folder(tmp_path):
    touch(tmp_path, "cho01.png", "cho01_mask.png", "cho02.png", "cho02_mask.png")
    pairing = pair_folders(tmp_path, tmp_path)
    assert [(i.name, m.name) for i, m in pairing.pairs] == [
        ("cho01.png", "cho01_mask.png"),
        ("cho02.png", "cho02_mask.png"),
    ]
    assert not pairing.unpaired_images
    assert not pairing.unpaired_masks


def test_pair_folders_no_pair_lists_examples(tmp_path):
    touch(tmp_path / "img", "cell_001.png", "cell_002.png")
    touch(tmp_path / "lab", "seg-1.png")
    with pytest.raises(DataError, match=r"cell_001\.png.*seg-1\.png"):
        pair_folders(tmp_path / "img", tmp_path / "lab")


def test_pair_folders_duplicate_stems_and_missing(tmp_path):
    touch(tmp_path / "img", "a.png", "a.tif")
    touch(tmp_path / "lab", "a.png")
    with pytest.raises(DataError, match="share the name 'a'"):
        pair_folders(tmp_path / "img", tmp_path / "lab")
    with pytest.raises(DataError, match="does not exist"):
        pair_folders(tmp_path / "img", tmp_path / "nowhere")


# ---------------------------------------------------------------------------
# writing


def test_write_labels_png_dtypes(tmp_path):
    small = np.array([[0, 1], [2, 255]], np.int64)
    p = write_labels(tmp_path / "small.png", small)
    back = iio.imread(p)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, small)
    big = np.array([[0, 300], [65535, 2]], np.int32)
    back = read_mask(write_labels(tmp_path / "big.png", big))
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, big)
    bools = read_mask(write_labels(tmp_path / "bool.png", np.eye(3, dtype=bool)))
    np.testing.assert_array_equal(bools, np.eye(3, dtype=np.uint8))
    with pytest.raises(DataError, match=r"16-bit PNG.*\.tif"):
        write_labels(tmp_path / "huge.png", np.array([[70000]]))


def test_write_labels_tiff_compressed(tmp_path):
    labels = np.zeros((2, 64, 64), np.int64)
    labels[0, 5:20, 5:20] = 70000
    labels[1, 30:40, 30:40] = 3
    p = write_labels(tmp_path / "stack.tif", labels)
    with tifffile.TiffFile(p) as tif:
        assert tif.pages[0].compression == tifffile.COMPRESSION.ADOBE_DEFLATE
        back = tif.asarray()
    assert back.dtype == np.uint32
    np.testing.assert_array_equal(back, labels)
    assert read_image(write_labels(tmp_path / "u8.tiff", labels > 0)).dtype == np.uint8
    # a 3-plane uint8 stack stays a stack of planes (not an RGB image)
    three = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    np.testing.assert_array_equal(read_image(write_labels(tmp_path / "three.tif", three)), three)
    rgb = np.dstack([gray(), gray(seed=1), gray(seed=2)])
    np.testing.assert_array_equal(read_image(write_image(tmp_path / "rgb.tif", rgb)), rgb)


def test_write_labels_rejects_bad_values(tmp_path):
    with pytest.raises(DataError, match="negative"):
        write_labels(tmp_path / "n.png", np.array([[-1, 0]]))
    with pytest.raises(DataError, match="whole numbers"):
        write_labels(tmp_path / "f.png", np.array([[0.5, 1.0]]))
    with pytest.raises(DataError, match="JPEG is lossy"):
        write_labels(tmp_path / "j.jpg", np.array([[0, 1]]))
    assert not list(tmp_path.iterdir())  # nothing written


def test_write_image_formats(tmp_path):
    prob = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    np.testing.assert_array_equal(read_image(write_image(tmp_path / "p.tif", prob)), prob)
    img16 = gray((8, 8), np.uint16)
    np.testing.assert_array_equal(read_image(write_image(tmp_path / "i.png", img16)), img16)
    with pytest.raises(DataError, match=r"PNG.*\.tif"):
        write_image(tmp_path / "p.png", prob)
    with pytest.raises(DataError, match="unsupported suffix"):
        write_image(tmp_path / "p.bmp", img16)


def test_writes_are_atomic_and_overwrite(tmp_path, monkeypatch):
    target = tmp_path / "out" / "mask.png"
    write_labels(target, np.ones((4, 4), np.uint8))
    write_labels(target, np.full((4, 4), 2, np.uint8))  # overwriting is allowed
    assert read_mask(target).max() == 2
    # a crash while writing leaves the old file intact and no temporary file behind
    import napari_cytounet.core.io as io_module

    def boom(tmp, array):
        Path(tmp).write_bytes(b"half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(io_module, "_write_imageio", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        write_labels(target, np.full((4, 4), 3, np.uint8))
    assert read_mask(target).max() == 2
    assert sorted(os.listdir(target.parent)) == ["mask.png"]


def test_output_path():
    assert output_path("out", "/data/images/cho01.png") == Path("out") / "cho01.tif"
    assert output_path("out", "x/cho01.tif", ".png").name == "cho01.png"
    assert output_path("out", "x/cho01.tif", "_prob.tif").name == "cho01_prob.tif"
    with pytest.raises(DataError, match="extension"):
        output_path("out", "x/cho01.tif", "tif")
