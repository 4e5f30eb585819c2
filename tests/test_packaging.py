"""The one file, its two dependency lists, and its start-up cost."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest
from conftest import ROOT

import sm


def test_pep723_and_pyproject_dependencies_agree():
    header = sm.read_metadata((ROOT / "sm.py").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert header["dependencies"] == project["dependencies"]
    assert header["requires-python"] == project["requires-python"] == ">=3.11"


def test_shebang_and_console_script():
    assert (ROOT / "sm.py").read_text().startswith("#!/usr/bin/env -S uv run --script\n# /// script\n")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"] == {"sm": "sm:main"}
    assert pyproject["project"]["name"] != "sm"
    assert "dev" in pyproject["dependency-groups"]


HEAVY = ("pydantic_ai", "openai", "anthropic", "google", "groq", "rich", "httpx2", "httpx", "pydantic")


PROBE = """
import runpy, sys
sys.argv = ["sm", *ARGS]
try:
    runpy.run_path(SM_PY, run_name="__main__")
except SystemExit:
    pass
print("HEAVY:" + ",".join(sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)))
"""


@pytest.mark.parametrize("args", [["--help"], ["list"], ["list", "--json"], ["run", "nothing"], ["--version"]])
def test_light_commands_import_nothing_heavy(args, sm_env):
    code = f"ARGS, SM_PY, HEAVY = {args!r}, {str(ROOT / 'sm.py')!r}, {HEAVY!r}\n" + PROBE
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"SM_HOME": str(sm_env), "PATH": "/usr/bin:/bin"},
    )
    assert [x for x in proc.stdout.splitlines() if x.startswith("HEAVY:")] == ["HEAVY:"], proc.stdout + proc.stderr


def test_module_import_is_stdlib_only():
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys; sys.path.insert(0, {str(ROOT)!r}); import sm; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('click','rich','pydantic','pydantic_ai','httpx2')))",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.stdout.strip() == "[]", proc.stderr
