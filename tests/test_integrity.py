"""The integrity scan flags tampering and nothing else."""
import pytest

from grader import RELEASE, SOLUTIONS, assignments
from grader.integrity import scan_notebook, scan_source
from grader.mutants import catalogue
from grader.notebooks import read

TAMPERING = {
    "torch.allclose = lambda *a, **k: True": "torch.allclose",
    "import numpy as np\nnp.allclose = lambda *a, **k: True": "np.allclose",
    "import vaelab.checks\nvaelab.checks.grade = print": "vaelab.checks.grade",
    "setattr(torch, 'allclose', print)": "setattr",
    "def check(*a):\n    pass": "redefines check",
    "grade = print": "reassigns",
    "import os\nos.environ['VAELAB_HIDDEN_REFERENCES']": "hidden reference",
    "import gc\nobjs = gc.get_objects()": "gc.get_objects",
    "import inspect\nf = inspect.currentframe()": "inspect.currentframe",
    "import sys\nsys.modules['vaelab.checks'] = None": "sys.modules",
    "from grader.references import x": "grader package",
}


@pytest.mark.parametrize("source,needle", list(TAMPERING.items()))
def test_tampering_is_flagged(source, needle):
    problems = scan_source(source)
    assert problems and any(needle in message for _, message in problems), problems


@pytest.mark.parametrize("assignment", assignments())
def test_no_false_positives_on_solutions_releases_and_mutants(assignment):
    assert scan_notebook(read(SOLUTIONS / assignment / f"{assignment}.ipynb")) == []
    assert scan_notebook(read(RELEASE / assignment / f"{assignment}.ipynb")) == []
    for m in catalogue(assignment):
        assert scan_source(m.source) == [], m.name


def test_index_expressions_are_not_targets():
    assert scan_source("timings[f'{torch.cuda.get_device_name()}'] = 1.0") == []
    assert scan_source("self.encoder = nn.Sequential()") == []
