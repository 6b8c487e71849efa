"""The integrity scan flags tampering, names the line, and flags nothing else."""
import copy

import nbformat
import pytest

from grader import RELEASE, SOLUTIONS, assignments
from grader.grade.integrity import MAX_MESSAGE, judging_paths, names_test_cells_use, scan_notebook, scan_source
from grader.author.mutants import catalogue
from grader.notebooks import read

# source -> a word the problem's description must contain
TAMPERING = {
    # the comparisons, directly and through aliases
    "torch.allclose = lambda *a, **k: True": "torch.allclose",
    "import torch as T\nT.allclose = lambda *a, **k: True": "torch.allclose",
    "from torch import testing\ntesting.assert_close = print": "torch.testing.assert_close",
    "import numpy as np\nnp.allclose = lambda *a, **k: True": "numpy.allclose",
    "import numpy.testing as npt\nnpt.assert_allclose = print": "numpy.testing.assert_allclose",
    "t = torch\nt.isclose = print": "torch.isclose",
    "t = torch\nu = t\nu.equal = print": "torch.equal",
    "getattr(torch, 'allclose').__code__ = (lambda *a, **k: True).__code__": "torch.allclose.__code__",
    "from torch import allclose\nallclose.__code__ = (lambda *a, **k: True).__code__": "torch.allclose",
    "setattr(torch, 'allclose', print)": "torch.allclose",
    "setattr(torch, 'all' + 'close', print)": "torch.allclose",
    "for name in ['allclose']:\n    setattr(torch, name, print)": "torch",
    "object.__setattr__(torch, 'allclose', print)": "torch.allclose",
    "torch.__setattr__('isclose', print)": "torch.isclose",
    "delattr(torch, 'allclose')": "deletes torch.allclose",
    "del torch.isclose": "deletes torch.isclose",
    "vars(torch)['allclose'] = print": "torch.allclose",
    "torch.__dict__['allclose'] = print": "torch.allclose",
    "torch.__dict__.update(allclose=print)": "torch.allclose",
    "__import__('torch').allclose = print": "torch.allclose",
    "import importlib\nimportlib.import_module('torch.testing').assert_close = print": "torch.testing.assert_close",
    "import sys\nsys.modules['torch'].allclose = print": "torch.allclose",
    "for m in (torch, np):\n    m.allclose = print": "allclose",
    "def patch(module):\n    module.allclose = print\npatch(torch)": "allclose",
    "from unittest import mock\nmock.patch('torch.allclose', print).start()": "patches torch.allclose",
    "from unittest.mock import patch\npatch.object(torch, 'isclose', print).start()": "patches torch.isclose",
    "torch.Tensor.__eq__ = lambda a, b: True": "torch.Tensor.__eq__",
    "from torch import Tensor\nTensor.__sub__ = lambda a, b: a * 0": "torch.Tensor.__sub__",
    "np.ndarray.__eq__ = lambda a, b: True": "numpy.ndarray.__eq__",
    "type(torch.zeros(1)).__eq__ = lambda a, b: True": "__eq__",
    "torch.manual_seed = print": "torch.manual_seed",  # the checks seed each case with it
    "torch.Tensor.double = lambda self: self": "torch.Tensor.double",
    "torch.nn.Module.__call__ = print": "torch.nn.Module.__call__",
    "vars(torch.Tensor)[name] = print": "torch.Tensor",
    "import math\nmath.isclose = lambda *a, **k: True": "math.isclose",
    "import sympy as sp\nsp.simplify = lambda e: 0": "sympy.simplify",
    # builtins and the import and tracing machinery
    "import builtins\nbuiltins.isinstance = lambda *a: True": "builtins.isinstance",
    "__builtins__.print = len": "builtins.print",
    "__builtins__['print'] = len": "builtins.print",
    "__builtins__ = {}": "__builtins__",
    "import sys\nsys.modules['vaelab.checks'] = None": "sys.modules",
    "import sys\nsys.meta_path.insert(0, object())": "sys.meta_path",
    "import sys\nsys.path_hooks.append(print)": "sys.path_hooks",
    "import sys\nsys.settrace(print)": "sys.settrace",
    "import sys\nsys.setprofile(print)": "sys.setprofile",
    # vaelab: the checks, the references, the recorder
    "import vaelab.checks\nvaelab.checks.grade = print": "vaelab.checks.grade",
    "from vaelab import checks as c\nc.compare = print": "vaelab.checks.compare",
    "from vaelab.checks import DRIVERS\nDRIVERS['call'] = print": "vaelab.checks.DRIVERS",
    "import vaelab\nvaelab.checks._record = print": "vaelab.checks._record",
    "import vaelab.references as r\nr.load = print": "vaelab.references.load",
    "from vaelab.checks import Report\nReport.passed = property(lambda self: True)": "vaelab.checks.Report.passed",
    # the names the self-check cells call
    "def check(*a):\n    pass": "redefines check",
    "check = print": "redefines check",
    "from vaelab.checks import grade as check": "redefines check",
    "globals()['check'] = print": "redefines check",
    "globals()['che' + 'ck'] = print": "redefines check",
    "globals().update(check=print)": "redefines check",
    "import sys\nsys.modules[__name__].check = print": "redefines check",
    "def f():\n    global check\n    check = print": "redefines check",
    "def grade(*args, **kwargs):\n    print('all hidden cases pass')": "redefines grade, which the test cells import",
    # the hidden references, the grader, frames and the garbage collector
    "import os\nos.environ['VAELAB_HIDDEN_REFERENCES']": "hidden references",
    "import os\nos.environ['VAELAB_SEALED_RESULTS'] = '/tmp'": "VAELAB_SEALED_RESULTS",
    "open('../grader/references/01_elbo.pt', 'rb')": "grader/references",
    "from vaelab.references import hidden_path": "hidden_path",
    "import vaelab.references\nvaelab.references.hidden_path('01_elbo')": "hidden_path",
    "from vaelab.checks import run\nrun('kl_standard_normal', print, hidden=True)": "hidden=True",
    "import gc\nobjs = gc.get_objects()": "gc.get_objects",
    "import gc\ngc.get_referrers(torch)": "gc.get_referrers",
    "import inspect\nf = inspect.currentframe()": "inspect.currentframe",
    "import inspect\nframes = inspect.stack()": "inspect.stack",
    "import sys\nsys._getframe(1)": "sys._getframe",
    "from inspect import currentframe as here": "inspect.currentframe",
    "def f(frame):\n    return frame.f_back.f_globals": "f_",
    "def f(frame):\n    return getattr(frame, 'f_' + 'locals')": "f_locals",
    "frame = getattr(__import__('sy' + 's'), '_get' + 'frame')(1)": "sys._getframe",
    "import grader": "grader package",
    "from grader.references import x": "grader package",
    "import importlib\nimportlib.import_module('grader.grade.seal')": "grader package",
    # code the scan cannot read, and code in strings and magics
    "exec('torch.allclose = print')": "runs code that replaces torch.allclose",
    "exec(compile('import gc; gc.get_objects()', 'x', 'exec'))": "gc.get_objects",
    "code = 'torch.allclose = print'\nexec(code)": "exec",
    "eval(input())": "eval",
    "run = exec\nrun(payload)": "exec",
    "exec = exec\nexec(payload)": "exec",
    "import builtins\nbuiltins.eval(payload)": "eval",
    "get_ipython().run_cell('torch.allclose = print')": "torch.allclose",
    "%time torch.allclose = print": "torch.allclose",
    "%%capture\nx = 1\ntorch.allclose = print": "torch.allclose",
    "%%timeit torch.allclose = print\nx = 1": "torch.allclose",
    "import sympy as sp\nsp.sympify(\"__import__('gc').get_objects()\")": "gc.get_objects",
    # IPython: what decides how the later (test) cells are read and run
    "get_ipython().input_transformers_post.append(lambda lines: [])": "input_transformers_post",
    "ip = get_ipython()\nip.events.register('pre_run_cell', print)": "events",
    "get_ipython().set_custom_exc((AssertionError,), print)": "set_custom_exc",
    "from IPython.core.interactiveshell import InteractiveShell\nInteractiveShell.run_cell = print": "run_cell",
    "get_ipython().user_ns['check'] = print": "redefines check",
}

HONEST = [
    "torch.backends.cudnn.benchmark = True",
    "torch.backends.cudnn.deterministic = True",
    "torch.backends.cuda.matmul.allow_tf32 = False",
    "torch.manual_seed(0)",
    "np.random.seed(0)",
    "torch.set_num_threads(2)",
    "torch.set_printoptions(precision=3)",
    "np.set_printoptions(precision=3, suppress=True)",
    "torch.set_default_dtype(torch.float64)",
    "import matplotlib.pyplot as plt\nplt.rcParams['figure.figsize'] = (8, 4)",
    "plt.rcParams.update({'font.size': 9})",
    "import matplotlib as mpl\nmpl.rcParams['lines.linewidth'] = 2",
    "import warnings\nwarnings.filterwarnings('ignore')",
    "import os\nos.environ['KMP_DUPLICATE_LIB_OK'] = 'TRUE'",
    "import sys\nsys.path.append('..')",
    "def run(model, x):\n    return model(x)\n\nrun(torch.nn.Identity(), torch.ones(1))",
    "def check_shapes(x):\n    assert x.dim() == 2",
    "def grade_of(score):\n    return 'A' if score > 0.9 else 'B'",
    "compare = lambda a, b: (a - b).abs().max()",
    "needs_more = True",
    "model.eval()",
    "loss = model.eval().forward(x)",
    "self.encoder = nn.Sequential()",
    "timings[f'{torch.cuda.get_device_name()}'] = 1.0",
    "x = np.append(a, b)\ny = np.insert(a, 1, 0)",
    "import re\npattern = re.compile('x+')",
    "fast = torch.compile(model)",
    "import torch.nn.functional as F\nF.my_loss = lambda x: x.sum()",  # new, so nothing the checks use
    "value = eval('1 + 2')",
    "exec('x = 1')",
    "from vaelab import check, needs, seed_everything",
    "from vaelab.checks import grade",
    "%matplotlib inline",
    "!pip install tqdm",
    "%timeit -n1 -r 3 sum(range(10))",
    "def deco(fn):\n    fn.__doc__ = 'x'\n    fn.__name__ = 'y'\n    return fn",
    "class Pair:\n    def __eq__(self, other):\n        return True\nPair.__hash__ = None",
    "a_sum = 'a' + 'b'\nx = " + "1 + " * 500 + "1",
    "import sympy as sp\nx = sp.sympify('x**2 + 1')\ny = sp.sympify(x)",
    "from IPython.core.interactiveshell import InteractiveShell\nInteractiveShell.ast_node_interactivity = 'all'",
    "get_ipython().user_ns['scratch'] = 1",
    "%%bash\nls -la",
    "delattr(x)",
]


def _cell(source, **nbgrader):
    cell = nbformat.v4.new_code_cell(source)
    if nbgrader:
        cell.metadata["nbgrader"] = dict(nbgrader)
    return cell


def _grade_id(nb, grade_id):
    return next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


@pytest.mark.parametrize("source,needle", list(TAMPERING.items()), ids=range(len(TAMPERING)))
def test_tampering_is_flagged(source, needle):
    problems = scan_source(source)
    assert problems and any(needle in what for _, what in problems), problems


@pytest.mark.parametrize("source", HONEST, ids=range(len(HONEST)))
def test_honest_settings_and_helpers_are_not_flagged(source):
    assert scan_source(source) == []


def test_the_rules_are_read_from_the_checks_and_the_locked_cells():
    judged = judging_paths()
    assert {"torch.allclose", "torch.Tensor", "numpy.testing", "torch.manual_seed", "sympy.simplify"} <= judged
    assert not any(p.startswith(("torch.backends", "matplotlib", "sys.", "os.")) for p in judged)
    names = names_test_cells_use()
    # read from the locked cells: the hidden tests import grade, the self-checks call check, and the
    # prediction cells import explain (vaelab/reveal.py); the student's own helpers are not among them
    assert names == {"grade": ("the test cells import", "vaelab.checks.grade"),
                     "check": ("the self-check cells call", None),
                     "explain": ("the self-check cells import", "vaelab.reveal.explain")}, names
    assert not {"run", "needs", "print"} & set(names)
    assert not {"run", "grade_of", "needs", "compare", "print"} & names.keys()
    for a in assignments():  # the answers are the student's to define
        for m in catalogue(a):
            assert m.target not in names


@pytest.mark.parametrize("assignment", assignments())
def test_no_false_positives_on_solutions_releases_mutants_and_variants(assignment):
    solution = read(SOLUTIONS / assignment / f"{assignment}.ipynb")
    released = read(RELEASE / assignment / f"{assignment}.ipynb")
    assert scan_notebook(solution) == []
    assert scan_notebook(released) == []
    assert scan_notebook(solution, released=released) == []
    for m in catalogue(assignment) + catalogue(assignment, "variants"):
        assert scan_source(m.source) == [], m.name


@pytest.mark.parametrize("assignment", assignments())
def test_honest_settings_and_a_run_helper_in_a_real_notebook(assignment):
    nb = read(SOLUTIONS / assignment / f"{assignment}.ipynb")
    released = read(RELEASE / assignment / f"{assignment}.ipynb")
    nb.cells.insert(2, _cell("torch.backends.cudnn.benchmark = True\ntorch.backends.cudnn.deterministic = True\n"
                             "torch.manual_seed(0)\nnp.random.seed(0)\ntorch.set_num_threads(1)\n"
                             "torch.set_printoptions(precision=4)\nnp.set_printoptions(precision=4)\n"
                             "plt.rcParams['figure.dpi'] = 80\nimport numpy as np"))
    nb.cells.append(_cell("def run(fn, *args):\n    return fn(*args)\n\n\ndef grade_of(x):\n    return x\n\n\n"
                          "def check_shapes(t, shape):\n    assert tuple(t.shape) == shape\n\nrun(print, 1)"))
    assert scan_notebook(nb) == []
    assert scan_notebook(nb, released=released) == []


def test_the_message_names_the_cell_the_line_and_the_code():
    nb = read(SOLUTIONS / "01_elbo" / "01_elbo.ipynb")
    i = _grade_id(nb, "kl_standard_normal")
    nb.cells[i].source = "import torch\n\ntorch.allclose = lambda *a, **k: True\n" + nb.cells[i].source
    nb.cells.append(_cell("x = 1\nimport gc\nlive = gc.get_objects()"))
    violations = scan_notebook(nb)
    assert violations == [
        "cell 'kl_standard_normal', line 3: `torch.allclose = lambda *a, **k: True` replaces torch.allclose, "
        "which the checks use",
        f"cell {len(nb.cells)}, line 3: `live = gc.get_objects()` searches the garbage collector's objects "
        "(gc.get_objects)",
    ]


def test_the_message_is_short_and_quotes_a_trimmed_line():
    source = "torch.allclose = lambda *a, **k: True  # " + "x" * 300 + " `tick`"
    nb = nbformat.v4.new_notebook(cells=[_cell(source, grade_id="a_" + "long_" * 30 + "id")])
    [violation] = scan_notebook(nb)
    assert len(violation) <= MAX_MESSAGE
    assert "`torch.allclose = lambda *a, **k: True  # xxx" in violation and "…" in violation
    assert violation.endswith("replaces torch.allclose, which the checks use")


def test_aliases_are_followed_across_cells():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Notes"),
        _cell("import torch as T\nfrom vaelab import checks as c\nalias = T"),
        _cell("alias.isclose = print\n\nc.grade = print"),
    ])
    assert scan_notebook(nb) == [
        "cell 3, line 1: `alias.isclose = print` replaces torch.isclose, which the checks use",
        "cell 3, line 3: `c.grade = print` replaces vaelab.checks.grade, part of the course's checks",
    ]


def test_every_cell_is_scanned_whatever_its_tags_or_metadata_say():
    released = read(RELEASE / "01_elbo" / "01_elbo.ipynb")
    nb = copy.deepcopy(released)
    guard = _cell("import torch\ntorch.allclose = lambda *a, **k: True")
    guard.metadata["tags"] = ["grader-guard"]
    nb.cells.insert(0, guard)
    nb.cells.append(_cell("torch.isclose = print", grade="false", grade_id="mine", locked=True, solution=False))
    test = _grade_id(nb, "test-kl_standard_normal")
    nb.cells[test].source += "\nimport vaelab.checks\nvaelab.checks.compare = print"  # a locked cell, edited
    violations = scan_notebook(nb, released=released)
    assert len(violations) == 3, violations
    assert violations[0].startswith("cell 1, line 2: `torch.allclose = lambda *a, **k: True`")
    assert violations[1].startswith("cell 'test-kl_standard_normal', line 3: `vaelab.checks.compare = print`")
    assert violations[2].startswith("cell 'mine', line 1: `torch.isclose = print`")
    assert scan_notebook(nb) == violations  # without the released notebook every cell is scanned too


def test_only_an_unchanged_locked_cell_of_the_released_notebook_is_skipped():
    released = nbformat.v4.new_notebook(cells=[
        _cell("import sys\nsys.settrace(None)", grade=False, grade_id="setup", locked=True, solution=False),
        _cell("import sys\nsys.setprofile(None)", grade=False, grade_id="open", locked=False, solution=True),
    ])
    submitted = copy.deepcopy(released)
    assert [v.split(",")[0] for v in scan_notebook(submitted, released=released)] == ["cell 'open'"]
    assert [v.split(",")[0] for v in scan_notebook(submitted)] == ["cell 'setup'", "cell 'open'"]
    submitted.cells[0].source += "\n"  # no longer the instructor's cell
    assert [v.split(",")[0] for v in scan_notebook(submitted, released=released)] == ["cell 'setup'", "cell 'open'"]


def test_code_in_a_magic_is_reported_at_its_own_line():
    nb = nbformat.v4.new_notebook(cells=[_cell("%%capture\nx = 1\ntorch.allclose = print")])
    assert scan_notebook(nb) == ["cell 1, line 3: `torch.allclose = print` replaces torch.allclose, which the "
                                 "checks use"]
    nb = nbformat.v4.new_notebook(cells=[_cell("%matplotlib inline\n%time torch.allclose = print")])
    assert scan_notebook(nb)[0].startswith("cell 1, line 2: `%time torch.allclose = print` replaces torch.allclose")


def test_a_cell_that_does_not_parse_is_not_flagged():
    assert scan_source("torch.allclose = (") == []  # it raises SyntaxError before any of it runs


def test_odd_metadata_in_the_submission_neither_crashes_nor_hides_a_cell():
    cells = [_cell("torch.allclose = print", grade_id="a`b <i>x</i>", locked=True),
             _cell("torch.isclose = print"), _cell("torch.equal = print", grade_id=["x"], locked=True)]
    cells[1].metadata["nbgrader"] = "locked"
    released = nbformat.v4.new_notebook(cells=[_cell("torch.allclose = print", grade_id="other", locked=True)])
    violations = scan_notebook(nbformat.v4.new_notebook(cells=cells), released=released)
    assert [v.split(":")[0] for v in violations] == ["cell 'a_b__i_x__i_', line 1", "cell 2, line 1", "cell 3, line 1"]
