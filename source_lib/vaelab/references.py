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

__all__ = ["encode", "decode", "save", "load", "public_path", "hidden_path", "inputs_only",
           "encode_answer", "decode_answer"]

PUBLIC_DIR = Path(__file__).with_name("references")


def encode(obj):
    import sympy as sp

    from .symbolic import Probes

    if isinstance(obj, Probes):
        return {"__probes__": {"points": [[[k, float(v)] for k, v in p.items()] for p in obj.points],
                               "values": [None if v is None else [v[0], v[1]] for v in obj.values]}}
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
        if "__probes__" in obj:
            from .symbolic import Probes

            return Probes([dict((k, v) for k, v in p) for p in obj["__probes__"]["points"]],
                          obj["__probes__"]["values"])
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


def inputs_only(data: dict) -> dict:
    """A reference file without its answers: the expected outputs and the
    mutants' outputs removed. Under ``make grade`` the kernel running student
    code gets only this; the comparison happens in the grader's own process."""
    stripped = {k: v for k, v in data.items() if k != "functions"}
    stripped["functions"] = {
        name: {"kind": spec.get("kind", "call"),
               "cases": [{k: v for k, v in case.items() if k not in ("expected", "mutants")} for case in spec["cases"]]}
        for name, spec in data["functions"].items()}
    return stripped


# -- answers recorded by untrusted code ------------------------------------
# A student's outputs travel from the grading kernel to the grader as a file.
# The grader must read them without running anything they contain: tensors go
# through torch's weights-only loader and sympy expressions are rebuilt from
# their srepr by a parser that only calls sympy constructors with literals.

MAX_ANSWER_BYTES = 256 * 2**20
_SAFE_NAME = "".join(c for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _foreign(obj) -> dict:
    name = "".join(c for c in type(obj).__name__ if c in _SAFE_NAME)[:60] or "object"
    return {"__foreign__": name}


def encode_answer(obj, depth: int = 0):
    """Like :func:`encode`, but never fails: what cannot be stored becomes a
    placeholder that keeps the type's name (so feedback can say what came back)."""
    import numbers

    import numpy as np
    import sympy as sp

    if depth > 20:
        return _foreign(obj)
    try:
        if isinstance(obj, sp.Basic):
            return {"__sympy__": sp.srepr(obj)}
        if isinstance(obj, torch.Tensor):
            return obj.detach().cpu().clone().as_subclass(torch.Tensor)
        if isinstance(obj, np.ndarray):
            return {"__numpy__": torch.from_numpy(np.array(obj, copy=True))}
        if isinstance(obj, tuple):
            return {"__tuple__": [encode_answer(o, depth + 1) for o in obj]}
        if isinstance(obj, list):
            return [encode_answer(o, depth + 1) for o in obj]
        if obj is None or isinstance(obj, (bool, str)):
            return obj if type(obj) in (bool, str) or obj is None else str(obj)
        if isinstance(obj, numbers.Integral):
            return int(obj)
        if isinstance(obj, numbers.Real):
            return float(obj)
    except Exception:
        pass
    return _foreign(obj)


def _safe_sympy(text: str):
    """Rebuild a sympy expression from ``srepr`` text without ``eval``."""
    import ast

    import sympy as sp

    if not isinstance(text, str) or len(text) > 200_000:
        raise ValueError("expression too long")
    tree = ast.parse(text, mode="eval")

    def build(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool, type(None))):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
            return -build(node.operand)
        if isinstance(node, ast.Tuple):
            return tuple(build(e) for e in node.elts)
        if isinstance(node, ast.Name):
            value = getattr(sp, node.id, None)
            if isinstance(value, sp.Basic):  # singletons: pi, E, oo, I, nan, zoo
                return value
            raise ValueError(f"name {node.id!r} is not a sympy constant")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            constructor = getattr(sp, node.func.id, None)
            if not (isinstance(constructor, type) and issubclass(constructor, sp.Basic)):
                raise ValueError(f"{node.func.id!r} is not a sympy class")
            return constructor(*[build(a) for a in node.args], **{k.arg: build(k.value) for k in node.keywords})
        raise ValueError(f"unexpected {type(node).__name__} in an expression")

    return build(tree.body)


class Foreign:
    """Stands for a returned value the grader could not store."""


def decode_answer(obj, depth: int = 0):
    """Inverse of :func:`encode_answer`, safe on untrusted input."""
    if depth > 25:
        raise ValueError("nested too deeply")
    if isinstance(obj, dict):
        if "__sympy__" in obj:
            return _safe_sympy(obj["__sympy__"])
        if "__tuple__" in obj:
            return tuple(decode_answer(o, depth + 1) for o in obj["__tuple__"])
        if "__numpy__" in obj and isinstance(obj["__numpy__"], torch.Tensor):
            return obj["__numpy__"].numpy()
        if "__foreign__" in obj:
            name = "".join(c for c in str(obj["__foreign__"]) if c in _SAFE_NAME)[:60] or "object"
            return type(name, (Foreign,), {})()
        if "__raised__" in obj:
            return {"__raised__": str(obj["__raised__"])[:300], "detail": str(obj.get("detail", ""))[:500]}
        raise ValueError("unexpected mapping in an answer")
    if isinstance(obj, list):
        return [decode_answer(o, depth + 1) for o in obj]
    if isinstance(obj, torch.Tensor):
        return obj
    if obj is None or type(obj) in (bool, int, float, str):
        return obj
    raise ValueError(f"unexpected {type(obj).__name__} in an answer")


def load_answers(path: str | os.PathLike) -> dict:
    """Read a file of recorded answers written by untrusted code: a regular
    file (not a link), at most MAX_ANSWER_BYTES, weights-only unpickling."""
    import io
    import stat

    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_ANSWER_BYTES:
            raise ValueError("not a regular file of answers, or too large")
        raw = torch.load(io.BytesIO(fh.read(MAX_ANSWER_BYTES + 1)), weights_only=True)
    if not isinstance(raw, dict) or not isinstance(raw.get("cases"), list):
        raise ValueError("not a file of recorded answers")
    return {"name": str(raw.get("name", ""))[:100], "cases": [decode_answer(c) for c in raw["cases"]]}


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
