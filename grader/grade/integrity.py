"""Static integrity scan of a submission before it is graded.

The real protection is structural: under ``make grade`` the hidden tests'
answers never enter the kernel, and their verdicts are decided outside it
(grader/grade/seal.py), so tampering cannot earn points. This scan is a second,
visible line. It must flag only what changes how answers are judged, never an
honest student's settings or helpers, because a flag costs every autograded
point. It flags code that

- replaces, deletes or patches (assignment, ``del``, ``setattr``/``delattr``,
  ``vars(m)[...]``/``m.__dict__[...]``, ``unittest.mock.patch``) something the
  checks use: the comparisons of torch, numpy and math (``torch.allclose``,
  ``np.testing.*``, ...), every torch/numpy/sympy/math/... function or class
  that the judging part of vaelab (``vaelab.checks`` and the modules it
  imports) refers to, read from vaelab's own source, what leads to them
  (``torch.nn = ...``) and what of them matters: every attribute of a class
  (the methods and dunders of ``torch.Tensor``, ``np.ndarray``,
  ``nn.Module``) and special attributes of anything (``torch.allclose.__code__``).
  A new attribute of a module (``F.my_loss = ...``) changes nothing they use;
- changes anything in ``vaelab`` (the checks, the references, the recorder)
  or in ``builtins``, or the import and tracing machinery (``sys.modules``,
  ``sys.meta_path``, ``sys.path_hooks``, ``sys.settrace``/``setprofile``), or
  what decides how IPython reads and runs the later (test) cells
  (``get_ipython().input_transformers_post``, ``.events``, ``.set_custom_exc``,
  ``InteractiveShell.run_cell``, ...), or replaces ``__builtins__``;
- rebinds, at module level, a name that the locked test or self-check cells
  import or call (read from those cells of ``solutions/*/*.ipynb`` and of the
  released notebook: today ``grade``, which each test cell imports, and
  ``check``, which each self-check calls; the answers' names are the
  student's), unless it binds the same vaelab function again. Other helpers
  (``run``, ``grade_of``, ``compare``...) are the student's own;
- looks for the hidden references (``VAELAB_HIDDEN_REFERENCES``,
  ``grader/references``, ``hidden_path``, ``run(..., hidden=True)``) or the
  folder the hidden tests record into (``VAELAB_SEALED_RESULTS``), imports the
  ``grader`` package, or reaches into frames and the garbage collector
  (``sys._getframe``, ``inspect.currentframe``/``stack``, ``gc.get_objects``/
  ``get_referrers``, ``.f_back``, ``.__globals__``, ...);
- runs code the scan cannot read: the builtins ``exec``/``eval``/``compile``
  (not ``model.eval()`` or ``re.compile``) and IPython's ``run_cell`` of
  anything but a string the code spells out (a literal, literals joined with
  ``+``): an honest notebook has no reason to build code at run time, and
  such code could hide any of the above. A spelled-out string is parsed and
  scanned like the cell itself, and so is the code of a magic (``%time``,
  ``%%capture``, ``%%timeit``'s setup) and a literal given to
  ``sympy.sympify``/``parse_expr`` (which evaluate it; ``sympify`` of
  anything else is not flagged, since sympy objects go through it too).

A cell that does not parse, even after IPython's magics are turned into
calls, is not flagged: IPython runs none of it.

It does not flag settings and calls (``torch.backends.cudnn.benchmark =
True``, ``torch.manual_seed(0)``, ``np.set_printoptions(...)``,
``plt.rcParams[...] = ...``), new attributes of modules that the checks do
not use, or helpers in the student's own namespace (``run``, ``print``,
``needs``...): the checks live in their own module and never read those.

Import aliases are resolved over the whole notebook (``import torch as T``,
``from vaelab import checks as c``, ``t = torch``, ``getattr(torch, "x")``,
``sys.modules["m"]``, ``importlib.import_module("m")``); a receiver that
cannot be resolved is flagged only for comparison names (``x.allclose =
...``).

Each violation names the cell (its nbgrader grade_id, or its 1-based position
in the notebook), the line within it, the line itself and what it does::

    cell 'kl_standard_normal', line 3: `torch.allclose = lambda *a, **k: True` replaces torch.allclose,
    which the checks use

(one line; the source line is trimmed to 80 characters, the whole to 200).
"""
from __future__ import annotations

import ast
import builtins
import functools
import re
import threading

from grader import ROOT, SOLUTIONS

VAELAB_SOURCE = ROOT / "source_lib" / "vaelab"
JUDGING_MODULE = "checks"  # vaelab.checks and the vaelab modules it imports judge the answers

#: What the checks compare with, whether or not vaelab names it today.
COMPARISONS = frozenset({
    "torch.allclose", "torch.isclose", "torch.equal", "torch.eq", "torch.ne", "torch.testing", "torch.Tensor",
    "torch.is_tensor", "torch.isfinite", "torch.isnan", "torch.abs", "torch.where",
    "numpy.allclose", "numpy.isclose", "numpy.array_equal", "numpy.array_equiv", "numpy.equal", "numpy.testing",
    "numpy.ndarray", "numpy.isfinite", "numpy.isnan",
    "math.isclose", "math.isfinite", "math.isnan",
})
#: Every attribute of these is the checks' to use (``np.testing.assert_allclose``) ...
WHOLE_NAMESPACES = frozenset({"torch.testing", "numpy.testing"})
#: ... and of these classes (others are told by their capital: ``torch.Tensor``, ``sympy.Basic``).
CLASSES = frozenset({"numpy.ndarray", "numpy.generic", "numpy.dtype"})
#: Names of comparisons, flagged whatever object they are set on (``for m in mods: m.allclose = f``).
COMPARISON_ATTRS = frozenset({
    "allclose", "isclose", "assert_close", "assert_allclose", "assert_equal", "assert_array_equal",
    "assert_almost_equal", "assert_array_almost_equal", "array_equal", "array_equiv",
})
#: Special methods that decide how values compare, flagged on any class the notebook does not define.
TYPE_DUNDERS = frozenset({"__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__bool__", "__abs__",
                          "__sub__", "__rsub__", "__float__", "__torch_function__", "__array_ufunc__",
                          "__array_function__", "__instancecheck__", "__subclasscheck__"})
#: Outside modules whose functions the checks judge with (read from vaelab's source); vaelab's use of
#: sys, os, pathlib, ... is plumbing, not judging.
JUDGING_ROOTS = frozenset({"torch", "numpy", "sympy", "math", "copy", "random"})
#: Settings namespaces: writing into them is never flagged, even where the checks read them.
SETTINGS = ("torch.backends", "torch._dynamo.config", "torch._inductor.config", "matplotlib")
#: The IPython shell (``get_ipython()`` or its class) and what of it decides how later cells, the
#: test cells among them, are read and run.
SHELLS = ("<ipython>", "IPython.core.interactiveshell.InteractiveShell", "IPython.InteractiveShell",
          "ipykernel.zmqshell.ZMQInteractiveShell")
SHELL_HOOKS = frozenset({"input_transformers_cleanup", "input_transformers_post", "input_transformer_manager",
                         "ast_transformers", "events", "prefilter_manager", "run_cell", "run_cell_async",
                         "run_ast_nodes", "run_code", "transform_cell", "transform_ast", "set_custom_exc",
                         "custom_exceptions", "showtraceback", "_showtraceback", "set_hook", "compile"})
SYS_HOOKS = {
    "sys.modules": "which decides what an import returns",
    "sys.meta_path": "which decides what an import returns",
    "sys.path_hooks": "which decides what an import returns",
    "sys.path_importer_cache": "which decides what an import returns",
    "sys.settrace": "which can watch and change the checks as they run",
    "sys.setprofile": "which can watch and change the checks as they run",
    "threading.settrace": "which can watch and change the checks as they run",
    "threading.setprofile": "which can watch and change the checks as they run",
}
TRACE_CALLS = {"sys.settrace", "sys.setprofile", "threading.settrace", "threading.setprofile", "sys.addaudithook"}
INTROSPECTION = {
    "sys._getframe": "reaches into the calling code's frames",
    "sys._current_frames": "reaches into the calling code's frames",
    "inspect.currentframe": "reaches into the calling code's frames",
    "inspect.stack": "reaches into the calling code's frames",
    "inspect.trace": "reaches into the calling code's frames",
    "inspect.getouterframes": "reaches into the calling code's frames",
    "traceback.walk_stack": "reaches into the calling code's frames",
    "gc.get_objects": "searches the garbage collector's objects",
    "gc.get_referrers": "searches the garbage collector's objects",
    "gc.get_referents": "searches the garbage collector's objects",
}
FRAME_ATTRS = {"f_back", "f_globals", "f_locals", "f_builtins", "tb_frame", "gi_frame", "cr_frame", "ag_frame",
               "__globals__"}
SUSPICIOUS_STRINGS = ("HIDDEN_REFERENCES", "VAELAB_SEALED_RESULTS", "hidden_path", "grader/references",
                      "grader\\references")
HIDDEN_READERS = {"vaelab.references.hidden_path", "vaelab.checks._spec", "vaelab.checks._INDEX"}
EXEC_BUILTINS = {"builtins.exec", "builtins.eval", "builtins.compile"}
IPYTHON_RUNNERS = {"run_cell", "run_cell_async", "ex", "ev", "run_code", "run_line_magic", "run_cell_magic"}
SETATTRS = ("builtins.setattr", "builtins.object.__setattr__", "builtins.type.__setattr__",
            "builtins.delattr", "builtins.object.__delattr__", "builtins.type.__delattr__")
#: Functions that run a string as Python: a literal is read like the cell; anything else is not flagged,
#: because sympy objects go through them too.
SYMPY_PARSERS = {"sympy.sympify", "sympy.S", "sympy.parse_expr", "sympy.parsing.sympy_parser.parse_expr",
                 "sympy.parsing.parse_expr"}
MUTATORS = {"update", "setdefault", "pop", "popitem", "clear", "__setitem__", "__delitem__", "append", "extend",
            "insert", "remove", "add", "discard"}
PATCHERS = {"unittest.mock.patch", "mock.patch"}
#: Names that resolve without an import in the notebook (a snippet, or a notebook that never imports them).
DEFAULT_ALIASES = {
    "torch": "torch", "np": "numpy", "numpy": "numpy", "sp": "sympy", "sympy": "sympy", "math": "math",
    "vaelab": "vaelab", "builtins": "builtins", "__builtins__": "builtins", "sys": "sys", "os": "os", "gc": "gc",
    "inspect": "inspect", "importlib": "importlib", "threading": "threading", "traceback": "traceback",
    "F": "torch.nn.functional", "nn": "torch.nn", "plt": "matplotlib.pyplot", "mpl": "matplotlib",
    "copy": "copy", "random": "random", "unittest": "unittest", "mock": "unittest.mock",
    "get_ipython": "<ipython>.get_ipython",
}
BUILTIN_NAMES = frozenset(dir(builtins))
GLOBALS = "<globals>"  # the student's own module namespace
MAX_DEPTH = 4  # strings run by exec inside strings run by exec ...
MAX_LINE = 80
MAX_MESSAGE = 200

_LOCK = threading.RLock()
_UNPARSABLE = (SyntaxError, ValueError, MemoryError, RecursionError)  # IPython cannot run these either


# ------------------------------------------------------------ derived sets
def _import_bindings(node) -> list:
    """``[(name, path)]`` an import statement binds (relative imports: none)."""
    if isinstance(node, ast.Import):
        return [(a.asname, a.name) if a.asname else (a.name.split(".")[0], a.name.split(".")[0])
                for a in node.names]
    if isinstance(node, ast.ImportFrom) and not node.level and node.module:
        return [(a.asname or a.name, f"{node.module}.{a.name}") for a in node.names if a.name != "*"]
    return []


@functools.lru_cache(maxsize=1)
def judging_paths() -> frozenset:
    """Dotted names of what the checks use: :data:`COMPARISONS` and every
    attribute chain of an outside module (torch, numpy, sympy, math, ...) in
    ``vaelab/checks.py`` and the vaelab modules it imports."""
    paths, todo, seen = set(COMPARISONS), [JUDGING_MODULE], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            tree = ast.parse((VAELAB_SOURCE / f"{name}.py").read_text())
        except (OSError, SyntaxError):
            continue
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                todo.extend([node.module.split(".")[0]] if node.module else [a.name for a in node.names])
            for alias, path in _import_bindings(node):
                aliases[alias] = path
                if isinstance(node, ast.ImportFrom):
                    paths.add(path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                chain, inner = [node.attr], node.value
                while isinstance(inner, ast.Attribute):
                    chain.append(inner.attr)
                    inner = inner.value
                if isinstance(inner, ast.Name) and inner.id in aliases:
                    paths.add(".".join([aliases[inner.id], *reversed(chain)]))
    return frozenset(p for p in paths if p.split(".")[0] in JUDGING_ROOTS)


def _used_names(source: str) -> dict:
    """``{name: ("import", path) | ("call", None)}``: the names a cell
    imports at top level (and from where), and those it reads there without
    binding them itself."""
    import symtable

    try:
        table = symtable.symtable(source, "<cell>", "exec")
        tree = ast.parse(source)
    except _UNPARSABLE:
        return {}
    imported = dict(b for node in tree.body for b in _import_bindings(node))
    used = {}
    for symbol in table.get_symbols():
        if symbol.is_imported():
            used[symbol.get_name()] = ("import", imported.get(symbol.get_name()))
        elif symbol.is_referenced() and not symbol.is_assigned():
            used[symbol.get_name()] = ("call", None)
    return used


def _merge(used: dict, name: str, how: str, path) -> None:
    """One ``(description, imported path)`` a name: the test cells' use before the self-checks'."""
    if name not in used or ("test cells" in how and "test cells" not in used[name][0]):
        used[name] = (how, path)


def _nbg(cell) -> dict:
    """A cell's nbgrader metadata ({} where the student's file has something else there)."""
    meta = cell.get("metadata")
    meta = meta.get("nbgrader") if isinstance(meta, dict) else None
    return meta if isinstance(meta, dict) else {}


def _grade_id(cell):
    grade_id = _nbg(cell).get("grade_id")
    return grade_id if isinstance(grade_id, str) and grade_id else None


def _source(cell) -> str:
    source = cell.get("source", "")
    if isinstance(source, list):
        source = "".join(s for s in source if isinstance(s, str))
    return source if isinstance(source, str) else ""


def _is_code(cell) -> bool:
    return cell.get("cell_type") == "code"


def _locked_names(nb) -> tuple:
    """``({name: "the test cells import", ...}, answers)`` for one notebook:
    the names its locked code cells import, or read without binding them, and
    the names its solution cells define (the answers, the student's to write)."""
    used, answers = {}, set()
    for cell in nb["cells"]:
        if not _is_code(cell):
            continue
        meta = _nbg(cell)
        if meta.get("solution"):
            try:
                tree = ast.parse(_source(cell))
            except _UNPARSABLE:
                continue
            answers |= {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
            answers |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
                        if isinstance(t, ast.Name)}
        elif meta.get("locked"):
            for name, (how, path) in _used_names(_source(cell)).items():
                _merge(used, name, f"the {'test' if meta.get('grade') else 'self-check'} cells {how}", path)
    return used, answers


@functools.lru_cache(maxsize=1)
def _solution_names() -> tuple:
    import nbformat

    used, answers = {}, set()
    for path in sorted(SOLUTIONS.glob("*/*.ipynb")):
        if path.parent.name != path.stem:
            continue
        try:
            u, a = _locked_names(nbformat.read(str(path), as_version=4))
        except Exception:
            continue
        for name, (how, path) in u.items():
            _merge(used, name, how, path)
        answers |= a
    return used, answers


def names_test_cells_use(released=None) -> dict:
    """``{name: ("the test cells import", "vaelab.checks.grade"), name:
    ("the self-check cells call", None), ...}``: the names the locked test and
    self-check cells import (and from where), or call (read) without binding
    them (the hidden tests are read from the solution notebooks, the
    self-checks also from ``released``), less the answers the student writes."""
    used, answers = dict(_solution_names()[0]), set(_solution_names()[1])
    if released is not None:
        u, a = _locked_names(released)
        for name, (how, path) in u.items():
            _merge(used, name, how, path)
        answers |= a
    return {name: use for name, use in used.items() if name not in answers}


# ------------------------------------------------------------ parsing cells
def _python(source: str):
    """A cell as Python: ``(code, body_offset)``; IPython's line magics and
    ``!`` lines become the calls IPython runs, keeping their line; a cell
    magic's body is returned with the offset of its first line. None if it
    does not parse (then IPython does not run any of it either)."""
    try:
        ast.parse(source)
        return source, 0
    except _UNPARSABLE:
        pass
    stripped = source.lstrip("\n")
    if stripped.startswith("%%"):  # line 1: the code in the magic's line (%%timeit's setup), then the body
        lead = len(source) - len(stripped)
        head, _, body = stripped.partition("\n")
        inner = _python(body)
        if inner is None:
            return None
        first = _magic_code(head.partition(" ")[2]) or ""
        code = ("" if "\n" in first else first) + "\n" * (inner[1] + 1) + inner[0]
        try:
            ast.parse(code)
        except _UNPARSABLE:
            return None
        return code, lead
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        code = TransformerManager().transform_cell(source)
        ast.parse(code)
        return code, 0
    except Exception:  # IPython missing, or it does not parse either
        return None


def _magic_code(line: str):
    """The Python in a line magic's argument, after its options (``-n1 f(x)``: ``f(x)``)."""
    words = line.split(" ")
    for start in range(len(words)):
        if start and not any(w.startswith("-") for w in words[:start]):
            break  # only options come before the code
        candidate = " ".join(words[start:]).strip()
        if candidate:
            try:
                ast.parse(candidate)
                return candidate
            except _UNPARSABLE:
                continue
    return None


def _const_str(node):
    """The value of a string the code spells out: a literal, literals joined
    with ``+``, an f-string of literals, ``"".join([...literals])``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        parts = []  # a + b + c is left-nested: walk it without recursing, and stop at the first non-string
        while isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            right = _const_str(node.right)
            if right is None:
                return None
            parts.append(right)
            node = node.left
        left = _const_str(node)
        return None if left is None else left + "".join(reversed(parts))
    if isinstance(node, ast.JoinedStr):
        parts = [_const_str(v) for v in node.values]
        return "".join(parts) if all(p is not None for p in parts) else None
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "join"
            and len(node.args) == 1 and isinstance(node.args[0], (ast.List, ast.Tuple))):
        sep, parts = _const_str(node.func.value), [_const_str(e) for e in node.args[0].elts]
        return sep.join(parts) if sep is not None and all(p is not None for p in parts) else None
    return None


def _reaches(path: str, used: str) -> bool:
    """Whether writing ``path`` changes ``used``, a name the checks use: it
    is that name, or on the way to it (``torch.nn`` for ``torch.nn.Module``),
    or an attribute of it that matters: anything of a class
    (``torch.Tensor.double``) or of a comparison namespace (``torch.testing.*``),
    a special attribute of anything (``torch.allclose.__code__``). A new
    attribute of a module (``F.my_loss``) changes nothing the checks use."""
    if path == used or used.startswith(path + "."):
        return True
    if not path.startswith(used + "."):
        return False
    first = path[len(used) + 1:].split(".")[0]
    last = used.rsplit(".", 1)[-1]
    return (used in WHOLE_NAMESPACES or used in CLASSES or last[:1].isupper()
            or first.startswith("__") and first.endswith("__"))


def _shell_hook(path: str):
    """``events`` for ``<ipython>.events.register``: the hook of the IPython shell a path reaches."""
    for shell in SHELLS:
        if path.startswith(shell + "."):
            hook = path[len(shell) + 1:].split(".")[0]
            return hook if hook in SHELL_HOOKS else None
    return None


def _key(node):
    """A subscript's key when the code spells it out (``sys.modules[__name__]``: ``__main__``)."""
    if isinstance(node, ast.Name) and node.id == "__name__":
        return "__main__"
    return _const_str(node)


def _targets(node) -> list:
    """The assignment targets of a statement (``for``/``with`` targets included)."""
    if isinstance(node, ast.Assign):
        return list(node.targets)
    if isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For, ast.AsyncFor, ast.NamedExpr)):
        return [node.target]
    if isinstance(node, ast.Delete):
        return list(node.targets)
    if isinstance(node, (ast.With, ast.AsyncWith)):
        return [item.optional_vars for item in node.items if item.optional_vars is not None]
    return []


# ------------------------------------------------------------ the scanner
class _Notebook:
    """Aliases, the student's own names and the protected names of one notebook."""

    def __init__(self, trees: list, protected: dict):
        self.protected = protected
        self.judged = judging_paths()
        self.aliases: dict = {}
        self.defined: set = set()  # names the notebook surely rebinds: its top-level defs, classes, imports
        self.classes: set = set()
        for tree in trees:
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    self.defined.add(node.name)
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef):
                    self.classes.add(node.name)
                for name, path in _import_bindings(node):
                    self.defined.add(name)
                    self.aliases.setdefault(name, set()).add(path)
        for _ in range(3):  # t = torch; u = t; ...
            for tree in trees:
                for node in ast.walk(tree):
                    self._alias(node)

    def _alias(self, node) -> None:
        pairs = []
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
            pairs = [(t, node.value) for t in _targets(node)]
        elif isinstance(node, (ast.For, ast.AsyncFor)) and isinstance(node.iter, (ast.Tuple, ast.List, ast.Set)):
            pairs = [(node.target, element) for element in node.iter.elts]
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            pairs = [(item.optional_vars, item.context_expr) for item in node.items if item.optional_vars]
        while pairs:
            target, value = pairs.pop()
            if isinstance(target, (ast.Tuple, ast.List)) and isinstance(value, (ast.Tuple, ast.List)) \
                    and len(target.elts) == len(value.elts):
                pairs.extend(zip(target.elts, value.elts))
            elif isinstance(target, ast.Name):
                paths = self.resolve(value)
                if paths:
                    self.aliases.setdefault(target.id, set()).update(paths)

    # -- resolution
    def resolve(self, node) -> set:
        """The dotted names an expression may stand for (empty: unknown)."""
        if isinstance(node, ast.Name):
            # an assignment may rebind a name in some cells only: keep what it was too (``exec = exec``)
            paths = set(self.aliases.get(node.id, ()))
            if node.id not in self.defined:
                if node.id in DEFAULT_ALIASES:
                    paths.add(DEFAULT_ALIASES[node.id])
                elif node.id in BUILTIN_NAMES:
                    paths.add(f"builtins.{node.id}")
                elif node.id == "__name__":
                    paths.add("__main__")
            return paths
        if isinstance(node, ast.Attribute):
            return {q for p in self.resolve(node.value) for q in self._item(p, node.attr)}
        if isinstance(node, ast.Subscript):
            key = _key(node.slice)
            if key is None:
                return set()
            return {q for p in self.resolve(node.value) for q in self._item(p, key)}
        if isinstance(node, ast.Call):
            funcs = self.resolve(node.func)
            args = node.args
            if "builtins.getattr" in funcs and len(args) >= 2 and _const_str(args[1]) is not None:
                return {f"{p}.{_const_str(args[1])}" for p in self.resolve(args[0])}
            if "builtins.vars" in funcs and len(args) == 1:
                return {f"{p}.__dict__" for p in self.resolve(args[0])}
            if funcs & {"builtins.globals", "builtins.locals"} or (funcs & {"builtins.vars"} and not args):
                return {GLOBALS}
            if "builtins.__import__" in funcs and args and _const_str(args[0]):
                fromlist = len(args) > 3 or any(k.arg == "fromlist" for k in node.keywords)
                return {_const_str(args[0]) if fromlist else _const_str(args[0]).split(".")[0]}
            if "importlib.import_module" in funcs and args and _const_str(args[0]):
                return {_const_str(args[0])}
            if "sys.modules.get" in funcs and args and _const_str(args[0]):
                return {_const_str(args[0])}
            if any(f.endswith("get_ipython") for f in funcs):
                return {"<ipython>"}
            return set()
        if isinstance(node, ast.NamedExpr):
            return self.resolve(node.value)
        return set()

    def _item(self, container: str, key: str) -> set:
        """What ``container[key]`` or ``container.key`` may name: a module in
        ``sys.modules``, an attribute in a namespace dictionary, a name in the
        student's namespace (and what that name stands for), else ``container.key``."""
        if container == "sys.modules":
            return {key}
        if container.endswith(".__dict__"):
            container = container[: -len(".__dict__")]
        if container in ("<ipython>.user_ns", "<ipython>.user_global_ns"):
            container = GLOBALS
        if container in (GLOBALS, "__main__"):
            return {f"{container}.{key}"} | self.resolve(ast.Name(id=key, ctx=ast.Load()))
        return {f"{container}.{key}"}

    # -- judging
    def written(self, path: str, verb: str = "replaces") -> str | None:
        """Why writing the dotted name ``path`` is tampering (None: it is not)."""
        path = path.replace(".__dict__.", ".")
        short = path[:60]
        if path == "__main__" or path == GLOBALS:
            return None
        for namespace in ("__main__.", GLOBALS + "."):
            if path.startswith(namespace):
                name = path[len(namespace):].split(".")[0]
                return self.rebound(name, set()) if "." not in path[len(namespace):] else None
        if path.split(".")[0] == "vaelab":
            return f"{verb} {short}, part of the course's checks"
        if path == "builtins" or path.startswith("builtins."):
            return f"{verb} {short}, which every cell and the checks use"
        for hook, why in SYS_HOOKS.items():
            if path == hook or path.startswith(hook + "."):
                return f"changes {hook}, {why}"
        hook = _shell_hook(path)
        if hook:
            return f"{verb} the shell's {hook}, which decides how the test cells run"
        if path.startswith(tuple(s + "." for s in SETTINGS)) or path in SETTINGS:
            return None
        if any(_reaches(path, j) for j in self.judged):
            return f"{verb} {short}, which the checks use"
        return None

    def written_any(self, container: str, verb: str = "changes", attributes: bool = False) -> str | None:
        """Why writing an unknown key of ``container`` (or, with ``attributes``,
        an unknown attribute: ``setattr(torch, name, f)``) is tampering."""
        owner = container[: -len(".__dict__")] if container.endswith(".__dict__") else container
        if owner in (GLOBALS, "__main__"):
            return None  # which name is unknown: the student's namespace is theirs
        if owner.split(".")[0] == "vaelab" or owner == "builtins" or owner.startswith("builtins."):
            return self.written(owner, verb)
        for hook in SYS_HOOKS:
            if owner == hook or owner.startswith(hook + "."):
                return self.written(owner, verb)
        if attributes or container.endswith(".__dict__"):
            if not owner.startswith(tuple(s + "." for s in SETTINGS)) and owner not in SETTINGS and \
                    any(j.startswith(owner + ".") or _reaches(owner + ".__x__", j) for j in self.judged):
                return f"{verb} attributes of {owner[:60]}, which the checks use"
        return None

    def rebound(self, name: str, values: set) -> str | None:
        """Why binding the student's module-level ``name`` to ``values`` is tampering."""
        if name == "__builtins__":
            return "replaces __builtins__, which every later cell uses"
        if name not in self.protected:
            return None
        how, path = self.protected[name]
        if values and all(v == path or v.startswith("vaelab.") and v.rsplit(".", 1)[-1] == name for v in values):
            return None  # the same helper imported again
        return f"redefines {name}, which {how}"


class _Scanner:
    def __init__(self, notebook: _Notebook, depth: int = 0):
        self.nb = notebook
        self.depth = depth
        self.problems: list = []

    def add(self, node, what) -> None:
        if what:
            self.problems.append((getattr(node, "lineno", 1), what))

    def scan(self, tree) -> list:
        self.visit(tree, True, set())
        return self.problems

    # -- traversal with scopes
    def visit(self, root, module_level: bool, declared: set) -> None:
        """Check every node, outermost first, knowing whether it runs at
        module level (or binds a name a function declared ``global``)."""
        stack = [(root, module_level, declared)]
        while stack:
            node, module_level, declared = stack.pop()
            children = []
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if module_level or node.name in declared:
                    self.add(node, self.nb.rebound(node.name, set()))
                outer = node.decorator_list + getattr(node, "bases", []) + getattr(node, "keywords", [])
                if not isinstance(node, ast.ClassDef):
                    outer += node.args.defaults + [d for d in node.args.kw_defaults if d is not None]
                inner = set() if isinstance(node, ast.ClassDef) else \
                    {n for s in ast.walk(node) if isinstance(s, ast.Global) for n in s.names}
                children = [(c, module_level, declared) for c in outer] + [(s, False, inner) for s in node.body]
            elif isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
                self.check(node, False, set())
                children = [(c, False, set()) for c in ast.iter_child_nodes(node)]
            else:
                self.check(node, module_level, declared)
                children = [(c, module_level, declared) for c in ast.iter_child_nodes(node)]
            stack.extend(reversed(children))

    # -- one node
    def check(self, node, module_level: bool, declared: set) -> None:
        nb = self.nb
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete, ast.For, ast.AsyncFor,
                             ast.With, ast.AsyncWith, ast.NamedExpr)):
            value = getattr(node, "value", None) if isinstance(node, (ast.Assign, ast.AnnAssign, ast.NamedExpr)) \
                else None
            verb = "deletes" if isinstance(node, ast.Delete) else "replaces"
            for target in _targets(node):
                self.target(node, target, value, module_level, declared, verb)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for name, path in _import_bindings(node):
                if module_level or name in declared:
                    self.add(node, nb.rebound(name, {path}))
                self.read(node, path)
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                names = [node.module or ""] if not node.level else []
            if any(n == "grader" or n.startswith("grader.") for n in names):
                self.add(node, "imports the instructors' grader package")
        elif isinstance(node, ast.ExceptHandler) and node.name and (module_level or node.name in declared):
            self.add(node, nb.rebound(node.name, set()))
        elif isinstance(node, ast.Call):
            self.call(node)
        elif isinstance(node, (ast.Name, ast.Attribute)) and isinstance(node.ctx, ast.Load):
            for path in nb.resolve(node):
                self.read(node, path)
            if isinstance(node, ast.Attribute) and node.attr in FRAME_ATTRS:
                self.add(node, f"reaches into other code's variables (.{node.attr})")
            if (isinstance(node, ast.Attribute) and node.attr == "hidden_path" or isinstance(node, ast.Name)
                    and node.id == "hidden_path") and not nb.resolve(node) & HIDDEN_READERS:
                self.add(node, "looks for the hidden references (hidden_path)")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) or isinstance(node, ast.BinOp):
            text = _const_str(node)
            found = [s for s in SUSPICIOUS_STRINGS if text and s in text]
            if found:
                self.add(node, f"looks for the hidden references or their results ({found[0]})")

    def read(self, node, path: str) -> None:
        if path in INTROSPECTION:
            self.add(node, f"{INTROSPECTION[path]} ({path})")
        elif path in HIDDEN_READERS:
            self.add(node, f"looks for the hidden references ({path})")
        elif path == "grader" or path.startswith("grader."):
            self.add(node, "imports the instructors' grader package")

    def target(self, node, target, value, module_level, declared, verb) -> None:
        nb = self.nb
        if isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self.target(node, element, None, module_level, declared, verb)
        elif isinstance(target, ast.Starred):
            self.target(node, target.value, None, module_level, declared, verb)
        elif isinstance(target, ast.Name):
            if module_level or target.id in declared:
                self.add(node, nb.rebound(target.id, nb.resolve(value) if value is not None else set()))
        elif isinstance(target, ast.Attribute):
            self.attribute(node, target.value, target.attr, verb)
        elif isinstance(target, ast.Subscript):
            containers = nb.resolve(target.value)
            key = _key(target.slice)
            for container in containers:
                if container == "sys.modules":
                    self.add(node, nb.written(container))
                elif key is not None:
                    self.add(node, self._written_item(container, key, value, "changes" if verb == "replaces"
                                                      else verb))
                else:
                    self.add(node, nb.written_any(container))

    def _written_item(self, container: str, key: str, value, verb: str) -> str | None:
        if container.endswith(".__dict__"):
            container = container[: -len(".__dict__")]
        if container in ("<ipython>.user_ns", "<ipython>.user_global_ns"):
            container = GLOBALS
        path = f"{container}.{key}"
        for namespace in (GLOBALS + ".", "__main__."):
            if path.startswith(namespace) and "." not in path[len(namespace):]:
                return self.nb.rebound(path[len(namespace):], self.nb.resolve(value) if value is not None else set())
        return self.nb.written(path, "replaces" if container.endswith(".__dict__") or container == "builtins"
                               else verb)

    def attribute(self, node, receiver, attr: str, verb: str) -> None:
        """``receiver.attr`` is written (assigned, deleted, ``setattr``)."""
        nb = self.nb
        paths = nb.resolve(receiver)
        for path in paths:
            self.add(node, nb.written(f"{path}.{attr}", verb))
        if not paths:
            if attr in COMPARISON_ATTRS:
                self.add(node, f"{verb} .{attr} of an object, as a patched comparison would")
            elif attr in TYPE_DUNDERS and self._a_type(receiver):
                self.add(node, f"{verb} {attr} of a type the checks may compare")

    def _a_type(self, receiver) -> bool:
        """``type(x)``, ``x.__class__``, or a name the notebook does not define as a class."""
        if isinstance(receiver, ast.Call) and self.nb.resolve(receiver.func) & {"builtins.type"}:
            return True
        if isinstance(receiver, ast.Attribute) and receiver.attr in ("__class__", "__base__", "__mro__"):
            return True
        return isinstance(receiver, ast.Name) and receiver.id not in self.nb.classes and receiver.id != "self"

    def call(self, node) -> None:
        nb = self.nb
        funcs = nb.resolve(node.func)
        args = node.args
        for path in nb.resolve(node):  # getattr(inspect, "stack"), importlib.import_module("grader")
            self.read(node, path)
        if "builtins.getattr" in funcs and len(args) >= 2 and _const_str(args[1]) in FRAME_ATTRS:
            self.add(node, f"reaches into other code's variables (.{_const_str(args[1])})")
        # setattr(obj, "name", value), object.__setattr__(...), obj.__setattr__("name", value)
        receiver, name_node, verb = None, None, "replaces"
        for func in SETATTRS:
            if func in funcs and len(args) >= 2:
                receiver, name_node = args[0], args[1]
                verb = "deletes" if "del" in func else "replaces"
        if receiver is None and isinstance(node.func, ast.Attribute) and node.func.attr in ("__setattr__",
                                                                                            "__delattr__") and args:
            receiver, name_node = node.func.value, args[0]
            verb = "deletes" if node.func.attr == "__delattr__" else "replaces"
        if receiver is not None:
            name = _const_str(name_node)
            if name is not None:
                self.attribute(node, receiver, name, verb)
            else:
                for path in nb.resolve(receiver):
                    self.add(node, nb.written_any(path, verb.replace("replaces", "changes"), attributes=True))
        # d.update(...), d["k"] via d.__setitem__, sys.meta_path.insert(...)
        if isinstance(node.func, ast.Attribute) and node.func.attr in MUTATORS:
            for container in nb.resolve(node.func.value):
                keys = []
                if node.func.attr in ("__setitem__", "__delitem__", "setdefault", "pop") and args:
                    keys = [_const_str(args[0])]
                elif node.func.attr == "update":
                    keys = [k.arg for k in node.keywords]
                    for arg in args:
                        if isinstance(arg, ast.Dict):
                            keys += [_const_str(k) if k is not None else None for k in arg.keys]
                        elif isinstance(arg, ast.Call) and nb.resolve(arg.func) & {"builtins.dict"}:
                            keys += [k.arg for k in arg.keywords] + [None] * bool(arg.args)
                        else:
                            keys.append(None)
                if container in SYS_HOOKS or not keys:
                    self.add(node, nb.written_any(container) if container not in SYS_HOOKS
                             else nb.written(container))
                for key in keys:
                    if key is None:
                        self.add(node, nb.written_any(container))
                    else:
                        self.add(node, self._written_item(container, key, None, "changes"))
        # unittest.mock.patch("torch.allclose"), patch.object(torch, "allclose"), patch.dict(sys.modules)
        for func in funcs:
            if func in PATCHERS and args and _const_str(args[0]):
                self.add(node, nb.written(_const_str(args[0]), "patches"))
            elif func in {p + ".object" for p in PATCHERS} and len(args) >= 2 and _const_str(args[1]):
                self.attribute(node, args[0], _const_str(args[1]), "patches")
            elif func in {p + ".dict" for p in PATCHERS} and args:
                for container in nb.resolve(args[0]):
                    self.add(node, nb.written(container) if container in SYS_HOOKS else nb.written_any(container))
            elif func in {p + ".multiple" for p in PATCHERS} and args:
                for keyword in node.keywords:
                    if keyword.arg:
                        self.attribute(node, args[0], keyword.arg, "patches")
        hooks = set()
        for func in funcs:
            owner = func.rsplit(".", 1)[0]
            hook = _shell_hook(owner) if owner not in SHELLS else None  # a method of a hook: events.register
            if hook is None and _shell_hook(func) in ("set_custom_exc", "set_hook"):
                hook = _shell_hook(func)
            if hook:
                hooks.add(hook)
        if hooks:  # get_ipython().events.register(...), ....input_transformers_post.append(...)
            self.add(node, f"changes the shell's {sorted(hooks)[0]}, which decides how the test cells run")
        if funcs & TRACE_CALLS:
            hook = sorted(funcs & TRACE_CALLS)[0]
            self.add(node, f"installs a hook ({hook}) that can watch and change the checks as they run")
        if "vaelab.checks.run" in funcs and any(k.arg == "hidden" and not (isinstance(k.value, ast.Constant)
                                                                        and not k.value.value)
                                               for k in node.keywords):
            self.add(node, "looks for the hidden references (run(..., hidden=True))")
        # code in strings
        if funcs & SYMPY_PARSERS and args and _const_str(args[0]) is not None:
            self.code(node, args[0], "sympify")
        if funcs & EXEC_BUILTINS:
            self.code(node, args[0] if args else None, sorted(funcs & EXEC_BUILTINS)[0].split(".")[1])
        elif isinstance(node.func, ast.Attribute) and node.func.attr in IPYTHON_RUNNERS and \
                any(p == "<ipython>" or p.startswith("IPython") for p in nb.resolve(node.func.value)):
            if node.func.attr == "run_line_magic":
                line = _const_str(args[1]) if len(args) > 1 else None
                if line is not None:
                    self.code(node, None, "", code=_magic_code(line) or "", prefix="")
                else:
                    self.add(node, "runs code built at run time (a magic), which this check cannot read")
            elif node.func.attr == "run_cell_magic":
                line = _const_str(args[1]) if len(args) > 1 else None
                body = _const_str(args[2]) if len(args) > 2 else None
                if line is None or body is None:
                    self.add(node, "runs code built at run time (a magic), which this check cannot read")
                else:
                    for code in (_magic_code(line) or "", body):
                        self.code(node, None, "", code=code, prefix="")
            else:
                self.code(node, args[0] if args else None, node.func.attr)

    def code(self, node, arg, how: str, code=None, prefix: str = "runs code that ") -> None:
        """Scan the Python a call runs from a string."""
        if code is None:
            if isinstance(arg, ast.Call) and self.nb.resolve(arg.func) & {"builtins.compile"}:
                return  # exec(compile(...)): the compile call is read on its own
            code = _const_str(arg) if arg is not None else None
            if code is None:
                self.add(node, f"runs code built at run time ({how}), which this check cannot read")
                return
        if self.depth >= MAX_DEPTH:
            self.add(node, f"runs code nested too deep ({how}) for this check to read")
            return
        parsed = _python(code)
        if parsed is None:
            return  # it raises SyntaxError when run
        try:
            tree = ast.parse(parsed[0])
        except _UNPARSABLE:
            return
        inner = _Scanner(self.nb, self.depth + 1)
        for _, what in inner.scan(tree):
            self.add(node, prefix + what if prefix and not what.startswith("runs code") else what)


# ------------------------------------------------------------ public API
def _trees(sources: list) -> list:
    trees = []
    for source in sources:
        parsed = _python(source)
        try:
            trees.append((ast.parse(parsed[0]), parsed[1]) if parsed else (None, 0))
        except _UNPARSABLE:
            trees.append((None, 0))
    return trees


def _scan(sources: list, protected: dict, report: list) -> list:
    """``[(index, line, what)]`` for the sources whose index is in ``report``;
    aliases are read from all of them."""
    with _LOCK:
        trees = _trees(sources)
        notebook = _Notebook([t for t, _ in trees if t is not None], protected)
        found = []
        for index in report:
            tree, offset = trees[index]
            if tree is None:
                continue  # a cell that does not parse does not run
            try:
                problems = _Scanner(notebook).scan(tree)
            except RecursionError:  # Python runs it, so it must not pass unread
                problems = [(1, "is nested too deeply for this check to read")]
            for line, what in problems:
                found.append((index, line + offset, what))
        seen, unique = set(), []
        for index, line, what in found:  # one problem per line: the outermost, found first
            if (index, line) not in seen:
                seen.add((index, line))
                unique.append((index, line, what))
        return sorted(unique, key=lambda f: (f[0], f[1]))


def scan_source(source: str) -> list:
    """Problems found in one cell's source on its own: ``[(line, what), ...]``."""
    return [(line, what) for _, line, what in _scan([source], names_test_cells_use(), [0])]


def _line(source: str, number: int) -> str:
    lines = source.splitlines()
    text = lines[number - 1].strip() if 0 < number <= len(lines) else ""
    return text.replace("`", "'")


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 0)].rstrip() + "…"


def violation(label: str, line: int, text: str, what: str) -> str:
    """``cell 'id', line 3: `source line` what it does``, at most MAX_MESSAGE characters."""
    head = f"cell {_shorten(label, 40)}, line {line}: "
    what = _shorten(what, 90)
    room = min(MAX_LINE, MAX_MESSAGE - len(head) - len(what) - 3)
    return f"{head}`{_shorten(text, room)}` {what}"


def _cell_label(cell, position: int) -> str:
    grade_id = _grade_id(cell)  # the student's file may say anything: keep what nbgrader ids are made of
    return "'" + re.sub(r"[^A-Za-z0-9_.-]", "_", grade_id) + "'" if grade_id else str(position)


def scan_notebook(nb, released=None) -> list:
    """Violations in a submitted notebook, one string each (see the module
    docstring for the format), in notebook order.

    Every code cell is the student's to edit, whatever its tags or metadata
    say; a cell is skipped only when ``released`` (the instructor's released
    notebook) has a locked cell with the same nbgrader grade_id and the very
    same source. Without ``released`` every code cell is scanned."""
    untouched = {}
    if released is not None:
        untouched = {_grade_id(c): _source(c) for c in released["cells"]
                     if _is_code(c) and _nbg(c).get("locked") and _grade_id(c)}
    cells = [(position, cell) for position, cell in enumerate(nb["cells"], 1) if _is_code(cell)]
    sources = [_source(cell) for _, cell in cells]
    report = [i for i, (_, cell) in enumerate(cells)
              if not (_grade_id(cell) in untouched and untouched[_grade_id(cell)] == sources[i])]
    found = _scan(sources, names_test_cells_use(released), report)
    return [violation(_cell_label(cells[i][1], cells[i][0]), line, _line(sources[i], line), what)
            for i, line, what in found]
