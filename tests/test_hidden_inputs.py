"""No hidden input the student was not told of (issue 33, item 4).

Every hidden case of every TODO is walked; each input it passes is sorted into
*classes* read from its value (a dtype, a number of dimensions, a dimension of
size 1, zero, one, a negative number, non-finite or extreme values, a sympy
expression where a symbol or number stood). A class the hidden test uses must
be shown by a public case (the same parameter, the same class) or stated in
the TODO's docstring, read with ``ast`` from the solution notebook's TODO cell.
"""
import ast
import json
import math
import re

import pytest
import sympy as sp
import torch

from grader import SOLUTIONS, assignments, load_module

EXTREME = 50.0  # |value| from which a tensor's entries count as extreme (sigmoid and exp saturate in float32)


# ----------------------------------------------------------------- the TODOs
def todo_cells(assignment):
    """{name: source} of the TODO cells (nbgrader solution cells) of the solution notebook."""
    nb = json.loads((SOLUTIONS / assignment / f"{assignment}.ipynb").read_text())
    out = {}
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell["cell_type"] == "code" and meta.get("solution") and not meta.get("grade"):
            out[cell.get("id") or meta.get("grade_id")] = "".join(cell["source"])
    return out


def todo_signature(name, source):
    """(parameter names, docstring) of the TODO ``name``: for a class, the
    parameters of every method (no ``self``) and every docstring, joined."""
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name:
            break
    else:
        raise AssertionError(f"the cell {name!r} defines no top-level {name}")
    if isinstance(node, ast.FunctionDef):
        params = [a.arg for a in node.args.args + node.args.kwonlyargs]
        return params, ast.get_docstring(node) or ""
    params, docs = [], [ast.get_docstring(node) or ""]
    for item in node.body:
        if isinstance(item, ast.FunctionDef):
            params += [a.arg for a in item.args.args + item.args.kwonlyargs if a.arg != "self"]
            docs.append(ast.get_docstring(item) or "")
    return params, "\n".join(docs)


# ------------------------------------------------ what a case passes, by name
def _bind(params, case):
    bound = dict(zip(params, case["args"]))
    bound.update(case.get("kwargs", {}))
    return [bound]


def _named(*names):
    """A driver's case arguments, by position; None for a fixture's own input (a seed, weights)."""
    return lambda params, case: [{n: v for n, v in zip(names, case["args"]) if n}]


ADAPTERS = {
    "call": _bind, "sympy": _bind, "reparam": _bind, "bernoulli_loss": _bind, "beta_bernoulli_loss": _bind,
    "active": _bind,
    "estimator": _named(None, "mu", "logvar", "n_samples"),  # f is a function, named by the case's label
    "vae": _named("latent_dim", "hidden_dim", None, "x", "z", None),
    "iwae": _named(None, None, "x", "k", "eps"),
    "train_step": _named(None, None, "x", None, None),
    "prior": _named("latent_dim", None, "n"),
    "cvae": _named("latent_dim", "hidden_dim", None, "x", "y_onehot", "z"),
    "naive": _named("latent_dim", None, "x", "n_samples", None, None),
    "warmup": lambda params, case: [{"step": s, "warmup_steps": w} for s, w in case["args"][0]],
    "choice": lambda params, case: [],
}


# ------------------------------------------------------------- input classes
def classes(value) -> set:
    """The input classes of one value."""
    found = set()
    if isinstance(value, torch.Tensor):
        found.add(f"dtype {str(value.dtype).replace('torch.', '')}")
        found.add(f"{value.dim()}-d tensor")
        if value.dim() >= 1 and 1 in value.shape:
            found.add("a dimension of size 1")
        if value.numel() == 0:
            found.add("an empty tensor")
        elif value.is_floating_point():
            finite = torch.isfinite(value)
            if not bool(finite.all()):
                found.add("non-finite entries")
            if bool(finite.any()) and float(value[finite].abs().max()) >= EXTREME:
                found.add("extreme entries")
        return found
    if isinstance(value, sp.Basic):
        if value.is_number:
            value = sp.nsimplify(value) if value.is_Float else value
            if value == 0:
                found.add("zero")
            elif value.is_real and value.is_negative:
                found.add("a negative number")
        elif not value.is_Atom:
            found.add("an expression")
        return found
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return found
    if not math.isfinite(value):
        return {"non-finite number"}
    if value == 0:
        found.add("zero")
    elif value < 0:
        found.add("a negative number")
    elif value == 1 and isinstance(value, int):
        found.add("one")
    if abs(value) >= 1e6:
        found.add("an extreme number")
    return found


def stated(cls: str, param: str, doc: str) -> bool:
    """Whether the docstring states that ``param`` may be of class ``cls``."""
    p = re.escape(param)
    text = doc.replace("−", "-")
    any_shape = re.search(r"any shape", text, re.I) is not None
    if cls.startswith("dtype "):
        return re.search(rf"\b{cls[6:]}\b", text) is not None
    m = re.fullmatch(r"(\d+)-d tensor", cls)
    if m:
        rank = int(m.group(1))
        if rank == 0:
            return any_shape or re.search(r"\b0-d\b|0-dimensional", text) is not None
        tuples = [t for t in re.findall(r"\(([^()]*)\)", text) if "," in t or rank == 1]
        return any_shape or any(len([e for e in t.split(",") if e.strip()]) == rank for t in tuples)
    if cls == "a dimension of size 1":
        return any_shape or re.search(r"(=|≥|>=)\s*1\b|\bsize 1\b|\bof 1\b", text) is not None
    if cls == "zero":
        return re.search(rf"\b{p}\s*(=|==|≥|>=)\s*0(?![.\d])", text) is not None
    if cls == "one":
        return re.search(rf"\b{p}\s*(=|==|≥|>=)\s*[01](?![.\d])", text) is not None
    if cls == "a negative number":
        return re.search(rf"\b{p}\b[^.;]*\b(negative|real|any values?)\b", text, re.I) is not None
    if cls == "an expression":
        return re.search(rf"\b{p}\b[^.]*\bexpressions?\b|\bany sympy expressions\b", text) is not None
    if cls in ("non-finite entries", "non-finite number"):
        return re.search(r"\b(inf|nan|non-finite)\b", text, re.I) is not None
    if cls in ("extreme entries", "an extreme number"):
        return re.search(r"\b(any values?|large|saturat\w*)\b", text, re.I) is not None
    return False


def unstated(kind, params, doc, public_cases, hidden_cases) -> list:
    """One line per (hidden case, parameter, class) that no public case shows
    and the docstring does not state."""
    adapter = ADAPTERS.get(kind)
    if adapter is None:
        return [f"no adapter for the case kind {kind!r} in tests/test_hidden_inputs.py: say which case "
                f"argument is which parameter"]
    shown: dict = {}
    for c in public_cases:
        for bound in adapter(params, c):
            for param, value in bound.items():
                shown.setdefault(param, set()).update(classes(value))
    problems = []
    for c in hidden_cases:
        for bound in adapter(params, c):
            for param, value in bound.items():
                for cls in sorted(classes(value) - shown.get(param, set())):
                    if not stated(cls, param, doc):
                        line = f"hidden case {c.get('label', '')!r}: {param} is {cls}"
                        if line not in problems:
                            problems.append(line)
    return problems


def _todos():
    for a in assignments():
        cases = load_module("cases", a)
        public, hidden = cases.public(), cases.hidden()
        cells = todo_cells(a)
        for name, spec in hidden.items():
            yield a, name, spec, public.get(name, {"cases": []}), cells.get(name)


TODOS = list(_todos())


@pytest.mark.parametrize("assignment,name,spec,public,source", TODOS, ids=[f"{t[0]}:{t[1]}" for t in TODOS])
def test_every_hidden_input_class_is_shown_or_stated(assignment, name, spec, public, source):
    assert source is not None, f"{assignment}: no TODO cell {name!r} in the solution notebook"
    params, doc = todo_signature(name, source)
    assert public["cases"] or spec["kind"] == "choice", f"{name}: hidden cases but no public one"
    problems = unstated(spec["kind"], params, doc, public["cases"], spec["cases"])
    assert not problems, (f"{assignment} {name}: the hidden test uses inputs that no public case shows and the "
                          f"docstring does not state; add a public case or state them in the docstring:\n  " +
                          "\n  ".join(problems))


#: classes of single values at the edge of a TODO's domain: the docstring is not enough, a public case shows them
EDGE = {"zero", "one", "a negative number", "non-finite entries", "non-finite number", "extreme entries",
        "an extreme number", "an empty tensor"}


@pytest.mark.parametrize("assignment,name,spec,public,source", TODOS, ids=[f"{t[0]}:{t[1]}" for t in TODOS])
def test_every_hidden_edge_value_appears_in_a_public_case(assignment, name, spec, public, source):
    params, _ = todo_signature(name, source)
    problems = [p for p in unstated(spec["kind"], params, "", public["cases"], spec["cases"])
                if p.rsplit(" is ", 1)[1] in EDGE]
    assert not problems, (f"{assignment} {name}: edge values that only the hidden test uses; add a public case "
                          f"that shows each:\n  " + "\n  ".join(problems))


# ------------------------------------------------------------ able to fail
def test_a_hidden_edge_value_neither_shown_nor_stated_is_caught():
    from grader.author.cases import case

    doc = "The KL weight at this step: linear from 0 (step 0) to 1 (step = warmup_steps), then 1."
    public = [case("warmup_steps = 100", [(0, 100), (50, 100), (250, 100)])]
    hidden = [case("and none at all", [(0, 7), (0, 0), (5, 0)])]
    problems = unstated("warmup", ["step", "warmup_steps"], doc, public, hidden)
    assert problems == ["hidden case 'and none at all': warmup_steps is zero"]
    # stated in the docstring, or shown by a public case: no longer reported
    assert not unstated("warmup", ["step", "warmup_steps"], doc + " warmup_steps = 0 means no warm-up: 1.",
                        public, hidden)
    assert not unstated("warmup", ["step", "warmup_steps"], doc, public + [case("none", [(3, 0)])], hidden)


def test_another_dtype_rank_or_size_one_dimension_is_caught():
    from grader.author.cases import case

    doc = "Per-example KL. mu, logvar: tensors of shape (batch, latent_dim). Returns shape (batch,)."
    public = [case("batch 4, latent 3", torch.zeros(4, 3), torch.zeros(4, 3))]
    hidden = [case("float64, latent 1", torch.zeros(5, 1, dtype=torch.float64), torch.zeros(5, 1)),
              case("3-d", torch.zeros(2, 3, 4), torch.zeros(2, 3, 4))]
    problems = unstated("call", ["mu", "logvar"], doc, public, hidden)
    assert "hidden case 'float64, latent 1': mu is dtype float64" in problems
    assert "hidden case 'float64, latent 1': mu is a dimension of size 1" in problems
    assert "hidden case '3-d': logvar is 3-d tensor" in problems
    assert not [p for p in problems if "logvar is dtype" in p]  # logvar stayed float32 there
    stated_doc = doc + " float64 too; latent_dim >= 1; any shape."
    assert not unstated("call", ["mu", "logvar"], stated_doc, public, hidden)


def test_classes_are_read_from_the_values():
    assert classes(torch.zeros(3, dtype=torch.float64)) == {"dtype float64", "1-d tensor"}
    assert "extreme entries" in classes(torch.tensor([0.0, -80.0]))
    assert "non-finite entries" in classes(torch.tensor([0.0, float("inf")]))
    assert classes(0) == {"zero"} and classes(-2.5) == {"a negative number"} and classes(1) == {"one"}
    assert classes(sp.Integer(0)) == {"zero"} and classes(sp.Rational(-1, 2)) == {"a negative number"}
    assert classes(2 * sp.Symbol("s", positive=True)) == {"an expression"}
    assert classes(sp.Symbol("s")) == set() and classes(True) == set()
