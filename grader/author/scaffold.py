"""A course author's scaffold: `make todo` and `make assignment` (docs/authoring.md).

``make todo ASSIGNMENT=01_elbo NAME=kl_diag_gaussians [AFTER=kl_standard_normal] [POINTS=2] [ARGS="mu, logvar"]``
inserts a TODO's four cells into ``solutions/<A>/<A>.ipynb`` (the task's markdown, the solution cell with
its markers and a stub signature, ``check-<name>``, ``test-<name>``; each cell's id is its nbgrader
``grade_id``), appends stubs with what to fill in to ``grader/author/{cases,mutants,variants}/<A>.py``, and
adds the TODO to the assignment's row of the README's course table.

``make assignment NAME=06_flows [TITLE="Normalizing flows"]`` creates the notebook (header with the
course links, a ``given`` cell, a summary), an empty cases, mutants and variants file, the README rows
(course table and the Binder timing table), a due-date line in ``grader/course.toml``, and the
previous (and next) notebook's header link to it.

Both refuse, with nothing written, a name that is not valid or that clashes with what exists.
``python -m grader.author.scaffold check`` lists whatever the hand-kept places (notebook header links,
README tables, course.toml's due dates) say that the notebooks do not: tests/test_scaffold.py runs it.

May import: ``grader`` top-level modules (``grader``, ``grader.notebooks``). Nothing from publish, grade,
sandbox or after.
"""
from __future__ import annotations

import argparse
import datetime as dt
import keyword
import re
import sys
from pathlib import Path

import nbformat

import grader
from grader.notebooks import defined_names, stub_names

NBGRADER = {"schema_version": 3, "task": False}
NAV_PREFIX = "*Open course on Variational Autoencoders*"
ASSIGNMENT_RE = re.compile(r"^(\d\d)_([a-z][a-z0-9]*(?:_[a-z0-9]+)*)$")
KINDS = ("cases", "mutants", "variants")
NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight"}


class ScaffoldError(ValueError):
    """The scaffold refuses: bad name, clash, unknown assignment. Nothing was written."""


# --------------------------------------------------------------------------- paths
def _notebook(root: Path, a: str) -> Path:
    return root / "solutions" / a / f"{a}.ipynb"


def _author_file(root: Path, kind: str, a: str) -> Path:
    return root / "grader" / "author" / kind / f"{a}.py"


def _assignments(root: Path) -> list:
    folder = root / "solutions"
    return sorted(p.name for p in folder.iterdir() if (p / f"{p.name}.ipynb").exists())


def _rel(root: Path, path: Path) -> str:
    return str(path.relative_to(root))


# --------------------------------------------------------------------------- cells
def _code(cell_id: str, source: str, **nbgrader) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.id = cell_id
    cell.metadata = {"nbgrader": {**nbgrader, "grade_id": cell_id, **NBGRADER}}
    return cell


def _markdown(cell_id: str, source: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_markdown_cell(source)
    cell.id = cell_id
    return cell


def todo_cells(name: str, args: str, points: int) -> list:
    """The four cells of one TODO, exactly as the existing TODOs are built."""
    prediction = name.startswith("predict_")
    if prediction:
        task = (f"### Predict, then run: `{name}`\n\n"
                f"**Predict** (before running the experiment below): TODO(author): the question, then the "
                f"choices (a)–(d). `{name}()` returns your letter.")
        body = ('    """Your prediction: one letter, "a", "b", "c" or "d"."""\n'
                "    ### BEGIN SOLUTION\n"
                '    return "a"  # TODO(author): the right letter\n'
                "    ### END SOLUTION")
        signature = f"def {name}():"
    else:
        task = (f"### TODO: `{name}`\n\n"
                f"**TODO.** Implement `{name}({args})`: TODO(author): what it computes, the shapes and dtypes "
                f"it takes and returns.")
        body = ('    """TODO(author): one line on what it returns (shapes in and out)."""\n'
                "    ### BEGIN SOLUTION\n"
                f'    raise NotImplementedError("TODO(author): the solution of {name}")\n'
                "    ### END SOLUTION")
        signature = f"def {name}({args}):"
    hidden = (f"# Hidden test: {name} on other inputs ({points} point{'s' if points != 1 else ''}).\n"
              "### BEGIN HIDDEN TESTS\n"
              "from vaelab.checks import grade\n"
              f'grade("{name}", {name})\n'
              "### END HIDDEN TESTS")
    return [
        _markdown(f"md-{name}", task),
        _code(name, f"{signature}\n{body}", grade=False, locked=False, solution=True),
        _code(f"check-{name}", f'check("{name}", {name})', grade=False, locked=True, solution=False),
        _code(f"test-{name}", hidden, grade=True, locked=True, points=points, solution=False),
    ]


def _todo_names(nb) -> list:
    return [c.id for c in nb.cells if c.cell_type == "code"
            and c.metadata.get("nbgrader", {}).get("solution") and not c.metadata["nbgrader"].get("grade")]


def _insert_at(nb, after: str | None) -> int:
    """Index after ``test-<after>`` (and its ``explain-<after>`` cell, if any); without ``after``, after the
    last TODO's; in a notebook with no TODO yet, before its closing markdown cell."""
    ids = [c.id for c in nb.cells]
    todos = _todo_names(nb)
    anchor = after or (todos[-1] if todos else None)
    if anchor is None:
        last = nb.cells[-1] if nb.cells else None
        return len(nb.cells) - 1 if last is not None and last.cell_type == "markdown" and len(nb.cells) > 2 \
            else len(nb.cells)
    i = ids.index(f"test-{anchor}") + 1
    while i < len(ids) and ids[i] == f"explain-{anchor}":
        i += 1
    return i


# --------------------------------------------------------------------------- author-file stubs
def _rule(name: str) -> str:
    return "# " + "-" * max(3, 76 - len(name)) + " " + name


def cases_stub(a: str, name: str, args: str) -> str:
    if name.startswith("predict_"):
        body = (f'    choices = {{"kind": "choice", "cases": [case("your prediction", ["a", "b", "c", "d"])]}}\n'
                f"    return choices  # the public file keeps the choices only; the answer is recorded hidden\n")
        fill = "Nothing to fill in: the answer is the solution cell's letter.\n"
    else:
        body = (f"    # TODO(author): the inputs of {name}({args}), one case(label, *args) each; then delete the raise.\n"
                f"    #   public: shipped with the notebook and run by its self-check (small, readable inputs);\n"
                f"    #   hidden: the graded test: other shapes and values than the public ones (batch 97, float64,\n"
                f"    #   an edge case). Every mistake in grader/author/mutants/{a}.py must be separated by a public\n"
                f"    #   case and by a hidden one. Build tensors from seeded generators:\n"
                f"    #   g = torch.Generator().manual_seed(1); torch.randn(4, 3, generator=g)\n"
                f'    # if hidden:\n'
                f'    #     return {{"kind": "call", "cases": [case("batch 97, latent 7", ...), ...]}}\n'
                f'    # return {{"kind": "call", "cases": [case("batch 4, latent 3", ...), ...]}}\n'
                f"    raise NotImplementedError(\"grader/author/cases/{a}.py: fill in the cases of {name} \"\n"
                f"                              \"(docs/authoring.md, Add a case)\")\n")
        fill = ""
    return (f"\n\n{_rule(name)}\n"
            f"# Added by `make todo ASSIGNMENT={a} NAME={name}`.{' ' + fill if fill else chr(10)}"
            f"\n"
            f"def _{name}_cases(hidden: bool) -> dict:\n"
            f"{body}\n"
            f"\n"
            f"_public_before_{name}, _hidden_before_{name} = public, hidden\n"
            f"\n\n"
            f"def public():\n"
            f"    return {{**_public_before_{name}(), \"{name}\": _{name}_cases(hidden=False)}}\n"
            f"\n\n"
            f"def hidden():\n"
            f"    return {{**_hidden_before_{name}(), \"{name}\": _{name}_cases(hidden=True)}}\n")


def mutants_stub(a: str, name: str, args: str) -> str:
    if name.startswith("predict_"):
        example = (f'# @mutant("{name}", "b", hint="TODO(author): why (b) is wrong, one sentence.")\n'
                   f"# def {name}():\n"
                   f'#     return "b"\n')
        what = "# Every wrong letter is a mistake, with a hint that says why it is wrong (not which letter is right).\n"
    else:
        example = (f'# @mutant("{name}", "short_name",\n'
                   f'#         hint="TODO(author): what the student probably did and where to look, never the answer.")\n'
                   f"# def {name}({args}):\n"
                   f"#     return ...  # the wrong answer, written as a student would\n")
        what = ("# The mistakes students make in it, each written as the student would, under the student's name.\n")
    return (f"\n\n{_rule(name)}\n"
            f"# Added by `make todo ASSIGNMENT={a} NAME={name}`: TODO(author), uncomment and fill in.\n"
            f"{what}"
            f"# A hint is one sentence ending with a full stop, under 200 characters, unique in this assignment;\n"
            f"# the name is unique for this TODO. `make references` requires a public and a hidden case that\n"
            f"# separate each mistake (docs/authoring.md, Add a mistake).\n"
            f"{example}")


def variants_stub(a: str, name: str, args: str) -> str:
    if name.startswith("predict_"):
        return (f"\n\n{_rule(name)}\n"
                f"# {name} is a prediction: it has one right letter and needs no correct variant.\n")
    return (f"\n\n{_rule(name)}\n"
            f"# Added by `make todo ASSIGNMENT={a} NAME={name}`: TODO(author), uncomment and fill in.\n"
            f"# At least one correct answer written differently from the solution, with one sentence (ending\n"
            f"# with a full stop) saying why it is correct: the tolerances are derived from them, and\n"
            f"# `make references` stops with \"no correct variants\" without one (docs/authoring.md, Add a variant).\n"
            f'# @variant("{name}", "short_name", why="TODO(author): what differs from the solution, and why it is right.")\n'
            f"# def {name}({args}):\n"
            f"#     return ...\n")


def _new_author_file(kind: str, a: str) -> str:
    if kind == "cases":
        return (f'"""Reference inputs for {a}: `public()` ships to students (the self-checks), `hidden()` is graded.\n'
                f'Created by `make assignment NAME={a}`; `make todo ASSIGNMENT={a} NAME=...` adds each TODO\'s stub."""\n'
                "import torch\n\nfrom grader.author.cases import case\n\n\n"
                "def public():\n    return {}\n\n\n"
                "def hidden():\n    return {}\n")
    what = "Misconceptions" if kind == "mutants" else "Correct variants"
    names = "mutant" if kind == "mutants" else "variant"
    return (f'"""{what} for {a}. Each definition uses the student\'s name."""\n'
            f"import torch\n\nfrom grader.author.mutants import {names}  # noqa: F401\n")


# --------------------------------------------------------------------------- README and course.toml
COURSE_ROW = re.compile(r"^\| (\d+) \| \[`(\d\d_\w+)`\]\(assignments/\2/\2\.ipynb\) \|(.*?)\|(.*)\|\s*$")
TIMING_ROW = re.compile(r"^\| (\d\d_\w+) \|")
DUE_LINE = re.compile(r'^#?\s*"(\d\d_\w+)"\s*=')


def _table_lines(lines: list, header_start: str) -> tuple[int, int]:
    """(first row, end) of the markdown table whose header line starts with ``header_start``."""
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start)) + 2
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return start, end


def _course_rows(readme: str) -> list:
    lines = readme.splitlines()
    start, end = _table_lines(lines, "| # | notebook |")
    return [COURSE_ROW.match(line) for line in lines[start:end]]


def _timing_rows(readme: str) -> list:
    lines = readme.splitlines()
    start, end = _table_lines(lines, "| notebook | wall time |")
    return [TIMING_ROW.match(line) for line in lines[start:end]]


def _you_build(todos: list, build: str) -> list:
    """What the README's "you build" cell fails to say about ``todos``."""
    problems = []
    for todo in todos:
        if not todo.startswith("predict_") and f"`{todo}`" not in build:
            problems.append(f"does not name the TODO `{todo}`")
    n = sum(t.startswith("predict_") for t in todos)
    said = re.search(r"\b(one|two|three|four|five|six|seven|eight) predictions?\b", build)
    if n and (not said or said.group(1) != NUMBER_WORDS.get(n)):
        problems.append(f"should say {NUMBER_WORDS.get(n, n)} prediction{'s' if n > 1 else ''}")
    if not n and said:
        problems.append("mentions predictions the notebook does not have")
    return problems


def _add_to_build(build: str, name: str, todos: list) -> str:
    """The "you build" cell with ``name`` added (a new function, or one more prediction)."""
    build = build.strip()
    if name.startswith("predict_"):
        n = sum(t.startswith("predict_") for t in todos) + 1
        words = f"{NUMBER_WORDS.get(n, n)} prediction{'s' if n > 1 else ''}"
        found = re.search(r"\b(one|two|three|four|five|six|seven|eight) predictions?\b", build)
        if found:
            return build[:found.start()] + words + build[found.end():]
        return f"{build}, {words}" if build else words
    found = re.search(r",?\s*\b(one|two|three|four|five|six|seven|eight) predictions?\b", build)
    if found:
        return f"{build[:found.start()]}, `{name}`{build[found.start():]}"
    return f"{build}, `{name}`" if build else f"`{name}`"


def _readme_with_todo(readme: str, a: str, name: str, todos: list) -> str:
    lines = readme.splitlines(keepends=True)
    for i, line in enumerate(lines):
        m = COURSE_ROW.match(line)
        if m and m.group(2) == a:
            build = _add_to_build(m.group(3), name, todos)
            lines[i] = f"| {m.group(1)} | [`{a}`](assignments/{a}/{a}.ipynb) | {build} |{m.group(4)}|\n"
            return "".join(lines)
    raise ScaffoldError(f"README.md: the course table has no row for {a}; add it (make assignment adds one)")


def _readme_with_assignment(readme: str, a: str, order: list) -> str:
    lines = readme.splitlines(keepends=True)
    number = int(ASSIGNMENT_RE.match(a).group(1))
    for header, row in (("| # | notebook |", f"| {number} | [`{a}`](assignments/{a}/{a}.ipynb) |  | "
                                            f"TODO(author): what the student sees |\n"),
                        ("| notebook | wall time |", f"| {a} | not measured yet (`make test-binder`) | |\n")):
        start, end = _table_lines([x.rstrip("\n") for x in lines], header)
        at = start + order.index(a)
        at = min(at, end)
        lines.insert(at, row)
    return "".join(lines)


def _course_toml_with(text: str, a: str, order: list) -> str:
    """A due line for ``a`` in the ``[due]`` table: a week after the previous assignment's date if it
    has one, commented out like the examples until the instructor sets it."""
    lines = text.splitlines(keepends=True)
    section = next(i for i, line in enumerate(lines) if line.strip() == "[due]")
    end = next((i for i in range(section + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    while end > section + 1 and not lines[end - 1].strip():
        end -= 1
    date = "2026-12-31T23:59:00Z"
    previous = order[order.index(a) - 1] if order.index(a) > 0 else None
    at = end
    for i in range(section + 1, end):
        m = DUE_LINE.match(lines[i])
        if m and m.group(1) == previous:
            found = re.search(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)Z", lines[i])
            if found:
                date = (f"{(dt.date.fromisoformat(found.group(1)) + dt.timedelta(days=7)).isoformat()}"
                        f"T{found.group(2)}Z")
            at = i + 1
        elif m and m.group(1) > a and at == end:
            at = i
    lines.insert(at, f'# "{a}" = {date}   # set its due date, then remove the "# "\n')
    return "".join(lines)


# --------------------------------------------------------------------------- header links
NAV_LINK = re.compile(r"(previous|next): \[([^\]]*)\]\(\.\./(\d\d_\w+)/\3\.ipynb\)")


def _nav_line(nb) -> tuple[int, str] | None:
    first = nb.cells[0].source.splitlines() if nb.cells else []
    for i, line in enumerate(first):
        if line.startswith(NAV_PREFIX):
            return i, line
    return None


def _label(a: str, title: str | None = None) -> str:
    m = ASSIGNMENT_RE.match(a)
    return f"{m.group(1)} · {title or m.group(2).replace('_', ' ')}"


def _set_link(line: str, which: str, target: str, label: str) -> str:
    link = f"{which}: [{label}](../{target}/{target}.ipynb)"
    for m in NAV_LINK.finditer(line):
        if m.group(1) == which:
            return line[:m.start()] + link + line[m.end():]
    if which == "previous":  # previous comes before next
        m = next((m for m in NAV_LINK.finditer(line) if m.group(1) == "next"), None)
        if m:
            return line[:m.start()] + link + " · " + line[m.start():]
    return f"{line} · {link}"


def _relinked(nb, which: str, target: str, label: str):
    found = _nav_line(nb)
    if found is None:
        raise ScaffoldError(f"no line starting with {NAV_PREFIX!r} in the first cell to link from")
    i, line = found
    source = nb.cells[0].source.splitlines()
    source[i] = _set_link(line, which, target, label)
    nb.cells[0].source = "\n".join(source)
    return nb


def course_problems(root: Path | None = None) -> list:
    """What the hand-kept places say that the notebooks do not: each notebook's previous/next links,
    the README's course table (one row per assignment in course order, naming every TODO and the
    number of predictions), its Binder timing table, and course.toml's due lines."""
    root = Path(root or grader.ROOT)
    order = _assignments(root)
    problems = []
    for k, a in enumerate(order):
        nb = nbformat.read(str(_notebook(root, a)), as_version=4)
        found = _nav_line(nb)
        if found is None:
            problems.append(f"solutions/{a}/{a}.ipynb: no line starting with {NAV_PREFIX!r} in the first cell")
            continue
        links = {m.group(1): m.group(3) for m in NAV_LINK.finditer(found[1])}
        for which, want in (("previous", order[k - 1] if k else None), ("next", order[k + 1] if k + 1 < len(order) else None)):
            if links.get(which) != want:
                problems.append(f"solutions/{a}/{a}.ipynb: the header's {which} link goes to {links.get(which)}, "
                                f"the course order says {want}")
        for kind in KINDS:
            if not _author_file(root, kind, a).exists():
                problems.append(f"{_rel(root, _author_file(root, kind, a))} is missing")
    readme = (root / "README.md").read_text()
    rows = _course_rows(readme)
    if any(r is None for r in rows) or [r.group(2) for r in rows] != order:
        problems.append(f"README.md: the course table's rows are {[r and r.group(2) for r in rows]}, "
                        f"the assignments (folders of solutions/) are {order}")
    for r in rows:
        if r is None or r.group(2) not in order:
            continue
        if int(r.group(1)) != int(ASSIGNMENT_RE.match(r.group(2)).group(1)):
            problems.append(f"README.md: the course table numbers {r.group(2)} as {r.group(1)}")
        nb = nbformat.read(str(_notebook(root, r.group(2))), as_version=4)
        problems += [f"README.md: the course table's row of {r.group(2)} {p}" for p in _you_build(_todo_names(nb), r.group(3))]
    timing = [r.group(1) if r else None for r in _timing_rows(readme)]
    if timing != order:
        problems.append(f"README.md: the Binder timing table's rows are {timing}, the assignments are {order}")
    toml = (root / "grader" / "course.toml").read_text()
    due = [m.group(1) for m in map(DUE_LINE.match, toml.splitlines()) if m]
    if sorted(due) != order:
        problems.append(f"grader/course.toml: [due] has lines for {due} (commented or not), the assignments are {order}")
    return problems


# --------------------------------------------------------------------------- the commands
def _valid_identifier(name: str) -> None:
    if not name or not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_") or not name.isascii():
        raise ScaffoldError(f"{name!r} is not a valid TODO name: a Python identifier (letters, digits, _), "
                            f"not a keyword, not starting with _ (e.g. kl_diag_gaussians)")


def add_todo(assignment: str, name: str, after: str | None = None, points: int | None = None,
             args: str = "x", root: Path | None = None) -> list:
    """Insert TODO ``name`` into ``assignment``; return the files written. Raises ScaffoldError (nothing
    written) on an unknown assignment, a bad or clashing name, or an unknown ``after``."""
    root = Path(root or grader.ROOT)
    order = _assignments(root)
    if assignment not in order:
        raise ScaffoldError(f"unknown assignment {assignment!r}; choose from {', '.join(order)} "
                            f"(or create it with make assignment NAME={assignment})")
    _valid_identifier(name)
    points = (1 if name.startswith("predict_") else 2) if points is None else int(points)
    if points <= 0:
        raise ScaffoldError(f"POINTS={points}: a TODO's hidden test carries at least 1 point")
    try:
        compile(f"def f({args}): pass", "<args>", "exec")
    except SyntaxError:
        raise ScaffoldError(f"ARGS={args!r} is not a Python parameter list (e.g. \"mu, logvar\")") from None
    path = _notebook(root, assignment)
    nb = nbformat.read(str(path), as_version=4)
    todos = _todo_names(nb)
    ids = {c.id for c in nb.cells}
    clash = sorted({name, f"check-{name}", f"test-{name}", f"md-{name}", f"explain-{name}"} & ids)
    if clash:
        raise ScaffoldError(f"{_rel(root, path)} already has the cell(s) {', '.join(clash)}: "
                            f"{name} is a TODO of {assignment} already (or pick another name)")
    defined = {n for c in nb.cells if c.cell_type == "code" for n in defined_names(c.source) + stub_names(c.source)}
    if name in defined:
        raise ScaffoldError(f"{_rel(root, path)} already defines {name}: pick another name")
    for kind in KINDS:
        f = _author_file(root, kind, assignment)
        if not f.exists():
            raise ScaffoldError(f"{_rel(root, f)} is missing: every assignment needs its cases, mutants and "
                                f"variants file (make assignment creates them)")
        if re.search(rf"[\"']{re.escape(name)}[\"']|def _?{re.escape(name)}\b", f.read_text()):
            raise ScaffoldError(f"{_rel(root, f)} already mentions {name!r}: pick another name, or remove "
                                f"what is left of an earlier TODO of that name")
    if after is not None and after not in todos:
        raise ScaffoldError(f"AFTER={after}: not a TODO of {assignment} (its TODOs: {', '.join(todos) or 'none'})")
    if after is not None and f"test-{after}" not in ids:
        raise ScaffoldError(f"AFTER={after}: {assignment} has no test-{after} cell to insert after")
    readme_path = root / "README.md"
    readme = _readme_with_todo(readme_path.read_text(), assignment, name, todos)

    at = _insert_at(nb, after)
    nb.cells[at:at] = todo_cells(name, args, points)
    nbformat.validate(nb)
    writes = [(path, nbformat.writes(nb) + "\n")]
    for kind, stub in (("cases", cases_stub), ("mutants", mutants_stub), ("variants", variants_stub)):
        f = _author_file(root, kind, assignment)
        writes.append((f, f.read_text().rstrip("\n") + "\n" + stub(assignment, name, args)))
    writes.append((readme_path, readme))
    for f, text in writes:
        f.write_text(text)
    return [f for f, _ in writes]


def add_assignment(name: str, title: str | None = None, root: Path | None = None) -> list:
    """Create assignment ``name`` (``NN_topic``); return the files written or changed. Raises
    ScaffoldError (nothing written) on a bad name or a clash."""
    root = Path(root or grader.ROOT)
    m = ASSIGNMENT_RE.match(name or "")
    if not m:
        raise ScaffoldError(f"{name!r} is not a valid assignment name: two digits, an underscore and a "
                            f"lower-case topic (e.g. 06_flows); the number sets the course order")
    order = _assignments(root)
    taken = [a for a in order if a.split("_")[0] == m.group(1)]
    if taken or (root / "solutions" / name).exists():
        raise ScaffoldError(f"{name}: the number {m.group(1)} is taken by {', '.join(taken) or name} in solutions/")
    for kind in KINDS:
        if _author_file(root, kind, name).exists():
            raise ScaffoldError(f"{_rel(root, _author_file(root, kind, name))} exists already: remove it or pick another name")
    readme_path, toml_path = root / "README.md", root / "grader" / "course.toml"
    if f"`{name}`" in readme_path.read_text():
        raise ScaffoldError(f"README.md already names {name}")
    if re.search(rf'"{name}"\s*=', toml_path.read_text()):
        raise ScaffoldError(f"grader/course.toml already names {name}")
    new_order = sorted(order + [name])
    k = new_order.index(name)
    previous = new_order[k - 1] if k else None
    following = new_order[k + 1] if k + 1 < len(new_order) else None
    label = _label(name, title)
    nav = NAV_PREFIX + " · [course README](../../README.md)"
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    nb.cells = [
        _markdown("md-01", f"# Assignment {int(m.group(1))} · {title or m.group(2).replace('_', ' ').capitalize()}\n\n"
                           f"{nav}\n\nTODO(author): what this notebook is about and what the student will build."),
        nbformat.v4.new_code_cell("import math\n\nimport matplotlib.pyplot as plt\nimport torch\n\n"
                                  "from vaelab import check, needs, seed_everything\n\nseed_everything(0)"),
        _markdown("md-summary", "## Summary\n\nTODO(author): what the student should take away.\n\n"
                                "### References\n\nTODO(author): the sources, by title and author."),
    ]
    nb.cells[1].id = "code-02"
    nb.cells[1].metadata = {"tags": ["given"]}
    neighbours = {}
    for other, which, back in ((previous, "previous", "next"), (following, "next", "previous")):
        if other is None:
            continue
        _relinked(nb, which, other, _label(other, _title_of(root, other)))
        theirs = nbformat.read(str(_notebook(root, other)), as_version=4)
        neighbours[_notebook(root, other)] = _relinked(theirs, back, name, label)
    nbformat.validate(nb)
    readme = _readme_with_assignment(readme_path.read_text(), name, new_order)
    toml = _course_toml_with(toml_path.read_text(), name, new_order)

    writes = [(_notebook(root, name), nbformat.writes(nb) + "\n")]
    writes += [(p, nbformat.writes(other_nb) + "\n") for p, other_nb in neighbours.items()]
    writes += [(_author_file(root, kind, name), _new_author_file(kind, name)) for kind in KINDS]
    writes += [(readme_path, readme), (toml_path, toml)]
    _notebook(root, name).parent.mkdir(parents=True)
    for f, text in writes:
        f.write_text(text)
    return [f for f, _ in writes]


def _title_of(root: Path, a: str) -> str | None:
    """The short label other notebooks link to ``a`` with (what its neighbours already call it)."""
    nb = nbformat.read(str(_notebook(root, a)), as_version=4)
    for other in _assignments(root):
        if other == a:
            continue
        line = _nav_line(nbformat.read(str(_notebook(root, other)), as_version=4))
        for m in NAV_LINK.finditer(line[1] if line else ""):
            if m.group(3) == a:
                return m.group(2).split(" · ", 1)[-1]
    return nb.cells[0].source.splitlines()[0].split(" · ", 1)[-1].split(":")[0] if nb.cells else None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.author.scaffold", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    todo = sub.add_parser("todo", help="add a TODO to an assignment")
    todo.add_argument("assignment")
    todo.add_argument("name")
    todo.add_argument("--after", help="insert after this TODO (default: after the last one)")
    todo.add_argument("--points", type=int, help="points of its hidden test (default 2; 1 for a predict_ TODO)")
    todo.add_argument("--args", default="x", help='the stub signature\'s parameters, e.g. "mu, logvar"')
    new = sub.add_parser("assignment", help="add an assignment")
    new.add_argument("name")
    new.add_argument("--title", help="its title (default: from the name)")
    sub.add_parser("check", help="list what the README, course.toml and notebook headers say that the notebooks do not")
    args = parser.parse_args(argv)
    try:
        if args.command == "todo":
            written = add_todo(args.assignment, args.name, args.after, args.points, args.args)
            nxt = [f"fill in the solution cell `{args.name}` in solutions/{args.assignment}/{args.assignment}.ipynb",
                   f"the cases, mistakes and variants in grader/author/{{cases,mutants,variants}}/{args.assignment}.py "
                   f"(the stubs say what)", f"then make references ASSIGNMENT={args.assignment} && make release"]
        elif args.command == "assignment":
            written = add_assignment(args.name, args.title)
            nxt = [f"write the introduction and the given cell of solutions/{args.name}/{args.name}.ipynb",
                   f"add its TODOs with make todo ASSIGNMENT={args.name} NAME=...",
                   "set its due date in grader/course.toml and its row in README.md"]
        else:
            problems = course_problems()
            print("\n".join(problems) or "the README, course.toml and notebook headers agree with the notebooks")
            return 1 if problems else 0
    except ScaffoldError as e:
        print(f"refused, nothing written: {e}", file=sys.stderr)
        return 2
    root = grader.ROOT
    print("wrote " + ", ".join(_rel(root, f) for f in written))
    print("next: " + "; ".join(nxt))
    return 0


if __name__ == "__main__":
    sys.exit(main())
