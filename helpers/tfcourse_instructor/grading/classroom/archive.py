"""Reading an LMS download safely: bounded memory, and nothing a zip says is trusted.

Python's :mod:`zipfile` reads whatever it is given. It caps no size: an entry inflates to as
many bytes as its data holds (a 1 MB entry can hold gigabytes of zeros), and the central
directory, with every entry's record, is read into memory whole. It does not tell a link or
a nested archive from a file, and hands out names such as ``../x`` or ``/etc/x`` as they are.
So the checks are written here: the size of the directory is checked before zipfile reads it,
entries are counted, each entry is read in chunks up to a byte cap (the size its header claims
is not trusted), and links, special files, encrypted entries, exotic compression methods and
nested archives (by name or by their first bytes) are refused.
"""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

MAX_ENTRIES = 10_000
"""Entries in one download (a class of 1,000 with five notebooks each and some extras)."""
MAX_DIRECTORY_BYTES = MAX_ENTRIES * 1024
"""Central directory of one download: what zipfile holds in memory for its entry list."""
_CHUNK = 64 * 1024

ARCHIVE_SUFFIXES = (
    ".zip", ".tar", ".gz", ".tgz", ".bz2", ".tbz2", ".xz", ".txz", ".zst", ".lz", ".lzma",
    ".z", ".7z", ".rar", ".cab", ".jar", ".whl", ".egg", ".war", ".apk", ".iso", ".cpio",
)  # fmt: skip
_ARCHIVE_MAGIC = (
    b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08",  # zip
    b"\x1f\x8b",  # gzip
    b"BZh",  # bzip2
    b"\xfd7zXZ\x00",  # xz
    b"\x5d\x00\x00",  # lzma
    b"\x28\xb5\x2f\xfd",  # zstd
    b"7z\xbc\xaf\x27\x1c",  # 7z
    b"Rar!\x1a\x07",  # rar
    b"MSCF",  # cab
)  # fmt: skip
_TAR_MAGIC_OFFSET = 257  # "ustar" in a tar header


class ArchiveRefused(Exception):
    """The download as a whole cannot be read safely (not a zip, too many entries)."""


def open_zip(path: Path) -> zipfile.ZipFile:
    """``path`` opened for reading, once its central directory and its number of entries are
    known to be within :data:`MAX_DIRECTORY_BYTES` and :data:`MAX_ENTRIES`; raise
    :class:`ArchiveRefused` otherwise."""
    try:
        with path.open("rb") as handle:
            # The end record zipfile itself reads the directory's size from (the same private
            # function, so that the check and zipfile's reading cannot disagree).
            end = zipfile._EndRecData(handle)
    except OSError as error:
        raise ArchiveRefused(f"{path.name}: cannot be read ({error})") from None
    if not end:
        raise ArchiveRefused(f"{path.name}: not a zip file")
    if end[zipfile._ECD_SIZE] > MAX_DIRECTORY_BYTES:
        raise ArchiveRefused(
            f"{path.name}: its list of entries takes {end[zipfile._ECD_SIZE]:,} bytes, over the "
            f"limit of {MAX_DIRECTORY_BYTES:,}: download the class in parts"
        )
    try:
        bundle = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise ArchiveRefused(f"{path.name}: not a readable zip file ({error})") from None
    if len(bundle.infolist()) > MAX_ENTRIES:
        bundle.close()
        raise ArchiveRefused(
            f"{path.name}: more than {MAX_ENTRIES:,} entries: download the class in parts"
        )
    return bundle


def entry_problem(info: zipfile.ZipInfo) -> str | None:
    """Why the entry ``info`` must not be read (a link, a special file, encrypted, compressed
    other than stored or deflated, a nested archive by its name), or None."""
    # The Unix mode is checked whatever system the entry claims to come from: a regular file
    # has S_IFREG or no type at all.
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "a link"
    if stat.S_IFMT(mode) and not stat.S_ISREG(mode):
        return "not a regular file"
    if info.flag_bits & 0x1:
        return "encrypted"
    # Other methods (bzip2, lzma) are not what an LMS writes, and lzma's decoder allocates the
    # dictionary its header asks for.
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        return "compressed with a method other than stored or deflated"
    if info.filename.lower().endswith(ARCHIVE_SUFFIXES):
        return "a nested archive: archives inside the download are not opened"
    return None


def looks_like_archive(head: bytes) -> bool:
    """True if ``head``, the first bytes of a file, are those of an archive or compressed file."""
    tar = head[_TAR_MAGIC_OFFSET : _TAR_MAGIC_OFFSET + 5] == b"ustar"
    return tar or head.startswith(_ARCHIVE_MAGIC)


def read_capped(bundle: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes:
    """The bytes of the entry ``info``, read in chunks and at most ``cap + 1`` of them (more
    than ``cap``: the entry is larger, whatever its header says). zipfile's errors (bad CRC, a
    name that differs from the local header) propagate."""
    chunks, size = [], 0
    with bundle.open(info) as entry:
        while size <= cap and (chunk := entry.read(min(_CHUNK, cap + 1 - size))):
            chunks.append(chunk)
            size += len(chunk)
    return b"".join(chunks)
