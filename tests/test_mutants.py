"""Mutation testing of the graders (`python -m tfcourse_instructor.grading mutants`).

The declarations are checked whole and cheaply (every edit applies, every question is
covered); grading runs on a representative subset only (the whole table takes many minutes:
`make mutants`), in a scratch copy of the course through the real grading path.
"""

import copy

import pytest

from tfcourse_instructor.grading.selftest import mutants
from tfcourse_instructor.grading.selftest.samples import Edit
from tfcourse_instructor.grading.submission.warm import WarmProcesses

from conftest import all_reference_notebooks, copy_course

# Fewest declared per autograded question: coding questions of notebooks 1-3, 5 and 6, and the
# numeric answers of notebook 4.
LEAST_MUTANTS = {
    "01_attention": 4,
    "02_encoder": 4,
    "03_language_models": 4,
    "04_theory": 2,
    "05_inference": 4,
    "06_tokens_positions": 4,
}
# A mutant of a coding question, an alternative of a numeric answer, a mutant of notebook 5
# (and a planted survivor).
SUBSET = (
    "mut-q1_masks-padding-starts-one-late",
    "alt-q4_cost-one-product",
    "mut-q5_kv_attention-mask-without-the-cache-s-offset",
)


def declared_variants(tree):
    """Every variant declared, of every assignment."""
    return [variant for course in tree.courses for variant in mutants.load_variants(course)]


def autograded_questions(notebook):
    """Grade ids of the test cells (graded, not answers) of ``notebook``."""
    return [
        cell.metadata["nbgrader"]["grade_id"]
        for cell in notebook.cells
        if cell.metadata.get("nbgrader", {}).get("grade")
        and not cell.metadata["nbgrader"].get("solution")
    ]


def test_every_declared_edit_applies_to_the_current_notebooks(repo_course):
    reference = all_reference_notebooks(repo_course)
    for variant in declared_variants(repo_course):
        notebooks = {variant.notebook: copy.deepcopy(reference[variant.notebook])}
        for edit in variant.edits:
            edit.apply(notebooks)  # raises when the solution changed under the edit
        assert notebooks[variant.notebook] != reference[variant.notebook], variant.student


def test_every_autograded_question_has_its_mutants(repo_course):
    variants = declared_variants(repo_course)
    reference = all_reference_notebooks(repo_course)
    for name, least in LEAST_MUTANTS.items():
        for question in autograded_questions(reference[name]):
            declared = [v for v in variants if v.question == question and not v.correct]
            assert len(declared) >= least, f"{question}: {len(declared)} mutants, want {least}"


def test_a_variant_may_edit_only_its_own_notebook(tmp_path):
    course = copy_course(tmp_path / "course")["01_attention"]
    path = mutants.declarations_dir(course) / "01_attention.py"
    path.write_text(
        "from tfcourse_instructor.grading.selftest.mutants import mutant\n"
        "from tfcourse_instructor.grading.selftest.samples import Edit\n"
        "VARIANTS = [mutant('q1_sdpa', 'elsewhere', Edit('02_encoder', 'lm', 'a', 'b'))]\n"
    )
    with pytest.raises(ValueError, match="must edit 01_attention only"):
        mutants.load_variants(course, ["01_attention"])


@pytest.mark.slow
def test_a_subset_is_killed_or_accepted_and_a_survivor_is_reported(tmp_path, repo_course):
    declared = {v.student: v for v in declared_variants(repo_course)}
    planted = mutants.mutant(
        "q4_cost",
        "planted: the model solution reordered",
        Edit("04_theory", "cost_functions", "return scores + mixing", "return mixing + scores"),
    )
    variants = [declared[student] for student in SUBSET] + [planted]
    tree = copy_course(tmp_path / "course")
    reference, outcomes = [], []
    with WarmProcesses(sandboxed=True) as warm:  # as the command shares them
        for name in sorted({variant.notebook for variant in variants}):
            own = [variant for variant in variants if variant.notebook == name]
            scores, found = mutants.run_variants(tree[name], own, jobs=1, progress=False, warm=warm)
            reference += scores
            outcomes += found

    assert {s.notebook for s in reference} == {"01_attention", "04_theory", "05_inference"}
    assert not mutants.reference_shortfalls(reference)
    verdicts = {o.variant.student: o.as_expected for o in outcomes}
    assert verdicts == {**dict.fromkeys(SUBSET, True), planted.student: False}
    report = mutants.format_report(reference, outcomes)
    assert "SURVIVED  q4_cost: planted: the model solution reordered (5/5; full points)" in report
    assert any(line.split()[:3] == ["q4_cost", "0/1", "1/1"] for line in report.splitlines())
    assert any(line.split()[:3] == ["q1_masks", "1/1", "0/0"] for line in report.splitlines())
    assert any(
        line.split()[:3] == ["q5_kv_attention", "1/1", "0/0"] for line in report.splitlines()
    )
    assert not mutants.all_as_expected(reference, outcomes)


def test_the_scratch_copy_holds_the_modules_the_assignment_gives(tmp_path, repo_course):
    """Notebook 3's test files import its given module (language_model): a scratch copy
    without it fails every check of the model solution."""
    course = repo_course["03_language_models"]
    scratch = mutants.scratch_course(course, tmp_path)
    names = [module.name for module in scratch.given_modules()]
    assert names == [module.name for module in course.given_modules()] and names
