# Two commands do all the set-up on a fresh machine:
#   make samples     build release/ from source/, grade the bundled sample submissions, print scores
#   make test        run the kit's test suite
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
# nbgrader runs `alembic` by name: the venv's bin/ must be on PATH.
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: install notebooks release publish samples mutants autograde grade report gradescope test lint \
	bench bench-attention bench-lm bench-notebook bench-grading bench-cluster clean

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

# Jupyter servers of the venv serve formgrader through the kit's extension, nbgrader's formgrader
# behind the kit's answer to its Autograde button (grading/classroom/formgrader.py), as the
# kit's Jupyter configuration says. A wheel installs the file (pyproject.toml's data-files); an
# editable install does not: make copies it.
SERVER_CONFIG := jupyter_server_config.d/tfcourse_instructor.json

$(VENV)/etc/jupyter/$(SERVER_CONFIG): jupyter-config/$(SERVER_CONFIG) $(VENV)/.installed
	mkdir -p $(@D)
	cp $< $@

install: $(VENV)/.installed $(VENV)/etc/jupyter/$(SERVER_CONFIG)

notebooks: install  ## authoring/*.py -> source/*.ipynb, executed
	$(PY) -m tfcourse_instructor.grading build

release: install  ## source/ -> release/ (nbgrader + public test files)
	$(PY) -m tfcourse_instructor.grading release

publish: install  ## release/ -> student/ (or OUT=DIR): the student distribution to make public
	$(PY) -m tfcourse_instructor.grading publish $(if $(OUT),--out $(OUT))

samples: install  ## the main job: release, grade the bundled sample submissions, print scores
	$(PY) -m tfcourse_instructor.grading samples

mutants: install  ## grade every declared mutant and alternative: killed / accepted per question
	$(PY) -m tfcourse_instructor.grading mutants $(ARGS)

# Grading a class: `make grade` (every released assignment under submitted/),
# `make grade ASSIGNMENT=02_encoder` (one), `make grade ASSIGNMENT=02_encoder ZIP=download.zip`
# (an LMS zip of one assignment), `make grade SCHEDULER=tcp://HOST:8786` (on a Dask cluster),
# options in ARGS, e.g. ARGS="--jobs 8 --memory-mb 4096".
grade: install  ## intake, checks, autograde in parallel with limits, feedback, grades.csv, report, summary
	$(PY) -m tfcourse_instructor.grading grade $(if $(ASSIGNMENT),--assignment $(ASSIGNMENT)) \
		$(if $(ZIP),--zip $(ZIP)) $(if $(ROSTER),--roster $(ROSTER)) \
		$(if $(SCHEDULER),--scheduler $(SCHEDULER)) $(ARGS)

autograde: grade

report: install  ## grades.csv and the class report (report/index.html) from the gradebook, no grading
	$(PY) -m tfcourse_instructor.grading report

gradescope: install  ## otter autograder zips for Gradescope, one per notebook, in gradescope/
	$(PY) -m tfcourse_instructor.grading gradescope

test: install
	$(PY) -m pytest

lint: install
	$(PY) -m ruff check .

bench: bench-attention bench-lm bench-notebook bench-grading bench-cluster  ## the five bench-* targets (about 50 minutes)

bench-attention: install  ## reference attention vs torch.nn.MultiheadAttention
	$(PY) bench/attention_speed.py

bench-grading: install  ## several minutes: kit grading (--jobs 1 and N) vs the notebooks run bare and plain nbgrader
	$(PY) bench/grading_speed.py $(ARGS)

bench-cluster: install  ## a few minutes: grading on a local Dask cluster, 1 worker vs 2
	$(PY) bench/cluster_scaling.py $(ARGS)

bench-lm: install  ## kit recipe vs nanoGPT's CPU recipe vs a 5-gram, curves to 10 minutes (about 25 minutes)
	$(PY) bench/lm_quality.py

bench-notebook: install  ## notebook 3 top to bottom in full mode, time per section
	$(PY) bench/notebook_time.py 03_language_models

clean:
	rm -rf gradebook.db submitted autograded/*/ feedback grades.csv grades_by_question.csv report \
		grading_summary.json
