"""What ships: the wheel holds apt-clone's own code and nothing of the test sandbox."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_wheel_holds_no_sandbox_and_no_tests(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for item in ("apt_clone", "pyproject.toml", "README.md"):
        copy = shutil.copytree if (REPO / item).is_dir() else shutil.copy
        copy(REPO / item, source / item)
    try:  # PyPA's build where it is (a Debian build has python3-build, no pip), else pip
        import build  # noqa: F401

        argv = [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), "."]
    except ImportError:
        argv = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path)]
        argv.append(".")
    built = subprocess.run(
        argv,
        cwd=source,
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "apt_clone/cli/app.py" in names
    assert not [n for n in names if "sandbox" in n or n.startswith("tests/")], names
