"""binder/ agrees with the project's pins and leaves instructor tools out."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pins(text):
    return dict(re.findall(r"^\s*-?\s*([A-Za-z0-9_.\-]+)==([0-9][^\s#]*)", text, re.M))


def test_binder_pins_equal_requirements():
    project = pins((ROOT / "requirements.txt").read_text())
    env = (ROOT / "binder" / "environment.yml").read_text()
    binder = pins(env)
    torch_version = project.pop("torch")
    assert re.search(rf"^\s*- pytorch-cpu={re.escape(torch_version)}\s*$", env, re.M), \
        "binder must install the same torch version as the CPU-only conda-forge build"
    assert binder == project


def test_binder_has_no_cuda_and_no_instructor_tools():
    text = (ROOT / "binder" / "environment.yml").read_text().lower()
    env = "\n".join(line.split("#")[0] for line in text.splitlines())  # ignore comments
    for forbidden in ("cuda", "nbgrader", "pytest", "- torch=", "pytorch-gpu"):
        assert forbidden not in env, forbidden
    assert "pytorch-cpu" in env


def test_binder_installs_vaelab_without_dependencies():
    post = (ROOT / "binder" / "postBuild").read_text()
    assert "pip install --no-deps" in post and "-e ." in post


def test_no_package_index_urls_anywhere():
    suspicious = re.compile(r"--(extra-)?index-url|download\.pytorch|pypi\.org|files\.pythonhosted")
    for path in ROOT.rglob("*"):
        if ".git" in path.parts or ".venv" in path.parts or "build" in path.parts or not path.is_file():
            continue
        if path.suffix in {".pt", ".png", ".npz", ".gz"}:
            continue
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        assert not suspicious.search(text), f"{path} names a package index"


def test_repo2docker_dry_run_uses_our_config():
    """repo2docker's own dry run (no Docker needed): the image is built from
    binder/environment.yml, runs postBuild and our start script."""
    import shutil
    import subprocess
    import sys

    exe = shutil.which("jupyter-repo2docker") or str(Path(sys.executable).parent / "jupyter-repo2docker")
    result = subprocess.run([exe, "--no-build", "--no-run", str(ROOT)], capture_output=True, text=True, timeout=300)
    dockerfile = result.stdout + result.stderr
    assert result.returncode == 0, dockerfile[-2000:]
    assert '--file "binder/environment.yml"' in dockerfile
    assert "./binder/postBuild" in dockerfile and "binder/start" in dockerfile
    post = (ROOT / "binder" / "postBuild").read_text()
    assert 'default_url = "/lab/tree/assignments/01_elbo/01_elbo.ipynb"' in post
    assert (ROOT / "assignments" / "01_elbo" / "01_elbo.ipynb").exists()
