"""nbgrader's Execute preprocessor with a time budget per cell and a trail.

Used by the grading workers (grader/grade/batch.py writes it into each worker's
nbgrader config). It runs in the nbgrader process, outside the sandboxed
kernel, so student code can neither read nor forge what it records:

- before each cell it appends ``{"event": "start", "index", "cell"}`` to the
  *trail* file, and ``timeout`` or ``died`` when that cell times out or its
  kernel dies, so the grader knows which cell stopped the run without
  guessing by trial;
- each cell gets its own timeout from the budgets ``make references``
  measured on the solution (grader/author/budgets.py): a cell that took 0.1 s for
  the reference is stopped after seconds, not after the global cap;
- the first timeout ends the run at once (no interrupt-and-continue), so a
  looping TODO is not waited for again in every cell that depends on it.
"""
from __future__ import annotations

import json
import time

from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.v4 import new_output
from traitlets import Bool, Dict, Float, List, Unicode

from grader.notebooks import cell_key
from nbgrader.preprocessors import Execute

SKIPPED_NOTE = ("Not run while grading: {what}, so it cannot change the grade. "
                "Run it in your own notebook to see its output.\n")


def skippable(cell) -> bool:
    """Whether a submitted cell may be left out: never one nbgrader grades or
    one that holds an answer (those are what the grade is made of)."""
    nbg = cell.get("metadata", {}).get("nbgrader", {})
    return cell.get("cell_type") == "code" and not nbg.get("grade") and not nbg.get("solution")


class TrackedExecute(Execute):
    trail_file = Unicode("", help="JSON-lines file the cell events are appended to").tag(config=True)
    cell_budgets = Dict({}, help="{cell key: timeout in seconds} from the reference run").tag(config=True)
    unknown_cell_timeout = Float(0.0, help="timeout for cells without a budget (0: Execute.timeout)").tag(config=True)
    skip_cells = List(Unicode(), help="keys of demonstration and self-check cells not to run").tag(config=True)

    # Fail fast: the first timeout ends the run (the grader blanks the cell's TODO and regrades)
    # instead of interrupting the kernel and waiting again in every dependent cell. A trait default
    # and c.TrackedExecute in the worker config, because nbconvert re-initialises the client (and
    # so reloads the course's c.Execute.interrupt_on_timeout = True) at the start of each notebook.
    interrupt_on_timeout = Bool(False).tag(config=True)

    def _get_timeout(self, cell):
        return self._cell_timeout(cell) if cell is not None else super()._get_timeout(cell)

    def _cell_timeout(self, cell):
        cap = self.timeout or None
        budget = self.cell_budgets.get(cell_key(cell)) or self.unknown_cell_timeout or cap
        return int(min(budget, cap) if cap else budget) or None

    def _note(self, **event) -> None:
        if not self.trail_file:
            return
        event["t"] = round(time.time(), 3)
        with open(self.trail_file, "a") as fh:
            fh.write(json.dumps(event) + "\n")

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return super().preprocess_cell(cell, resources, index)
        key = cell_key(cell)
        if key in self.skip_cells and skippable(cell):
            what = "this is your self-check (hidden tests grade the same function)" if key.startswith("check-") \
                else "this cell is a demonstration"
            cell.outputs = [new_output("stream", name="stdout", text=SKIPPED_NOTE.format(what=what))]
            cell.execution_count = None
            self._note(event="skipped", index=index, cell=key)
            return cell, resources
        self._note(event="start", index=index, cell=key, timeout=self._cell_timeout(cell))
        try:
            result = super().preprocess_cell(cell, resources, index)
        except CellTimeoutError:
            self._note(event="timeout", index=index, cell=key, timeout=self._cell_timeout(cell))
            raise
        except DeadKernelError:
            self._note(event="died", index=index, cell=key)
            raise
        self._note(event="done", index=index, cell=key)
        return result


def read_trail(path) -> list:
    """The events of one run (an unreadable line ends the list)."""
    events = []
    try:
        with open(path) as fh:
            for line in fh:
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError:
                    break
    except OSError:
        pass
    return events
