"""Submissions whose TODO never returns, one per assignment, each hostile in
its own way besides. Every one must cost only that TODO's points, with the
grader's real default limits. Built from the solutions, so only the named
TODO is wrong."""
from grader import SOLUTIONS
from grader.notebooks import defined_names, is_solution, read

LOOP = "    while True:\n        pass\n"

# assignment: (TODO, what else the submission does, source of the TODO)
HOSTILE = {
    "01_elbo": ("kl_standard_normal", "an infinite loop",
                "def kl_standard_normal(mu, logvar):\n" + LOOP),
    "02_reparameterization": ("score_function_grad", "ignores SIGINT, SIGTERM and SIGHUP, then loops",
                              "def score_function_grad(f, mu, logvar, n_samples):\n"
                              "    import signal\n"
                              "    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):\n"
                              "        signal.signal(s, signal.SIG_IGN)\n" + LOOP),
    "03_vae": ("train_step", "a bounded fork bomb (31 sleeping children), then loops",
               "def train_step(model, optimizer, x):\n"
               "    import os, time\n"
               "    first = os.getpid()\n"
               "    for _ in range(5):\n"
               "        os.fork()\n"
               "    if os.getpid() != first:\n"
               "        time.sleep(3600)\n" + LOOP),
    "04_generation": ("sample_prior", "starts a daemon that leaves the session and keeps stdout open, then loops",
                      "@torch.no_grad()\n"
                      "def sample_prior(decoder, n, latent_dim, generator=None):\n"
                      "    import os, sys, time\n"
                      "    if os.fork() == 0:\n"
                      "        os.setsid()\n"
                      "        if os.fork() == 0:\n"
                      "            while True:\n"
                      "                print('still here', flush=True)\n"
                      "                time.sleep(1)\n"
                      "        os._exit(0)\n" + LOOP),
    "05_likelihoods": ("naive_log_px", "starts eight threads that spin forever, then loops",
                       "def naive_log_px(decoder, x, latent_dim, n_samples, generator=None):\n"
                       "    import threading\n"
                       "    for _ in range(8):\n"
                       "        threading.Thread(target=lambda: any(iter(int, 1)), daemon=True).start()\n"
                       + LOOP),
}
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
    out = {}
    for assignment, (todo, _, source) in HOSTILE.items():
        out[(assignment, f"hostile-{todo.replace('_', '-')}")] = (
            {**solution_answers(assignment), todo: source}, [todo])
    assignment, bad = TWO_BAD
    answers = solution_answers(assignment)
    answers[bad[0]] = HOSTILE["01_elbo"][2]
    answers[bad[1]] = _signature(assignment, bad[1]) + "    import os, signal\n    os.kill(os.getpid(), signal.SIGKILL)\n"
    out[(assignment, "hostile-two-bad-todos")] = (answers, list(bad))
    return out
