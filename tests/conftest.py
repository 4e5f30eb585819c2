"""Shared fixtures: every test gets its own SM_HOME, no real credentials, and no real model calls."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pydantic_ai.models  # noqa: E402
from fake_github import FakeGitHub  # noqa: E402
from fake_openai import FakeOpenAI  # noqa: E402
from pydantic_ai import models  # noqa: E402

import sm  # noqa: E402

pydantic_ai.models.ALLOW_MODEL_REQUESTS = False

TOKEN = "ghp_testtoken0123456789abcdefghijABCDEFGH"
SCRUBBED = [
    "GITHUB_PAT",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "SM_MODEL",
    "SM_GITHUB_API_URL",
    "SM_MAPPING_GIST",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_API_KEY",
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "GROQ_API_KEY",
    "OLLAMA_BASE_URL",
    "VIRTUAL_ENV",
    "NO_COLOR",
]


@pytest.fixture(autouse=True)
def sm_env(tmp_path, monkeypatch):
    """A private SM_HOME, no tokens or model keys from the developer's shell, and no `gh` fallback."""
    for var in SCRUBBED:
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "smhome"
    monkeypatch.setenv("SM_HOME", str(home))
    monkeypatch.setenv("SM_RAISE_ERRORS", "1")
    monkeypatch.setenv("SM_DIRECT", "0")  # `sm run` execs uv, as these tests expect; tests of direct exec turn it on
    # For sm in a subprocess, where the virtual clock below does not reach: GitHub's 1 s between writes and
    # a minute of retries would make those tests wait.
    monkeypatch.setenv("SM_RETRY_BUDGET", "10")
    monkeypatch.setenv("SM_WRITE_INTERVAL", "0.02")
    monkeypatch.setattr(sm, "which", _which_without_gh)
    monkeypatch.setattr(sm, "_warned", set())  # each test sees sm's once-per-process warnings afresh
    # Every upload locks its script (`uv lock --script`), never against PyPI: the index is a port where nothing
    # listens, so a script with dependencies is uploaded without a lock, as on a machine offline. A test that
    # needs a package finds it in a folder of wheels (see `wheels`). (UV_NO_INDEX=1 alone does not stop
    # `uv lock --script` in uv 0.13.9 from asking PyPI; `no-index` in a config file does.)
    monkeypatch.setenv("UV_DEFAULT_INDEX", UNREACHABLE_INDEX)
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")
    for var in ("UV_INDEX", "UV_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS", "UV_NO_INDEX", "UV_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(sm, "_resolved", RESOLVED)
    return home


_real_which = shutil.which
# The same dependencies under the same uv settings lock the same way without an index: one resolution serves
# every test that asks (a per-test folder of wheels is a setting of its own).
RESOLVED: dict = {}
UNREACHABLE_INDEX = "http://127.0.0.1:9/simple"


def _which_without_gh(cmd, *a, **k):
    return None if cmd == "gh" else _real_which(cmd, *a, **k)


class VirtualClock:
    """The clock sm's GitHub client waits on in tests: time moves only when sm sleeps, so retries, backoff and
    the spacing of writes cost nothing, and how long sm waited can still be checked."""

    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    virtual = VirtualClock()
    monkeypatch.setattr(sm.GitHub, "clock", staticmethod(virtual.monotonic))
    monkeypatch.setattr(sm.GitHub, "sleep", staticmethod(virtual.sleep))
    monkeypatch.setattr(sm.GitHub, "_last_mutation", 0.0)
    return virtual


@pytest.fixture
def gh_server(clock):
    with FakeGitHub() as fake:
        fake.monotonic = clock.monotonic  # arrival times on sm's clock
        fake.add_token(TOKEN, login="alice")
        yield fake


@pytest.fixture
def github_env(gh_server, monkeypatch):
    """Point sm at the fake GitHub with a valid token."""
    monkeypatch.setenv("SM_GITHUB_API_URL", gh_server.url)
    monkeypatch.setenv("GITHUB_PAT", TOKEN)
    return gh_server


@pytest.fixture
def openai_server(monkeypatch):
    with FakeOpenAI(api_key="sk-test") as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("SM_MODEL", "openai-chat:fake-coder")
        yield fake


@pytest.fixture
def cli():
    return sm.build_cli()


@pytest.fixture
def invoke(cli, monkeypatch):
    """Run a command; `sm run` records the uv argv instead of replacing the test process."""
    execs: list[list[str]] = []
    monkeypatch.setattr(sm, "exec_script", lambda argv, env=None: execs.append(argv))

    def go(*args, input=None, env=None):
        result = CliRunner().invoke(cli, list(args), input=input, env=env, catch_exceptions=False)
        result.execs = execs
        return result

    return go


@pytest.fixture
def llm(openai_server):
    with models.override_allow_model_requests(True):
        yield openai_server


@pytest.fixture
def created(github_env, llm, invoke):
    """A script `greet` created through the CLI: prints a greeting for --name."""
    llm.queue(reply('print(f"hello {args.name}")', ["name"], description="Greets someone"))
    result = invoke("create", "greet", "Greet {{name}} politely")
    assert result.exit_code == 0, result.output
    return sm.read_mapping()["scripts"]["greet"]


@pytest.fixture
def env(gh_server, openai_server, sm_env):
    return {
        "SM_HOME": str(sm_env),
        "SM_GITHUB_API_URL": gh_server.url,
        "GITHUB_PAT": TOKEN,
        "SM_MODEL": "openai-chat:fake-coder",
        "OPENAI_BASE_URL": openai_server.url,
        "OPENAI_API_KEY": "sk-test",
    }


def script_code(body: str, params: list[str] = (), deps: str = "[]") -> str:
    """A valid generated script that reads each parameter with argparse and then runs `body`."""
    lines = [
        "# /// script",
        '# requires-python = ">=3.11"',
        f"# dependencies = {deps}",
        "# ///",
        "import argparse",
        "import sys",
        "",
        "parser = argparse.ArgumentParser()",
    ]
    lines += [f'parser.add_argument("--{p}", required=True, help="the {p}")' for p in params]
    lines += ["args = parser.parse_args()", body, ""]
    return "\n".join(lines)


def reply(body: str, params: list[str] = (), description: str = "A test script") -> dict:
    """The structured output a model returns for `script_code(body, params)`."""
    return {
        "description": description,
        "params": [{"name": p, "help": f"the {p}", "required": True, "default": None} for p in params],
        "code": script_code(body, params),
    }


def with_index(env):
    """`env` without the unreachable index of `sm_env`, for a uv that installs sm's own dependencies (`uv run sm.py`,
    `uv tool install`); the scripts such tests upload have no dependencies, so their locks need no index."""
    if env.get("UV_DEFAULT_INDEX") == UNREACHABLE_INDEX:
        env = {k: v for k, v in env.items() if k not in ("UV_DEFAULT_INDEX", "UV_HTTP_RETRIES")}
    return env


def sm_process(*args, env=None, input=None, timeout=180, cwd=None, cmd=None):
    """Run the real `uv run sm.py ...` in a subprocess with the test's environment."""
    full_env = with_index({k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"})
    full_env.pop("SM_RAISE_ERRORS", None)
    full_env.update(env or {})
    command = cmd or ["uv", "run", "--quiet", str(ROOT / "sm.py")]
    return subprocess.run(
        [*command, *args],
        env=full_env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or ROOT,
    )


def real_uv() -> str:
    """uv's own binary, not a pyenv shim (a bash script that changes PATH on its way to uv)."""
    found = shutil.which("uv")
    if found is None:
        pytest.skip("needs uv")
    with open(found, "rb") as f:
        if f.read(2) == b"#!":
            return subprocess.run(["pyenv", "which", "uv"], capture_output=True, text=True, check=True).stdout.strip()
    return found


def explain(proc) -> str:
    return f"command: {proc.args}\nexit: {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"


# ── what several test files start from: entries, machines, scripts and gists ─────────────────────────


def gid(name):
    """A gist id of GitHub's shape, one per script name."""
    return hashlib.md5(name.encode()).hexdigest()


def entry(name, updated="2026-01-01T00:00:00.000000Z", revision="1", clock=None, gist=None, **extra):
    """A well-formed mapping entry (its gist need not exist)."""
    return {
        "script_name": name,
        "gist_id": gist or gid(name),
        "filename": f"{name}.py",
        "created_at": updated,
        "updated_at": updated,
        "revision": revision * 40 if len(revision) == 1 else revision,
        "sha256": "0" * 64,
        "description": "",
        "params": [],
        **({"clock": clock} if clock else {}),
        **extra,
    }


@pytest.fixture
def machine(github_env, monkeypatch, tmp_path):
    """Switch between machines: each has its own SM_HOME, all share one token and one GitHub."""

    def use(name):
        monkeypatch.setenv("SM_HOME", str(tmp_path / f"machine-{name}"))
        monkeypatch.setattr(sm, "_warned", set())  # each machine warns about what it reads
        return sm.GitHub(TOKEN)

    return use


@pytest.fixture
def sm_log():
    """Every message sm logs, debug included."""
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler = Keep(level=logging.DEBUG)
    logger = logging.getLogger("sm")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def add(gh, name, body="print('hi')"):
    """Upload a real script gist and record it, as `sm create` does after generation."""
    code = script_code(body)
    return sm.upload_new(gh, name, code, f"script {name}", public=False, created=sm.now_iso())


def the_gist(github_env):
    """The code of `greet` on the fake GitHub."""
    return github_env.gist_files(sm.lookup("greet")["gist_id"])["greet.py"]


REAL_EXEC_SCRIPT = sm.exec_script  # `invoke` records the argv instead; a test that wants exec's log line puts it back


@pytest.fixture
def local_script(tmp_path):
    """A hand-written script with argparse options and no [tool.sm] table."""
    path = tmp_path / "weather.py"
    path.write_text(
        '"""Print the weather for a city."""\n'
        + script_code("print(args.city, args.units)", ["city"]).replace(
            "args = parser.parse_args()",
            'parser.add_argument("--units", default="metric", help="metric or imperial")\nargs = parser.parse_args()',
        )
    )
    return path


@pytest.fixture
def bobs_gist(github_env):
    """A gist owned by someone else, with one valid script."""
    return github_env.create_gist_direct(
        "bob", {"hello.py": script_code('print(f"hi {args.who}")', ["who"]), "README.md": "# hello\n"}, "Says hi"
    )


def gist_posts(gh):
    """Gists created for scripts (the mapping gist that sync creates is not one of them)."""
    return sum(
        "sm-mapping.json" not in r.json()["files"] for r in gh.requests if r.method == "POST" and r.path == "/gists"
    )


def script_gists(gh):
    return [g for g in gh.gists if "sm-mapping.json" not in gh.gist_files(g)]


@pytest.fixture
def added(local_script, invoke, github_env):
    assert invoke("add", "weather", str(local_script)).exit_code == 0
    return sm.lookup("weather")


def doctor_json(invoke):
    result = invoke("doctor", "--json")
    report = json.loads(result.stdout)
    return result, report, {c["check"]: c for c in report["checks"]}


def script_of(argv):
    """The script a recorded `uv run [--locked] --script PATH ARGS...` runs."""
    return argv[argv.index("--script") + 1]


def script_args(argv):
    """What that command passes to the script."""
    return argv[argv.index("--script") + 2 :]


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


@pytest.fixture
def wheels(tmp_path, monkeypatch):
    """A folder holding the wheel of `smtestdep` 1.0, and uv told to find packages there and nowhere else."""
    folder = tmp_path / "wheels"
    folder.mkdir()
    make_wheel(folder)
    config = tmp_path / "uv-offline.toml"
    config.write_text("no-index = true\n")
    monkeypatch.setenv("UV_CONFIG_FILE", str(config))
    monkeypatch.setenv("UV_FIND_LINKS", str(folder))
    return folder
