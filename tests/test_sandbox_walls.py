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
print(seal._kernel_root(), *sorted(seal._batch_cgroups()["dirs"].values()), flush=True)
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


# ---------------------------------------------------------------- the disk cap
FILL = r"""
import errno, json, os
found = {}
try:
    with open("fill.bin", "wb") as fh:
        for _ in range(%(blocks)d):
            fh.write(bytes(2**20))
            fh.flush()
    found["fill"] = "wrote it all"
except OSError as err:
    found["fill"] = errno.errorcode.get(err.errno, str(err.errno))
found["size_mb"] = os.path.getsize("fill.bin") // 2**20
os.remove("fill.bin")
made = 0
try:
    os.mkdir("many")
    for made in range(%(files)d):
        open(os.path.join("many", str(made)), "w").close()
except OSError as err:
    found["files"] = errno.errorcode.get(err.errno, str(err.errno))
found["made"] = made
print(json.dumps(found))
"""


@pytest.mark.parametrize("plain", [False, True], ids=["forked", "plain"])
def test_a_kernels_home_is_capped_in_size_and_files_and_leaves_nothing(tmp_path, zygote, plain, monkeypatch):
    if seal.home_cap() != "tmpfs":
        pytest.skip("no capped home here (not root): files are capped by RLIMIT_FSIZE only")
    monkeypatch.setattr(seal, "HOME_MB", 64)
    monkeypatch.setattr(seal, "HOME_FILES", 500)
    work = tmp_path / "attempt-diskcap"
    work.mkdir()
    seal.prepare(work, "01_elbo")  # the grader's own mount, as for every grading attempt
    request = json.loads((work / "jupyter" / "kernel-request.json").read_text()) if not plain else None
    home = seal.home_of(work)
    staged = sorted(p.name for p in home.rglob("*"))
    (tmp_path / "conn.json").write_text("{}")
    code = FILL % {"blocks": 256, "files": 5000}
    if plain:
        (home / "check.py").write_text(code)
        shim = home / "python"
        shim.write_text(f"#!/bin/sh\nexec {sys.executable} {home / 'check.py'}\n")
        shim.chmod(0o755)
        argv = json.loads((work / "jupyter" / "kernels" / "python3" / "kernel.json").read_text())["argv"]
        if "kernel_client.py" in " ".join(argv):  # the zygote's request carries the plain start as its fallback
            argv = json.loads((work / "jupyter" / "kernel-request.json").read_text())["fallback"] + ["{connection_file}"]
        argv = [str(shim) if a == sys.executable and i == len(argv) - 2 else a for i, a in enumerate(argv)]
        argv = [str(tmp_path / "conn.json") if a == "{connection_file}" else a for a in argv]
    else:
        request["exec"] = code
        (tmp_path / "request.json").write_text(json.dumps(request))
        argv = [sys.executable, "-I", "-S", str(seal.CLIENT), str(tmp_path / "request.json"), str(tmp_path / "conn.json")]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert found["fill"] == "ENOSPC" and found["size_mb"] < 64, found  # the write failed at the cap
    assert found["files"] == "ENOSPC" and found["made"] < 500, found
    assert {"inputs", "results", "cache"} <= set(staged)  # what the grader staged was in it
    seal.remove_home(work)
    assert not home.exists()
    with open("/proc/self/mountinfo") as fh:
        assert str(home) not in fh.read()  # the mount went with the home: nothing stays on the machine


# ---------------------------------------------------------------- cgroup v2
class FakeCgroup2:
    """cgroupfs v2 on a temporary folder, with the rules of the kernel's
    Documentation/admin-guide/cgroup-v2.rst that the grader must follow:
    creating a cgroup gives it ``cgroup.controllers`` = the parent's
    ``cgroup.subtree_control`` and the interface files of those controllers
    only ("Top-down Constraint"); ``+ctrl`` in ``cgroup.subtree_control``
    needs the controller in ``cgroup.controllers`` and, but at the root, no
    process in the cgroup ("No Internal Process Constraint", EBUSY); writing a
    PID to ``cgroup.procs`` moves the process (refused, EBUSY, into a
    non-root cgroup whose subtree_control is not empty)."""

    FILES = {"memory": ("memory.max",), "pids": ("pids.max",), "cpu": ("cpu.max",)}

    def __init__(self, root: Path, controllers):
        self.root = root
        root.mkdir()
        self._files(root, controllers)

    def _files(self, folder, controllers):
        (folder / "cgroup.controllers").write_text(" ".join(controllers))
        (folder / "cgroup.subtree_control").write_text("")
        (folder / "cgroup.procs").write_text("")

    def mkdir(self, path):
        path = Path(path)
        os.mkdir(path)
        enabled = (path.parent / "cgroup.subtree_control").read_text().split()
        self._files(path, enabled)
        for controller in enabled:
            for name in self.FILES.get(controller, ()):
                (path / name).write_text("max")

    def read(self, path):
        return Path(path).read_text()

    def write(self, path, value):
        import errno

        path, value = Path(path), str(value)
        folder = path.parent
        if path.name == "cgroup.procs":
            if folder != self.root and self.read(folder / "cgroup.subtree_control").split():
                raise OSError(errno.EBUSY, "no internal processes")
            for procs in self.root.rglob("cgroup.procs"):
                procs.write_text("".join(f"{p}\n" for p in procs.read_text().split() if p != value.strip()))
            with open(path, "a") as fh:
                fh.write(value.strip() + "\n")
        elif path.name == "cgroup.subtree_control":
            enabled = set(self.read(path).split())
            for word in value.split():
                if word[1:] not in self.read(folder / "cgroup.controllers").split():
                    raise OSError(errno.ENOENT, f"{word[1:]} is not available")
                if folder != self.root and self.read(folder / "cgroup.procs").split():
                    raise OSError(errno.EBUSY, "the cgroup has processes")
                enabled = enabled | {word[1:]} if word[0] == "+" else enabled - {word[1:]}
            path.write_text(" ".join(sorted(enabled)))
        else:
            if not path.exists():
                raise OSError(errno.ENOENT, f"no {path.name}: its controller is not enabled")
            path.write_text(value)


def test_cgroup_v2_kernels_get_memory_pids_and_cpu_caps_under_the_rules(tmp_path, monkeypatch):
    from grader.sandbox import kernel_launcher as kl
    from grader.sandbox import limits

    fake = FakeCgroup2(tmp_path / "cg", ["cpuset", "cpu", "io", "memory", "pids"])
    fake.write(fake.root / "cgroup.subtree_control", "+cpu +memory +pids")
    fake.mkdir(fake.root / "grader.slice")
    own = fake.root / "grader.slice"
    for pid in ("4242", "4243", str(os.getpid())):  # the grader, its zygote, this process
        fake.write(own / "cgroup.procs", pid)
    # /proc/self/cgroup and mountinfo of a pure cgroup v2 machine
    (tmp_path / "cgroup").write_text("0::/grader.slice\n")
    (tmp_path / "mountinfo").write_text(f"30 23 0:26 / {fake.root} rw,nosuid - cgroup2 cgroup2 rw\n")
    assert kl.cgroup2_dir(str(tmp_path / "cgroup"), str(tmp_path / "mountinfo")) == str(own)
    monkeypatch.setattr(kl, "CGFS", fake)

    batch, leaf = seal.batch_cgroup_v2(str(own), "vaelab-batch-1-abcdef")
    assert batch and leaf == str(own / seal.V2_LEAF), leaf
    assert sorted(fake.read(Path(leaf) / "cgroup.procs").split()) == sorted(["4242", "4243", str(os.getpid())])
    assert fake.read(own / "cgroup.procs").split() == []  # every process left the cgroup that now has children

    monkeypatch.setattr(seal, "_CGROUPS", [{"dirs": {"unified": batch}, "back": {"unified": leaf}, "version": 2}])
    spec = seal.cgroup_spec(cpus=2)
    held = kl.enter_cgroup(spec["dirs"], spec["limits"], spec.get("back"))
    try:
        (child,) = [p for p in Path(batch).iterdir() if p.name.startswith("kernel-")]
        assert int(fake.read(child / "memory.max")) == limits._memory_cap_mb() * 2**20
        assert int(fake.read(child / "pids.max")) == seal.PIDS_PER_KERNEL
        assert fake.read(child / "cpu.max").split() == ["200000", "100000"]  # two CPUs' worth per period
        assert fake.read(child / "cgroup.procs").split() == [str(os.getpid())]
        # the process that made the kernel's cgroup returns to the leaf, never into the batch folder
        assert os.readlink(f"/proc/self/fd/{held[0][2]}") == str(Path(leaf) / "cgroup.procs")
    finally:
        for batch_fd, _, back in held:
            os.close(batch_fd)
            os.close(back)
    assert "cgroup v2" in _describe_with(monkeypatch, seal._CGROUPS[0])

    # a subtree without the pids controller delegated: no v2 cgroups, and the reason
    bare = FakeCgroup2(tmp_path / "cg2", ["cpu", "memory"])
    monkeypatch.setattr(kl, "CGFS", bare)
    made, why = seal.batch_cgroup_v2(str(bare.root), "vaelab-batch-2-abcdef")
    assert made is None and "pids" in why


def _describe_with(monkeypatch, made) -> str:
    monkeypatch.setattr(seal, "_batch_cgroups", lambda: made)
    return seal.describe()["kernel_sandbox"]


def test_this_machines_cgroups_are_said_in_describe():
    made = seal._batch_cgroups()
    try:
        text = seal.describe()["kernel_sandbox"]
        if seal.isolation()[0]:
            expected = {1: "cgroup v1", 2: "cgroup v2", 0: "per-process caps only"}[made["version"]]
            assert expected in text
    finally:
        seal.cleanup()
