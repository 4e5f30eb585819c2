"""The one file, its two dependency lists, and its start-up cost."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tomllib

import pytest
from conftest import ROOT

import sm


def test_pep723_and_pyproject_dependencies_agree():
    header = sm.read_script((ROOT / "sm.py").read_text()).metadata()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert header["dependencies"] == project["dependencies"]
    assert header["requires-python"] == project["requires-python"] == ">=3.11"


def test_shebang_and_console_script():
    assert (ROOT / "sm.py").read_text().startswith("#!/usr/bin/env -S uv run --script\n# /// script\n")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"] == {"sm": "sm:main"}
    assert pyproject["project"]["name"] != "sm"
    assert "dev" in pyproject["dependency-groups"]


HEAVY = ("pydantic_ai", "openai", "anthropic", "google", "groq", "rich", "httpx2", "httpx", "pydantic", "tomlkit")


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


def sm_sections() -> tuple[ast.Module, list[tuple[str, int]]]:
    """sm.py's syntax tree, and its banner sections as (title, first line), in order."""
    lines = (ROOT / "sm.py").read_text().splitlines()
    banners = [
        (lines[i + 1].removeprefix("# "), i + 2)
        for i in range(len(lines) - 2)
        if lines[i].startswith("# ═") and lines[i + 2].startswith("# ═")
    ]
    return ast.parse("\n".join(lines)), banners


def test_sections_come_in_the_documented_order():
    _, banners = sm_sections()
    assert [title for title, _ in banners] == [
        "Errors",
        "Secrets & logging",
        "Paths & config",
        "Fast paths (standard library only)",
        "Script model",
        "GitHub client",
        "Mapping & sync",
        "Generation",
        "Review UI",
        "Operations",
        "CLI wiring",
        "main",
    ]


def test_fast_paths_use_the_standard_library_and_nothing_below_them():
    """The rule stated at the top of sm.py: everything `sm run` and `sm list --json` reach before exec or print
    lies above the Script model banner, and imports only the standard library."""
    tree, banners = sm_sections()
    start, end = dict(banners)["Errors"], dict(banners)["Script model"]
    defs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    defs |= {t.id: n for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    defs |= {n.target.id: n for n in tree.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and start < node.lineno < end:
            names = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            assert all(n.split(".")[0] in sys.stdlib_module_names for n in names), ast.unparse(node)

    def used(node: ast.AST) -> set[str]:
        skip = {id(n) for a in ast.walk(node) for ann in _annotations(a) for n in ast.walk(ann)}
        names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and id(n) not in skip}
        return (names & defs.keys()) - {getattr(node, "name", "")}

    # The detached refresh syncs in its own (forked) process, after the script has been exec'ed.
    beyond = {"try_sync"}
    seen, todo = set(), ["fast_run", "fast_list_json"]
    while todo:
        name = todo.pop()
        if name in seen or name in beyond:
            continue
        seen.add(name)
        assert defs[name].lineno < end, f"{name} is on a fast path but defined below the Fast paths section"
        todo.extend(used(defs[name]))
    assert {"exec_script", "verified_cache", "build_script_args", "parse_run_tail", "read_mapping"} <= seen


def _annotations(node: ast.AST) -> list[ast.AST]:
    """Annotations are never evaluated (PEP 563): a name used only there costs nothing at run time."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        args = node.args
        every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
        return [a.annotation for a in every if a is not None and a.annotation is not None] + (
            [node.returns] if node.returns else []
        )
    if isinstance(node, ast.AnnAssign):
        return [node.annotation]
    return []
