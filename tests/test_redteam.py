"""Issue 29 items 1-2: kernels of two batches on one machine, and of two Dask
workers on one machine, attack each other while both grade; and a kernel
that fills its home. Real defaults (`make grade`'s own code, as root with the
zygote where the machine allows it).

An attacker notebook of batch A (a correct solution plus attack code in its
answer cells, each round about six seconds, so it runs while batch B grades)
tries to overwrite every kernel home, recorded output and gradebook it can
find on the machine, and the output and submission folders of batch B at
their real paths. Each test asserts what the attacker earned (its honest
full marks, and an empty list of files it reached), that no victim's grade
changed (every victim is a perfect student: full marks, as when batch B is
graded alone), and that no file outside the kernels' own space changed
(the attacker's token appears in no file of batch B, of the checkout's
vaelab package or of the Python environment). A test checks first that
the attack did overlap the victims' grading (else it proves nothing)."""
import csv
import glob
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

import grader
from grader.grade import seal
from grader.notebooks import fill, read, write

from .adversarial import A, FULL, GOOD, KL

pytestmark = pytest.mark.slow
ROOT = Path(grader.__file__).resolve().parent.parent
TOKEN = "REDTEAM-" + uuid.uuid4().hex[:12]
GRADE = "import sys; from grader.grade.batch import main; sys.exit(main(sys.argv[1:]))"

# Appended to each answer cell of the attacker: six seconds of attacks, then the list of what it reached.
ATTACK = """

import glob as _g, json as _j, os as _o, time as _t
_open = open('attacking', 'w')  # in its own home: the test sees when the attack runs
_open.close()
_hits, _end = set(), _t.time() + 6
while _t.time() < _end:
    _targets = (_g.glob('/tmp/vaelab-kernels-*/*/results/*') + _g.glob('/tmp/vaelab-kernels-*/*/inputs/*')
                + _g.glob('/tmp/**/gradebook.db', recursive=True) + _g.glob('/dev/shm/*')
                + _g.glob(%(victims)r + '/**', recursive=True))
    for _p in _targets:
        if _o.path.isfile(_p):
            try:
                with open(_p, 'ab') as _fh:
                    _fh.write(%(token)r.encode())
                _hits.add(_p)
            except OSError:
                pass
    _t.sleep(0.2)
_o.remove('attacking')
print('REDTEAM-HITS', _j.dumps(sorted(_hits)))
"""
# Fills its home past the cap: 4 GB in 1 MB blocks (the write fails at the cap, in this kernel only).
DISK_HOG = ("def kl_standard_normal(mu, logvar):\n"
            "    with open('hog.bin', 'wb') as fh:\n"
            "        for _ in range(4096):\n"
            "            fh.write(bytes(2**20))\n"
            "    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1)\n")


def _attacker(victims: Path) -> dict:
    code = ATTACK % {"victims": str(victims), "token": TOKEN}
    return {name: source + code for name, source in GOOD.items()}


def _submission(folder: Path, student: str, answers: dict) -> None:
    write(fill(read(grader.RELEASE / A / f"{A}.ipynb"), answers), folder / student / A / f"{A}.ipynb")


def _grades(out: Path) -> dict:
    with open(out / "grades.csv") as fh:
        return {r["student_id"]: float(r["score"]) for r in csv.DictReader(fh) if r["assignment"] == A}


def _hits(out: Path, student: str) -> list:
    nb = json.loads((out / "autograded" / student / A / f"{A}.ipynb").read_text()
                    if (out / "autograded" / student / A / f"{A}.ipynb").exists() else "{}")
    text = "".join("".join(o.get("text", "")) for c in nb.get("cells", []) for o in c.get("outputs", []))
    if "REDTEAM-HITS" not in text:  # the feedback page holds the same outputs where the autograded copy is gone
        text = (out / "feedback" / student / A / f"{A}.html").read_text()
    found = re.findall(r"REDTEAM-HITS (\[.*?\])", text.replace("&quot;", '"').replace("&#34;", '"'))
    assert found, f"{student}: the attack never reported (it did not run)"
    # its own home (bound at its real path, so the globs find it) is its own space: everything else counts
    own = re.compile(r"^/tmp/vaelab-kernels-[^/]+/" + re.escape(student) + "__")
    return sorted({p for rounds in found for p in json.loads(rounds) if not own.match(p)})


def _digest(paths) -> dict:
    return {str(p): hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths if Path(p).is_file()}


def _guarded() -> list:
    """Files no kernel may change: the vaelab package and the Python environment's entry points."""
    import site

    import vaelab

    package = Path(vaelab.__file__).parent
    return [*package.glob("*.py"), *package.glob("references/*.pt"),
            *(p for s in site.getsitepackages() for p in Path(s).glob("*.pth"))]


def _planted(before: dict) -> list:
    """Guarded files that carry the attacker's token, or appeared (a planted .pth). Their content is
    compared by token, not digest: other people may edit the checkout while a test runs."""
    now = _digest(_guarded())
    return sorted([p for p in now if p not in before] +
                  [p for p in now if TOKEN.encode() in Path(p).read_bytes()])


def _token_in(folder: Path, skip=()) -> list:
    found = []
    for path in folder.rglob("*"):
        if path.is_file() and not any(s in path.parts for s in skip) and TOKEN.encode() in path.read_bytes():
            found.append(str(path))
    return found


class Watch:
    """Samples, every 0.1 s, whether an attacker kernel is attacking while a
    victim's kernel home exists (the overlap the tests need)."""

    def __init__(self):
        self.overlap, self.stop = False, threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.is_set():
            attacking = glob.glob("/tmp/vaelab-kernels-*/*/attacking")
            homes = [h for h in glob.glob("/tmp/vaelab-kernels-*/*/results")
                     if not os.path.exists(os.path.join(os.path.dirname(h), "attacking"))]
            if attacking and homes:
                self.overlap = True
            time.sleep(0.1)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def _batch(subs: Path, out: Path, jobs: int = 1, extra=()) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", GRADE, str(subs), "--out", str(out), "--assignment", A,
                             "--jobs", str(jobs), *extra], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen, timeout=900) -> str:
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        pytest.fail(f"a batch did not finish: {output[-2000:]}")
    assert proc.returncode == 0, output[-3000:]
    return output


def _left_behind(pids) -> list:
    roots = [p for pid in pids for p in glob.glob(f"/tmp/vaelab-kernels-{pid}-*")]
    with open("/proc/self/mountinfo") as fh:
        mounts = [line.split()[4] for line in fh if "/vaelab-kernels-" in line.split()[4]]
    return roots + mounts + glob.glob("/tmp/**/hog.bin", recursive=True)


@pytest.fixture(scope="module")
def sandboxed():
    prefix, why = seal.isolation()
    if not prefix:
        pytest.skip(f"no kernel sandbox here ({why}): grading refuses without UNSAFE=1")


@pytest.fixture(scope="module")
def two_batches(tmp_path_factory, sandboxed):
    """Batch B (four perfect victims) graded alone, then again while batch A
    (an attacker, a kernel that fills its home, a perfect control) grades."""
    base = tmp_path_factory.mktemp("redteam")
    victims, attackers = base / "subs-b", base / "subs-a"
    for i in range(4):
        _submission(victims, f"victim{i}", GOOD)
    _submission(attackers, "attacker", _attacker(base))
    _submission(attackers, "diskhog", {**GOOD, "kl_standard_normal": DISK_HOG})
    _submission(attackers, "control", GOOD)
    guarded = _digest(_guarded())
    alone = _batch(victims, base / "out-b-alone")
    _finish(alone)
    with Watch() as watch:
        b = _batch(victims, base / "out-b")
        a = _batch(attackers, base / "out-a")
        _finish(a)
        _finish(b)
    return {"base": base, "overlap": watch.overlap, "guarded": guarded, "pids": (alone.pid, a.pid, b.pid),
            "alone": _grades(base / "out-b-alone"), "b": _grades(base / "out-b"), "a": _grades(base / "out-a")}


def test_two_batches_on_one_machine_cannot_touch_each_other(two_batches):
    run = two_batches
    assert run["overlap"], "the attack never ran while a victim was graded: this run proves nothing"
    # what the attacker earned: its honest full marks, and nothing it could reach
    assert run["a"]["attacker"] == FULL
    assert _hits(run["base"] / "out-a", "attacker") == []
    # no victim's grade changed: as graded alone, and full marks (perfect students)
    assert run["b"] == run["alone"] == {f"victim{i}": FULL for i in range(4)}
    assert run["a"]["control"] == FULL
    # no file outside the kernels' own space changed
    assert _token_in(run["base"], skip=("subs-a", "out-a")) == []
    assert _token_in(run["base"] / "out-a", skip=("attacker",)) == []
    assert _planted(run["guarded"]) == []


def test_a_kernel_that_fills_its_home_loses_only_its_own_points(two_batches):
    run = two_batches
    assert run["a"]["diskhog"] <= FULL - KL  # its write failed at the cap, in its own kernel
    assert run["a"]["control"] == FULL and run["b"] == run["alone"]  # the batch went on, others unchanged
    assert _left_behind(run["pids"]) == []  # no home, mount or hog file stays on the machine


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory, sandboxed):
    pytest.importorskip("distributed")
    from grader.grade import cluster

    running = cluster.LoopbackCluster(tmp_path_factory.mktemp("dask"))
    try:
        yield running
    finally:
        running.close()


def test_two_dask_workers_on_one_machine_cannot_touch_each_other(tmp_path, dask_cluster):
    subs = tmp_path / "subs"
    _submission(subs, "attacker", _attacker(tmp_path))
    for i in range(3):
        _submission(subs, f"victim{i}", GOOD)
    guarded = _digest(_guarded())
    with Watch() as watch:
        _finish(_batch(subs, tmp_path / "out", extra=("--scheduler", dask_cluster.address)))
    assert watch.overlap, "the attack never ran while a victim was graded on the other worker"
    grades = _grades(tmp_path / "out")
    assert grades == {"attacker": FULL, **{f"victim{i}": FULL for i in range(3)}}
    assert _hits(tmp_path / "out", "attacker") == []
    assert _token_in(tmp_path, skip=("subs", "attacker")) == []
    assert _planted(guarded) == []
