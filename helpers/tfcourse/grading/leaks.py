"""Keep hidden tests out of what students get back: outputs that quote them are withheld.

Code under grading can read the hidden test files and print them; the feedback would then
show them. Before feedback is generated, every output of a graded notebook is searched for
the lines of code that only hidden test cases contain, and an output that quotes one is
replaced by a note.
"""

from __future__ import annotations

import html
from pathlib import Path

from nbformat.notebooknode import NotebookNode

from tfcourse.grading.public_tests import hidden_cases, public_test_source

MIN_LINE_LENGTH = 20
WITHHELD = "[output withheld: it quoted the hidden tests]\n"


def hidden_lines(tests_dir: Path) -> set[str]:
    """Lines of hidden test cases (stripped, long enough to be telling) that the public
    test files do not contain."""
    lines: set[str] = set()
    for path in sorted(tests_dir.glob("*.py")):
        source = path.read_text(encoding="utf-8")
        public = {line.strip() for line in public_test_source(source).splitlines()}
        source_lines = source.splitlines()
        for case in hidden_cases(source):
            first = min([case.lineno, *(d.lineno for d in case.decorator_list)])
            for line in source_lines[first - 1 : case.end_lineno]:
                text = line.strip()
                if len(text) >= MIN_LINE_LENGTH and text not in public:
                    lines.add(text)
    return lines


def withhold_leaks(notebook: NotebookNode, lines: set[str]) -> int:
    """Replace every output that quotes one of ``lines``; return how many were replaced."""
    needles = lines | {html.escape(line) for line in lines}
    withheld = 0
    for cell in notebook.cells:
        outputs = cell.get("outputs", [])
        for index, output in enumerate(outputs):
            flat = "\n".join(_strings(output))
            if any(needle in flat for needle in needles):
                outputs[index] = NotebookNode(output_type="stream", name="stdout", text=WITHHELD)
                withheld += 1
    return withheld


def _strings(value: object) -> list[str]:
    """Every string inside an output (its text, data of each type, traceback lines)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []
