"""The README names only things that exist, and its Binder badge opens
JupyterLab on the first assignment."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_relative_links_point_to_existing_files():
    links = re.findall(r"\]\(((?!https?:)[^)#]+)\)", README)
    assert links
    for link in links:
        assert (ROOT / link).exists(), f"README links to missing {link}"


def test_binder_badge_opens_lab_on_the_first_assignment():
    badge = re.search(r"\(https://mybinder\.org/v2/gh/[^)]+\)", README).group(0)
    assert "urlpath=lab/tree/assignments/01_elbo/01_elbo.ipynb" in badge
    assert (ROOT / "assignments" / "01_elbo" / "01_elbo.ipynb").exists()


def test_every_make_target_in_the_readme_exists():
    makefile = (ROOT / "Makefile").read_text()
    for target in set(re.findall(r"make ([a-z][a-z-]+)", README)):
        assert re.search(rf"^{target}:", makefile, re.M), f"README mentions `make {target}`"
