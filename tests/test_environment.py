"""environment.yml creates the kit's pinned environment with conda.

conda writes the ``pip:`` entries to a requirements file beside environment.yml and runs pip
there, so ``-r requirements.txt`` and ``-e .`` install exactly what ``make install`` does.
conda's own part must then hold nothing but Python and pip: any other conda package could
differ from the pins.
"""

import sys

import yaml

from conftest import REPO


def test_environment_yml_installs_the_pinned_requirements_and_nothing_else():
    environment = yaml.safe_load((REPO / "environment.yml").read_text())
    conda_packages = [dep for dep in environment["dependencies"] if isinstance(dep, str)]
    pip_entries = next(dep["pip"] for dep in environment["dependencies"] if isinstance(dep, dict))
    assert sorted(pip_entries) == ["-e .", "-r requirements.txt"]
    assert sorted(name.split("=")[0] for name in conda_packages) == ["pip", "python"]
    python = next(name for name in conda_packages if name.startswith("python="))
    assert python == f"python={sys.version_info.major}.{sys.version_info.minor}"
    assert (REPO / "requirements.txt").is_file()
