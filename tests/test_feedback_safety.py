"""Feedback carries nothing a student could forge.

A hostile class writes its markdown and the outputs it submits to run script, leak the page's
opening to a server, draw a look-alike of the kit's or nbgrader's score boxes, or make the
reader's browser allocate gigabytes. Each attack goes through the real functions
(:func:`safe_markdown`, the feedback page's and formgrader's markdown filter, and
:func:`show_submitted_outputs`), then all of them at once through nbconvert's HTML export
with nbgrader's feedback template and the kit's ``nbgrader_config.py``. Expectations are
read back from the HTML as a browser would parse it (BeautifulSoup), and from the image
bytes as Pillow reads them.
"""

from __future__ import annotations

import base64
import copy
import functools
import io
import re
import struct
import zlib
from pathlib import Path

import nbformat
import nbgrader
import pytest
from bs4 import BeautifulSoup
from nbconvert import HTMLExporter
from nbconvert.filters.ansi import ansi2html, strip_ansi
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from PIL import Image
from traitlets.config.loader import PyFileConfigLoader
from traitlets.utils.importstring import import_item

from tfcourse.checking import CaseOutcome, CheckResult
from tfcourse_instructor.grading.rendering.mathml import MATHML_ATTRIBUTES, MATHML_TAGS
from tfcourse_instructor.grading.rendering.safe_markdown import safe_markdown
from tfcourse_instructor.grading.submission.shown_outputs import (
    IMAGE_ALT,
    MAX_IMAGE_SIDE,
    MAX_OUTPUT_BYTES,
    OUTPUT_NOT_SHOWN,
    show_submitted_outputs,
)

REPO = Path(__file__).resolve().parents[1]
GRADED_ONLY = "PRINTED-WHILE-GRADED"

# MathJax 2 commands (TeX input, Safe extension as nbconvert loads it) that draw colours,
# backgrounds, borders, classes, ids or links, or load extensions.
MATHJAX_BOXES = ["style", "class", "cssId", "href", "bbox", "color", "textcolor", "colorbox"]
MATHJAX_BOXES += ["fcolorbox", "enclose", "mmlToken", "require"]
MATHJAX_BOX = re.compile(r"\\(" + "|".join(MATHJAX_BOXES) + r")(?![A-Za-z])")

KIT_REPORT = CheckResult(
    "q1_sdpa", (CaseOutcome("shapes", 3.0, hidden=False, passed=True),)
)._repr_html_()
NBGRADER_BOX = (
    '<div class="panel panel-primary nbgrader_cell"><div class="panel-heading">'
    '<span class="nbgrader-label">Student\'s answer</span>'
    '<span class="pull-right score">Score: 10.0 / 10.0</span></div></div>'
)
LOOK_ALIKES = (
    '<div class="alert alert-success" style="background:#dff0d8" id="toc">Score: 10 / 10</div>',
    NBGRADER_BOX,
    KIT_REPORT,
    '<span class="label label-success">passed</span><a name="top" id="notebook">top</a>',
    '<font color="green">10 / 10</font><center style="border:1px solid">10</center>',
    "<style>.rendered_html { background: #dff0d8 }</style>",
    "# toc\n\n```python\nscore = 10\n```",
)

HONEST = r"""The scaled scores are $\frac{QK^\top}{\sqrt{d_k}}$, so $\boxed{\alpha = 1}$ and

$$\sum_i \mathrm{softmax}(x)_i = 1$$

| $d_k$ | max score |
|:------|----------:|
| 16    | 4.0       |

```python
def attention(q, k, v):
    return softmax(q @ k.T / d_k**0.5) @ v
```

See [the paper](https://arxiv.org/abs/1706.03762?v=5&x=1) or *mail* [me](mailto:me@example.org),
or **question 2** [below](#question-2).
"""
# The honest answer's formulas as MathML: an element each holds, and whether it is displayed.
HONEST_MATH = [("msqrt", None), ("mn", None), ("munder", "block"), ("msub", None)]
HONEST_CODE = "def attention(q, k, v):\n    return softmax(q @ k.T / d_k**0.5) @ v\n"
HONEST_LINKS = ["https://arxiv.org/abs/1706.03762?v=5&x=1", "mailto:me@example.org", "#question-2"]


def soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def attributes(tree: BeautifulSoup) -> set[tuple[str, str]]:
    """(tag, attribute) for every attribute in ``tree`` outside its math."""
    return {
        (tag.name, name)
        for tag in tree.find_all(True)
        if tag.name not in MATHML_TAGS
        for name in tag.attrs
    }


def math_is_layout_only(tree: BeautifulSoup) -> bool:
    """Whether the math in ``tree`` keeps MathML Core's layout attributes only: no colour,
    background, border, link, class or id (a table cell's style aligns its column)."""
    for tag in tree.find_all(MATHML_TAGS):
        for name, value in tag.attrs.items():
            if name == "style":
                if tag.name != "mtd" or re.search(r"color|background|border", value):
                    return False
            elif name not in MATHML_ATTRIBUTES:
                return False
    return True


def honest_math_renders(tree: BeautifulSoup) -> bool:
    """Whether the formulas of :data:`HONEST` are the first MathML in ``tree``."""
    formulas = tree.find_all("math")[: len(HONEST_MATH)]
    return len(formulas) == len(HONEST_MATH) and all(
        formula.find(element) and formula.get("display") == display
        for formula, (element, display) in zip(formulas, HONEST_MATH, strict=True)
    )


# --- markdown -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "markdown",
    [
        '<a href="data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;">x</a>',
        "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        '<a href="javascript:alert(1)">x</a>',
        "[x](javascript:alert(1))",
        '<a href="JaVaScRiPt:alert(1)">x</a>',
        '<a href="java&#x09;script:alert(1)">x</a>',
        '<a href="&#106;avascript:alert(1)">x</a>',
        '<a href=" &#1;javascript:alert(1)">x</a>',
        '<a href="vbscript:msgbox(1)">x</a>',
        '<a href="file:///etc/passwd">x</a>',
        '<a href="other.ipynb">x</a>',
        '<a href="//tracker.example/x">x</a>',
        '<a href="https:tracker.example">x</a>',
    ],
)
def test_a_link_the_kit_would_not_write_loses_its_address(markdown):
    tree = soup(safe_markdown(markdown))
    (link,) = tree.find_all("a")
    assert link.attrs == {} and link.get_text() == "x"


@pytest.mark.parametrize(
    ("markdown", "address"),
    [
        ("[x](https://example.org/a?b=1&c=2)", "https://example.org/a?b=1&c=2"),
        ('<a href="http://example.org" title="t">x</a>', "http://example.org"),
        ("[x](mailto:ta@example.org)", "mailto:ta@example.org"),
        ("[x](#question-2)", "#question-2"),
    ],
)
def test_web_mail_and_in_page_links_keep_their_address(markdown, address):
    (link,) = soup(safe_markdown(markdown)).find_all("a")
    assert link["href"] == address and link.get_text() == "x"


def test_no_image_survives_and_its_alternative_text_stands_in():
    markdown = (
        "![plot](data:image/png;base64,iVBORw0KGgo=) ![pixel](https://tracker.example/p.png) "
        "![pasted](attachment:pasted.png) "
        '<img src="data:image/jpeg;base64,/9j/" alt="raw"><img src=x onerror=alert(1)>'
        '<svg><image href="https://tracker.example/q.png"/></svg>'
    )
    tree = soup(safe_markdown(markdown))
    assert tree.find_all(["img", "svg", "image"]) == []
    assert "plot" in tree.get_text() and "pixel" in tree.get_text()
    assert "pasted" in tree.get_text()
    assert "onerror" not in str(tree) and "tracker.example" not in str(tree)


@pytest.mark.parametrize("markdown", LOOK_ALIKES)
def test_no_look_alike_of_a_score_box_keeps_a_class_style_id_or_name(markdown):
    tree = soup(safe_markdown(markdown))
    assert attributes(tree) == set(), str(tree)
    assert tree.find_all(["style", "font", "center", "script"]) == []


def test_the_kits_check_report_is_styled_so_that_it_needs_the_style_attribute():
    # The premise of the test above: the kit's box is drawn by its inline style.
    assert "style=" in KIT_REPORT


@pytest.mark.parametrize(
    "markdown",
    [
        r"$\style{background-color:#dff0d8;padding:1em}{\text{Score: 10 / 10}}$",
        r"$\bbox[#dff0d8,5px,border:1px solid green]{\text{10 / 10}}$",
        r"$\colorbox{green}{10}$ and $\fcolorbox{green}{#dff0d8}{10}$",
        r"$\color{green}{10}$ $\textcolor{green}{10}$",
        r"$\class{MJX-x}{10}$ $\cssId{MJX-toc}{10}$ $\href{https://example.org}{10}$",
        r"$\require{HTML}$ $\enclose{box}[mathbackground=green]{10}$",
        r"$\mmlToken{mi}[mathbackground=green]{x}$",
        r"$\newcommand{\ok}[1]{\style{color:green}{#1}}\ok{10}$",
        r"\begin{equation}\bbox[green]{10}\end{equation}",
        r"$\\\style{color:green}{10}$",
        "$&#92;style{color:green}{10}$ &bsol;bbox[green]{10} &#x5C;colorbox{green}{10}",
        "<div>&#36;&#92;style{color:green}{10}&#36; &bsol;bbox[green]{10} &#x5C;color</div>",
        # Dollars markdown does not see as math, tags MathJax reads through once dropped.
        r"&#36;\sty<wbr>le{color:green}{10}&#36; &#36;\col<!-- -->or{green}{10}&#36;",
        r"<b>$\colorbox{green}{10}$</b>",
        r"`$\colorbox{green}{10}$` in code",
    ],
)
def test_math_cannot_draw_a_box_or_link(markdown):
    tree = soup(safe_markdown(markdown))
    text = tree.get_text()  # what MathJax would read: references resolved
    assert MATHJAX_BOX.search(text) is None, text
    assert math_is_layout_only(tree), str(tree)
    assert tree.find_all(["menclose", "maction", "annotation-xml"]) == []


def test_math_renders_as_mathml_and_what_math_core_cannot_read_stays_tex():
    markdown = (
        r"$\boxed{x} + \left(\frac{a}{b}\right)$ \\ $$x^2$$ and $\colorboxes + \stylish$"
        "\n\n"
        r"\begin{aligned} a &= b \\ c &= d \end{aligned}"
    )
    tree = soup(safe_markdown(markdown))
    inline, block, aligned = tree.find_all("math")
    assert inline.find("mfrac") and inline.get("display") is None
    assert block["display"] == "block" and block.find("msup")
    assert aligned["display"] == "block" and len(aligned.find_all("mtd")) == 4
    assert r"$\colorboxes + \stylish$" in tree.get_text()
    assert math_is_layout_only(tree)


def test_an_honest_answer_renders():
    tree = soup(safe_markdown(HONEST))
    assert [link["href"] for link in tree.find_all("a")] == HONEST_LINKS
    assert [cell.get_text(strip=True) for cell in tree.find_all(["th", "td"])] == [
        "dk",
        "max score",
        "16",
        "4.0",
    ]
    assert tree.find("pre").get_text() == HONEST_CODE
    assert honest_math_renders(tree) and math_is_layout_only(tree)
    assert "$" not in tree.get_text() and "\\" not in tree.get_text()  # no TeX left
    assert tree.find("strong").get_text() == "question 2"
    assert attributes(tree) == {("a", "href")}


# --- submitted outputs ----------------------------------------------------------------------


@functools.cache
def png(width: int, height: int, padding: int = 0) -> bytes:
    """A valid black 1-bit PNG of ``width`` x ``height``, with a private chunk of ``padding``
    bytes before its pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    row = bytes(1 + (width + 7) // 8)  # filter byte, then the pixels
    packer = zlib.compressobj()
    rows = b"".join(
        packer.compress(row * min(1024, height - done)) for done in range(0, height, 1024)
    )
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    private = chunk(b"prVt", bytes(padding)) if padding else b""
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + private
        + chunk(b"IDAT", rows + packer.flush())
        + chunk(b"IEND", b"")
    )


def jpeg(width: int, height: int, segment: int = 0) -> bytes:
    """A JPEG of ``width`` x ``height`` by Pillow, with an application segment of ``segment``
    bytes before its frame header."""
    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, "JPEG")
    data = buffer.getvalue()
    if segment:
        data = data[:2] + b"\xff\xec" + struct.pack(">H", segment + 2) + bytes(segment) + data[2:]
    return data


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def size_read_by_pillow(encoded: str) -> tuple[int, int]:
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # it would refuse to tell
    try:
        with Image.open(io.BytesIO(base64.b64decode(encoded))) as image:
            return image.size
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def shown(*outputs: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    """The outputs an answer cell shows once graded, when it was submitted with ``outputs``
    and printed something else while graded."""
    answer = {"nbgrader": {"solution": True, "grade": False, "grade_id": "answer"}}
    submitted = new_notebook(cells=[new_code_cell("plot()", id="answer", metadata=answer)])
    submitted.cells[0].outputs = list(outputs)
    graded = new_notebook(cells=[new_code_cell("plot()", id="answer", metadata=answer)])
    graded.cells[0].outputs = [new_output("stream", name="stdout", text=GRADED_ONLY)]
    show_submitted_outputs(graded, submitted, {})
    assert GRADED_ONLY not in str(graded)
    return graded.cells[0].outputs


def image_output(mime: str, data: bytes | str, **extra: str) -> nbformat.NotebookNode:
    encoded = data if isinstance(data, str) else b64(data)
    return new_output("display_data", data={mime: encoded, **extra})


def notes(outputs: list[nbformat.NotebookNode]) -> list[str]:
    return [output.evalue for output in outputs if output.get("ename") == OUTPUT_NOT_SHOWN]


def images(outputs: list[nbformat.NotebookNode]) -> list[str]:
    return [
        value
        for output in outputs
        for mime, value in output.get("data", {}).items()
        if mime.startswith("image/")
    ]


def test_images_within_the_caps_are_shown_as_submitted():
    small_png, small_jpeg = png(MAX_IMAGE_SIDE, MAX_IMAGE_SIDE), jpeg(64, 48, segment=60_000)
    outputs = shown(
        image_output("image/png", small_png, **{"text/plain": "<Figure>"}),
        image_output("image/jpeg", small_jpeg),
    )
    assert images(outputs) == [b64(small_png), b64(small_jpeg)]
    assert [size_read_by_pillow(image) for image in images(outputs)] == [
        (MAX_IMAGE_SIDE, MAX_IMAGE_SIDE),
        (64, 48),
    ]
    assert notes(outputs) == []
    assert [output.metadata for output in outputs] == [
        {"image/png": {"alt": IMAGE_ALT}},
        {"image/jpeg": {"alt": IMAGE_ALT}},
    ]


@pytest.mark.parametrize(
    ("mime", "data", "width", "height"),
    [
        ("image/png", png(20_000, 20_000), 20_000, 20_000),
        ("image/png", png(MAX_IMAGE_SIDE + 1, 1), MAX_IMAGE_SIDE + 1, 1),
        ("image/jpeg", jpeg(8, MAX_IMAGE_SIDE + 904), 8, MAX_IMAGE_SIDE + 904),
        ("image/jpeg", jpeg(5000, 8, segment=65_000), 5000, 8),
    ],
)
def test_an_image_over_the_side_limit_is_replaced_by_a_note(mime, data, width, height):
    assert size_read_by_pillow(b64(data)) == (width, height)
    outputs = shown(image_output(mime, data, **{"text/plain": "<Figure>"}))
    assert images(outputs) == []
    assert outputs[0].data == {"text/plain": "<Figure>"}  # its text stands in
    (note,) = notes(outputs)
    assert f"{width} × {height} px" in note and f"{MAX_IMAGE_SIDE} px a side" in note


def test_an_image_over_the_byte_limit_is_replaced_by_a_note():
    data = png(16, 16, padding=MAX_OUTPUT_BYTES)  # base64 is 4/3 the bytes: over the cap
    assert size_read_by_pillow(b64(data)) == (16, 16)
    outputs = shown(image_output("image/png", data))
    assert images(outputs) == [] and len(outputs) == 1
    (note,) = notes(outputs)
    assert f"{len(b64(data)) / 2**20:.1f} MiB" in note
    assert f"limit of {MAX_OUTPUT_BYTES // 2**20}.0 MiB" in note


@pytest.mark.parametrize(
    ("mime", "data", "why"),
    [
        ("image/png", b64(b"GIF89a" + bytes(40)), "not a PNG image"),
        ("image/png", b64(jpeg(8, 8)), "not a PNG image"),
        ("image/jpeg", b64(png(8, 8)), "not a JPEG image"),
        ("image/png", b64(png(0, 8)), "not a PNG image"),
        ("image/jpeg", b64(jpeg(8, 8))[:40], "not a JPEG image"),  # cut before its frame
        ("image/png", "abc", "not a PNG image"),  # not base64
    ],
)
def test_an_image_that_is_not_what_its_type_says_is_replaced_by_a_note(mime, data, why):
    outputs = shown(image_output(mime, data))
    assert images(outputs) == []
    (note,) = notes(outputs)
    assert why in note


def test_an_image_is_shown_as_base64_only():
    data = png(8, 8)
    quoted = b64(data)[:8] + '"\n <>' + b64(data)[8:]  # what base64 decoding skips
    (output,) = shown(image_output("image/png", quoted))
    assert output.data["image/png"] == b64(data)


def test_only_safe_types_are_shown_and_no_metadata():
    outputs = shown(
        new_output(
            "execute_result",
            data={
                "text/html": "<script>alert(1)</script>",
                "image/svg+xml": "<svg onload=alert(1)/>",
                "application/javascript": "alert(1)",
                "text/markdown": "[x](javascript:alert(1))",
                "text/plain": "<IPython.core.display.HTML object>",
            },
            metadata={"image/png": {"width": '1" onerror=alert(1)'}},
            execution_count=3,
        ),
        nbformat.from_dict({"output_type": "update_display_data", "data": {"text/plain": "x"}}),
    )
    (output,) = outputs
    assert output.data == {"text/plain": "<IPython.core.display.HTML object>"}
    assert output.metadata == {} and output.execution_count == 3


def test_an_image_carries_the_kits_alternative_text_and_none_of_the_students_metadata():
    student = {"width": '1" onerror=alert(1)', "alt": "Score: 10 / 10"}
    submitted = new_output(
        "display_data", data={"image/png": b64(png(8, 8))}, metadata={"image/png": student}
    )
    (output,) = shown(submitted)
    assert output.metadata == {"image/png": {"alt": IMAGE_ALT}}


def test_text_over_the_byte_limit_is_cut_and_a_note_follows():
    text = "é" * (MAX_OUTPUT_BYTES // 2) + "tail"  # two UTF-8 bytes a character
    at_limit = "x" * MAX_OUTPUT_BYTES
    outputs = shown(
        new_output("stream", name="stdout", text=text),
        new_output("display_data", data={"text/plain": text}),
        new_output("error", ename="ValueError", evalue="bad", traceback=[text]),
        new_output("stream", name="stderr", text=at_limit),
    )
    kinds = [(output.output_type, output.get("ename")) for output in outputs]
    note = ("error", OUTPUT_NOT_SHOWN)
    stream, display, error = ("stream", None), ("display_data", None), ("error", "ValueError")
    assert kinds == [stream, note, display, note, error, note, ("stream", None)]
    cut = "é" * (MAX_OUTPUT_BYTES // 2)
    assert [outputs[0].text, outputs[2].data["text/plain"], outputs[4].traceback] == [
        cut,
        cut,
        [cut],
    ]
    assert outputs[6].text == at_limit
    for evalue in notes(outputs):
        assert f"{MAX_OUTPUT_BYTES // 2**20}.0 MiB" in evalue


def test_terminal_colours_do_not_reach_the_page():
    paint = "\x1b[42;30mScore: 10 / 10\x1b[0m"
    rejoined = "\x1b\x1b[0m[48;2;223;240;216mScore: 10 / 10"  # ESC [ ... once ESC[0m is gone
    outputs = shown(
        new_output("stream", name="stdout", text=paint),
        new_output("display_data", data={"text/plain": rejoined}),
        new_output("error", ename="E", evalue="", traceback=[paint, rejoined]),
    )
    texts = [outputs[0].text, outputs[1].data["text/plain"], *outputs[2].traceback]
    assert outputs[0].text == "Score: 10 / 10"  # the words stay, the escapes go
    assert "<span" in ansi2html(paint) and "<span" in ansi2html(strip_ansi(rejoined))
    for text in texts:
        assert "Score: 10 / 10" in text and "<span" not in ansi2html(text), text


def test_limit_notes_still_follow_and_malformed_outputs_show_nothing():
    answer = {"nbgrader": {"solution": True, "grade": False, "grade_id": "answer"}}
    submitted = new_notebook(cells=[new_code_cell("f()", id="answer", metadata=answer)])
    submitted.cells[0].outputs = ["not an output", {"output_type": "display_data", "data": 3}]
    graded = new_notebook(cells=[new_code_cell("f()", id="answer", metadata=answer)])
    graded.cells[0].outputs = [
        new_output("error", ename="CellTimeoutError", evalue="x", traceback=["x"])
    ]
    show_submitted_outputs(graded, submitted, {"CellTimeoutError": "the kit's words"})
    (note,) = graded.cells[0].outputs
    assert (note.ename, note.evalue) == ("CellTimeoutError", "the kit's words")


# --- the page -------------------------------------------------------------------------------


def feedback_page(notebook: nbformat.NotebookNode, exporter_class: type | None = None) -> str:
    """``notebook`` as ``generate_feedback`` renders it: nbgrader's feedback template with the
    kit's configuration (its exporter, markdown filter and templates); ``exporter_class``
    instead of the configured exporter if given."""
    config = PyFileConfigLoader("nbgrader_config.py", path=str(REPO)).load_config()
    templates = Path(nbgrader.__file__).parent / "server_extensions" / "formgrader"
    config.HTMLExporter.template_name = "feedback"
    css = templates / "static" / "node_modules" / "bootstrap" / "dist" / "css"
    config.HTMLExporter.extra_template_paths = [str(css)]
    exporter_class = exporter_class or import_item(config.GenerateFeedback.exporter_class)
    resources = {"nbgrader": {"notebook": "n", "score": 0, "max_score": 1, "late_penalty": 0}}
    page, _ = exporter_class(config=config).from_notebook_node(notebook, resources=resources)
    return page


def attacked_notebook() -> nbformat.NotebookNode:
    """A graded notebook whose written answer holds every attack on the page and whose code
    cell submitted an image over the limits, one within them, colours and a look-alike of the
    kit's report (its outputs shown back as the kit shows them)."""
    attacks = [
        '<a href="data:text/html,x">data</a> <a href="javascript:alert(1)">js</a>',
        '<a href="vbscript:msgbox(1)">vb</a> ![pixel](https://tracker.example/p.png)',
        r"$\style{background-color:#dff0d8}{\text{Score: 10.0 / 10.0}}$",
        *LOOK_ALIKES,
    ]
    meta = {"solution": True, "grade": True, "grade_id": "written", "points": 1, "score": 0}
    answer = new_markdown_cell(
        "\n\n".join([HONEST, *attacks]), metadata={"nbgrader": meta}, id="written"
    )
    submitted_outputs = [
        image_output("image/png", png(20_000, 20_000)),
        image_output("image/png", png(8, 8)),
        new_output("stream", name="stdout", text="\x1b[42mScore: 10 / 10\x1b[0m\n"),
        new_output("display_data", data={"text/html": KIT_REPORT, "text/plain": "report"}),
    ]
    code = {"nbgrader": {"solution": True, "grade": False, "grade_id": "code"}}
    submitted = new_notebook(cells=[answer, new_code_cell("plot()", id="code", metadata=code)])
    submitted.cells[1].outputs = submitted_outputs
    graded = copy.deepcopy(submitted)
    graded.cells[1].outputs = [new_output("stream", name="stdout", text=GRADED_ONLY)]
    show_submitted_outputs(graded, submitted, {})
    return graded


def test_a_feedback_page_of_every_attack_keeps_none_and_renders_the_honest_answer():
    page = soup(feedback_page(attacked_notebook()))

    (written,) = [
        region
        for region in page.find_all("div", class_="text_cell_render")
        if "softmax" in region.get_text()
    ]
    assert attributes(written) == {("a", "href")}  # of what it holds: the page's own div aside
    assert [link["href"] for link in written.find_all("a") if link.has_attr("href")] == HONEST_LINKS
    assert written.find_all(["img", "style", "script", "font"]) == []
    assert MATHJAX_BOX.search(written.get_text()) is None
    assert honest_math_renders(written) and math_is_layout_only(written)
    assert written.find("pre").get_text() == HONEST_CODE
    assert [cell.get_text(strip=True) for cell in written.find_all("td")] == ["16", "4.0"]

    sources = [(image["src"], image["alt"]) for image in page.find_all("img")]
    assert sources == [(f"data:image/png;base64,{b64(png(8, 8))}", IMAGE_ALT)]
    assert page.find_all(class_=re.compile(r"^ansi-")) == []
    assert [pre.get_text() for pre in page.select("div.output_stdout pre")] == ["Score: 10 / 10\n"]
    assert GRADED_ONLY not in page.get_text()
    assert "20000 × 20000 px" in page.get_text()
    assert page.find_all(style=re.compile("1a7f37")) == []  # the kit's report, pasted or shown


def test_the_feedback_exporter_writes_the_page_nbconverts_exporter_writes():
    """The kit's exporter skips HTMLExporter's second pass (BeautifulSoup over the page, for
    images without alternative text and JupyterLab's cells): the page it writes, parsed as
    that pass parses it, is the very page HTMLExporter writes."""
    notebook = attacked_notebook()
    ours, nbconverts = feedback_page(notebook), feedback_page(notebook, HTMLExporter)
    assert ours != nbconverts  # not written out anew
    assert str(BeautifulSoup(ours, features="html.parser")) == nbconverts
