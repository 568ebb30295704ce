"""The grading inputs a worker grades from, and the signature of the software it grades with.

A bundle is the template course a :class:`~tfcourse_instructor.grading.submission.workspace.
Workspace` writes (source notebooks, hidden tests, given modules, configuration, a gradebook that
knows the assignment and no student) packed as one archive, named by the SHA-256 digest of its
bytes. It holds nothing of any student. The environment signature names the kit's code (a digest
of its modules), the Python version and the version of every package the course pins: two
machines with equal signatures grade alike.
"""

from __future__ import annotations

import functools
import hashlib
import io
import platform
import re
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import tfcourse
import tfcourse_instructor

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_PIN = re.compile(rf"^\s*({_NAME.pattern})\s*==")


@dataclass(frozen=True)
class Bundle:
    """One assignment's grading inputs, as sent to every worker."""

    assignment: str
    data: bytes
    """The template course, a gzip-compressed tar archive."""
    digest: str
    """SHA-256 of ``data``."""
    environment: dict[str, str]
    """The coordinator's :func:`environment_signature`."""


def pack(template: Path, assignment: str, environment: dict[str, str]) -> Bundle:
    """Archive the template course ``template`` (files only, in a fixed order, with no owner or
    time stamp, so that equal inputs give equal digests)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as archive:
        for path in sorted(template.rglob("*")):
            if path.is_symlink() or "__pycache__" in path.parts:
                continue
            info = archive.gettarinfo(path, str(path.relative_to(template)))
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            if path.is_file():
                with path.open("rb") as stream:
                    archive.addfile(info, stream)
            elif path.is_dir():
                archive.addfile(info)
    data = buffer.getvalue()
    return Bundle(assignment, data, hashlib.sha256(data).hexdigest(), environment)


def unpack(bundle: Bundle, folder: Path) -> None:
    """Write ``bundle``'s template course into ``folder`` (new); refuse bytes that do not
    match its digest."""
    if hashlib.sha256(bundle.data).hexdigest() != bundle.digest:
        raise ValueError(f"bundle of {bundle.assignment}: its bytes do not match its digest")
    folder.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(bundle.data), mode="r:gz") as archive:
        archive.extractall(folder, filter="data")


def pinned_packages(requirements: Path) -> list[str]:
    """The names of the packages ``requirements`` pins with ``==``; without that file, those
    the installed kit requires."""
    if not requirements.is_file():
        declared = metadata.requires("tfcourse") or []
        return sorted({match.group(0).lower() for line in declared if (match := _NAME.match(line))})
    lines = requirements.read_text(encoding="utf-8").splitlines()
    return sorted({match.group(1).lower() for line in lines if (match := _PIN.match(line))})


def environment_signature(packages: Sequence[str]) -> dict[str, str]:
    """This interpreter's kit digest, Python version and installed version of each of
    ``packages`` ("absent" for one not installed)."""
    return dict(_signature(tuple(packages)))


def signed_packages(signature: dict[str, str]) -> list[str]:
    """The packages whose versions ``signature`` holds."""
    return sorted(set(signature) - {"python", "kit"})


# A process grades with the code and packages it loaded: computed once per process (the kit
# digest reads every module of both packages).
@functools.cache
def _signature(packages: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    signature = {"python": platform.python_version(), "kit": _kit_digest()}
    for name in packages:
        try:
            signature[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            signature[name] = "absent"
    return tuple(signature.items())


def differences(expected: dict[str, str], found: dict[str, str]) -> list[str]:
    """What differs between two signatures, one phrase each (empty if they are equal)."""
    return [
        f"{name} {found.get(name, 'absent')} (coordinator: {expected.get(name, 'absent')})"
        for name in sorted(expected.keys() | found.keys())
        if expected.get(name) != found.get(name)
    ]


def _kit_digest() -> str:
    """SHA-256 over the kit's modules, both packages, by relative path."""
    digest = hashlib.sha256()
    for package in (tfcourse, tfcourse_instructor):
        top = Path(package.__file__).parent
        for path in sorted(top.rglob("*.py")):
            digest.update(str(path.relative_to(top.parent)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]
