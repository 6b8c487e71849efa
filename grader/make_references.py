"""``make references``: run the reference solutions on fixed inputs and record
their outputs.

For every assignment it writes two files:

- public:  source_lib/vaelab/references/<assignment>.pt (ships; self-checks)
- hidden:  grader/references/<assignment>.pt            (never ships; grading)

Each case stores its inputs, the expected output, its tolerance and the
outputs of every catalogued mutant on the same inputs (for targeted hints).
``--check`` regenerates in memory and fails if the stored files differ, which
is how CI notices references that are out of date with the solutions.
"""
from __future__ import annotations

import argparse
import hashlib
import platform
import sys

import sympy
import torch

from grader import HIDDEN_REFERENCES, SOLUTIONS, assignments, load_module
from grader.mutants import catalogue
from grader.notebooks import exec_solution, read, solution_code
from vaelab import references
from vaelab.checks import DRIVERS, _load_drivers, raised

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


def _run_all(namespace: dict, spec: dict, mutants: dict) -> dict:
    out = {}
    for name, fspec in spec.items():
        kind = fspec.get("kind", "call")
        driver = DRIVERS[kind]
        cases = []
        for case in fspec["cases"]:
            record = dict(case, mutants={})
            if fspec.get("stochastic"):
                record["expected"], record["atol"] = _stochastic_tolerance(driver, namespace[name], record)
            elif "expected" not in case:  # an oracle (closed form) may supply it instead
                torch.manual_seed(0)
                record["expected"] = driver(namespace[name], case)
            for m in mutants.get(name, []):
                torch.manual_seed(0)
                try:
                    record["mutants"][m.name] = driver(m.function, case)
                except Exception as err:  # matched by exception instead of output
                    record["mutants"][m.name] = raised(err)
            cases.append(record)
        out[name] = {"kind": kind, "cases": cases,
                     "hints": {m.name: m.hint for m in mutants.get(name, [])}}
    return out


def _mutant_functions(assignment: str, namespace: dict) -> dict:
    """Execute each mutant's source in a copy of the solution namespace, as if
    a student had typed it into the notebook."""
    found: dict = {}
    for m in catalogue(assignment):
        scope = dict(namespace)
        exec(compile(m.source, f"<mutant {m.name}>", "exec"), scope)  # noqa: S102
        m.function = scope[m.target]
        found.setdefault(m.target, []).append(m)
    return found


def build(assignment: str) -> tuple[dict, dict]:
    """Return (public, hidden) reference data for one assignment."""
    notebook = SOLUTIONS / assignment / f"{assignment}.ipynb"
    namespace = exec_solution(notebook)
    cases = load_module("cases", assignment)
    mutants = _mutant_functions(assignment, namespace)
    meta = {
        "torch": torch.__version__.split("+")[0],
        "sympy": sympy.__version__,
        "python": platform.python_version(),
        "solution_sha256": hashlib.sha256(solution_code(read(notebook)).encode()).hexdigest(),
        "generated_by": "make references",
    }
    public = {"assignment": assignment, "meta": meta, "functions": _run_all(namespace, cases.public(), mutants)}
    hidden = {"assignment": assignment, "meta": meta, "functions": _run_all(namespace, cases.hidden(), mutants)}
    return public, hidden


def same(a, b) -> bool:
    """Exact structural equality of two encoded reference trees."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype
                and a.shape == b.shape and torch.equal(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def _stale(path, fresh: dict) -> str:
    if not path.exists():
        return f"{path} is missing"
    stored = torch.load(path, weights_only=True)
    stored["meta"].pop("python", None)
    fresh = references.encode(fresh)
    fresh["meta"].pop("python", None)
    return "" if same(stored, fresh) else f"{path} is out of date with the solution"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*", help="default: all")
    parser.add_argument("--check", action="store_true", help="fail if stored references are stale")
    args = parser.parse_args(argv)
    problems = []
    for assignment in args.assignments or assignments():
        if load_module("cases", assignment) is None:
            print(f"{assignment}: no grader/cases/{assignment}.py, skipped")
            continue
        public, hidden = build(assignment)
        targets = ((references.public_path(assignment), public), (HIDDEN_REFERENCES / f"{assignment}.pt", hidden))
        for path, data in targets:
            if args.check:
                if problem := _stale(path, data):
                    problems.append(problem)
            else:
                references.save(data, path)
                n = sum(len(f["cases"]) for f in data["functions"].values())
                print(f"wrote {path.relative_to(SOLUTIONS.parent)} ({n} cases)")
    if problems:
        print("\n".join(problems) + "\nRun `make references` and commit the result.", file=sys.stderr)
        return 1
    if args.check:
        print("references are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
