"""Reading and writing reference-output files.

A reference file is a ``torch.save`` of plain containers, loadable with
``weights_only=True`` (so opening one never runs code)::

    {"assignment": "01_elbo",
     "meta": {"torch": ..., "sympy": ..., "python": ..., "solution_sha256": ...},
     "functions": {name: {"kind": ..., "cases": [case, ...], "hints": {mutant: sentence}}}}

    case = {"label": str, "args": [...], "kwargs": {...}, "expected": ...,
            "rtol": float, "atol": float, "mutants": {mutant: output}}

Sympy objects are stored as ``srepr`` strings and tuples are tagged, so both
survive the round trip. The public files live next to this module (they ship
to students); the hidden ones live under ``grader/references`` and never ship.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

__all__ = ["encode", "decode", "save", "load", "public_path", "hidden_path"]

PUBLIC_DIR = Path(__file__).with_name("references")


def encode(obj):
    import sympy as sp

    if isinstance(obj, sp.Basic):
        return {"__sympy__": sp.srepr(obj)}
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, tuple):
        return {"__tuple__": [encode(o) for o in obj]}
    if isinstance(obj, list):
        return [encode(o) for o in obj]
    if isinstance(obj, dict):
        return {str(k): encode(v) for k, v in obj.items()}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} in a reference file")


def decode(obj):
    if isinstance(obj, dict):
        if "__sympy__" in obj:
            import sympy as sp

            return sp.sympify(obj["__sympy__"])  # srepr round-trips through sympify
        if "__tuple__" in obj:
            return tuple(decode(o) for o in obj["__tuple__"])
        return {k: decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [decode(o) for o in obj]
    if isinstance(obj, torch.Tensor):
        return obj.clone()
    return obj


def save(data: dict, path: str | os.PathLike) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(encode(data), tmp)
    os.replace(tmp, path)


def load(path: str | os.PathLike) -> dict:
    return decode(torch.load(path, weights_only=True))


def public_path(assignment: str) -> Path:
    return PUBLIC_DIR / f"{assignment}.pt"


def hidden_path(assignment: str) -> Path:
    """The hidden references: ``$VAELAB_HIDDEN_REFERENCES/<assignment>.pt``, or
    ``grader/references`` found by walking up from the working directory (the
    instructor's checkout). Students have neither."""
    env = os.environ.get("VAELAB_HIDDEN_REFERENCES")
    if env:
        return Path(env) / f"{assignment}.pt"
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        candidate = folder / "grader" / "references" / f"{assignment}.pt"
        if candidate.exists():
            return candidate
    raise FileNotFoundError(
        "hidden references are only available to instructors (run `make grade` from the course repository)")
