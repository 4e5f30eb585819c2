"""Commands through click's CliRunner, against the loopback fake GitHub and fake OpenAI servers."""

from __future__ import annotations

import ast
import hashlib
import json

import pytest
from conftest import ROOT, TOKEN, reply

import sm


def test_every_command_has_help_with_an_example(cli):
    for name, command in cli.commands.items():
        assert command.help, name
        assert f"sm {name}" in command.help, f"{name} has no example"


def test_create_uploads_secret_gist_and_records_mapping(created, github_env, llm):
    entry = created
    gist = github_env.gists[entry["gist_id"]]
    assert gist["public"] is False
    files = github_env.gist_files(entry["gist_id"])
    assert list(files) == ["greet.py"]
    code = files["greet.py"]
    assert entry["sha256"] == hashlib.sha256(code.encode()).hexdigest()
    assert entry["revision"] == github_env.revisions(entry["gist_id"])[0]
    assert entry["params"] == [{"name": "name", "help": "the name", "required": True}]
    assert entry["description"] == "Greets someone"
    assert set(sm.ENTRY_FIELDS) <= set(entry)
    meta = sm.read_script(code).metadata()
    assert meta["tool"]["sm"]["prompt"] == "Greet {{name}} politely"
    assert meta["tool"]["sm"]["model"] == "openai-chat:fake-coder"
    assert "exclude-newer" in meta["tool"]["uv"]
    # the request to the model forced the output tool and told it the option name
    request = llm.requests[0]
    assert request["tool_choice"] == "required"
    assert "--name" in json.dumps(request["messages"])


def test_create_prints_url_and_run_line(github_env, llm, invoke):
    llm.queue(reply("print(args.city)", ["city"]))
    result = invoke("create", "weather", "Weather in {{city}}")
    assert result.exit_code == 0
    assert "sm run weather city=VALUE" in result.stdout
    assert "https://gist.github.com/" in result.stderr


def test_create_public(github_env, llm, invoke):
    llm.queue(reply("print(1)"))
    assert invoke("create", "pub", "print one", "--public").exit_code == 0
    assert github_env.gists[sm.read_mapping()["scripts"]["pub"]["gist_id"]]["public"] is True


def test_create_reads_prompt_from_stdin(github_env, llm, invoke):
    llm.queue(reply("print(args.word)", ["word"]))
    result = invoke("create", "echo", "-", input="Echo {{word}}\n")
    assert result.exit_code == 0, result.output
    assert sm.lookup("echo")["params"][0]["name"] == "word"


def test_create_refuses_existing_name_without_force(created, invoke, llm):
    result = invoke("create", "greet", "again")
    assert result.exit_code == 2
    assert "already exists" in result.stderr and "--force" in result.stderr
    llm.queue(reply("print('v2')"))
    assert invoke("create", "greet", "again", "--force").exit_code == 0
    assert sm.lookup("greet")["gist_id"] != created["gist_id"]


def test_create_repair_loop_through_real_http(github_env, llm, invoke):
    llm.queue(reply("print('no param')"), reply("print(args.n)", ["n"]))
    result = invoke("create", "count", "Count to {{n}}")
    assert result.exit_code == 0, result.output
    assert len(llm.requests) == 2
    assert any(m["role"] == "tool" and "--n" in m["content"] for m in llm.requests[1]["messages"])


def test_create_gives_up_and_uploads_nothing(github_env, llm, invoke):
    llm.queue(*[reply("print('never reads it')")] * 4)
    result = invoke("create", "bad", "Use {{thing}}")
    assert result.exit_code == 1
    assert "did not produce a valid script" in result.stderr
    assert "Nothing was uploaded" in result.stderr
    assert github_env.gists == {}
    assert sm.read_mapping()["scripts"] == {}


@pytest.mark.parametrize("name", ["bad/name", "-dash", "x" * 65, "a b"])
def test_create_bad_name_before_any_network(github_env, llm, invoke, name):
    result = invoke("create", "--", name, "prompt")
    assert result.exit_code == 2
    assert "Invalid script name" in result.stderr
    assert llm.requests == [] and github_env.requests == []


def test_create_without_token(llm, invoke):
    result = invoke("create", "x", "print hi")
    assert result.exit_code == 1
    assert "GITHUB_PAT" in result.stderr
    assert "Traceback" not in result.output
    assert llm.requests == []


def test_create_without_model(github_env, invoke):
    result = invoke("create", "x", "print hi")
    assert result.exit_code == 1
    assert "No model configured" in result.stderr and "SM_MODEL" in result.stderr


def test_create_with_bad_model_key(github_env, llm, invoke, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    result = invoke("create", "x", "print hi")
    assert result.exit_code == 1
    assert "rejected the API key" in result.stderr
    assert "sk-wrong" not in result.output


def test_create_with_bad_github_token(github_env, llm, invoke, monkeypatch):
    monkeypatch.setenv("GITHUB_PAT", "ghp_wrong")
    result = invoke("create", "x", "print hi")
    assert result.exit_code == 1
    assert "401" in result.stderr and "GITHUB_PAT" in result.stderr
    assert "ghp_wrong" not in result.output
    assert llm.requests == []


def test_create_token_without_gist_scope(github_env, llm, invoke, monkeypatch):
    github_env.add_token("ghp_noscope", scopes="repo")
    monkeypatch.setenv("GITHUB_PAT", "ghp_noscope")
    llm.queue(reply("print(1)"))
    result = invoke("create", "x", "print hi")
    assert result.exit_code == 1
    assert "lacks the `gist` scope (it has: repo)" in result.stderr
    assert llm.requests == [] and github_env.gists == {}


def test_upload_failure_keeps_the_generated_script(github_env, llm, invoke, sm_env):
    github_env.inject(
        "POST",
        "/gists",
        status=422,
        body={
            "message": "Validation Failed",
            "errors": [{"resource": "Gist", "code": "custom", "message": "contents are spam"}],
        },
    )
    llm.queue(reply("print('precious')"))
    result = invoke("create", "x", "print hi")
    assert result.exit_code == 1
    assert "422 Validation Failed: contents are spam" in result.stderr
    assert "precious" in (sm_env / "drafts" / "x.py").read_text()
    assert sm.read_mapping()["scripts"] == {}


def test_missing_gist_says_404_and_scope(created, invoke, github_env):
    github_env.gists.pop(created["gist_id"])
    sm.cached_path(created).unlink()
    result = invoke("show", "greet")
    assert result.exit_code == 1
    assert "not found (404)" in result.stderr and "gist` scope" in result.stderr


def test_create_unreachable_host(llm, invoke, monkeypatch):
    monkeypatch.setenv("GITHUB_PAT", TOKEN)
    monkeypatch.setenv("SM_GITHUB_API_URL", "http://127.0.0.1:9")
    result = invoke("create", "x", "print hi")
    assert result.exit_code == 1
    assert "Cannot reach 127.0.0.1:9" in result.stderr
    assert llm.requests == []


def test_requests_carry_github_headers(created, github_env):
    post = next(r for r in github_env.requests if r.method == "POST")
    assert post.headers["accept"] == "application/vnd.github+json"
    assert post.headers["x-github-api-version"] == "2022-11-28"
    assert post.headers["user-agent"].startswith("sm/")
    assert post.headers["authorization"] == f"Bearer {TOKEN}"


def test_run_builds_uv_argv_from_cache(created, invoke, github_env):
    before = len(github_env.requests)
    result = invoke("run", "greet", "name=Ada Lovelace", "--", "--extra", "x=y")
    assert result.exit_code == 0, result.output
    (argv,) = result.execs
    assert argv[1:4] == ["run", "--script", str(sm.cached_path(created))]
    assert argv[4:] == ["--name=Ada Lovelace", "--extra", "x=y"]
    assert len(github_env.requests) == before  # served from the cache, no network


def test_run_refetches_missing_cache_by_pinned_revision(created, invoke, github_env):
    sm.cached_path(created).unlink()
    github_env.external_edit(created["gist_id"], "greet.py", "print('someone else')\n")
    result = invoke("run", "greet", "name=x")
    assert result.exit_code == 0, result.output
    assert sm.cached_path(created).read_text() == sm.read_code("greet")[1]
    assert "someone else" not in sm.cached_path(created).read_text()
    assert github_env.count("GET", rf"/gists/{created['gist_id']}/{created['revision']}") == 1


def test_run_tampered_cache_is_refetched_not_run(created, invoke):
    path = sm.cached_path(created)
    original = path.read_text()
    path.write_text("import os; os.system('echo pwned')\n")
    result = invoke("run", "greet", "name=x")
    assert result.exit_code == 0
    assert path.read_text() == original
    assert "does not match" in result.stderr


def test_run_refuses_altered_remote(created, invoke, github_env, monkeypatch):
    sm.cached_path(created).unlink()
    with sm.locked_mapping() as data:
        data["scripts"]["greet"]["sha256"] = "0" * 64
    result = invoke("run", "greet", "name=x")
    assert result.exit_code == 1
    assert "Refusing to run greet" in result.stderr
    assert result.execs == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["greet", "colour=red"], "Unknown parameter 'colour'. Parameters:\n  name=… (required: the name)"),
        (["greet"], "Missing required parameter name. Parameters:\n  name="),
        (["greet", "oops"], "Expected key=value"),
        (["gret", "name=x"], "Unknown script 'gret'. Did you mean greet?"),
        (["nothing"], "Unknown script 'nothing'. See `sm list`."),
    ],
)
def test_run_bad_input(created, invoke, args, message):
    result = invoke("run", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.execs == []
    assert "Traceback" not in result.output


def test_run_without_uv_says_how_to_install_it_and_falls_back(created, invoke, monkeypatch, sm_env):
    monkeypatch.setattr(sm, "which", lambda cmd, *a, **k: None)
    result = invoke("run", "greet", "name=x")
    assert result.exit_code == 0, result.output
    assert "uv is not installed" in result.stderr and "pip install uv" in result.stderr
    venv_python = sm_env / "venvs" / f"{created['gist_id']}-greet" / "bin" / "python"
    assert result.execs == [[str(venv_python), str(sm.cached_path(created)), "--name=x"]]


def test_list_json_and_plain(created, invoke):
    result = invoke("list", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert [r["script_name"] for r in rows] == ["greet"]
    assert rows[0]["gist_id"] == created["gist_id"]
    plain = invoke("list")
    assert plain.stdout.startswith("greet\tGreets someone\tname\t")


def test_list_empty(invoke):
    assert json.loads(invoke("list", "--json").stdout) == []


def test_show_is_byte_exact_when_piped(created, invoke, github_env):
    result = invoke("show", "greet")
    assert result.exit_code == 0
    assert result.stdout_bytes == github_env.gist_files(created["gist_id"])["greet.py"].encode()


def test_corrupt_mapping_is_one_line_and_kept(invoke, sm_env):
    sm_env.mkdir(parents=True)
    (sm_env / "mapping.json").write_text('{"scripts": [')
    for args in (["list"], ["run", "x"], ["show", "x"]):
        result = invoke(*args)
        assert result.exit_code == 1, args
        assert "mapping.json is corrupt" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert (sm_env / "mapping.json").read_text() == '{"scripts": ['


def test_version(invoke):
    assert invoke("--version").stdout.strip() == f"sm, version {sm.__version__}"


def test_every_command_only_forwards_to_an_operation():
    """The work of a command lives in a plain function (Operations); its click function parses and prints."""
    tree = ast.parse((ROOT / "sm.py").read_text())
    build = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "build_cli")
    commands = [
        n
        for n in ast.walk(build)
        if isinstance(n, ast.FunctionDef)
        and any(
            isinstance(d, ast.Call) and getattr(d.func, "attr", "") in ("command", "group") for d in n.decorator_list
        )
    ]
    assert len(commands) == 16
    for command in commands:
        body = command.body[1:]  # after the docstring
        assert not body or body[-1].end_lineno - body[0].lineno < 8, f"{command.name} does more than forward"
        assert command.name.endswith(("_command", "_group")) or command.name == "cli"  # shadows no function
