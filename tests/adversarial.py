"""Hostile and broken submissions for assignment 01, each with the most it may
score and what its feedback must say. Built from the released notebook, so
they never drift from it."""
import json
import tempfile
from pathlib import Path

import nbformat

from grader import RELEASE
from grader.author.mutants import catalogue
from grader.notebooks import fill, read, write

from .points import autograded_points, todo_points
from .samples import alternative

A = "01_elbo"
FULL = autograded_points(A)  # autograded points of 01_elbo, from the released notebook (tests/points.py)
# what losing one TODO costs: its hidden test's points
KL = todo_points(A, "kl_standard_normal")
KL_1D = todo_points(A, "kl_gaussian_1d")
ELBO = todo_points(A, "elbo_linear_gaussian")
# Issue 29's attacks leave evidence here if they ever work (tests/test_adversarial.py looks)
JUDGE_MARKER = str(Path(tempfile.gettempdir()) / "vaelab-redteam-judge-ran")
PLANTED = str(Path(tempfile.gettempdir()) / "vaelab-redteam-planted" / "grader" / "references" / f"{A}.pt")
CANARY = "VAELAB_REDTEAM_CANARY"
PLANTED_PTH = "zz_vaelab_redteam.pth"
STARTUP = "/root/.ipython/profile_default/startup/00-vaelab-redteam.py"
WRITE_EVERYWHERE = f"""

import glob as _glob, os as _os, site as _site
import vaelab as _vaelab
_targets = [_os.path.join(_os.path.dirname(_vaelab.__file__), 'drivers.py'), {STARTUP!r},
            _os.path.join(_site.getsitepackages()[0], {PLANTED_PTH!r})]
_targets += _glob.glob('/tmp/vaelab-kernels-*/*/results/*.pt') + _glob.glob('/tmp/*/gradebook.db')
_targets += _glob.glob('/tmp/*/*/gradebook.db') + _glob.glob('/dev/shm/*')
for _t in _targets:
    try:
        _os.makedirs(_os.path.dirname(_t), exist_ok=True)
        with open(_t, 'a') as _fh:
            _fh.write('\\nimport os; os.environ["VAELAB_REDTEAM"] = "1"\\n')
    except OSError:
        pass
"""

GOOD = alternative(A)
HALF = next(m.source for m in catalogue(A) if m.target == "kl_standard_normal" and m.name == "missing_half")
KL_SIG = "def kl_standard_normal(mu, logvar):\n"
KL_OK = "    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1)\n"


def _kl(body: str, before: str = "", after: str = "") -> dict:
    return {**GOOD, "kl_standard_normal": before + KL_SIG + body + after}


def _release():
    return read(RELEASE / A / f"{A}.ipynb")


def _with_test_cells(edit):
    nb = fill(_release(), {**GOOD, "kl_standard_normal": HALF})
    edit(nb)
    return nb


def _drop(nb):
    nb.cells = [c for c in nb.cells if c.get("id") != "test-kl_standard_normal"]


def _duplicate(nb):
    i = next(i for i, c in enumerate(nb.cells) if c.get("id") == "test-kl_standard_normal")
    copy = nbformat.from_dict(json.loads(json.dumps(nb.cells[i])))
    copy.id = "test-copy"
    nb.cells.insert(i + 1, copy)


def _retype(nb):
    i = next(i for i, c in enumerate(nb.cells) if c.get("id") == "test-kl_standard_normal")
    old = nb.cells[i]
    new = nbformat.v4.new_markdown_cell(old.source)
    new.metadata = old.metadata
    new.id = old.id
    nb.cells[i] = new


def _edit(nb):
    cell = next(c for c in nb.cells if c.get("id") == "test-kl_standard_normal")
    cell.source = "pass  # nothing to see here"


# name: (answers or notebook builder, max score, substring the feedback or problem message must contain)
CASES = {
    "infinite_loop": (_kl("    while True:\n        pass\n"), FULL - KL, "ran past its time limit"),
    "memory_bomb": (_kl(KL_OK, before="hog = bytearray(64 * 2**30)\n\n\n"), FULL - KL, "MemoryError"),
    "os_exit": (_kl("    import os\n    os._exit(3)\n"), FULL - KL, "disabled while grading"),
    "sys_exit": (_kl("    import sys\n    sys.exit(0)\n"), FULL - KL, "SystemExit"),
    "syntax_error": (_kl("    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1\n"), FULL - KL,
                     "SyntaxError"),
    "kill_kernel": (_kl("    import os, signal\n    os.kill(os.getpid(), signal.SIGKILL)\n"), FULL - KL,
                    "stopped the grading kernel"),
    "deleted_test_cell": (lambda: _with_test_cells(_drop), FULL - KL, ""),
    "duplicated_test_cell": (lambda: _with_test_cells(_duplicate), FULL - KL, ""),
    "retyped_test_cell": (lambda: _with_test_cells(_retype), FULL - KL, ""),
    "edited_test_cell": (lambda: _with_test_cells(_edit), FULL - KL, "hidden cases fail"),
    "monkeypatch_allclose": (_kl("    return torch.zeros(mu.shape[0])\n",
                                 before="import numpy\ntorch.allclose = lambda *a, **k: True\n"
                                        "numpy.allclose = lambda *a, **k: True\n\n\n"), 0, "Integrity"),
    "patch_check_helpers": (_kl("    return torch.zeros(mu.shape[0])\n",
                                before="import vaelab.checks\nvaelab.checks.grade = lambda *a, **k: None\n"
                                       "vaelab.checks.run = lambda *a, **k: None\n\n\n"), 0, "Integrity"),
    "redefine_test_helper": (_kl("    return torch.zeros(mu.shape[0])\n",
                                 after="\n\ndef grade(*args, **kwargs):\n    print('all hidden cases pass')\n"),
                             0, "Integrity"),
    "read_hidden_references": (_kl("    import os\n    refs = torch.load(os.path.join(os.environ['VAELAB_HIDDEN_"
                                   "REFERENCES'], '01_elbo.pt'))\n    return torch.zeros(mu.shape[0])\n"), 0,
                               "Integrity"),
    # Obfuscated past the static scan; sealed grading (grader/grade/seal.py) stops them: the kernel
    # never holds the hidden answers, and their files are covered in its mount namespace.
    "stack_walk_for_answers": (_kl(
        "    _n = lambda h: bytes.fromhex(h).decode()\n"
        "    frame = getattr(__import__(_n('737973')), _n('5f6765746672616d65'))(1)\n"
        "    while frame is not None:\n"
        "        for value in list(getattr(frame, _n('665f6c6f63616c73')).values()):\n"
        "            if isinstance(value, dict) and 'expected' in value and 'args' in value:\n"
        "                if torch.equal(value['args'][0], mu):\n"
        "                    return value['expected']\n"
        "        frame = getattr(frame, _n('665f6261636b'))\n"
        "    return torch.zeros(mu.shape[0])\n"), FULL - KL, "hidden cases fail"),
    "obfuscated_reference_read": (_kl(
        "    import pathlib\n"
        "    refs = __import__('vaelab.refer' + 'ences', fromlist=['x'])\n"
        "    _n = lambda h: bytes.fromhex(h).decode()\n"
        "    places = [getattr(refs, _n('68696464656e5f70617468'))('01_elbo')]\n"
        "    places.append(pathlib.Path(refs.__file__).resolve().parents[2] / ('gra' + 'der') / 'references' / '01_elbo.pt')\n"
        "    for place in places:\n"
        "        try:\n"
        "            for case in refs.load(place)['functions']['kl_standard_normal']['cases']:\n"
        "                if torch.equal(case['args'][0], mu):\n"
        "                    return case['expected']\n"
        "        except Exception as err:\n"
        "            print('no answers at', place, type(err).__name__)\n"
        "    return torch.zeros(mu.shape[0])\n"), FULL - KL, "hidden cases fail"),
    # The theft of issue 12: read the public self-check data and substitute the caller's arguments into
    # the stored answer. Public symbolic cases now store values at sample points, not expressions.
    "steal_public_expression": ({**GOOD, "kl_gaussian_1d": (
        "def kl_gaussian_1d(mu_q, sigma_q, mu_p, sigma_p):\n"
        "    from vaelab import references\n"
        "    case = references.load(references.public_path('01_elbo'))['functions']['kl_gaussian_1d']['cases'][0]\n"
        "    return case['expected'].subs(dict(zip(case['args'], (mu_q, sigma_q, mu_p, sigma_p))))\n")},
        FULL - KL_1D, ""),
    "steal_public_expression_raw": ({**GOOD, "elbo_linear_gaussian": (
        "def elbo_linear_gaussian(x, w, b, sigma2, m, v):\n"
        "    import sympy, torch, vaelab\n"
        "    from pathlib import Path\n"
        "    found = []\n"
        "    def walk(o):\n"
        "        if isinstance(o, dict):\n"
        "            if '__sympy__' in o:\n"
        "                found.append(sympy.sympify(o['__sympy__']))\n"
        "            for v_ in o.values():\n"
        "                walk(v_)\n"
        "        elif isinstance(o, list):\n"
        "            for v_ in o:\n"
        "                walk(v_)\n"
        "    for path in (Path(vaelab.__file__).parent / 'references').glob('*.pt'):\n"
        "        walk(torch.load(path, weights_only=True))\n"
        "    names = {str(s): s for s in (x, w, b, sigma2, m, v) if isinstance(s, sympy.Symbol)}\n"
        "    best = max(found, key=lambda e: len(e.free_symbols & {sympy.Symbol(n) for n in 'x w b m'.split()}) +\n"
        "               len(e.free_symbols), default=sympy.Integer(0))\n"
        "    return best.subs({s: names.get(s.name, s) for s in best.free_symbols})\n")},
        FULL - ELBO, ""),
    # Issue 29: a string that sympify would run, recorded for the judge; writes to the grader, the
    # Python environment, startup files and other kernels' outputs; a planted copy of the answers
    # elsewhere on the machine and a canary in the grader's environment.
    "sympy_string_for_the_judge": ({**GOOD, "kl_gaussian_1d": (
        "def kl_gaussian_1d(mu_q, sigma_q, mu_p, sigma_p):\n"
        f"    return \"__import__('pathlib').Path({JUDGE_MARKER!r}).touch() or 0\"\n")}, FULL - KL_1D, ""),
    "write_the_grader_and_other_kernels": (_kl(KL_OK, after=WRITE_EVERYWHERE), FULL, ""),
    "read_planted_answers_and_canary": (_kl(
        "    import os\n"
        # split so that the static scan does not see them: the sandbox alone must stop these
        f"    if os.environ.get({CANARY[:7]!r} + {CANARY[7:]!r}) or "
        f"os.path.exists(os.path.join({str(Path(PLANTED).parent.parent)!r}, 'refer' + 'ences', {A!r} + '.p' + 't')):\n"
        "        return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1)\n"
        "    return torch.zeros(mu.shape[0])\n"), FULL - KL, ""),
    "network_access": (_kl(KL_OK, after="\n\nimport urllib.request\nurllib.request.urlopen("
                                        "'http://192.0.2.1/', timeout=3)\n"), FULL, ""),
    "huge_output": (_kl(KL_OK, after="\n\nprint('x' * 10_000_000)\n"), FULL, ""),
    "nan_result": (_kl("    return torch.full((mu.shape[0],), float('nan'))\n"), FULL - KL, "non-finite"),
    "wrong_shape": (_kl("    return torch.zeros(mu.shape[0], 1)\n"), FULL - KL, "expected shape"),
    "wrong_dtype": (_kl(KL_OK.replace("dim=-1)", "dim=-1).double()")), FULL - KL, "dtype"),
    "wrong_device": (_kl(KL_OK.replace("dim=-1)", "dim=-1).to('meta')")), FULL - KL, ""),
}
# Broken files: (writer, substring of the problem message)
BROKEN = {
    "corrupt_json": (lambda p: p.write_text('{"cells": [ this is not json'), "not a readable notebook"),
    "not_a_notebook": (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256))), "not a readable notebook"),
    "empty_notebook": (lambda p: nbformat.write(nbformat.v4.new_notebook(), str(p)), "has no cells"),
    "missing_notebook": (lambda p: (p.parent / "notes.txt").write_text("I forgot to upload it"), f"no {A}.ipynb"),
}


def build(folder):
    """Write every case under folder/<case>/<assignment>/; return expectations."""
    expectations = {}
    for name, (spec, max_score, needle) in CASES.items():
        nb = spec() if callable(spec) else fill(_release(), spec)
        write(nb, folder / name / A / f"{A}.ipynb")
        expectations[name] = (max_score, needle)
    for name, (writer, needle) in BROKEN.items():
        path = folder / name / A / f"{A}.ipynb"
        path.parent.mkdir(parents=True)
        writer(path)
        expectations[name] = (0, needle)
    other = read(RELEASE / "02_reparameterization" / "02_reparameterization.ipynb")
    write(other, folder / "wrong_assignment" / A / "02_reparameterization.ipynb")
    expectations["wrong_assignment"] = (0, "another assignment")
    for control in ("control_a", "control_b"):
        write(fill(_release(), GOOD), folder / control / A / f"{A}.ipynb")
        expectations[control] = (FULL, "")
    return expectations
