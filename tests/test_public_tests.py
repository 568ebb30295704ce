"""Students' test files keep every public case and no hidden one."""

import pytest
from otter.test_files.exception_test import ExceptionTestFile

from tfcourse_instructor.grading.build.public_tests import public_test_source, read_hidden_points

from conftest import REPO

SOURCE_TESTS = sorted((REPO / "authoring").glob("*/tests/*.py"))


@pytest.mark.parametrize("path", SOURCE_TESTS, ids=lambda p: p.stem)
def test_public_version_of_each_test_file(path):
    full = ExceptionTestFile.from_file(str(path))
    public_source = public_test_source(path.read_text())
    public = ExceptionTestFile.from_string(public_source)
    assert [c.name for c in public.test_cases] == [c.name for c in full.test_cases if not c.hidden]
    assert read_hidden_points(public_source) == sum(c.points for c in full.test_cases if c.hidden)
    for case in full.test_cases:
        if case.hidden:
            assert case.name not in public_source
            assert case.body.test_func.__name__ not in public_source


def test_stripping_keeps_decorated_public_cases_and_module_code():
    source = (
        "from otter.test_files import test_case\n"
        "name = 'q'\n"
        "HELPER = 3\n\n"
        "@test_case(points=1)\ndef test_public(f):\n    assert f(HELPER)\n\n"
        "@test_case(\n    points=2.5,\n    hidden=True,\n)\ndef test_secret(f):\n"
        "    assert f(41) == 'SECRET'\n\n"
        "@test_case(points=1, hidden=False)\ndef test_public_too(f):\n    pass\n"
    )
    public = public_test_source(source)
    assert "SECRET" not in public and "test_secret" not in public
    assert "def test_public(f)" in public and "def test_public_too(f)" in public
    assert "HELPER = 3" in public
    assert read_hidden_points(public) == 2.5


def test_hidden_case_without_points_is_rejected():
    source = (
        "from otter.test_files import test_case\n@test_case(hidden=True)\ndef t(f):\n    pass\n"
    )
    with pytest.raises(ValueError, match="does not state its points"):
        public_test_source(source)


def test_imports_only_hidden_cases_use_are_dropped():
    source = (
        "import math\nimport secrets_module\n"
        "from otter.test_files import test_case\n"
        "from tfcourse_instructor.reference import beam, kv_cache as cache\n\n"
        "@test_case(points=1)\ndef test_public(f):\n    assert f(math.pi, cache)\n\n"
        "@test_case(points=2, hidden=True)\ndef test_secret(f):\n"
        "    assert f(beam, secrets_module)\n"
    )
    public = public_test_source(source)
    assert "secrets_module" not in public and "beam" not in public
    assert "import math\n" in public
    assert "from tfcourse_instructor.reference import kv_cache as cache\n" in public
    assert "from otter.test_files import test_case\n" in public
    compile(public, "public", "exec")
