"""Dataset sources (celeba, cifar10, mnist, folder) on fixtures with the real on-disk layouts."""

import gzip
import json
import logging
import os
import pickle
import shutil
import sys
import tarfile
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from eae.data.decode import CELEBA_CROP, ImageDecoder, ImageFiles
from eae.data.prepare import write_prepared
from eae.data.prepared import read_manifest, read_split
from eae.data.sources import load_source
from eae.data.sources.mnist import pad_to
from eae.errors import EAEError
from tests.helpers.datasets import cifar_batch, idx_bytes, jpeg_bytes

N_CELEBA = 24
CELEBA_PARTITION = ["0"] * 16 + ["1"] * 4 + ["2"] * 4
CORRUPT = "000005.jpg"  # in the train partition


@pytest.fixture(scope="module")
def celeba_src(tmp_path_factory):
    """root/img_align_celeba/000001.jpg .. + root/list_eval_partition.txt; one truncated JPEG."""
    root = tmp_path_factory.mktemp("celeba")
    images = root / "img_align_celeba"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(1, N_CELEBA + 1):
        data = jpeg_bytes(rng)
        name = f"{i:06d}.jpg"
        (images / name).write_bytes(data[: len(data) // 2] if name == CORRUPT else data)
    (root / "list_eval_partition.txt").write_text(
        "".join(f"{i:06d}.jpg {p}\n" for i, p in enumerate(CELEBA_PARTITION, 1))
    )
    return root


def copy_of(src, tmp_path, name="root"):
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


def prepare(tmp_path, source, out="out", shard_size=1000, workers=0, on_bad_image="skip", **kwargs):
    out = tmp_path / out
    out.mkdir()
    splits = load_source(source, **{"image_size": 64, "test_fraction": 0.25, "seed": 0, **kwargs})
    manifest = write_prepared(out, splits, source, shard_size, workers=workers, on_bad_image=on_bad_image)
    return out, manifest


def files_of(folder):
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir())}


# ----------------------------------------------------------------------------- celeba


def test_celeba_partition_crop_resize_and_bad_image(celeba_src, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="eae.data.sources"):
        out, manifest = prepare(tmp_path, "celeba", root=celeba_src)
    assert list(manifest["splits"]) == ["train", "valid", "test"]
    assert {k: v["count"] for k, v in manifest["splits"].items()} == {"train": 15, "valid": 4, "test": 4}
    assert manifest["image_shape"] == [3, 64, 64]
    assert manifest["bad_images"] == {"count": 1, "files": [CORRUPT]}
    assert CORRUPT in caplog.text
    assert read_manifest(out) == manifest
    train = read_split(out, "train")
    assert train.images.shape == (15, 3, 64, 64) and train.images.dtype == np.uint8 and train.labels is None
    # First image: centre crop box (19, 39, 159, 179) of 178x218, then LANCZOS to 64x64.
    with Image.open(celeba_src / "img_align_celeba" / "000001.jpg") as im:
        expected = np.asarray(im.convert("RGB").crop((19, 39, 159, 179)).resize((64, 64), Image.LANCZOS))
    np.testing.assert_array_equal(train.images[0], expected.transpose(2, 0, 1))
    # Images keep the partition file's order: the 5th train image is 000006.jpg (000005 was skipped).
    with Image.open(celeba_src / "img_align_celeba" / "000006.jpg") as im:
        sixth = np.asarray(im.convert("RGB").crop((19, 39, 159, 179)).resize((64, 64), Image.LANCZOS))
    np.testing.assert_array_equal(train.images[4], sixth.transpose(2, 0, 1))


def test_celeba_fail_mode_names_the_file(celeba_src, tmp_path):
    with pytest.raises(EAEError, match=f"{CORRUPT}.*on_bad_image") as info:
        prepare(tmp_path, "celeba", root=celeba_src, on_bad_image="fail")
    assert "\n" not in str(info.value)


def test_celeba_zip_gives_the_same_bytes(celeba_src, tmp_path):
    root = tmp_path / "zipped"
    root.mkdir()
    shutil.copy(celeba_src / "list_eval_partition.txt", root)
    with zipfile.ZipFile(root / "img_align_celeba.zip", "w") as zf:
        for f in sorted((celeba_src / "img_align_celeba").iterdir()):
            zf.write(f, f"img_align_celeba/{f.name}")
    from_dir, m_dir = prepare(tmp_path, "celeba", out="a", root=celeba_src)
    from_zip, m_zip = prepare(tmp_path, "celeba", out="b", root=root)
    assert m_zip["content_hash"] == m_dir["content_hash"]
    assert m_zip["bad_images"] == m_dir["bad_images"]
    assert files_of(from_zip) == files_of(from_dir)


def test_celeba_torchvision_layout_and_missing_files(celeba_src, tmp_path):
    root = tmp_path / "raw"
    copy_of(celeba_src, root, "celeba")  # torchvision puts the files in root/celeba/
    splits = load_source("celeba", root=root, image_size=64)
    assert [len(s.names) for s in splits.values()] == [16, 4, 4]
    (root / "celeba" / "list_eval_partition.txt").unlink()
    with pytest.raises(EAEError, match="list_eval_partition.txt"):
        load_source("celeba", root=root, image_size=64)
    with pytest.raises(EAEError, match="does not exist"):
        load_source("celeba", root=tmp_path / "nowhere", image_size=64)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "list_eval_partition.txt").write_text("000001.jpg 0\n")
    with pytest.raises(EAEError, match="no CelebA images"):
        load_source("celeba", root=empty, image_size=64)
    (empty / "img_align_celeba").mkdir()
    (empty / "list_eval_partition.txt").write_text("000001.jpg 7\n")
    with pytest.raises(EAEError, match=r"list_eval_partition.txt:1"):
        load_source("celeba", root=empty, image_size=64)


def test_centre_crop_keeps_no_border(tmp_path):
    """A 178x218 image whose centre 140x140 is red and whose border is blue: nothing blue survives."""
    pixels = np.zeros((218, 178, 3), np.uint8)
    pixels[..., 2] = 255
    pixels[39:179, 19:159] = (255, 0, 0)
    Image.fromarray(pixels).save(tmp_path / "x.png")
    for size in (64, CELEBA_CROP):
        out = ImageDecoder(str(tmp_path), size, crop="fixed", crop_size=CELEBA_CROP)("x.png")
        assert out.shape == (3, size, size)
        assert (out[2] == 0).all() and (out[0] == 255).all() and (out[1] == 0).all()
    # One pixel more on any side and the border colour shows.
    pixels[39:179, 19:159] = (0, 0, 255)
    pixels[40:178, 20:158] = (255, 0, 0)
    Image.fromarray(pixels).save(tmp_path / "y.png")
    assert ImageDecoder(str(tmp_path), CELEBA_CROP, crop="fixed", crop_size=CELEBA_CROP)("y.png")[2].max() == 255


def test_celeba_download(tmp_path, monkeypatch, celeba_src):
    calls = []

    class FailingCelebA:
        def __init__(self, root, **kwargs):
            calls.append((root, kwargs))
            raise RuntimeError("To download files from GDrive, 'gdown' is required.\nInstall it.")

    fake = types.ModuleType("torchvision.datasets")
    fake.CelebA = FailingCelebA
    monkeypatch.setitem(sys.modules, "torchvision", types.ModuleType("torchvision"))
    monkeypatch.setitem(sys.modules, "torchvision.datasets", fake)
    with pytest.raises(EAEError, match="could not download celeba.*gdown") as info:
        load_source("celeba", root=tmp_path / "raw", image_size=64, download=True)
    assert "\n" not in str(info.value)
    assert calls[0][1]["download"] is True

    class WorkingCelebA:  # what torchvision leaves behind: root/celeba/...
        def __init__(self, root, **kwargs):
            shutil.copytree(celeba_src, Path(root) / "celeba")

    fake.CelebA = WorkingCelebA
    splits = load_source("celeba", root=tmp_path / "raw", image_size=64, download=True)
    assert [len(s.names) for s in splits.values()] == [16, 4, 4]
    fake.CelebA = FailingCelebA  # files present: no download attempted
    load_source("celeba", root=tmp_path / "raw", image_size=64, download=True)
    assert len(calls) == 1


@pytest.mark.parametrize("source, cls", [("cifar10", "CIFAR10"), ("mnist", "MNIST")])
def test_download_failure_is_one_line(tmp_path, monkeypatch, source, cls):
    def offline(root, **kwargs):
        assert kwargs["download"] is True
        raise OSError("<urlopen error [Errno -3] Temporary failure\nin name resolution>")

    fake = types.ModuleType("torchvision.datasets")
    setattr(fake, cls, offline)
    monkeypatch.setitem(sys.modules, "torchvision", types.ModuleType("torchvision"))
    monkeypatch.setitem(sys.modules, "torchvision.datasets", fake)
    with pytest.raises(EAEError, match=f"could not download {source}.*name resolution") as info:
        load_source(source, root=tmp_path, image_size=32, download=True)
    assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------- shards and workers


def test_shards_hold_at_most_shard_size(celeba_src, tmp_path):
    out, manifest = prepare(tmp_path, "celeba", root=celeba_src, shard_size=4)
    train = manifest["splits"]["train"]
    assert train["shards"] == [f"train-{i:03d}.npy" for i in range(4)]
    sizes = [len(np.load(out / f)) for f in train["shards"]]
    assert sizes == [4, 4, 4, 3]
    whole_out, whole = prepare(tmp_path, "celeba", out="whole", root=celeba_src, shard_size=1000)
    assert whole["content_hash"] == manifest["content_hash"]
    np.testing.assert_array_equal(read_split(out, "train").images, read_split(whole_out, "train").images)


def test_two_workers_give_the_same_bytes(celeba_src, tmp_path):
    serial, m0 = prepare(tmp_path, "celeba", out="serial", root=celeba_src, shard_size=6, workers=0)
    parallel, m2 = prepare(tmp_path, "celeba", out="parallel", root=celeba_src, shard_size=6, workers=2)
    assert m2 == m0
    assert files_of(parallel) == files_of(serial)
    with pytest.raises(EAEError, match=CORRUPT):
        prepare(tmp_path, "celeba", out="fail", root=celeba_src, workers=2, on_bad_image="fail")


def test_image_files_labels_follow_the_skipped_images(celeba_src, tmp_path):
    decoder = ImageDecoder(str(celeba_src / "img_align_celeba"), 16, crop="fixed", crop_size=CELEBA_CROP)
    names = [f"{i:06d}.jpg" for i in range(3, 8)]
    splits = {
        "train": ImageFiles(names, decoder, labels=np.arange(3, 8)),
        "test": ImageFiles(["000001.jpg", "missing.jpg"], decoder),
    }
    manifest = write_prepared(tmp_path, splits, "x", 10)
    np.testing.assert_array_equal(read_split(tmp_path, "train").labels, [3, 4, 6, 7])
    assert manifest["bad_images"] == {"count": 2, "files": [CORRUPT, "missing.jpg"]}
    with pytest.raises(EAEError, match="none of its 1 images"):
        write_prepared(tmp_path, {"train": ImageFiles(["missing.jpg"], decoder)}, "x", 10)


# ----------------------------------------------------------------------------- cifar10


@pytest.fixture(scope="module")
def cifar_src(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(1)
    batches = {f"data_batch_{i}": cifar_batch(rng, 3, 3 * (i - 1)) for i in range(1, 6)}
    batches["test_batch"] = cifar_batch(rng, 4, 100)
    for name, batch in batches.items():
        # The official (Python 2) files name numpy's array constructor numpy.core.multiarray.
        blob = pickle.dumps(batch, protocol=2).replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
        assert b"numpy.core.multiarray\n_reconstruct" in blob
        (folder / name).write_bytes(blob)
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"airplane"] * 10}, protocol=2))
    return root, batches


def test_cifar10_batches_labels_and_layout(cifar_src, tmp_path):
    root, batches = cifar_src
    splits = load_source("cifar10", root=root, image_size=32)
    assert list(splits) == ["train", "test"]
    train, test = splits["train"], splits["test"]
    assert train.images.shape == (15, 3, 32, 32) and test.images.shape == (4, 3, 32, 32)
    assert train.images.dtype == np.uint8 and train.labels.dtype == np.int64
    np.testing.assert_array_equal(train.labels, [i % 10 for i in range(15)])
    row = batches["data_batch_2"][b"data"][1]  # train image 4
    c, y, x = 2, 5, 7
    assert train.images[4, c, y, x] == row[c * 1024 + y * 32 + x]
    np.testing.assert_array_equal(test.images.reshape(4, -1), batches["test_batch"][b"data"])
    out, manifest = prepare(tmp_path, "cifar10", root=root, image_size=32)
    assert "bad_images" not in manifest
    np.testing.assert_array_equal(read_split(out, "test").labels, batches["test_batch"][b"labels"])


def test_cifar10_tarball_and_errors(cifar_src, tmp_path):
    root, _ = cifar_src
    tar_root = tmp_path / "tar"
    tar_root.mkdir()
    with tarfile.open(tar_root / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(root / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    from_tar, from_dir = (load_source("cifar10", root=r, image_size=32) for r in (tar_root, root))
    for name in ("train", "test"):
        np.testing.assert_array_equal(from_tar[name].images, from_dir[name].images)
        np.testing.assert_array_equal(from_tar[name].labels, from_dir[name].labels)
    with pytest.raises(EAEError, match="image_size: 32"):
        load_source("cifar10", root=root, image_size=64)
    with pytest.raises(EAEError, match="does not exist"):
        load_source("cifar10", root=tmp_path / "nowhere", image_size=32)

    evil = copy_of(root, tmp_path, "evil")

    class Payload:
        def __reduce__(self):
            return (os.getcwd, ())

    (evil / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps({b"data": Payload()}, protocol=2))
    with pytest.raises(EAEError, match="not allowed"):
        load_source("cifar10", root=evil, image_size=32)
    (evil / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(EAEError, match="test_batch"):
        load_source("cifar10", root=evil, image_size=32)


# ----------------------------------------------------------------------------- mnist


@pytest.mark.parametrize("compressed", [False, True])
def test_mnist_idx_files_are_padded_to_32(tmp_path, compressed):
    rng = np.random.default_rng(2)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    data = {
        "train": (rng.integers(1, 256, (6, 28, 28), dtype=np.uint8), np.arange(6, dtype=np.uint8)),
        "test": (rng.integers(1, 256, (3, 28, 28), dtype=np.uint8), np.array([9, 8, 7], np.uint8)),
    }
    names = {
        "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    }
    for split, arrays in data.items():
        for name, array in zip(names[split], arrays):
            blob = idx_bytes(array)
            if compressed:
                (raw / f"{name}.gz").write_bytes(gzip.compress(blob))
            else:
                (raw / name).write_bytes(blob)
    splits = load_source("mnist", root=tmp_path, image_size=32)
    for split, (images, labels) in data.items():
        got = splits[split]
        assert got.images.shape == (len(images), 1, 32, 32) and got.images.dtype == np.uint8
        np.testing.assert_array_equal(got.images[:, 0, 2:30, 2:30], images)  # the 28x28 sits in the centre
        border = got.images.copy()
        border[:, :, 2:30, 2:30] = 0
        assert not border.any()  # zeros around it
        np.testing.assert_array_equal(got.labels, labels)
        assert got.labels.dtype == np.int64
    first = raw / (names["train"][0] + (".gz" if compressed else ""))
    first.write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 4)
    with pytest.raises(EAEError, match="train-images-idx3-ubyte"):
        load_source("mnist", root=tmp_path, image_size=32)
    first.unlink()
    with pytest.raises(EAEError, match="missing .*train-images-idx3-ubyte"):
        load_source("mnist", root=tmp_path, image_size=32)


def test_pad_to_centres_and_rejects_small_sizes():
    x = np.full((1, 28, 28), 7, np.uint8)
    out = pad_to(x, 31)
    assert out.shape == (1, 1, 31, 31)
    assert out[0, 0, 1:29, 1:29].min() == 7 and out.sum() == 7 * 28 * 28
    with pytest.raises(EAEError, match="image_size"):
        pad_to(x, 16)


# ----------------------------------------------------------------------------- folder


@pytest.fixture(scope="module")
def folder_src(tmp_path_factory):
    root = tmp_path_factory.mktemp("folder")
    rng = np.random.default_rng(3)
    layout = {
        "a/b/one.png": (40, 30),
        "a/b/two.PNG": (30, 40),
        "a/three.jpg": (64, 64),
        "four.webp": (50, 20),
        "c/five.bmp": (33, 33),
        "c/d/e/six.jpeg": (70, 50),
        "seven.png": (20, 20),
        "eight.png": (25, 45),
    }
    for name, (w, h) in layout.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        fmt = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP", "bmp": "BMP"}[Path(name).suffix[1:].lower()]
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / name, fmt)
    (root / "notes.txt").write_text("not an image")
    (root / "c" / "broken.png").write_bytes(b"\x89PNG garbage")
    (root / ".hidden.png").write_bytes(b"hidden, skipped")
    return root, sorted(layout) + ["c/broken.png"]


def test_folder_split_file_and_bad_image(folder_src, tmp_path):
    root, _ = folder_src
    split_file = tmp_path / "split.txt"
    split_file.write_text(
        "# path split\na/b/one.png train\na/three.jpg train\nc/broken.png train\n"
        "four.webp valid\n./c/d/e/six.jpeg test\nseven.png test\n"
    )
    out, manifest = prepare(tmp_path, "folder", root=root, image_size=16, split_file=str(split_file))
    assert list(manifest["splits"]) == ["train", "valid", "test"]
    assert {k: v["count"] for k, v in manifest["splits"].items()} == {"train": 2, "valid": 1, "test": 2}
    assert manifest["image_shape"] == [3, 16, 16]
    assert manifest["bad_images"] == {"count": 1, "files": ["c/broken.png"]}
    with Image.open(root / "a/b/one.png") as im:  # 40x30: centre 30x30 square, then 16x16
        expected = np.asarray(im.convert("RGB").crop((5, 0, 35, 30)).resize((16, 16), Image.LANCZOS))
    np.testing.assert_array_equal(read_split(out, "train").images[0], expected.transpose(2, 0, 1))
    # A split file relative to data.root works too; one without test entries is refused.
    (root / "splits.txt").write_text("a/b/one.png train\n")
    with pytest.raises(EAEError, match="no 'test' entries"):
        load_source("folder", root=root, image_size=16, split_file="splits.txt")
    (root / "splits.txt").unlink()
    with pytest.raises(EAEError, match="not found"):
        load_source("folder", root=root, image_size=16, split_file="splits.txt")


def test_folder_seeded_split_recursive_scan(folder_src, tmp_path):
    root, images = folder_src
    splits = load_source("folder", root=root, image_size=16, test_fraction=0.25, seed=0)
    names = splits["train"].names + splits["test"].names
    assert sorted(names) == sorted(images)  # notes.txt and .hidden.png are not images
    assert len(splits["test"].names) == 2
    again = load_source("folder", root=root, image_size=16, test_fraction=0.25, seed=0)
    assert again["test"].names == splits["test"].names and again["train"].names == splits["train"].names
    with pytest.raises(EAEError, match="c/broken.png"):
        prepare(tmp_path, "folder", root=root, image_size=16, on_bad_image="fail")


def test_folder_crop_none_and_center(tmp_path):
    pixels = np.zeros((60, 100, 3), np.uint8)
    pixels[..., 2] = 255
    pixels[:, 20:80] = (0, 255, 0)  # centre 60x60 green, side bands blue
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    centre = ImageDecoder(str(tmp_path), 30, crop="center")("wide.png")
    assert (centre[1] == 255).all() and not centre[2].any()
    squashed = ImageDecoder(str(tmp_path), 30, crop="none")("wide.png")
    assert squashed.shape == (3, 30, 30) and squashed[2].max() == 255


def test_folder_errors(tmp_path):
    with pytest.raises(EAEError, match="is not a folder"):
        load_source("folder", root=tmp_path / "nowhere", image_size=16)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "readme.txt").write_text("no images here")
    with pytest.raises(EAEError, match="no images under"):
        load_source("folder", root=tmp_path, image_size=16)
    with pytest.raises(EAEError, match="not available"):
        load_source("folder", root=tmp_path, image_size=16, download=True)


# ----------------------------------------------------------------------------- stage and configs


def test_prepare_stage_passes_the_data_params(folder_src, tmp_path, monkeypatch):
    from pipelines import prepare as stage

    root, _ = folder_src
    for key in [k for k in os.environ if k.startswith("EAE_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "split.txt").write_text("a/b/one.png train\nc/broken.png train\nseven.png test\n")
    (tmp_path / "params.yaml").write_text(
        yaml.safe_dump(
            {
                "data": {
                    "source": "folder",
                    "root": str(root),
                    "image_size": 8,
                    "crop": "none",
                    "split_file": "split.txt",
                    "shard_size": 1,
                    "workers": 0,
                    "on_bad_image": "skip",
                }
            }
        )
    )
    stage.main()
    manifest = json.loads((tmp_path / "data" / "prepared" / "manifest.json").read_text())
    assert manifest["image_shape"] == [3, 8, 8] and manifest["bad_images"]["files"] == ["c/broken.png"]
    assert manifest["splits"]["train"]["count"] == 1 and manifest["splits"]["test"]["shards"] == ["test-000.npy"]
    (tmp_path / "params.yaml").write_text(
        yaml.safe_dump(
            {"data": {"source": "folder", "root": str(root), "split_file": "split.txt", "on_bad_image": "fail"}}
        )
    )
    with pytest.raises(EAEError, match="broken.png"):
        stage.main()
