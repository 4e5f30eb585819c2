"""The one file, its two dependency lists, and its start-up cost."""

from __future__ import annotations

import json
import os
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


def test_fast_paths_need_not_even_click(sm_env, tmp_path):
    """`sm list --json` on a synced machine and `sm run` on a verified cache stop before click is imported."""
    cached = sm_env / "cache" / ("a" * 32) / "hi.py"
    cached.parent.mkdir(parents=True)
    cached.write_text("print('hi')\n")
    entry = {
        "script_name": "hi",
        "gist_id": "a" * 32,
        "filename": "hi.py",
        "revision": "c" * 40,
        "params": [],
        "sha256": sm.sha256_text("print('hi')\n"),
        "updated_at": "2026-01-01T00:00:00.000000Z",
    }
    (sm_env / "mapping.json").write_text(json.dumps({"version": 1, "scripts": {"hi": entry}, "tombstones": {}}))
    (sm_env / "sync.json").write_text(json.dumps({"gist_id": "b" * 32}))
    probe = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); import sm\n"
        "sm.exec_script = lambda argv: print('EXEC', argv[1:4])\n"
        "sm.main(['list', '--json'])\n"
        "sm.fast_run(['run', 'hi'])\n"
        "print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] in ('click', 'rich', 'pydantic', 'httpx2')))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env={"SM_HOME": str(sm_env), "PATH": os.environ["PATH"]},
    )
    lines = proc.stdout.splitlines()
    assert json.loads(lines[0]) == [entry], proc.stderr
    assert lines[1] == f"EXEC ['run', '--script', '{cached}']"
    assert lines[2] == "LOADED []"


def test_list_json_cache_follows_the_mapping(sm_env, capsys):
    """The piped `sm list --json` fast path serves rows written with the mapping, and only while they match it."""
    (sm_env).mkdir(parents=True, exist_ok=True)
    (sm_env / "sync.json").write_text(json.dumps({"gist_id": "b" * 32}))
    entry = {
        "script_name": "a",
        "gist_id": "a" * 32,
        "filename": "a.py",
        "revision": "1" * 40,
        "sha256": "2" * 64,
        "params": [],
    }
    sm.write_mapping({"version": 1, "scripts": {"a": entry}, "tombstones": {}})
    assert sm.fast_list_json(["list", "--json"])
    assert json.loads(capsys.readouterr().out) == [entry]
    # someone edits mapping.json by hand: the cached rows no longer match, and the mapping itself is read
    data = json.loads((sm_env / "mapping.json").read_text())
    data["scripts"]["b"] = {**entry, "script_name": "b"}
    (sm_env / "mapping.json").write_text(json.dumps(data))
    assert sm.fast_list_json(["list", "--json"])
    assert [r["script_name"] for r in json.loads(capsys.readouterr().out)] == ["a", "b"]
