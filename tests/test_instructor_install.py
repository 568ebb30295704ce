"""The kit installed as a wheel (``pip install ".[grading]"``, not make's editable install) brings
the Jupyter configuration that serves formgrader through the kit's extension: real pip, and the
configuration read the way Jupyter servers read it (jupyter_server's extension config manager).
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

from jupyter_server.extension.config import ExtensionConfigManager

REPO = Path(__file__).resolve().parents[1]
CONFIG = Path("jupyter-config") / "jupyter_server_config.d" / "tfcourse_instructor.json"
# What setuptools reads to build the kit's wheel.
BUILD_INPUTS = ("pyproject.toml", "README.md", "helpers", "jupyter-config")


def test_a_wheel_install_serves_formgrader_through_the_kit(tmp_path):
    source = tmp_path / "source"  # pip builds in the folder it installs from: build a copy
    source.mkdir()
    for name in BUILD_INPUTS:
        if (REPO / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
            shutil.copytree(REPO / name, source / name, ignore=ignore)
        else:
            shutil.copy2(REPO / name, source / name)
    pip = [sys.executable, "-m", "pip", "--quiet"]
    wheels = tmp_path / "wheels"
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)],
        check=True,
    )
    # A fresh environment: pip installing into another prefix would uninstall the kit from this one.
    prefix = tmp_path / "environment"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(prefix)], check=True)
    wheel = next(wheels.glob("tfcourse-*.whl"))
    python = prefix / "bin" / "python"
    subprocess.run([*pip, "--python", str(python), "install", "--no-deps", str(wheel)], check=True)

    installed = prefix / "etc" / "jupyter" / CONFIG.relative_to("jupyter-config")
    assert json.loads(installed.read_text()) == json.loads((REPO / CONFIG).read_text())
    extensions = ExtensionConfigManager(read_config_path=[str(prefix / "etc" / "jupyter")])
    assert extensions.get_jpserver_extensions() == {
        "nbgrader.server_extensions.formgrader": False,
        "tfcourse_instructor.grading.classroom.formgrader": True,
    }
