"""End to end: the real `uv run sm.py create ...` and `uv run sm.py run ...` in subprocesses."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess

import pytest
from conftest import ROOT, explain, reply, sm_process

pytestmark = pytest.mark.slow


GREETER = (
    'print(f"hello {args.name}!")\nprint(sys.stdin.read().upper(), end="")\nsys.exit(7 if args.name == "seven" else 0)'
)


def test_create_then_run(env, openai_server, gh_server):
    openai_server.queue(reply(GREETER, ["name"], description="Greets"))
    made = sm_process("create", "greet", "Greet {{name}}", env=env)
    assert made.returncode == 0, explain(made)
    assert made.stdout.strip() == "sm run greet name=VALUE"
    assert "Traceback" not in made.stderr

    ran = sm_process("run", "greet", "name=Ada; rm -rf / $(whoami)", env=env, input="piped in\n")
    assert ran.returncode == 0, explain(ran)
    assert ran.stdout == "hello Ada; rm -rf / $(whoami)!\nPIPED IN\n"

    seven = sm_process("run", "greet", "name=seven", env=env, input="")
    assert seven.returncode == 7, explain(seven)

    listed = sm_process("list", "--json", env=env)
    (row,) = json.loads(listed.stdout)
    assert row["script_name"] == "greet"

    shown = sm_process("show", "greet", env=env)
    assert shown.stdout == gh_server.gist_files(row["gist_id"])["greet.py"]
    lock = gh_server.gist_files(row["gist_id"])["greet.py.lock"]  # made by uv and uploaded in the same revision
    assert row["lock_sha256"] == hashlib.sha256(lock.encode()).hexdigest()


def test_generated_script_runs_standalone(env, openai_server, gh_server, tmp_path):
    openai_server.queue(reply(GREETER, ["name"]))
    assert sm_process("create", "greet", "Greet {{name}}", env=env).returncode == 0
    shown = sm_process("show", "greet", env=env)
    script = tmp_path / "greet.py"
    script.write_text(shown.stdout)
    proc = subprocess.run(
        ["uv", "run", "--quiet", str(script), "--name", "Bob"], capture_output=True, text=True, input=""
    )
    assert proc.returncode == 0, explain(proc)
    assert proc.stdout == "hello Bob!\n"


def test_run_offline_from_cache(env, openai_server, gh_server):
    openai_server.queue(reply(GREETER, ["name"]))
    assert sm_process("create", "greet", "Greet {{name}}", env=env).returncode == 0
    gh_server.stop()
    ran = sm_process("run", "greet", "name=offline", env=env, input="")
    assert ran.returncode == 0, explain(ran)
    assert ran.stdout.startswith("hello offline!")


@pytest.mark.parametrize(
    ("args", "extra_env", "message"),
    [
        (["create", "bad/name", "x"], {}, "Invalid script name"),
        (["run", "nope"], {}, "Unknown script 'nope'"),
        (["create", "x", "hi"], {"GITHUB_PAT": ""}, "GITHUB_PAT"),
        (["create", "x", "hi"], {"SM_GITHUB_API_URL": "http://127.0.0.1:9"}, "Cannot reach 127.0.0.1:9"),
    ],
)
def test_bad_input_is_one_clean_line(env, args, extra_env, message):
    proc = sm_process(*args, env={**env, **extra_env})
    assert proc.returncode != 0, explain(proc)
    assert message in proc.stderr, explain(proc)
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 2, explain(proc)  # click's usage hint may precede it


def test_bad_parameter_and_corrupt_mapping(env, openai_server, sm_env):
    openai_server.queue(reply(GREETER, ["name"]))
    assert sm_process("create", "greet", "Greet {{name}}", env=env).returncode == 0
    bad = sm_process("run", "greet", "nmae=x", env=env)
    assert bad.returncode == 2 and "Unknown parameter 'nmae'" in bad.stderr and "name=" in bad.stderr, explain(bad)
    (sm_env / "mapping.json").write_text("garbage")
    corrupt = sm_process("run", "greet", "name=x", env=env)
    assert corrupt.returncode == 1 and "mapping.json is corrupt" in corrupt.stderr, explain(corrupt)
    assert (sm_env / "mapping.json").read_text() == "garbage"


def test_copied_alone_runs_via_uv_and_shebang(tmp_path, sm_env):
    lone = tmp_path / "empty"
    lone.mkdir()
    shutil.copy2(ROOT / "sm.py", lone / "sm.py")
    env = {"SM_HOME": str(sm_env)}
    for cmd in (["uv", "run", "--quiet", "sm.py"], ["./sm.py"]):
        proc = sm_process("--help", env=env, cwd=lone, cmd=cmd)
        assert proc.returncode == 0, explain(proc)
        assert "sm create" in proc.stdout


# ── scripts people bring, through uv (issue 11): click and typer come from PyPI ──────────────────────

FIXTURE_SCRIPTS = ROOT / "tests" / "fixtures" / "scripts"


@pytest.mark.parametrize(
    ("script", "pairs", "output"),
    [
        ("typer_plain.py", ["name=Bob", "times=2"], "Hello Bob\nHello Bob\n"),
        ("click_flags.py", ["name=Ada", "shout"], "HELLO, ADA!\n"),
    ],
)
def test_click_and_typer_scripts_take_key_value(script, pairs, output, env, github_env, invoke):
    assert invoke("add", "brought", str(FIXTURE_SCRIPTS / script)).exit_code == 0
    ran = sm_process("run", "brought", *pairs, env=env)
    assert ran.returncode == 0, explain(ran)
    assert ran.stdout == output
