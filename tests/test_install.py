"""Real processes: `uv tool install` from the files `sm self publish` uploads, `sm run` on a machine
without uv, and bash completion through the script `sm completion bash` prints."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest
from click.testing import CliRunner
from conftest import ROOT, explain, script_code

import sm

pytestmark = pytest.mark.slow

NO_UV_PATH = "/usr/bin:/bin"


def run(cmd, **kwargs):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kwargs)


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "SM_RAISE_ERRORS")}
    env.update(extra)
    return env


@pytest.mark.skipif(not shutil.which("git"), reason="needs git")
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


def make_wheel(folder, name="smtestdep", version="1.0"):
    """A minimal pure-Python wheel, so that pip installs a real dependency without an index."""
    dist = f"{name}-{version}"
    files = {
        f"{name}.py": "GREETING = 'hello from a dependency'\n",
        f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: sm-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    files[f"{dist}.dist-info/RECORD"] = "\n".join([*record, f"{dist}.dist-info/RECORD,,"]) + "\n"
    wheel = folder / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for path, text in files.items():
            z.writestr(path, text)
    return wheel


@pytest.mark.skipif(shutil.which("uv", path=NO_UV_PATH) is not None, reason=f"uv is on {NO_UV_PATH}")
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


@pytest.mark.skipif(not shutil.which("fish"), reason="needs fish")
def test_fish_completion_script(shell_env):
    script = 'sm completion fish | source; complete -C "sm run gists pre"; complete -C "sm run gr"'
    proc = run(["fish", "--no-config", "-c", script], env=shell_env)
    assert proc.returncode == 0, explain(proc)
    assert proc.stdout.splitlines() == ["prefix=\tthe prefix", "greet\tHi"]
