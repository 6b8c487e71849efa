"""One place that builds nbgrader's API object for a course folder, with the
course configuration from grader/nbgrader_config.py."""
from __future__ import annotations

from pathlib import Path

from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

CONFIG_FILE = Path(__file__).resolve().parent / "nbgrader_config.py"
EXCHANGE_LINE = "c.Exchange.root"


def course_config(root: Path, db_url: str | None = None) -> Config:
    config = PyFileConfigLoader(CONFIG_FILE.name, path=str(CONFIG_FILE.parent)).load_config()
    config.CourseDirectory.root = str(Path(root).resolve())
    config.CourseDirectory.db_url = db_url or f"sqlite:///{Path(root).resolve() / 'gradebook.db'}"
    # the course's own exchange folder: nbgrader otherwise checks a system-wide one and logs it as critical
    config.Exchange.root = str(Path(root).resolve() / "exchange")
    return config


def api_for(root: Path, db_url: str | None = None):
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    config = course_config(root, db_url)
    coursedir = CourseDirectory(config=config)
    return NbGraderAPI(coursedir, config=config)


def exchange_config(out: Path) -> str:
    return (f"# the course's own exchange folder: no 'exchange directory does not exist' banner\n"
            f"{EXCHANGE_LINE} = {str((out / 'exchange').resolve())!r}")
