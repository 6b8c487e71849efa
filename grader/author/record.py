"""``make references``: run the reference solutions on fixed inputs and record
their outputs.

For every assignment it writes two files:

- public:  source_lib/vaelab/references/<assignment>.pt (ships; self-checks)
- hidden:  grader/references/<assignment>.pt            (never ships; grading)

Each case stores its inputs, the expected output, its tolerance and the
outputs of every catalogued mutant on the same inputs (for targeted hints).
References are recorded with one thread and deterministic algorithms, and
each file's metadata carries a fingerprint of what produced it (solution
code, case definitions, mutant catalogue, drivers, pinned versions).
``--check`` fails when a fingerprint differs or when a recomputed output
differs from the stored one by more than 1/100 of that case's grading
tolerance; it prints the largest difference it found. It never compares
floats bitwise, so it does not depend on the CPU or the thread count.

Regeneration touches only what changed: an assignment whose stored public and
hidden files carry the fingerprint it has now is skipped (``--force`` records
it again), and grading's time budgets are re-measured only for an assignment
whose solution code changed or whose code cells are not the ones timed.
``stale_assignments`` and ``refuse_if_stale`` are the same comparison for
``make release``, ``make grade`` and ``make student-edition``: they refuse
references recorded from other course sources and print the command that
records them again (``make references ASSIGNMENT=03_vae``).
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import inspect
import os
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path

import sympy
import torch

from grader import HIDDEN_REFERENCES, ROOT, SOLUTIONS, assignments, load_module
from grader.author.mutants import catalogue
from grader.notebooks import answer_cells, exec_solution, read, solution_code
from grader.author.tolerances import (FLOAT32_ARITHMETIC, FLOAT32_CONSTANTS, ToleranceError, derive,
                                      float32_arithmetic, float32_constants, float32_scope, has_float64_output,
                                      unseparated, verify_stochastic)
from vaelab import references
from vaelab.checks import DRIVERS, _load_drivers, raised
from vaelab.symbolic import probe, sample_points

_load_drivers()


REPEATS = 60  # runs of a stochastic reference to measure its spread
SIGMAS = 5.0  # tolerance of a stochastic check, in the estimator's own standard deviations


def _stochastic_tolerance(driver, fn, case):
    """Per-component tolerance SIGMAS * std of the reference estimator at the
    case's sample size, measured over REPEATS independent runs."""
    def as_vector(out):
        if isinstance(out, torch.Tensor):
            return out.double().reshape(-1)
        return torch.stack([torch.as_tensor(v, dtype=torch.float64).reshape(()) for v in out])

    runs = []
    for seed in range(1, REPEATS + 1):
        torch.manual_seed(seed)
        runs.append(as_vector(driver(fn, case)))
    runs = torch.stack(runs)
    std, mean = runs.std(dim=0), runs.mean(dim=0)
    if "expected" in case:  # an oracle: the reference must agree with it
        if bool(((mean - as_vector(case["expected"])).abs() > 4 * std / REPEATS**0.5 + 1e-9).any()):
            raise AssertionError(f"{case['label']}: the reference estimator disagrees with the closed form")
        expected = case["expected"]
    else:  # no oracle: the reference's own mean is the target
        example = driver(fn, case)
        expected = (mean.reshape(example.shape).to(example.dtype) if isinstance(example, torch.Tensor)
                    else tuple(mean.unbind()))
    if isinstance(expected, torch.Tensor):
        return expected, (SIGMAS * std).reshape(expected.shape).to(expected.dtype)
    return expected, [float(SIGMAS * s) for s in std]


def _symbols_of(case) -> set:
    found = set()
    for value in [*case.get("args", []), *case.get("kwargs", {}).values()]:
        if isinstance(value, sympy.Basic):
            found |= value.free_symbols
    return found


def _hide_expressions(record: dict, index: int) -> None:
    """A public symbolic case keeps its inputs but not its answer: the
    expected expression and every mutant's expression become their values at
    sample points drawn under the inputs' assumptions (vaelab.symbolic)."""
    points = sample_points(_symbols_of(record), seed=1000 + index)
    record["expected"] = probe(record["expected"], points)
    for name, output in list(record["mutants"].items()):
        if isinstance(output, sympy.Basic):
            record["mutants"][name] = probe(output, points)


def _outputs(driver, functions, case) -> dict:
    """Each catalogued function's output on one case (seed 0, like a student's
    run), or the recorded form of the exception it raised."""
    out = {}
    for m in functions:
        torch.manual_seed(0)
        try:
            out[m.name] = driver(m.function, case)
        except Exception as err:  # matched by exception instead of output
            out[m.name] = raised(err)
    return out


def _symbolic_variants(label: str, expected, variants: dict) -> dict:
    from vaelab.symbolic import equivalent

    for name, output in variants.items():
        if isinstance(output, dict) or not equivalent(output, expected)[0]:
            raise ToleranceError(f"{label}: the correct variant {name!r} is not equivalent to the reference "
                                 f"({output.get('__raised__') if isinstance(output, dict) else output})")
    return {"variants": sorted(variants)}


def _run_all(namespace: dict, spec: dict, mutants: dict, public: bool = False, variants: dict | None = None,
             errors: list | None = None, where: str = "", automatic: dict | None = None) -> dict:
    """Record every case: the expected output, every mutant's output, and a
    tolerance derived from the correct variants and the mutants
    (grader/author/tolerances.py). A deterministic case with a float64 output
    also counts the ``automatic`` variants (the solution with float32
    constants, and in float32 arithmetic) among its correct variants.
    Problems are appended to ``errors``."""
    variants = variants or {}
    automatic = automatic or {}
    errors = errors if errors is not None else []
    out = {}
    for name, fspec in spec.items():
        kind = fspec.get("kind", "call")
        driver = DRIVERS[kind]
        cases = []
        for case in fspec["cases"]:
            record = dict(case, mutants={})
            floors = record.pop("floors", None)
            label = f"{where} {name} case {len(cases) + 1} ({case.get('label', '')})"
            if fspec.get("stochastic"):
                # a statistical tolerance is absolute: SIGMAS standard deviations, no relative part
                record["rtol"] = 0.0
                record["expected"], record["atol"] = _stochastic_tolerance(driver, namespace[name], record)
            elif "expected" not in case:  # an oracle (closed form) may supply it instead
                torch.manual_seed(0)
                record["expected"] = driver(namespace[name], case)
            record["mutants"] = _outputs(driver, mutants.get(name, []), case)
            variant_outputs = _outputs(driver, variants.get(name, []), case)
            if kind not in ("sympy", "choice") and not fspec.get("stochastic") and has_float64_output(
                    record["expected"]):
                variant_outputs.update(_outputs(driver, automatic.get(name, []), case))
            try:
                if kind == "choice":  # a multiple-choice prediction: exact, no tolerance
                    record["tolerance"] = {"exact": True}
                elif kind == "sympy":
                    record["tolerance"] = _symbolic_variants(label, record["expected"], variant_outputs)
                elif fspec.get("stochastic"):
                    record["tolerance"] = verify_stochastic(label, record["expected"], record["rtol"],
                                                            record["atol"], variant_outputs, record["mutants"])
                else:
                    record["rtol"], record["atol"], record["tolerance"] = derive(
                        label, record["expected"], variant_outputs, record["mutants"], floors)
            except ToleranceError as err:
                errors.append(str(err))
            if public and kind == "sympy":
                _hide_expressions(record, len(cases))
            if public and kind == "choice":  # the public file accepts any valid choice and holds no answer
                record["expected"] = {"__choices__": list(case["args"][0])}
                record["mutants"] = {}
            cases.append(record)
        if kind not in ("sympy", "choice"):
            missed = unseparated(cases, [m.name for m in mutants.get(name, [])])
            if missed:
                errors.append(f"{where} {name}: no case separates the mistake(s) {', '.join(missed)} "
                              f"with the margin (grader/author/tolerances.py); add a case that does")
        if not variants.get(name) and kind != "choice":
            errors.append(f"{where} {name}: no correct variants in grader/author/variants/ to derive tolerances from")
        hints = {} if public and kind == "choice" else {m.name: m.hint for m in mutants.get(name, [])}
        out[name] = {"kind": kind, "cases": cases, "hints": hints}
    return out


@dataclass
class Automatic:
    """A correct variant built from the solution, not written in the catalogue."""
    target: str
    name: str
    function: object


def float32_variants(assignment: str, namespace: dict) -> dict:
    """{TODO: [Automatic]}: for every code TODO of the solution notebook, the
    solution cell with its float constants rounded to float32
    (tolerances.float32_constants) and, for a function, the solution computed
    in float32 (tolerances.float32_arithmetic). Every float64 case admits both,
    whatever TODO it belongs to, without a hand-written variant."""
    found: dict = {}
    for todo, source in answer_cells(SOLUTIONS / assignment / f"{assignment}.ipynb", code_only=True).items():
        if todo not in namespace:
            continue
        scope = float32_scope(namespace)
        exec(compile(float32_constants(source), f"<{todo}: float32 constants>", "exec"), scope)  # noqa: S102
        found[todo] = [Automatic(todo, FLOAT32_CONSTANTS, scope[todo])]
        if inspect.isfunction(namespace[todo]):
            found[todo].append(Automatic(todo, FLOAT32_ARITHMETIC, float32_arithmetic(namespace[todo])))
    return found


def mutant_functions(assignment: str, namespace: dict, kind: str = "mutants") -> dict:
    """Execute each mutant's (or correct variant's) source in a copy of the
    solution namespace, as if a student had typed it into the notebook."""
    found: dict = {}
    for m in catalogue(assignment, kind):
        scope = dict(namespace)
        exec(compile(m.source, f"<mutant {m.name}>", "exec"), scope)  # noqa: S102
        m.function = scope[m.target]
        found.setdefault(m.target, []).append(m)
    return found


#: References are recorded with one thread and deterministic algorithms, so
#: the same inputs give the same outputs whatever the machine's core count or
#: the caller's OMP_NUM_THREADS (reductions split over threads round differently).
RECORD_THREADS = 1
#: Set for every recording and every check, whatever the caller's environment:
#: one thread, aten's generic (non-vectorised) kernels and MKL's
#: conditional-numerical-reproducibility mode, so an AVX2 laptop, an AVX-512
#: server and a CI runner all compute the same float32 values. These are read
#: when torch loads, so ``python -m grader.author.record`` re-executes itself
#: with them when they are not already in force.
REPRODUCIBLE_ENV = {"OMP_NUM_THREADS": str(RECORD_THREADS), "MKL_NUM_THREADS": str(RECORD_THREADS),
                    "ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"}
#: The staleness check accepts a recomputed output that differs from the stored
#: one by at most this fraction of the case's own grading tolerance.
CHECK_FRACTION = 0.01


@contextlib.contextmanager
def recording_conditions():
    """One thread and deterministic algorithms for the duration, then the
    caller's settings back (the check also runs inside the test process)."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(RECORD_THREADS)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def fingerprint(assignment: str) -> dict:
    """Everything that determines an assignment's references, each hashed on
    its own so the check can say *what* changed: the solution code, the case
    definitions and inputs, the mutant catalogue, the code that runs the cases,
    the recording recipe and the pinned library versions."""
    import numpy

    from vaelab import drivers, fixtures, symbolic

    here = Path(__file__).resolve().parent
    notebook = SOLUTIONS / assignment / f"{assignment}.ipynb"

    def source(path):
        path = Path(path)
        return _sha(path.read_text()) if path.exists() else "absent"

    return {
        "solution code": _sha(solution_code(read(notebook))),
        "case definitions": source(here / "cases" / f"{assignment}.py"),
        "case helpers": source(here / "cases" / "__init__.py"),
        "mutant catalogue": source(here / "mutants" / f"{assignment}.py"),
        "mutant loader": source(here / "mutants" / "__init__.py"),
        "correct variants": source(here / "variants" / f"{assignment}.py"),
        "tolerance policy": source(here / "tolerances.py"),
        "case drivers": source(drivers.__file__),
        "fixture models": source(fixtures.__file__),
        "symbolic probes": source(symbolic.__file__),
        "recording recipe": _sha(repr((RECORD_THREADS, sorted(REPRODUCIBLE_ENV.items()), REPEATS, SIGMAS))),
        "versions": _sha(repr((torch.__version__.split("+")[0], sympy.__version__, numpy.__version__))),
    }


def build(assignment: str) -> tuple[dict, dict]:
    """Return (public, hidden) reference data for one assignment."""
    notebook = SOLUTIONS / assignment / f"{assignment}.ipynb"
    with recording_conditions():
        namespace = exec_solution(notebook)
        cases = load_module("cases", assignment)
        mutants = mutant_functions(assignment, namespace)
        variants = mutant_functions(assignment, namespace, "variants")
        automatic = float32_variants(assignment, namespace)
        errors: list = []
        public_functions = _run_all(namespace, cases.public(), mutants, public=True, variants=variants,
                                    errors=errors, where=f"{assignment} public", automatic=automatic)
        hidden_functions = _run_all(namespace, cases.hidden(), mutants, variants=variants, errors=errors,
                                    where=f"{assignment} hidden", automatic=automatic)
    if errors:
        raise ToleranceError("\n".join(errors))
    for name, spec in public_functions.items():  # the self-check names what the hidden test also tries
        if spec["kind"] != "choice":
            spec["hidden_labels"] = [c.get("label", "") for c in hidden_functions.get(name, {}).get("cases", [])]
    meta = {
        "torch": torch.__version__.split("+")[0],
        "sympy": sympy.__version__,
        "python": platform.python_version(),
        "threads": RECORD_THREADS,
        "deterministic_algorithms": True,
        "environment": {k: os.environ.get(k, "") for k in REPRODUCIBLE_ENV},
        "solution_sha256": hashlib.sha256(solution_code(read(notebook)).encode()).hexdigest(),
        "fingerprint": fingerprint(assignment),
        "generated_by": "make references",
    }
    public = {"assignment": assignment, "meta": meta, "functions": public_functions}
    hidden = {"assignment": assignment, "meta": dict(meta), "functions": hidden_functions}
    return public, hidden


# -------------------------------------------------------------- staleness check
@dataclass
class Drift:
    """The largest difference found between stored and recomputed outputs,
    as a fraction of the allowed difference (CHECK_FRACTION of the case's
    grading tolerance); above 1 the references are stale."""
    ratio: float = 0.0
    diff: float = 0.0
    where: str = ""
    problems: list = field(default_factory=list)

    def see(self, ratio: float, diff: float, where: str) -> None:
        if ratio > self.ratio or not self.where:
            self.ratio, self.diff, self.where = ratio, diff, where
        if ratio > 1.0:
            self.problems.append(f"{where}: recomputed output differs by {diff:.3g} "
                                 f"({ratio:.3g}x the allowed {CHECK_FRACTION:g} of the grading tolerance)")


def _as_float(value):
    if isinstance(value, torch.Tensor):
        return value.detach().double()
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (int, float)) for v in value):
        return torch.tensor(value, dtype=torch.float64)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return torch.tensor(float(value), dtype=torch.float64)
    return None


def _close(stored, fresh, rtol, atol, where: str, drift: Drift) -> None:
    """Compare two encoded trees: numbers within CHECK_FRACTION of the grading
    tolerance (rtol, atol), everything else exactly. sympy expressions that are
    not stored identically must still be symbolically equal."""
    if isinstance(stored, dict) and isinstance(fresh, dict):
        if stored.keys() != fresh.keys():
            drift.problems.append(f"{where}: keys changed ({sorted(set(stored) ^ set(fresh))})")
            return
        if "__sympy__" in stored:
            if stored != fresh and not _sympy_equal(stored["__sympy__"], fresh["__sympy__"]):
                drift.problems.append(f"{where}: the symbolic answer changed")
            return
        if "__tuple__" in stored:
            parts_s, parts_f = stored["__tuple__"], fresh["__tuple__"]
            if len(parts_s) != len(parts_f):
                drift.problems.append(f"{where}: tuple length changed")
                return
            atols = atol if isinstance(atol, (list, tuple)) and len(atol) == len(parts_s) else [atol] * len(parts_s)
            rtols = rtol if isinstance(rtol, (list, tuple)) and len(rtol) == len(parts_s) else [_scalar(rtol)] * len(parts_s)
            for k, (a, b) in enumerate(zip(parts_s, parts_f)):
                _close(a, b, rtols[k], atols[k], f"{where}[{k}]", drift)
            return
        for key in stored:
            _close(stored[key], fresh[key], rtol, atol, f"{where}.{key}", drift)
        return
    rtol = _scalar(rtol)
    a, b = _as_float(stored), _as_float(fresh)
    if a is not None and b is not None and not isinstance(stored, bool):
        if isinstance(stored, torch.Tensor) != isinstance(fresh, torch.Tensor) or a.shape != b.shape or (
                isinstance(stored, torch.Tensor) and stored.dtype != fresh.dtype):
            drift.problems.append(f"{where}: type, shape or dtype changed")
            return
        if a.numel() == 0:
            return
        if not torch.equal(a.isnan(), b.isnan()) or not torch.equal(a[a.isinf()], b[a.isinf()]):
            drift.problems.append(f"{where}: infinite or NaN entries changed")
            return
        finite = torch.isfinite(a)
        a, b = a[finite], b[finite]
        if a.numel() == 0:
            return
        eps = torch.finfo(stored.dtype).eps if isinstance(stored, torch.Tensor) and stored.is_floating_point() else 0.0
        tol_atol = _as_float(atol) if not isinstance(atol, (list, tuple)) else torch.tensor(min(atol), dtype=torch.float64)
        if tol_atol is None or tol_atol.numel() not in (1, finite.numel()):
            tol_atol = torch.tensor(float(tol_atol.min()) if tol_atol is not None else 0.0, dtype=torch.float64)
        if tol_atol.numel() > 1:
            tol_atol = tol_atol.reshape(-1)[finite.reshape(-1)].reshape(a.shape)
        allowed = CHECK_FRACTION * (tol_atol + rtol * a.abs()) + 2 * eps * a.abs()  # at least 2 ulps
        diff = (a - b).abs()
        ratio = diff / allowed.clamp_min(1e-300)
        k = int(ratio.reshape(-1).argmax())
        drift.see(float(ratio.reshape(-1)[k]), float(diff.reshape(-1)[k]), where)
        return
    if isinstance(stored, list) and isinstance(fresh, list):
        if len(stored) != len(fresh):
            drift.problems.append(f"{where}: length changed")
            return
        for k, (x, y) in enumerate(zip(stored, fresh)):
            _close(x, y, rtol, atol, f"{where}[{k}]", drift)
        return
    if stored != fresh:
        drift.problems.append(f"{where}: {stored!r:.60} became {fresh!r:.60}")


def _sympy_equal(a: str, b: str) -> bool:
    try:
        return sympy.simplify(sympy.sympify(a) - sympy.sympify(b)) == 0
    except Exception:
        return False


def compare_references(stored: dict, fresh: dict, label: str, drift: Drift | None = None) -> Drift:
    """Compare a stored reference tree with a freshly recorded one (both
    encoded). Cases are compared field by field: inputs, expected outputs and
    mutant outputs within CHECK_FRACTION of the case's tolerance; a stochastic
    case's recorded tolerance within CHECK_FRACTION of itself."""
    drift = drift or Drift()
    s_funcs, f_funcs = stored.get("functions", {}), fresh.get("functions", {})
    if s_funcs.keys() != f_funcs.keys():
        drift.problems.append(f"{label}: graded functions changed ({sorted(set(s_funcs) ^ set(f_funcs))})")
        return drift
    for name, s_spec in s_funcs.items():
        f_spec = f_funcs[name]
        where = f"{label} {name}"
        for key in set(s_spec) | set(f_spec):
            if key != "cases" and s_spec.get(key) != f_spec.get(key):
                drift.problems.append(f"{where}: {key} changed")
        s_cases, f_cases = s_spec.get("cases", []), f_spec.get("cases", [])
        if len(s_cases) != len(f_cases):
            drift.problems.append(f"{where}: {len(s_cases)} cases stored, {len(f_cases)} now")
            continue
        for i, (sc, fc) in enumerate(zip(s_cases, f_cases), 1):
            cw = f"{where} case {i}"
            if sc.keys() != fc.keys():
                drift.problems.append(f"{cw}: fields changed")
                continue
            rtol, atol = sc.get("rtol", 1e-5), sc.get("atol", 1e-6)
            for key in sc:
                if key == "tolerance":
                    # the evidence behind a derived tolerance (variant and mutant deviations): the
                    # tolerance itself is compared below; its evidence may move within round-off
                    if sorted(sc[key]) != sorted(fc[key]) or sc[key].get("separated") != fc[key].get("separated"):
                        drift.problems.append(f"{cw}: which mistakes the case separates changed")
                elif key in ("atol", "rtol") and not isinstance(sc[key], (int, float)):
                    # a measured (stochastic) tolerance: within CHECK_FRACTION of itself
                    _close(sc[key], fc[key], 1.0, 0.0, f"{cw} tolerance", drift)
                elif key == "mutants":
                    if sc[key].keys() != fc[key].keys():
                        drift.problems.append(f"{cw}: mutants changed ({sorted(set(sc[key]) ^ set(fc[key]))})")
                        continue
                    for m in sc[key]:
                        m_atol = atol if _shape_like(sc[key][m], sc.get("expected")) else _scalar(atol)
                        _close(sc[key][m], fc[key][m], rtol, m_atol, f"{cw} mutant {m}", drift)
                else:
                    _close(sc[key], fc[key], rtol, atol, f"{cw} {key}", drift)
    return drift


def _scalar(atol):
    if isinstance(atol, (list, tuple)):
        return min(float(a) for a in atol)
    if isinstance(atol, torch.Tensor):
        return float(atol.min())
    return atol


def _shape_like(a, b) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape
    if isinstance(a, dict) and isinstance(b, dict) and "__tuple__" in a and "__tuple__" in b:
        return len(a["__tuple__"]) == len(b["__tuple__"]) and all(
            _shape_like(x, y) for x, y in zip(a["__tuple__"], b["__tuple__"]))
    return not isinstance(a, (torch.Tensor, dict)) and not isinstance(b, (torch.Tensor, dict))


def stale(path, fresh: dict, label: str, drift: Drift) -> list:
    """Why the stored file at ``path`` no longer matches ``fresh`` (empty
    when it is up to date); updates ``drift`` with the worst difference."""
    if not Path(path).exists():
        return [f"{path} is missing"]
    stored = torch.load(path, weights_only=True)
    fresh = references.encode(fresh)
    problems = []
    old, new = stored.get("meta", {}).get("fingerprint") or {}, fresh["meta"]["fingerprint"]
    changed = [k for k in new if old.get(k) != new[k]]
    if not old:
        problems.append(f"{label}: recorded without a fingerprint (by an older `make references`)")
    elif changed:
        problems.append(f"{label}: {', '.join(changed)} changed since the references were recorded")
    before = len(drift.problems)
    compare_references(stored, fresh, label, drift)
    problems += drift.problems[before:]
    return problems


# ------------------------------------------------- staleness by fingerprint (cheap)
#: Fingerprint parts that are course sources. "versions" (torch, sympy, numpy)
#: is left out of the refusal in make release / grade / student-edition: other
#: library versions do not make the recorded answers wrong (``--check`` says
#: whether any output moved), but ``make references`` still records again.
SOURCE_PARTS = ("solution code", "case definitions", "case helpers", "mutant catalogue", "mutant loader",
                "correct variants", "tolerance policy", "case drivers", "fixture models", "symbolic probes",
                "recording recipe")


def _stored_fingerprint(path: Path) -> dict | None:
    try:
        return torch.load(path, weights_only=True).get("meta", {}).get("fingerprint") or None
    except FileNotFoundError:
        return None


def changed_parts(assignment: str, public_dir: Path | None = None, hidden_dir: Path | None = None,
                  current: dict | None = None, kinds=("public", "hidden")) -> list:
    """What differs between the fingerprint ``assignment`` has now and the one
    its stored public and hidden files were recorded with: fingerprint part
    names ("solution code", "case definitions", ...), or "no public file",
    "no fingerprint in the hidden file". Empty when both files are current.
    Reads hashes only: nothing is executed."""
    current = current or fingerprint(assignment)
    public_dir = Path(public_dir or references.PUBLIC_DIR)
    hidden_dir = Path(hidden_dir or HIDDEN_REFERENCES)
    out: list = []
    for kind, folder in (("public", public_dir), ("hidden", hidden_dir)):
        if kind not in kinds:
            continue
        path = folder / f"{assignment}.pt"
        if not path.exists():
            out.append(f"no {kind} file")
            continue
        stored = _stored_fingerprint(path)
        if not stored:
            out.append(f"no fingerprint in the {kind} file")
            continue
        out += [k for k in current if stored.get(k) != current[k] and k not in out]
    return out


def _graded(names) -> list:
    names = list(assignments() if names is None else names)
    return [n for n in names if load_module("cases", n) is not None]


def stale_assignments(names=None, public_dir: Path | None = None, hidden_dir: Path | None = None,
                      parts=SOURCE_PARTS) -> list:
    """The assignments among ``names`` (default: all with grader/author/cases/) whose
    stored references were recorded from other course sources than the ones
    here (any fingerprint part in ``parts`` differs, or a file or its
    fingerprint is missing). Cheap: hashes, no recording."""
    return [n for n in _graded(names)
            if any(p in parts or p.startswith("no ") for p in changed_parts(n, public_dir, hidden_dir))]


def fix_command(names) -> str:
    """The command that records the references of ``names`` again."""
    names = list(names)
    return "make references ASSIGNMENT=" + (names[0] if len(names) == 1 else '"' + " ".join(names) + '"')


def stale_message(names=None, public_dir: Path | None = None, hidden_dir: Path | None = None,
                  kinds=("public", "hidden")) -> str:
    """Why the references of ``names`` (of the ``kinds`` given) cannot be used
    and the exact command that records them again; empty when they are current."""
    why = {}
    for n in _graded(names):
        parts = [p for p in changed_parts(n, public_dir, hidden_dir, kinds=kinds)
                 if p in SOURCE_PARTS or p.startswith("no ")]
        if parts:
            missing = [p for p in parts if p.startswith("no ")]
            why[n] = ", ".join(missing) if missing else f"{', '.join(parts)} changed since its references were recorded"
    if not why:
        return ""
    everything = len(why) > 1 and names is None and list(why) == _graded(None)
    command = "make references" if everything else fix_command(why)
    return ("The stored references are out of date with the course sources:\n" +
            "".join(f"  {n}: {text}\n" for n, text in why.items()) +
            f"Record them again with\n  {command}\n"
            "and commit grader/references/ and source_lib/vaelab/references/.")


def refuse_if_stale(names=None, public_dir: Path | None = None, hidden_dir: Path | None = None,
                    kinds=("public", "hidden")) -> None:
    """Raise SystemExit (status 1, message on stderr) when the references of
    ``names`` (default: every assignment) are stale; return quietly otherwise.
    For ``make release`` and ``make student-edition`` (both kinds) and
    ``make grade`` (the hidden ones only: grading never runs a self-check)."""
    message = stale_message(names, public_dir, hidden_dir, kinds=kinds)
    if message:
        raise SystemExit(message)


def _budget_outdated(assignment: str) -> bool:
    """Grading's time budgets lack the assignment, or timed other code cells
    than the solution notebook has now (grader/author/budgets.py)."""
    from grader.author import budgets
    from grader.notebooks import cell_key

    timed = budgets.load().get(assignment, {}).get("cells")
    if not timed:
        return True
    nb = read(SOLUTIONS / assignment / f"{assignment}.ipynb")
    return {cell_key(c) for c in nb.cells if c.cell_type == "code"} != set(timed)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*", help="default: all")
    parser.add_argument("--check", action="store_true",
                        help="recompute and fail if the stored references are stale (nothing is written)")
    parser.add_argument("--force", action="store_true",
                        help="record (and time) every named assignment, even one whose fingerprint is unchanged")
    parser.add_argument("--public-dir", type=Path, default=references.PUBLIC_DIR,
                        help="folder of the public references (default: vaelab/references)")
    parser.add_argument("--hidden-dir", type=Path, default=HIDDEN_REFERENCES,
                        help="folder of the hidden references (default: grader/references)")
    parser.add_argument("--no-timing", action="store_true",
                        help="do not re-time the solution notebooks for grading budgets (grader/author/budgets.py)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.assignments) - set(assignments()))
    if unknown:
        parser.error(f"unknown assignment(s) {', '.join(unknown)}; choose from {', '.join(assignments())}")
    problems, drift, retime, stale_names = [], Drift(), [], []
    for assignment in args.assignments or assignments():
        if load_module("cases", assignment) is None:
            print(f"{assignment}: no grader/author/cases/{assignment}.py, skipped")
            continue
        if not args.check:
            changed = changed_parts(assignment, args.public_dir, args.hidden_dir)
            if args.force or "solution code" in changed or _budget_outdated(assignment):
                retime.append(assignment)
            if not changed and not args.force:
                print(f"{assignment}: unchanged since its references were recorded (same fingerprint), "
                      f"not rewritten; --force records it again")
                continue
            print(f"{assignment}: recording ({'--force' if not changed else ', '.join(changed) + ' changed'})")
        try:
            public, hidden = build(assignment)
        except ToleranceError as err:
            print(f"{assignment}: tolerances cannot be derived:\n{err}", file=sys.stderr)
            return 1
        targets = (("public", args.public_dir / f"{assignment}.pt", public),
                   ("hidden", args.hidden_dir / f"{assignment}.pt", hidden))
        for kind, path, data in targets:
            if args.check:
                found = stale(path, data, f"{assignment} {kind}", drift)
                problems += found
                if found and assignment not in stale_names:
                    stale_names.append(assignment)
            else:
                references.save(data, path)
                n = sum(len(f["cases"]) for f in data["functions"].values())
                shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                print(f"wrote {shown} ({n} cases, {RECORD_THREADS} thread, deterministic)")
    default_dirs = args.public_dir == references.PUBLIC_DIR and args.hidden_dir == HIDDEN_REFERENCES
    if not args.check and default_dirs and not args.no_timing and retime:
        from grader.author import budgets

        budgets.record(retime)  # grading's time budgets come from the same solutions
    elif not args.check and default_dirs and not args.no_timing:
        print("time budgets (grader/references/budgets.json): same solution code and code cells, not re-timed; "
              "--force re-times")
    if args.check and drift.ratio == 0:
        print("recomputed outputs equal the stored ones")
    elif args.check:
        print(f"largest difference from the stored references: {drift.diff:.3g} at {drift.where} "
              f"({100 * CHECK_FRACTION * drift.ratio:.3g}% of its grading tolerance; "
              f"allowed {100 * CHECK_FRACTION:g}%)")
    if problems:
        print("\n".join(problems) + "\nThe references are out of date with the solutions: "
              f"run `{fix_command(stale_names)}` and commit the result.",
              file=sys.stderr)
        return 1
    if args.check:
        print("references are up to date")
    return 0


def reproducible_environment() -> dict:
    """The caller's environment with REPRODUCIBLE_ENV in force."""
    return {**os.environ, **REPRODUCIBLE_ENV}


if __name__ == "__main__":
    if any(os.environ.get(k) != v for k, v in REPRODUCIBLE_ENV.items()):
        # torch has read its settings already: start again with them in force
        os.execve(sys.executable, [sys.executable, "-m", "grader.author.record", *sys.argv[1:]],
                  reproducible_environment())
    sys.exit(main())
