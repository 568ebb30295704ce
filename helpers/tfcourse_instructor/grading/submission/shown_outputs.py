"""What a graded notebook shows its student and its grader: the outputs the student submitted.

Outputs produced while grading come from code the student controls, at a time when the
kernel has seen the grader's test inputs: shown back, they could carry anything, including
what a hidden test asked. So after grading, every code cell that is not a test cell shows
again the outputs the student submitted (produced on the student's own machine, in the
student's own run: what written answers discuss), in safe types and sizes only, plus the
kit's own note when a limit stopped the cell while graded. Test cells keep what the grader
wrote.

Safe means plain text and PNG or JPEG images, each within :data:`MAX_OUTPUT_BYTES`, images
within :data:`MAX_IMAGE_SIDE` too; text past the cap is cut, an image past one is left out,
and the kit's note (:data:`OUTPUT_NOT_SHOWN`) says so where it happened. Every image shown
carries the kit's alternative text (:data:`IMAGE_ALT`).
"""

from __future__ import annotations

import base64
import binascii

from nbconvert.filters.ansi import strip_ansi
from nbformat.notebooknode import NotebookNode
from nbgrader import utils

SAFE_TYPES = ("text/plain", "image/png", "image/jpeg")
"""Output types shown back; the others (HTML, JavaScript, SVG, widgets) can run code in a
browser, and each of them comes with a plain-text alternative."""
MAX_OUTPUT_BYTES = 2 * 2**20
"""Most data shown back per output: text (UTF-8) past it is cut, an image (base64) past it is
not shown."""
MAX_IMAGE_SIDE = 4096
"""Widest and tallest image shown back, in pixels: a small file can declare an image that
would take a browser gigabytes to draw."""
IMAGE_ALT = "An image this cell drew in the student's own run"
"""The alternative text of every image shown back (pages may need one; a student's own text
would be theirs to word)."""
OUTPUT_NOT_SHOWN = "OutputNotShownError"
"""Name of the kit's note where a cap cut an output, or an image was left out."""

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # SOFn; not DHT, JPG, DAC


def show_submitted_outputs(
    graded: NotebookNode, submitted: NotebookNode, limit_notes: dict[str, str]
) -> None:
    """In ``graded``, replace the outputs of every non-test code cell by those of the cell
    with the same id in ``submitted``, in safe types and sizes only (:func:`_shown`); keep,
    reworded as ``limit_notes`` says, the errors that a limit raised while graded
    (``limit_notes``: error name -> the kit's text)."""
    submitted_outputs = {
        cell.get("id"): cell.get("outputs", [])
        for cell in submitted.cells
        if cell.cell_type == "code"
    }
    for cell in graded.cells:
        if cell.cell_type != "code" or (utils.is_grade(cell) and not utils.is_solution(cell)):
            continue
        notes = [
            _note(name, limit_notes[name])
            for name in dict.fromkeys(
                output.get("ename") for output in cell.outputs if output.output_type == "error"
            )
            if name in limit_notes
        ]
        outputs = submitted_outputs.get(cell.get("id"))
        shown = [
            node
            for output in (outputs if isinstance(outputs, list) else [])
            for node in _shown(output)
        ]
        cell.outputs = shown + notes


def _shown(output: NotebookNode) -> list[NotebookNode]:
    """What of the submitted ``output`` is shown back: its text plain and capped, its images
    of :data:`SAFE_TYPES` if within the caps, rebuilt with no other field; then the kit's
    note for what a cap cut or left out. Other output types show nothing."""
    if not isinstance(output, dict):
        return []
    kind = output.get("output_type")
    if kind == "stream":
        text, notes = _plain(output.get("text", ""))
        name = "stderr" if output.get("name") == "stderr" else "stdout"
        return [NotebookNode(output_type="stream", name=name, text=text), *notes]
    if kind == "error":
        traceback = output.get("traceback", [])
        text, notes = _plain("\n".join(map(str, traceback)) if isinstance(traceback, list) else "")
        # ename and evalue are not on the page (its traceback is): capped, never a note.
        ename, evalue = (_plain(output.get(field, ""))[0] for field in ("ename", "evalue"))
        error = NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[text])
        return [error, *notes]
    if kind not in ("display_data", "execute_result"):
        return []
    data, notes = {}, []
    bundle = output.get("data")
    for mime, value in bundle.items() if isinstance(bundle, dict) else []:
        if mime == "text/plain":
            data[mime], cut = _plain(value)
            notes += cut
        elif mime in SAFE_TYPES:
            try:
                data[mime] = _image(mime, value)
            except ValueError as refused:
                notes.append(_note(OUTPUT_NOT_SHOWN, f"an image is not shown: {refused}"))
    if not data:
        return notes
    images = {mime: {"alt": IMAGE_ALT} for mime in data if mime.startswith("image/")}
    shown = NotebookNode(output_type=kind, data=data, metadata=images)
    if kind == "execute_result":
        count = output.get("execution_count")
        shown.execution_count = count if isinstance(count, int) else None
    return [shown, *notes]


def _plain(value: object) -> tuple[str, list[NotebookNode]]:
    """``value`` as plain text cut to :data:`MAX_OUTPUT_BYTES`, and the kit's note if it was.
    Terminal escapes go: nbconvert would draw them as colours and backgrounds."""
    text = strip_ansi(value if isinstance(value, str) else str(value))
    # One pass of strip_ansi can join an escape out of what it removed: no escape survives.
    encoded = text.replace("\x1b", "").encode("utf-8", "replace")
    if len(encoded) <= MAX_OUTPUT_BYTES:
        return encoded.decode("utf-8"), []
    note = f"the output above is cut after its first {_mib(MAX_OUTPUT_BYTES)}: the limit per output"
    return encoded[:MAX_OUTPUT_BYTES].decode("utf-8", "ignore"), [_note(OUTPUT_NOT_SHOWN, note)]


def _image(mime: str, value: object) -> str:
    """The base64 of a ``mime`` image, re-encoded (nothing but base64 reaches the page), or
    ValueError saying why it is not shown: past :data:`MAX_OUTPUT_BYTES`, not the image its
    type says (a browser would draw another format it recognises, whatever the type), or
    past :data:`MAX_IMAGE_SIDE` by the size its header declares, which is what a browser
    allocates. Headers are read here, not by Pillow: it is only installed with matplotlib,
    its opener raises or warns by a process-wide pixel limit before it tells the size, and
    the size needs a few bytes of a PNG's IHDR chunk or a JPEG's frame header, nothing
    decoded."""
    not_an_image = ValueError(f"its data are not a {mime.removeprefix('image/').upper()} image")
    if not isinstance(value, str):
        raise not_an_image
    if len(value) > MAX_OUTPUT_BYTES:
        raise ValueError(
            f"its {_mib(len(value))} of data are over the limit of {_mib(MAX_OUTPUT_BYTES)}"
            " per output"
        )
    try:
        raw = base64.b64decode(value)
    except binascii.Error:
        raise not_an_image from None
    size = _png_size(raw) if mime == "image/png" else _jpeg_size(raw)
    if size is None or 0 in size:
        raise not_an_image
    if max(size) > MAX_IMAGE_SIDE:
        raise ValueError(
            f"{size[0]} × {size[1]} px is over the limit of {MAX_IMAGE_SIDE} px a side"
        )
    return base64.b64encode(raw).decode("ascii")


def _png_size(raw: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk, which must come first; None if not a PNG."""
    if raw[:8] != _PNG_SIGNATURE or raw[12:16] != b"IHDR" or len(raw) < 24:
        return None
    return int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big")


def _jpeg_size(raw: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header (SOFn), found by walking the segments
    before it; None if not a JPEG or if a scan or the end comes first."""
    if raw[:2] != b"\xff\xd8":
        return None
    at = 2
    while at + 4 <= len(raw) and raw[at] == 0xFF:
        marker = raw[at + 1]
        if marker == 0xFF:  # a fill byte before the marker
            at += 1
        elif marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a segment
            at += 2
        elif marker in _JPEG_FRAMES:
            if at + 9 > len(raw):
                return None
            return int.from_bytes(raw[at + 7 : at + 9], "big"), int.from_bytes(
                raw[at + 5 : at + 7], "big"
            )
        elif marker in (0xD9, 0xDA):  # end of image, start of scan
            return None
        else:
            at += 2 + int.from_bytes(raw[at + 2 : at + 4], "big")
    return None


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


def _note(name: str, text: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=name, evalue=text, traceback=[f"{name}: {text}"])
