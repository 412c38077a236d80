"""Issue 22, class 2: image decoding keeps pixel values for every mode Pillow opens (16-bit scaled,
palette, transparency, CMYK, LAB, float) or lists the image as bad; never silent garbage."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import yaml
from PIL import Image

from eae.data.decode import ALPHA_BACKGROUND, ImageDecoder, _decode_batch, to_rgb
from tests.helpers.workspace import module, tiny_params

pytestmark = pytest.mark.reliability

GRADIENT16 = (np.arange(256, dtype=np.uint32).reshape(16, 16) * 257).astype(np.uint16)  # 0 .. 65535


def save(tmp_path, name: str, im: Image.Image, fmt: str, **kw) -> str:
    im.save(tmp_path / name, fmt, **kw)
    return name


def decode(tmp_path, name: str, size: int = 16) -> np.ndarray:
    """uint8 [3, size, size] through the real decoder (no crop, so no resampling at the image's own size)."""
    return ImageDecoder(str(tmp_path), size, crop="none")(name)


def test_16_bit_grayscale_png_is_scaled_not_clipped(tmp_path):
    """Before: Pillow's convert clipped I;16 to 255, so the image became 99 % white with exit 0."""
    name = save(tmp_path, "g16.png", Image.fromarray(GRADIENT16), "PNG")
    assert Image.open(tmp_path / name).mode == "I;16"
    out = decode(tmp_path, name)
    expected = np.rint(GRADIENT16 / 257.0).astype(np.uint8)  # 255 / 65535 = 1 / 257
    for channel in out:
        np.testing.assert_array_equal(channel, expected)
    assert (out == 255).mean() < 0.01


def test_16_bit_big_endian_tiff(tmp_path):
    im = Image.frombytes("I;16B", (16, 16), GRADIENT16.astype(">u2").tobytes())
    name = save(tmp_path, "g16b.tif", im, "TIFF")
    np.testing.assert_array_equal(decode(tmp_path, name)[0], np.rint(GRADIENT16 / 257.0).astype(np.uint8))


def test_32_bit_integers_in_16_bit_range_are_scaled_others_are_bad(tmp_path):
    ok = Image.fromarray(GRADIENT16.astype(np.int32), "I")
    np.testing.assert_array_equal(np.asarray(to_rgb(ok))[..., 0], np.rint(GRADIENT16 / 257.0).astype(np.uint8))
    name = save(tmp_path, "wide.tif", Image.fromarray(np.full((16, 16), 70000, np.int32), "I"), "TIFF")
    images, bad = _decode_batch(ImageDecoder(str(tmp_path), 16, crop="none"), [name])
    assert len(images) == 0 and bad == [
        (0, "ValueError: I pixels range over 70000..70000, outside 0..65535: unknown scale")
    ]


def test_float_pixels(tmp_path):
    """F in [0, 1] is scaled (Pillow's convert truncated 0.5 to 0); other ranges have no known scale."""
    values = np.linspace(0, 1, 256, dtype=np.float32).reshape(16, 16)
    name = save(tmp_path, "f.tif", Image.fromarray(values, "F"), "TIFF")
    np.testing.assert_array_equal(decode(tmp_path, name)[1], np.rint(values * 255).astype(np.uint8))
    name = save(tmp_path, "f255.tif", Image.fromarray(values * 255, "F"), "TIFF")
    _, bad = _decode_batch(ImageDecoder(str(tmp_path), 16, crop="none"), [name])
    assert bad and "outside [0, 1]: unknown scale" in bad[0][1]


def test_transparency_is_composited_over_the_background(tmp_path):
    """Dropping alpha showed the colour hidden under transparent pixels (often black)."""
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., 0] = 200  # red everywhere ...
    rgba[:8, :, 3] = 0  # ... invisible in the top half
    rgba[8:, :, 3] = 255
    name = save(tmp_path, "a.png", Image.fromarray(rgba, "RGBA"), "PNG")
    out = decode(tmp_path, name)
    assert (out[:, :8] == np.array(ALPHA_BACKGROUND, np.uint8)[:, None, None]).all()
    assert (out[:, 8:] == np.array([200, 0, 0], np.uint8)[:, None, None]).all()
    la = np.stack([np.full((16, 16), 10, np.uint8), np.full((16, 16), 128, np.uint8)], axis=-1)
    name = save(tmp_path, "la.png", Image.fromarray(la, "LA"), "PNG")
    assert decode(tmp_path, name)[0, 0, 0] == round(10 * 128 / 255 + 255 * (1 - 128 / 255))


def test_palette_with_a_transparent_colour(tmp_path):
    im = Image.new("P", (16, 16), 0)
    im.putpalette([0, 0, 0, 30, 60, 90] + [0] * 762)
    im.paste(1, (0, 8, 16, 16))
    name = save(tmp_path, "p.gif", im, "GIF", transparency=0)
    out = decode(tmp_path, name)
    assert (out[:, 0, 0] == ALPHA_BACKGROUND).all() and (out[:, 15, 0] == [30, 60, 90]).all()
    name = save(tmp_path, "p.png", im, "PNG")  # no transparency: the palette colours
    assert (decode(tmp_path, name)[:, 0, 0] == 0).all()


@pytest.mark.parametrize(
    "mode, value, fmt, expected",
    [
        ("CMYK", (0, 255, 255, 0), "TIFF", (255, 0, 0)),
        ("CMYK", (0, 0, 0, 128), "JPEG", (127, 127, 127)),
        ("LAB", (128, 128, 128), "TIFF", (119, 119, 119)),  # L* 50, a* = b* = 0: sRGB mid grey
        ("YCbCr", (76, 85, 255), "TIFF", (254, 0, 0)),
        ("1", 1, "PNG", (255, 255, 255)),
        ("L", 77, "BMP", (77, 77, 77)),
    ],
)
def test_other_modes_convert_to_their_colours(tmp_path, mode, value, fmt, expected):
    name = save(tmp_path, f"x.{fmt.lower()}", Image.new(mode, (16, 16), value), fmt)
    assert Image.open(tmp_path / name).mode == mode
    np.testing.assert_allclose(decode(tmp_path, name)[:, 4, 4], expected, atol=2 if fmt == "JPEG" else 0)


def test_exif_orientation_is_applied(tmp_path):
    """A phone photo stored sideways with an EXIF rotation was decoded sideways."""
    pixels = np.zeros((16, 16), np.uint8)
    pixels[0, :] = 255  # a white top row
    im = Image.fromarray(pixels).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise: the top row becomes the right column
    name = save(tmp_path, "rot.jpg", im, "JPEG", exif=exif, quality=100)
    out = decode(tmp_path, name)[0].astype(int)
    assert out[:, -1].mean() > 200 and out[0, :].mean() < 100


def test_prepare_keeps_16_bit_images_and_lists_the_undecodable(workspace):
    """End to end through the prepare stage (folder source): the 16-bit PNG is in the shards with its
    values; a 32-bit TIFF of unknown scale is in bad_images, not in the data."""
    root = workspace / "data/raw/imgs"
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(root / f"rgb{i}.png")
    Image.fromarray(GRADIENT16).save(root / "g16.png")
    Image.fromarray(np.full((16, 16), -5, np.int32), "I").save(root / "neg.tif")
    lines = [f"rgb{i}.png {'test' if i < 2 else 'train'}" for i in range(8)] + ["g16.png train", "neg.tif train"]
    (root / "split.txt").write_text("\n".join(lines) + "\n")
    params = tiny_params(data={"source": "folder", "root": "data/raw/imgs", "split_file": "data/raw/imgs/split.txt"})
    (workspace / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    proc = module("pipelines.prepare", cwd=workspace)
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = json.loads((workspace / "data/prepared/manifest.json").read_text())
    assert manifest["bad_images"]["count"] == 1 and "neg.tif" in json.dumps(manifest["bad_images"]["files"])
    train = np.concatenate([np.load(workspace / "data/prepared" / s) for s in manifest["splits"]["train"]["shards"]])
    assert len(train) == 7
    g16 = train[-1]  # split-file order: the 16-bit image comes last
    np.testing.assert_array_equal(g16[0], np.rint(GRADIENT16 / 257.0).astype(np.uint8))


def test_rgb_conversion_keeps_8_bit_images_bit_for_bit():
    """The modes that were right before stay exactly as Pillow converts them."""
    rgb = Image.fromarray(np.random.default_rng(1).integers(0, 255, (5, 7, 3), dtype=np.uint8))
    assert np.array_equal(np.asarray(to_rgb(rgb)), np.asarray(rgb))
    gray = rgb.convert("L")
    assert np.array_equal(np.asarray(to_rgb(gray)), np.asarray(gray.convert("RGB")))
    buf = io.BytesIO()
    rgb.quantize(16).save(buf, "PNG")
    pal = Image.open(buf)
    assert np.array_equal(np.asarray(to_rgb(pal)), np.asarray(pal.convert("RGB")))
