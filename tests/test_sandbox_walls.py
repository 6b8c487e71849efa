"""Issue 29: the grading kernel's walls, tried from inside a real kernel
sandbox (forked by grader/sandbox/zygote.py, and started the plain way by
grader/sandbox/kernel_launcher.py) with the real defaults. The kernel may write only
its own home and its private /tmp and /dev/shm; it sees none of the grader,
no other copy of the course, no other kernel's home, no variable of the
grader's that is not on the allow-list; and its whole process tree shares one
memory and one pid cap. The judge never evaluates what a kernel recorded."""
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sympy as sp
import torch

import grader
from grader.grade import seal
from grader.sandbox.kernel_launcher import real_root
from vaelab import checks, references

ROOT = Path(grader.__file__).resolve().parent.parent

# Code run in the kernel's place: every write and read a hostile kernel would try.
ATTACK = r"""
import glob, json, os, sys
found = {"wrote": [], "read": [], "env": sorted(os.environ), "uid": os.getuid()}
targets = json.loads(%(targets)r)
for path in targets["write"]:
    try:
        with open(path, "a") as fh:
            fh.write("# planted by a kernel\n")
        found["wrote"].append(path)
    except OSError:
        pass
for path in targets["read"]:
    try:
        open(path, "rb").read(1)
        found["read"].append(path)
    except OSError:
        pass
found["other_homes"] = glob.glob(targets["kernels_root"] + "/*/results")
for folder in ("/tmp", "/dev/shm"):
    with open(os.path.join(folder, "left-behind-" + targets["token"]), "w") as fh:
        fh.write("x")
found["home_writable"] = os.access(os.environ["HOME"], os.W_OK)
print(json.dumps(found))
"""


@pytest.fixture(scope="module")
def zygote():
    path, why = seal.zygote()
    if path is None:
        if seal._zygote_wanted():
            pytest.skip(f"no zygote here: {seal._zygote_wanted()}")
        pytest.fail(f"the zygote should run here but was refused: {why}")
    yield path
    seal.cleanup()


@pytest.fixture()
def planted(tmp_path):
    """A copy of the course's answers elsewhere on the machine (as another clone
    or a CI folder would hold) and a canary in the grader's environment."""
    other = tmp_path / "another-clone" / "grader" / "references"
    other.mkdir(parents=True)
    (other / "01_elbo.pt").write_bytes((grader.HIDDEN_REFERENCES / "01_elbo.pt").read_bytes())
    return other / "01_elbo.pt"


def _targets(tmp_path, planted, token):
    import vaelab

    site = next(p for p in sys.path if p.endswith("site-packages"))
    write = [str(Path(site) / f"zz-redteam-{token}.pth"), str(Path(vaelab.__file__).with_name("drivers.py")),
             str(ROOT / "grader" / "seal.py"), str(ROOT / f"planted-{token}.txt"),
             str(Path(sys.prefix) / "bin" / f"planted-{token}"), f"/root/.ipython/planted-{token}.py",
             f"/etc/planted-{token}", str(planted)]
    read = [str(planted), str(grader.HIDDEN_REFERENCES / "01_elbo.pt"),
            str(ROOT / "solutions" / "01_elbo" / "01_elbo.ipynb"), "/etc/shadow", "/root/.bash_history"]
    return {"write": write, "read": read, "kernels_root": str(seal._kernel_root()), "token": token}


def _snapshot(paths):
    return {p: (Path(p).read_bytes() if Path(p).is_file() else None) for p in paths}


def _run_in_kernel(tmp_path, request_extra, code, env_extra=None, plain=False):
    home = seal._kernel_root() / f"home-{tmp_path.name}-{uuid.uuid4().hex[:6]}"
    home.mkdir()
    (tmp_path / "conn.json").write_text("{}")
    env = {**os.environ, **(env_extra or {})}
    if plain:  # the plain start: unshare + kernel_launcher.py, code run by a stand-in python in the home
        (home / "check.py").write_text(code)
        shim = home / "python"
        shim.write_text(f"#!/bin/sh\nexec {sys.executable} {home / 'check.py'}\n")
        shim.chmod(0o755)
        prefix, why = seal.isolation()
        if not prefix:
            pytest.skip(f"no kernel isolation here: {why}")
        argv = [*prefix, sys.executable, str(seal.LAUNCHER), "--home", str(home), "--kernels-root",
                str(seal._kernel_root()), "--drop-capabilities", *seal._launcher_sandbox_args(seal._rootfs())]
        if request_extra.get("cgroups"):
            argv += ["--cgroups", json.dumps(request_extra["cgroups"])]
        argv += [str(shim), str(tmp_path / "conn.json")]
    else:
        request = tmp_path / "request.json"
        request.write_text(json.dumps({"socket": str(request_extra["socket"]), "home": str(home), "hide": [],
                                       "kernels_root": str(seal._kernel_root()),
                                       "sandbox": seal.sandbox_spec(seal._rootfs()), "exec": code,
                                       "cgroups": request_extra.get("cgroups"), "fallback": ["false"]}))
        argv = [sys.executable, "-I", "-S", str(seal.CLIENT), str(request), str(tmp_path / "conn.json")]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    return run, home


@pytest.mark.parametrize("plain", [False, True], ids=["forked", "plain"])
def test_a_kernel_writes_only_its_own_space_and_reads_nothing_of_the_machine(tmp_path, zygote, planted, plain):
    token = uuid.uuid4().hex[:8]
    targets = _targets(tmp_path, planted, token)
    other = seal._kernel_root() / f"victim-{token}" / "results"
    other.mkdir(parents=True)
    (other / "kl_standard_normal.pt").write_bytes(b"the victim's recorded outputs")
    before = _snapshot(targets["write"])
    canary = f"postgresql://grader:hunter2-{token}@db/course"
    run, home = _run_in_kernel(tmp_path, {"socket": zygote}, ATTACK % {"targets": json.dumps(targets)},
                               env_extra={"DB_URL": canary, "VAELAB_CANARY": canary}, plain=plain)
    assert run.returncode == 0, run.stderr[-2000:]
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert found["wrote"] == [], found["wrote"]
    assert found["read"] == [], found["read"]
    assert found["other_homes"] == []
    assert "DB_URL" not in found["env"] and "VAELAB_CANARY" not in found["env"]
    assert found["home_writable"]
    if real_root():  # the grader is root: the kernel is a user of its own
        assert found["uid"] >= 1 << 20
    assert _snapshot(targets["write"]) == before  # nothing outside the kernel's space changed
    assert (other / "kl_standard_normal.pt").read_bytes() == b"the victim's recorded outputs"
    for folder in ("/tmp", "/dev/shm"):  # its /tmp and /dev/shm were its own, and are gone with it
        assert not Path(folder, f"left-behind-{token}").exists()


MEMORY = r"""
import os, sys
children = []
for _ in range(3):
    pid = os.fork()
    if pid == 0:
        block = bytearray(%(each)d)
        for i in range(0, len(block), 4096):
            block[i] = 1
        os._exit(0)
    children.append(pid)
killed = 0
for pid in children:
    _, status = os.waitpid(pid, 0)
    killed += os.WIFSIGNALED(status)
started = 0
try:
    for _ in range(%(pids)d * 2):
        pid = os.fork()
        if pid == 0:
            import time
            time.sleep(5)
            os._exit(0)
        started += 1
except OSError:
    pass
print(killed, started)
"""


def test_the_kernels_process_tree_shares_one_memory_and_one_pid_cap(tmp_path, zygote, monkeypatch):
    spec = seal.cgroup_spec(1)
    if not spec or "memory" not in spec["dirs"] or "pids" not in spec["dirs"]:
        pytest.skip("no per-kernel cgroups here (cgroup v2 or not root): per-process caps only")
    # three processes of 200 MB under a 400 MB cap: each is far below the per-process cap, the tree is not
    spec["limits"]["memory"]["memory.limit_in_bytes"] = 400 * 2**20
    spec["limits"]["pids"]["pids.max"] = 64
    run, _ = _run_in_kernel(tmp_path, {"socket": zygote, "cgroups": spec},
                            MEMORY % {"each": 200 * 2**20, "pids": 64})
    assert run.returncode == 0, run.stderr[-2000:]
    killed, started = map(int, run.stdout.split()[-2:])
    assert killed >= 1  # the third (at least) did not fit
    assert started < 64  # the pid cap held the fork loop
    # the per-kernel cgroups are gone with the kernel; the batch's own go at cleanup
    for folder in spec["dirs"].values():
        assert not list(Path(folder).glob("kernel-*"))


# ---------------------------------------------------------------- the judge
HOSTILE_TEXTS = [
    "__import__('pathlib').Path(%(m)r).touch() or Symbol('x')",
    "Lambda(Symbol('x'), \"__import__('pathlib').Path(%(m)r).touch()\")",
    "Symbol('x').__class__.__init__.__globals__['os'].system('touch %(m)s')",
    "Subs(Symbol('x'), Symbol('x'), \"__import__('pathlib').Path(%(m)r).touch()\")",
    "Float(\"__import__('pathlib').Path(%(m)r).touch()\")",
    "Add(Symbol('x'), \"__import__('pathlib').Path(%(m)r).touch()\")",
    "Mul(" * 400 + "Symbol('x')" + ")" * 400,
    "Pow(Pow(Integer(10), Integer(1000)), Integer(1000))",
    "factorial(Integer(1000000000000))",
    "Add(" + ", ".join(["Symbol('x')"] * 30_000) + ")",
]


def test_nothing_a_kernel_recorded_is_evaluated_by_the_judge(tmp_path):
    marker = tmp_path / "ran"
    x = sp.Symbol("x")
    # the reproduction of issue 29: a string answer is never parsed
    ok, detail, _ = checks.compare(x, f"__import__('pathlib').Path({str(marker)!r}).touch() or x", 0, 0)
    assert not ok and "string" in detail and not marker.exists()
    # srepr texts in a file of recorded answers, as the judge reads them
    for text in HOSTILE_TEXTS:
        torch.save({"name": "kl_gaussian_1d", "cases": [{"__sympy__": text % {"m": str(marker)}}]}, tmp_path / "a.pt")
        with pytest.raises(ValueError):
            references.load_answers(tmp_path / "a.pt")
        assert not marker.exists(), text[:80]

    # objects whose hooks would run code are recorded as placeholders in the kernel, never rebuilt
    class Sneaky:
        def _sympy_(self):
            marker.touch()
            return x

        def __repr__(self):
            marker.touch()
            return "x"

    recorded = references.encode_answer(Sneaky())
    got = references.decode_answer(recorded)
    assert not marker.exists()
    ok, detail, _ = checks.compare(x, got, 0, 0)
    assert not ok and "Sneaky" in detail and not marker.exists()


def test_legitimate_answers_still_cross(tmp_path):
    a, s = sp.symbols("a sigma", positive=True)
    values = [sp.log(s) - a ** 2 / 2 + sp.Rational(1, 2), sp.exp(-a) * sp.sqrt(2 * sp.pi) + sp.Float("0.25"),
              sp.Abs(a - s) + sp.erf(a) * sp.I, sp.Symbol("mu_q") ** -3]
    for value in values:
        back = references.decode_answer(references.encode_answer(value))
        assert sp.simplify(back - value) == 0
    # every stored reference, public and hidden, reads with the same allow-list
    for path in [*references.PUBLIC_DIR.glob("*.pt"), *grader.HIDDEN_REFERENCES.glob("*.pt")]:
        assert references.load(path)["functions"]


def test_grading_refuses_without_a_sandbox_unless_told_it_is_unsafe(tmp_path, monkeypatch, capsys):
    from grader.grade.batch import main as grade_main

    (tmp_path / "subs" / "someone" / "01_elbo").mkdir(parents=True)
    monkeypatch.setenv("VAELAB_KERNEL_ISOLATION", "off")
    seal.isolation.cache_clear()
    try:
        code = grade_main([str(tmp_path / "subs"), "--out", str(tmp_path / "out"), "--assignment", "01_elbo"])
        assert code == 2 and "Refusing to grade" in capsys.readouterr().err
        assert not (tmp_path / "out" / "grades.csv").exists()
        monkeypatch.setenv("UNSAFE", "1")
        from grader.notebooks import make_submission

        make_submission("01_elbo", {}, tmp_path / "subs", "blank")
        grade_main([str(tmp_path / "subs"), "--out", str(tmp_path / "out"), "--assignment", "01_elbo"])
        assert "NOT SEALED, UNSAFE=1" in capsys.readouterr().out
        # and every feedback page says so
        page = (tmp_path / "out" / "feedback" / "blank" / "01_elbo" / "01_elbo.html").read_text()
        assert "WITHOUT the kernel sandbox" in page
    finally:
        seal.cleanup()
        monkeypatch.delenv("VAELAB_KERNEL_ISOLATION")
        seal.isolation.cache_clear()


LEAVE = """
import os, sys
from grader.grade import seal
print(seal._kernel_root(), *sorted(seal._batch_cgroups().values()), flush=True)
if sys.argv[1] == "killed":
    os.kill(os.getpid(), 9)
"""


def test_kernel_homes_and_cgroups_do_not_outlive_their_grader(tmp_path):
    """A process that made them and never called seal.cleanup (a Dask worker, a
    test) removes them at exit; what a grader killed outright leaves, the next
    batch removes (cgroups only where this machine gives per-kernel ones)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    runs = {how: subprocess.run([sys.executable, "-c", LEAVE, how], capture_output=True, text=True, env=env,
                                timeout=120, cwd=tmp_path) for how in ("exits", "killed")}
    made = {how: [Path(p) for p in run.stdout.split()] for how, run in runs.items()}
    assert made["exits"] and not any(p.exists() for p in made["exits"])
    assert all(p.exists() for p in made["killed"])  # killed: nothing could run
    assert made["killed"][0].exists()
    subprocess.run([sys.executable, "-c", LEAVE, "exits"], env=env, timeout=120, cwd=tmp_path, check=True)
    assert not any(p.exists() for p in made["killed"])  # the next batch removed the killed one's
