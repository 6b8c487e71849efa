"""Submissions whose TODO never returns, one per assignment, each hostile in
its own way besides. Every one must cost only that TODO's points, with the
grader's real default limits. Built from the solutions, so only the named
TODO is wrong.

Nothing here is a hand-kept list of the course: every assignment of
``solutions/`` gets one (one without its own behaviour below loops in its first
TODO that is not a prediction), and each TODO's signature is read from the
solution notebook, so a renamed or re-signed TODO cannot go stale here."""
from grader import SOLUTIONS, assignments
from grader.notebooks import defined_names, is_solution, read

LOOP = "    while True:\n        pass\n"

# assignment: (TODO, what else the submission does, the body before the endless loop); the signature is the
# solution's own
BEHAVIOURS = {
    "01_elbo": ("kl_standard_normal", "an infinite loop", ""),
    "02_reparameterization": ("score_function_grad", "ignores SIGINT, SIGTERM and SIGHUP, then loops",
                              "    import signal\n"
                              "    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):\n"
                              "        signal.signal(s, signal.SIG_IGN)\n"),
    "03_vae": ("train_step", "a bounded fork bomb (31 sleeping children), then loops",
               "    import os, time\n"
               "    first = os.getpid()\n"
               "    for _ in range(5):\n"
               "        os.fork()\n"
               "    if os.getpid() != first:\n"
               "        time.sleep(3600)\n"),
    "04_generation": ("sample_prior", "starts a daemon that leaves the session and keeps stdout open, then loops",
                      "    import os, sys, time\n"
                      "    if os.fork() == 0:\n"
                      "        os.setsid()\n"
                      "        if os.fork() == 0:\n"
                      "            while True:\n"
                      "                print('still here', flush=True)\n"
                      "                time.sleep(1)\n"
                      "        os._exit(0)\n"),
    "05_likelihoods": ("naive_log_px", "starts eight threads that spin forever, then loops",
                       "    import threading\n"
                       "    for _ in range(8):\n"
                       "        threading.Thread(target=lambda: any(iter(int, 1)), daemon=True).start()\n"),
}


def _first_todo(assignment: str) -> str:
    names = [n for n in solution_answers(assignment) if not n.startswith("predict_")]
    assert names, f"solutions/{assignment}: no TODO to make hostile"
    return names[0]


def _hostile() -> dict:
    """``{assignment: (TODO, what it does, source)}`` for every assignment of solutions/."""
    out = {}
    for assignment in assignments():
        todo, what, body = BEHAVIOURS.get(assignment) or (_first_todo(assignment), "an infinite loop", "")
        assert todo in solution_answers(assignment), (
            f"tests/hostile.py: {todo} is no longer a TODO of solutions/{assignment}: pick another in BEHAVIOURS")
        out[assignment] = (todo, what, _signature(assignment, todo) + body + LOOP)
    return out


# two bad TODOs in one notebook: each loses only its own points
TWO_BAD = ("01_elbo", ("kl_standard_normal", "elbo_linear_gaussian"))


def solution_answers(assignment: str) -> dict:
    return {n: c.source for c in read(SOLUTIONS / assignment / f"{assignment}.ipynb").cells if is_solution(c)
            for n in defined_names(c.source)}


def _signature(assignment: str, name: str) -> str:
    source = solution_answers(assignment)[name]
    lines = source.splitlines()
    head = []
    for line in lines:
        head.append(line)
        if line.startswith(("def ", "class ")):
            break
    return "\n".join(head) + "\n"


def submissions() -> dict:
    """``{(assignment, student): (answers, [bad TODOs])}``."""
    HOSTILE = _hostile()
    out = {}
    for assignment, (todo, _, source) in HOSTILE.items():
        out[(assignment, f"hostile-{todo.replace('_', '-')}")] = (
            {**solution_answers(assignment), todo: source}, [todo])
    assignment, bad = TWO_BAD
    answers = solution_answers(assignment)
    answers[bad[0]] = HOSTILE[assignment][2]
    answers[bad[1]] = _signature(assignment, bad[1]) + "    import os, signal\n    os.kill(os.getpid(), signal.SIGKILL)\n"
    out[(assignment, "hostile-two-bad-todos")] = (answers, list(bad))
    return out
