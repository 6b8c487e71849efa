# The course's command surface. Every target that needs Python first builds
# .venv from the pinned requirement files, so `make lab` and `make test` work
# on a fresh clone with nothing but python3 (>= 3.10) installed.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
JOBS   ?= 1
PORT   ?= 8888
# make grade SUBMISSIONS=path/to/folder-or-lms.zip [ASSIGNMENT=01_elbo] [OUT=build/grading]
SUBMISSIONS ?=
ASSIGNMENT  ?=
OUT         ?= build/grading
DB_URL      ?=
REGRADE     ?=
# make grade SCHEDULER=tcp://host:8786 grades on a Dask cluster (docs/grading-at-scale.md)
SCHEDULER   ?=
# due dates, extensions and the late policy (grader/late.py)
COURSE      ?= grader/course.toml
# submission times from the LMS (Canvas submissions JSON, Moodle grading worksheet, or CSV): grader/grade/times.py
TIMES       ?=
# make student-edition DEST=../vae-course-student [UPTO=02_reparameterization] [REPO_URL=https://github.com/org/repo]
DEST        ?=
UPTO        ?=
REPO_URL    ?=
FORCE       ?=
# make export LMS=canvas|moodle|csv ROSTER=roster.csv [OUT=build/grading]
LMS         ?=
PERCENT     ?=
CANVAS_GRADEBOOK ?=
ROSTER      ?=

.PHONY: help install lab test test-full test-fast test-binder test-hub test-browser browser release references check-release todo assignment grade bench clean student-edition export feedback-bundle formgrader dask-scheduler dask-worker

help:
	@echo "make lab          create .venv, install, open JupyterLab on assignment 01"
	@echo "make test         create .venv, install, run every test"
	@echo "make test-browser JupyterLab in headless Chromium: run every notebook, drive the sliders"
	@echo "make test-binder  the Binder image's packages under 1 CPU and 2 GB"
	@echo "make test-hub     the course on a real JupyterHub: nbgitpuller link, 1-CPU quota, nbgrader exchange"
	@echo "make references [ASSIGNMENT=03_vae] [FORCE=1]   record the reference outputs of the assignments whose sources changed"
	@echo "make release      regenerate assignments/ from solutions/"
	@echo "make todo ASSIGNMENT=01_elbo NAME=kl_diag_gaussians [AFTER=kl_standard_normal] [POINTS=2] [ARGS=\"mu, logvar\"]"
	@echo "                 add a TODO's cells to the solution notebook and stubs to its cases, mutants, variants (docs/authoring.md)"
	@echo "make assignment NAME=06_flows [TITLE=\"Normalizing flows\"]   a new notebook, its author files, README rows, due-date line"
	@echo "make student-edition DEST=dir [UPTO=02_reparameterization] [REPO_URL=git-url]"
	@echo "                 write (and commit) the student repository: released notebooks, vaelab, binder/"
	@echo "make grade SUBMISSIONS=dir-or-zip [ASSIGNMENT=01_elbo] [JOBS=2] [DB_URL=postgresql+psycopg2://...] [REGRADE=1] [SCHEDULER=tcp://host:8786]"
	@echo "                 autograde; write feedback HTML, grades CSV and the class report"
	@echo "make export LMS=canvas|moodle|csv [ROSTER=roster.csv] [PERCENT=1] [OUT=build/grading]"
	@echo "                 the gradebook as the LMS's grade-import CSV, mapped through a roster"
	@echo "make formgrader [OUT=build/grading]   JupyterLab with nbgrader's formgrader on the graded folder, to mark proofs"
	@echo "make feedback-bundle LMS=canvas|moodle   feedback HTML zipped for the LMS's bulk upload (from its own download)"
	@echo "make dask-scheduler / make dask-worker SCHEDULER=tcp://host:8786 [WORKERS=1]   a grading cluster"
	@echo "make bench [QUICK=1] [ONLY=browser,...]   speed figures -> docs/benchmarks.md"

# configurable-http-proxy for tests/test_hub.py (package.json; Node.js >= 20, Debian's nodejs + npm)
NODE_STAMP := node_modules/.installed
$(NODE_STAMP): package.json package-lock.json
	@if command -v npm >/dev/null; then npm ci --no-audit --no-fund --silent && touch $@; \
	else echo "no npm: tests/test_hub.py will be skipped (apt-get install nodejs npm)"; fi

# JupyterLab settings every student gets (no news or update pop-ups); the
# Binder image installs the same file (binder/postBuild).
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json

install: $(STAMP) $(LAB_SETTINGS) $(NODE_STAMP)

$(LAB_SETTINGS): binder/overrides.json $(STAMP)
	mkdir -p $(dir $@)
	cp binder/overrides.json $@

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# Exact version first: on a CPU-only machine this resolves to the CPU build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# JupyterLab rooted at the repository, opened on the first assignment.
# Root users (containers) need --allow-root; nobody else gets it.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)
LAB_ARGS ?=
LAB_ROOT ?= $(CURDIR)

lab: $(STAMP) $(LAB_SETTINGS)
	OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-PASSIVE} $(VENV)/bin/jupyter lab --port=$(PORT) --ServerApp.root_dir="$(LAB_ROOT)" $(ALLOW_ROOT) \
		--LabApp.default_url=/lab/tree/assignments/01_elbo/01_elbo.ipynb $(LAB_ARGS)

test: $(STAMP) $(LAB_SETTINGS) $(NODE_STAMP) browser
	$(PY) -m pytest --durations=25
	$(MAKE) --no-print-directory test-binder
	$(MAKE) --no-print-directory bench QUICK=1

# Everything in `make test` plus the slow repeats CI leaves out (the adversarial
# batch graded serially as well as with two jobs, and compared).
test-full: $(STAMP) $(LAB_SETTINGS) $(NODE_STAMP) browser
	VAELAB_TEST_FULL=1 $(PY) -m pytest --durations=25
	$(MAKE) --no-print-directory test-binder
	$(MAKE) --no-print-directory bench QUICK=1

# A replica of the Binder image: its own package list, 1 CPU, a 2 GB cap.
test-binder: $(STAMP)
	$(PY) tests/binder_replica.py

# Browser tests use Debian's Chromium; Playwright's own browser download is
# not used (and not reachable here). Installed with apt when running as root.
CHROMIUM ?= $(or $(shell command -v chromium 2>/dev/null),/usr/bin/chromium)

browser:
	@if [ ! -x "$(CHROMIUM)" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing Debian's chromium for the browser tests"; \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
			|| { echo "could not install chromium with apt"; exit 1; }; \
		else \
			echo "browser tests need Chromium: run 'sudo apt-get install chromium' (or set CHROMIUM=/path/to/chromium)"; exit 1; \
		fi; \
	fi

test-hub: $(STAMP) $(LAB_SETTINGS) $(NODE_STAMP) browser
	VAELAB_CHROMIUM="$(CHROMIUM)" $(PY) -m pytest tests/test_hub.py

test-browser: $(STAMP) $(LAB_SETTINGS) browser
	VAELAB_CHROMIUM="$(CHROMIUM)" $(PY) -m pytest -m browser tests/test_browser.py

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

references: $(STAMP)
	$(PY) -m grader.author.record $(ASSIGNMENT) $(if $(FORCE),--force)

release: $(STAMP)
	$(PY) -m grader.publish.release

student-edition: $(STAMP)
	@test -n "$(DEST)" || { echo "usage: make student-edition DEST=path [UPTO=02_reparameterization] [REPO_URL=git-url] [FORCE=1]"; exit 2; }
	$(PY) -m grader.publish.edition "$(DEST)" $(if $(UPTO),--upto $(UPTO)) $(if $(REPO_URL),--repo-url "$(REPO_URL)") \
		--course "$(COURSE)" $(if $(FORCE),--force)

check-release: $(STAMP)
	$(PY) -m grader.publish.release --check

# The course author's scaffold (grader/author/scaffold.py, docs/authoring.md): refuses a bad or clashing name
# with nothing written.
NAME   ?=
AFTER  ?=
POINTS ?=
ARGS   ?=
TITLE  ?=
todo: $(STAMP)
	@test -n "$(ASSIGNMENT)" -a -n "$(NAME)" || { echo "usage: make todo ASSIGNMENT=01_elbo NAME=kl_diag_gaussians [AFTER=kl_standard_normal] [POINTS=2] [ARGS=\"mu, logvar\"]"; exit 2; }
	$(PY) -m grader.author.scaffold todo "$(ASSIGNMENT)" "$(NAME)" $(if $(AFTER),--after "$(AFTER)") \
		$(if $(POINTS),--points "$(POINTS)") $(if $(ARGS),--args "$(ARGS)")

assignment: $(STAMP)
	@test -n "$(NAME)" || { echo "usage: make assignment NAME=06_flows [TITLE=\"Normalizing flows\"]"; exit 2; }
	$(PY) -m grader.author.scaffold assignment "$(NAME)" $(if $(TITLE),--title "$(TITLE)")

grade: $(STAMP)
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=path/to/folder-or-zip [ASSIGNMENT=01_elbo] [JOBS=N]"; exit 2; }
	$(PY) -m grader.grade "$(SUBMISSIONS)" --out "$(OUT)" --jobs $(JOBS) $(if $(ASSIGNMENT),--assignment $(ASSIGNMENT)) \
		$(if $(DB_URL),--db-url "$(DB_URL)") $(if $(REGRADE),--regrade) $(if $(SCHEDULER),--scheduler "$(SCHEDULER)") \
		--course "$(COURSE)" $(if $(TIMES),--times "$(TIMES)")

export: $(STAMP)
	@test -n "$(LMS)" || { echo "usage: make export LMS=canvas|moodle|csv [ROSTER=roster.csv] [PERCENT=1] [OUT=build/grading]"; exit 2; }
	$(PY) -m grader.after.export --lms "$(LMS)" $(if $(ROSTER),--roster "$(ROSTER)") --out "$(OUT)" $(if $(PERCENT),--percent) \
		$(if $(CANVAS_GRADEBOOK),--canvas-gradebook "$(CANVAS_GRADEBOOK)")

# nbgrader's formgrader on the graded folder (its config, its own exchange, MathJax served locally)
formgrader: $(STAMP) $(LAB_SETTINGS)
	$(PY) -m grader.after.formgrader --out "$(OUT)" --port $(PORT) -- $(LAB_ARGS)

feedback-bundle: $(STAMP)
	@test -n "$(LMS)" || { echo "usage: make feedback-bundle LMS=canvas|moodle [OUT=build/grading]"; exit 2; }
	$(PY) -m grader.after.export bundle --lms "$(LMS)" --out "$(OUT)" $(if $(ROSTER),--roster "$(ROSTER)")

QUICK ?=
# make bench ONLY=browser,slider reruns some sections and keeps the others' results
ONLY ?=
# The full run trains on 60k Fashion-MNIST from Debian's dataset-fashion-mnist
# when it is installed (tried here when running as root; the quick run never needs it).
bench: $(STAMP)
	@if [ -z "$(QUICK)" ] && [ ! -d /usr/share/datasets/fashion-mnist ] && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null 2>&1 \
		|| echo "dataset-fashion-mnist not installable here: benchmarking on the embedded subset"; fi
	@$(MAKE) --no-print-directory browser || echo "no Chromium: the browser latency rows are skipped"
	$(PY) -m bench $(if $(QUICK),--quick) $(if $(ONLY),--only $(ONLY))

# A Dask cluster for `make grade SCHEDULER=...` (docs/grading-at-scale.md): the scheduler and, on
# every grading machine, in a checkout of the same commit, `make dask-worker` (WORKERS processes, one
# notebook at a time each). Workers must not be daemonic: grading starts a sandbox and a judge pool.
# grader/grade/dask_preload.py starts both (and the zygote) before a worker registers.
WORKERS   ?= 1
DASK_ARGS ?=
dask-scheduler: $(STAMP)
	PYTHONPATH="$(CURDIR)$${PYTHONPATH:+:$$PYTHONPATH}" $(VENV)/bin/dask scheduler $(DASK_ARGS)

dask-worker: $(STAMP)
	@test -n "$(SCHEDULER)" || { echo "usage: make dask-worker SCHEDULER=tcp://host:8786 [WORKERS=1]"; exit 2; }
	DASK_DISTRIBUTED__WORKER__DAEMON=False PYTHONPATH="$(CURDIR)$${PYTHONPATH:+:$$PYTHONPATH}" \
		$(VENV)/bin/dask worker "$(SCHEDULER)" --nthreads 1 --nworkers $(WORKERS) --preload grader.grade.dask_preload $(DASK_ARGS)

clean:
	rm -rf build .pytest_cache gradebook.db
