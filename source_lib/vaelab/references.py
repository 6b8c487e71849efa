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
            return _safe_sympy(obj["__sympy__"])  # the same reader as for answers: nothing is evaluated
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


# What a recorded sympy answer may be built from: the classes an answer to
# this course's TODOs can contain, called with sympy objects or plain literals.
# Anything else (a string sympy would parse, an attribute, a subscript, a
# lambda, a class that parses its arguments such as Lambda or Subs) is refused.
SAFE_SYMPY_CLASSES = frozenset({
    "Add", "Mul", "Pow", "Symbol", "Dummy", "Integer", "Rational", "Float",
    "exp", "log", "sqrt", "Abs", "sign", "sin", "cos", "tan", "sinh", "cosh", "tanh",
    "asin", "acos", "atan", "atan2", "erf", "erfc", "Min", "Max", "floor", "ceiling", "re", "im", "conjugate",
})  # no factorial, gamma or the like: factorial(10**15) would be computed on construction
SAFE_SYMPY_CONSTANTS = frozenset({"pi", "E", "I", "oo", "nan", "zoo", "true", "false", "True", "False", "None"})
MAX_SYMPY_CHARS = 100_000
MAX_SYMPY_NODES = 20_000
MAX_SYMPY_DEPTH = 100
MAX_SYMPY_INT = 10 ** 15
MAX_SYMPY_EXPONENT = 1_000
_ASSUMPTIONS = frozenset({"positive", "negative", "nonnegative", "nonpositive", "real", "integer", "finite",
                          "nonzero", "zero", "extended_real", "complex", "rational", "commutative", "odd", "even",
                          "prime", "imaginary", "extended_positive", "extended_negative"})


def _safe_sympy(text: str):
    """Rebuild a sympy expression from ``srepr`` text without evaluating it.

    The text is parsed with :mod:`ast` (which runs nothing) and rebuilt node by
    node: calls of the classes in :data:`SAFE_SYMPY_CLASSES`, the constants in
    :data:`SAFE_SYMPY_CONSTANTS` and literals. Strings reach only ``Symbol``
    and ``Dummy`` (as names) and ``Float`` (as a number); no string is ever
    handed to a sympy function that parses it. Size, depth, integer and
    exponent limits keep a hostile expression from costing the reader more
    than a legitimate one. Raises ValueError for anything else."""
    import ast
    import math
    import re

    import sympy as sp

    if not isinstance(text, str) or len(text) > MAX_SYMPY_CHARS:
        raise ValueError("expression missing or too long")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
        raise ValueError(f"not an expression ({type(err).__name__})") from None
    count = [0]
    number = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")

    def literal(node, depth):
        if isinstance(node, ast.Constant) and type(node.value) in (int, float, bool, str) or \
                isinstance(node, ast.Constant) and node.value is None:
            value = node.value
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and \
                isinstance(node.operand, ast.Constant) and type(node.operand.value) in (int, float):
            value = -node.operand.value
        else:
            return build(node, depth)
        if type(value) is int and abs(value) > MAX_SYMPY_INT:
            raise ValueError("integer too large")
        if type(value) is float and not math.isfinite(value):
            raise ValueError("non-finite literal")
        if type(value) is str and len(value) > 200:
            raise ValueError("string too long")
        return value

    def build(node, depth):
        count[0] += 1
        if count[0] > MAX_SYMPY_NODES or depth > MAX_SYMPY_DEPTH:
            raise ValueError("expression too large")
        if isinstance(node, ast.Name):
            if node.id not in SAFE_SYMPY_CONSTANTS:
                raise ValueError(f"name {node.id!r} is not allowed in an answer")
            plain = {"True": True, "False": False, "None": None, "true": sp.true, "false": sp.false}
            return plain[node.id] if node.id in plain else getattr(sp, node.id)
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            raise ValueError(f"unexpected {type(node).__name__} in an expression")
        name = node.func.id
        if name not in SAFE_SYMPY_CLASSES:
            raise ValueError(f"{name!r} is not allowed in an answer")
        args = [literal(a, depth + 1) for a in node.args]
        kwargs = {k.arg: literal(k.value, depth + 1) for k in node.keywords}
        if any(k is None for k in kwargs):
            raise ValueError("** in an expression")
        if name in ("Symbol", "Dummy"):
            if len(args) != 1 or type(args[0]) is not str or not args[0].isprintable():
                raise ValueError(f"{name} takes one printable name")
            if name == "Dummy":
                kwargs.pop("dummy_index", None)
            if any(k not in _ASSUMPTIONS or type(v) is not bool for k, v in kwargs.items()):
                raise ValueError(f"{name} assumptions must be named true/false flags")
            return getattr(sp, name)(args[0], **kwargs)
        if name == "Float":
            precision = kwargs.pop("precision", 53)
            if kwargs or len(args) != 1 or type(precision) is not int or not 1 <= precision <= 2000:
                raise ValueError("Float takes one number and a precision")
            value = args[0]
            if type(value) is str and not number.fullmatch(value.strip()):
                raise ValueError("Float takes a number")
            if type(value) not in (int, float, str):
                raise ValueError("Float takes a number")
            return sp.Float(value, precision=precision)
        if name in ("Integer", "Rational"):
            if kwargs or not 1 <= len(args) <= 2 or any(type(a) is not int for a in args):
                raise ValueError(f"{name} takes integers")
            if len(args) == 2 and args[1] == 0:
                return sp.zoo if args[0] else sp.nan
            return sp.Rational(*args) if name == "Rational" else sp.Integer(args[0])
        if kwargs:
            raise ValueError(f"{name} takes no keywords in an answer")
        if not all(isinstance(a, sp.Basic) for a in args):
            raise ValueError(f"{name} takes sympy objects only")
        if name == "Pow" and len(args) == 2 and isinstance(args[1], sp.Rational):
            if max(abs(args[1].p), abs(args[1].q)) > MAX_SYMPY_EXPONENT:
                raise ValueError("exponent too large")
            if isinstance(args[0], sp.Rational) and \
                    max(args[0].p.bit_length(), args[0].q.bit_length()) * abs(args[1].p) > 100_000:
                raise ValueError("power too large")  # an integer power is computed on construction
        return getattr(sp, name)(*args)

    try:
        result = build(tree.body, 0)
    except RecursionError:
        raise ValueError("expression nested too deeply") from None
    except (TypeError, AttributeError, ArithmeticError) as err:
        raise ValueError(f"not a valid expression ({type(err).__name__})") from None
    if not isinstance(result, sp.Basic):
        raise ValueError("not a sympy expression")
    return result


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
