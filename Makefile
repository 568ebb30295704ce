# Two commands do all the set-up on a fresh machine:
#   make samples     build release/ from source/, grade the bundled sample submissions, print scores
#   make test        run the kit's test suite
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
# nbgrader runs `alembic` by name: the venv's bin/ must be on PATH.
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: install notebooks release samples autograde gradescope test lint bench clean

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

install: $(VENV)/.installed

notebooks: install  ## authoring/*.py -> source/*.ipynb, executed
	$(PY) -m tfcourse.grading build

release: install  ## source/ -> release/ (nbgrader + public test files)
	$(PY) -m tfcourse.grading release

samples: install  ## the main job: release, grade the bundled sample submissions, print scores
	$(PY) -m tfcourse.grading samples

autograde: install  ## grade every student under submitted/, print scores
	$(PY) -m tfcourse.grading autograde

gradescope: install  ## otter autograder zips for Gradescope, one per notebook, in gradescope/
	$(PY) -m tfcourse.grading.gradescope

test: install
	$(PY) -m pytest

lint: install
	$(PY) -m ruff check .

bench: install
	$(PY) bench/attention_speed.py

clean:
	rm -rf gradebook.db submitted autograded/*/ feedback grades.csv grades_by_question.csv
