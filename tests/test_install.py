"""Packaging and start-up: the one file and its two dependency lists, its sections and the fast paths' rule, what
each command imports. Then real processes: `uv tool install` from what `sm self publish` uploads, `sm run` without
uv, and shell completion."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tomllib

import pytest
from click.testing import CliRunner
from conftest import ROOT, explain, make_wheel, script_code, with_index

import sm

# ── one file, two dependency lists ────────────────────────────────────────────────────────────────


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


def test_generated_pyproject_matches_the_real_one():
    code = (ROOT / "sm.py").read_text()
    made = tomllib.loads(sm.pyproject_for(code))
    real = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for key in ("name", "dynamic", "requires-python", "dependencies", "scripts"):
        assert made["project"][key] == real["project"][key], key
    assert made["build-system"] == real["build-system"]
    assert made["tool"]["flit"]["module"] == real["tool"]["flit"]["module"]


# ── the file's sections, and the fast paths' rule ─────────────────────────────────────────────────


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


# ── start-up cost: what each command imports ──────────────────────────────────────────────────────


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
        "sm.exec_script = lambda argv, env=None: print('EXEC', argv[1:4])\n"
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

    # The next run finds the run record the first one wrote: beyond sm itself, it imports next to nothing.
    probe = (
        "import sys; before = set(sys.modules)\n"
        f"sys.path.insert(0, {str(ROOT)!r}); import sm\n"
        "sm.exec_script = lambda argv, env=None: print('EXEC', argv[1:4])\n"
        "sm.fast_run(['run', 'hi'])\n"
        "print('NEW', sorted(set(sys.modules) - before))\n"
    )
    env = {"SM_HOME": str(sm_env), "PATH": os.environ["PATH"], "SM_DIRECT": "0"}
    proc = subprocess.run([sys.executable, "-I", "-c", probe], capture_output=True, text=True, env=env)
    lines = proc.stdout.splitlines()
    assert lines[0] == f"EXEC ['run', '--script', '{cached}']", proc.stderr
    new = set(json.loads(lines[1][4:].replace("'", '"')))
    assert new <= {"sm", "__future__", "_sha256", "stat", "_stat"}, new  # no json, re, contextlib, collections...


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


# ── real processes: uv tool install, no uv, shell completion ──────────────────────────────────────


NO_UV_PATH = "/usr/bin:/bin"


def run(cmd, **kwargs):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kwargs)


def clean_env(**extra):
    env = with_index({k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "SM_RAISE_ERRORS")})
    env.update(extra)
    return env


@pytest.mark.skipif(not shutil.which("git"), reason="needs git")
@pytest.mark.slow
def test_self_publish_gist_installs_with_uv_tool(github_env, tmp_path, sm_env):
    published = CliRunner().invoke(sm.build_cli(), ["self", "publish", "--json"], catch_exceptions=False)
    assert published.exit_code == 0, published.output
    info = json.loads(published.stdout)
    assert info["install"] == f"uv tool install git+https://gist.github.com/{info['gist_id']}.git"

    # The gist's git repository, as `git clone` would give it: exactly the published files.
    repo = tmp_path / "gist"
    repo.mkdir()
    for name, content in github_env.gist_files(info["gist_id"]).items():
        (repo / name).write_text(content)
    assert sorted(p.name for p in repo.iterdir()) == ["pyproject.toml", "sm.py"]
    for cmd in (
        ["git", "init", "-q"],
        ["git", "add", "."],
        ["git", "-c", "user.name=sm", "-c", "user.email=sm@example.invalid", "commit", "-qm", "sm"],
    ):
        assert run(cmd, cwd=repo).returncode == 0

    tools, bin_dir = tmp_path / "tools", tmp_path / "bin"
    env = clean_env(UV_TOOL_DIR=str(tools), UV_TOOL_BIN_DIR=str(bin_dir), SM_HOME=str(tmp_path / "fresh-home"))
    installed = run(["uv", "tool", "install", "--quiet", f"git+file://{repo}"], env=env)
    assert installed.returncode == 0, explain(installed)

    helped = run([str(bin_dir / "sm"), "--help"], env=env)
    assert helped.returncode == 0, explain(helped)
    assert "sm create" in helped.stdout and "add" in helped.stdout
    listed = run([str(bin_dir / "sm"), "list"], env=env)
    assert listed.returncode == 0 and listed.stdout == "", explain(listed)
    version = run([str(bin_dir / "sm"), "--version"], env=env)
    assert version.stdout.strip() == f"sm, version {sm.__version__}", explain(version)


@pytest.mark.skipif(shutil.which("uv", path=NO_UV_PATH) is not None, reason=f"uv is on {NO_UV_PATH}")
@pytest.mark.slow
def test_run_without_uv_uses_a_reused_venv_with_pip_installed_deps(github_env, tmp_path, sm_env):
    wheel = make_wheel(tmp_path)
    code = script_code("import smtestdep\nprint(smtestdep.GREETING, args.name)", ["name"]).replace(
        "# dependencies = []", f'# dependencies = ["smtestdep @ {wheel.as_uri()}"]'
    )
    (tmp_path / "dep.py").write_text(code)
    added = CliRunner().invoke(sm.build_cli(), ["add", "dep", str(tmp_path / "dep.py")], catch_exceptions=False)
    assert added.exit_code == 0, added.output
    entry = sm.lookup("dep")

    # sys.executable has sm's own dependencies; the PATH has no uv; pip may not reach an index.
    env = clean_env(SM_HOME=str(sm_env), PATH=NO_UV_PATH, PIP_NO_INDEX="1")
    first = run([sys.executable, str(ROOT / "sm.py"), "run", "dep", "name=Ada"], env=env)
    assert first.returncode == 0, explain(first)
    assert first.stdout == "hello from a dependency Ada\n"
    (warning,) = first.stderr.strip().splitlines()  # one line: the warning, and how to get uv
    assert "uv is not installed" in warning and "slower" in warning and "pip install uv" in warning

    venv = sm.venv_path(sm.cached_path(entry))
    (venv / "marker").write_text("still here")
    again = run([sys.executable, str(ROOT / "sm.py"), "-v", "run", "dep", "name=Bob"], env=env)
    assert again.returncode == 0 and again.stdout == "hello from a dependency Bob\n", explain(again)
    assert "reusing venv" in again.stderr and (venv / "marker").exists()

    # Different dependencies: the venv is built afresh.
    sm.ensure_venv(venv, [])
    assert not (venv / "marker").exists()
    assert json.loads((venv / "sm-deps.json").read_text())["dependencies"] == []


@pytest.fixture
def shell_env(tmp_path, sm_env):
    """Two scripts in the mapping, and an `sm` command on PATH."""
    params = [{"name": "prefix", "help": "the prefix", "required": True}]
    base = {"revision": "1" * 40, "sha256": "2" * 64}
    sm.put_entry({**base, "script_name": "gists", "gist_id": "a" * 32, "filename": "gists.py", "params": params})
    sm.put_entry({**base, "script_name": "greet", "gist_id": "b" * 32, "filename": "greet.py", "description": "Hi"})
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "sm"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} {ROOT / "sm.py"} "$@"\n')
    wrapper.chmod(0o755)
    return clean_env(SM_HOME=str(sm_env), PATH=f"{bin_dir}:{os.environ['PATH']}")


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("bash"), reason="needs bash")
def test_bash_completion_script(shell_env):
    env = shell_env

    def complete(*words):
        script = (
            'eval "$(sm completion bash)"\n'
            f"COMP_WORDS=({' '.join(words)}); COMP_CWORD={len(words) - 1}\n"
            '_sm_completion sm 2>/dev/null; printf "%s\\n" "${COMPREPLY[@]}"\n'
        )
        proc = run(["bash", "-c", script], env=env)
        assert proc.returncode == 0, explain(proc)
        return proc.stdout.split()

    assert complete("sm", "ru") == ["run"]
    assert complete("sm", "run", "g") == ["gists", "greet"]
    assert complete("sm", "run", "gists", "pre") == ["prefix="]


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("zsh"), reason="needs zsh")
def test_zsh_completion_script(shell_env):
    # Outside a completion widget, compadd and _describe are stubs that print what they were given.
    script = """
compdef() { : }
compadd() { print -r -- "compadd ${@[1,-2]}: ${(P)${@[-1]}}" }
_describe() { print -r -- "_describe: ${(P)3}" }
eval "$(sm completion zsh)"
for line in "sm run gists pre" "sm run gr"; do
    words=(${=line}); CURRENT=${#words}; _sm_completion
done
"""
    proc = run(["zsh", "-f", "-c", script], env=shell_env)
    assert proc.returncode == 0, explain(proc)
    assert proc.stdout.splitlines() == ["compadd -U -V unsorted -S  -a: prefix=", "_describe: greet:Hi"]


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("fish"), reason="needs fish")
def test_fish_completion_script(shell_env):
    script = 'sm completion fish | source; complete -C "sm run gists pre"; complete -C "sm run gr"'
    proc = run(["fish", "--no-config", "-c", script], env=shell_env)
    assert proc.returncode == 0, explain(proc)
    assert proc.stdout.splitlines() == ["prefix=\tthe prefix", "greet\tHi"]


@pytest.mark.slow
def test_without_uv_pip_installs_the_versions_the_lock_pins(github_env, wheels, sm_env, invoke, monkeypatch):
    """The lock was made when smtestdep 1.0 was the newest; 2.0 came out since. uv would install 1.0 from the
    lock; without uv, pip is held to the lock's versions, so the script gets 1.0 there too."""
    code = script_code(
        'from importlib.metadata import version\nprint(version("smtestdep"), args.name)', ["name"]
    ).replace("# dependencies = []", '# dependencies = ["smtestdep"]')
    path = sm_env.parent / "dep.py"
    path.write_text(code)
    assert invoke("add", "dep", str(path)).exit_code == 0
    assert "smtestdep==1.0" in sm.locked_versions(github_env.gist_files(sm.lookup("dep")["gist_id"])["dep.py.lock"])
    make_wheel(wheels, version="2.0")
    env = clean_env(SM_HOME=str(sm_env), PATH=NO_UV_PATH, PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheels))
    ran = run([sys.executable, str(ROOT / "sm.py"), "run", "dep", "name=Ada"], env=env)
    assert ran.returncode == 0 and ran.stdout == "1.0 Ada\n", explain(ran)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    unpinned = sm.ensure_venv(sm_env / "venvs" / "check", ["smtestdep"])  # the same without the lock: the newest
    probe = 'from importlib.metadata import version; print(version("smtestdep"))'
    assert subprocess.run([str(unpinned), "-c", probe], capture_output=True, text=True).stdout == "2.0\n"
