"""The first hour with sm (issue 14, issue 16 point 6): every message is one a person can act on, nothing hangs."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT, TOKEN, explain, reply, sm_process
from fake_openai import FakeOpenAI, ToolReply
from pydantic_ai import exceptions as x
from pydantic_ai.messages import ModelResponse, ToolCallPart
from pydantic_ai.models.function import FunctionModel
from rich.console import Console

import sm

# Words meant for the model or for a Python programmer, and a sentence that ends twice.
LEAKS = ("answer again", "Fix these problems", "Provider(", "Agent(", "pydantic.dev", "..")


def assert_for_people(message: str) -> None:
    assert not [leak for leak in LEAKS if leak in message], message
    assert message.rstrip().endswith("."), message  # a sentence, ended once
    assert "\n" not in message.strip(), message


def answering(answer: dict) -> FunctionModel:
    """A model that always gives the same answer."""
    return FunctionModel(
        lambda messages, info: ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, answer)]),
        model_name="chat",
    )


# ══ 1. an OpenAI-compatible server ════════════════════════════════════════════════════════════════


def test_openai_base_url_without_a_model_uses_chat_completions(github_env, llm, invoke, monkeypatch):
    monkeypatch.delenv("SM_MODEL")  # only OPENAI_API_KEY and OPENAI_BASE_URL, as in the README
    llm.queue(reply("print('hi', args.name)", ["name"]))
    result = invoke("create", "greet", "Greet {{name}}")
    assert result.exit_code == 0, result.output
    assert [r["model"] for r in llm.requests] == ["gpt-5.1"]  # it reached /v1/chat/completions
    assert not llm.errors


def test_base_url_alone_chooses_openai_chat(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-x")
    assert sm.resolve_model(None) == "openai-chat:gpt-5.1"
    monkeypatch.setenv("SM_MODEL", "anthropic:claude-sonnet-4-5")
    assert sm.resolve_model(None) == "anthropic:claude-sonnet-4-5"  # a chosen model wins


def test_responses_api_404_says_what_to_set(github_env, llm, invoke, monkeypatch):
    monkeypatch.setenv("SM_MODEL", "openai:gpt-5.1")  # the Responses API, which the server does not offer
    result = invoke("create", "greet", "Greet {{name}}")
    assert result.exit_code == 1
    assert "SM_MODEL=openai-chat:NAME" in result.stderr
    assert "Try again later" not in result.stderr
    assert llm.errors == ["404: Invalid URL (POST /v1/responses)"]
    assert github_env.gists == {}


def test_unknown_model_404_says_what_to_set(github_env, llm, invoke):
    llm.queue(FakeOpenAI.error(404, "The model `fake-coder` does not exist.", code="model_not_found"))
    result = invoke("create", "greet", "Greet {{name}}")
    assert result.exit_code == 1
    assert "SM_MODEL=openai-chat:NAME" in result.stderr and "Try again later" not in result.stderr
    assert_for_people(result.stderr.removeprefix("Error: "))


@pytest.mark.parametrize(
    ("status", "passes"),
    [(400, False), (422, False), (429, True), (500, True), (503, True)],
)
def test_try_again_later_only_for_errors_that_pass(github_env, llm, invoke, status, passes):
    llm.queue(FakeOpenAI.error(status, "something", headers={"x-should-retry": "false"}))
    result = invoke("create", "greet", "Greet {{name}}")
    assert result.exit_code == 1
    assert ("Try again later" in result.stderr) is passes, result.stderr
    assert f"HTTP {status}" in result.stderr


# ══ 2 and 16.6. no words for the model or for a programmer ════════════════════════════════════════


@pytest.mark.parametrize(
    ("model", "variable"),
    [
        ("anthropic:claude-sonnet-4-5", "ANTHROPIC_API_KEY"),
        ("google:gemini-2.5-pro", "GOOGLE_API_KEY"),
        ("groq:openai/gpt-oss-120b", "GROQ_API_KEY"),
        ("openai:gpt-5.1", "OPENAI_API_KEY"),
        ("ollama:qwen2.5-coder", "OLLAMA_BASE_URL"),
    ],
)
def test_missing_model_key_names_the_variable(github_env, invoke, monkeypatch, model, variable):
    monkeypatch.setenv("SM_MODEL", model)
    result = invoke("create", "greet", "Greet {{name}}")
    assert result.exit_code == 1
    message = result.stderr.removeprefix("Error: ")
    assert f"Set {variable}" in message
    assert_for_people(message)


@pytest.mark.parametrize("preview", [[], ["-p"]])
def test_failed_validation_lists_the_problems_for_a_person(github_env, llm, invoke, preview):
    llm.queue(*[reply("print('never reads it')")] * 4)
    result = invoke("create", "bad", "Use {{thing}}", *preview, input="")
    assert result.exit_code == 1
    message = result.stderr.strip().splitlines()[-1].removeprefix("Error: ")  # after the preview's status line
    assert "placeholder {{thing}} must be declared as parameter 'thing'" in message
    assert "Nothing was uploaded" in message
    assert_for_people(message)


def all_subclasses(cls):
    return {cls, *(s for sub in cls.__subclasses__() for s in all_subclasses(sub))}


def sm_error(action) -> sm.SmError:
    with pytest.raises(sm.SmError) as caught:
        action()
    return caught.value


def test_every_error_speaks_to_people(github_env, llm, created, monkeypatch, sm_env):
    """One real code path for each SmError subclass, and every way a model request fails."""
    gh = sm.github()
    ask_eof = lambda question: (_ for _ in ()).throw(EOFError)  # noqa: E731
    draft = sm.Draft(
        answering(reply("print(args.name)", ["name"])),
        model_name="chat",
        filename="greet.py",
        origin={"prompt": "p", "model": "chat", "created_at": sm.now_iso()},
        required=["name"],
    )
    actions = [
        lambda: sm.check_name("bad name"),
        lambda: sm.placeholders("Greet {{1x}}"),
        lambda: sm.read_script("def broken(:\n").ready_params("x.py"),
        lambda: gh.get_gist("f" * 32),
        lambda: sm.check_gist_exists(gh, {**created, "gist_id": "f" * 32}),
        lambda: sm.GitHub(TOKEN, "http://127.0.0.1:9", retry_budget=0).check_token(),
        lambda: sm.fetch_pinned(gh, {**created, "sha256": "0" * 64}),
        lambda: sm.review(draft, lambda on_partial: draft.write("p"), console=Console(file=io.StringIO()), ask=ask_eof),
        lambda: sm.edit_in_editor("print(1)\n", "x.py"),  # no terminal under pytest
        lambda: (
            github_env.inject("POST", "/gists", reset=True)
            or gh.request("POST", "/gists", json_body={"files": {"a.py": {"content": "print(1)"}}})
        ),
    ]
    # Every way a model request can fail, through the fake server...
    models = [
        ("openai:gpt-5.1", None),
        ("openai-chat:fake-coder", FakeOpenAI.error(404, "The model does not exist.")),
        ("openai-chat:fake-coder", FakeOpenAI.error(401, "Incorrect API key provided.")),
        ("openai-chat:fake-coder", FakeOpenAI.error(400, "Bad request.")),
        ("openai-chat:fake-coder", FakeOpenAI.error(429, "Rate limit.", headers={"x-should-retry": "false"})),
        ("openai-chat:fake-coder", FakeOpenAI.error(500, "Oops.", headers={"x-should-retry": "false"})),
        ("openai-chat:fake-coder", [reply("print(1)", [])] * 4),  # never declares {{name}}
        ("openai-chat:fake-coder", [ToolReply('{"code": 1}')] * 4),  # not the expected shape
        ("openai-chat:fake-coder", ["just text"] * 4),
        ("anthropic:claude-sonnet-4-5", None),
        ("google:gemini-2.5-pro", None),
        ("mistral:mistral-large", None),  # a provider whose package sm does not ship
        ("nonsense", None),
    ]
    for model, replies in models:
        if replies is not None:
            llm.queue(*(replies if isinstance(replies, list) else [replies]))
        actions.append(lambda model=model: sm.generate("Greet {{name}}", model))
    actions.append(lambda: sm.generate("Greet {{name}}", "openai-chat:x"))  # after the server is gone, below
    errors = [sm_error(action) for action in actions[:-1]]
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    errors.append(sm_error(actions[-1]))
    (sm_env / "mapping.json").write_text("{")
    errors.append(sm_error(sm.read_mapping))
    for e in errors:
        assert_for_people(str(e))
    assert all_subclasses(sm.SmError) - {sm.SmError} <= {type(e) for e in errors}


def pydantic_errors():
    """One instance of each exception PydanticAI may raise from a run, built from its own signature."""

    def walk(cls):
        yield cls
        for sub in cls.__subclasses__():
            yield from walk(sub)

    body = {"error": {"message": "Something went wrong."}}
    made = []
    for cls in dict.fromkeys([*walk(x.AgentRunError), *walk(x.UserError)]):
        params = cls.__init__.__code__.co_varnames[1 : cls.__init__.__code__.co_argcount]
        if "status_code" in params:
            made += [cls(status, "openai-chat:x", body) for status in (400, 401, 404, 408, 429, 500, 503)]
        elif params[:2] == ("model_name", "message"):
            made.append(cls("openai-chat:x", "Connection error."))
        elif params[:2] == ("model_name", "timeout"):
            made.append(cls("openai-chat:x", 1.0))
        elif params == ("hook_name", "func_name", "timeout"):
            made.append(cls("before_run", "hook", 1.0))
        elif params[:1] in (("message",), ("subject",)):
            made.append(cls("Something went wrong."))
        else:
            raise AssertionError(f"a new PydanticAI error to cover: {cls} {params}")
    with_cause = x.UnexpectedModelBehavior("Exceeded maximum output retries (3).")
    with_cause.__cause__ = x.ModelRetry("Fix these problems and answer again: the code does not compile")
    return [*made, with_cause]


@pytest.mark.parametrize(
    "error", pydantic_errors(), ids=lambda e: f"{type(e).__name__}-{getattr(e, 'status_code', '')}"
)
def test_every_model_error_speaks_to_people(error):
    with pytest.raises(sm.SmError) as caught, sm.model_errors("openai-chat:x"):
        raise error
    assert_for_people(str(caught.value))


@pytest.mark.parametrize(
    ("model", "env", "variable"),
    [
        ("anthropic:claude-sonnet-4-5", {}, "ANTHROPIC_API_KEY"),
        ("ollama:qwen2.5-coder", {}, "OLLAMA_BASE_URL"),
        ("openai-chat:local", {}, "OPENAI_API_KEY"),
        ("google:gemini-2.5-pro", {"GEMINI_API_KEY": "x"}, None),
        ("openai-chat:local", {"OPENAI_BASE_URL": "http://127.0.0.1:8000/v1"}, None),
    ],
)
def test_doctor_checks_the_chosen_models_key(invoke, monkeypatch, model, env, variable):
    monkeypatch.setenv("SM_MODEL", model)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    check = {c["check"]: c for c in json.loads(invoke("doctor", "--json").stdout)["checks"]}["model"]
    if variable is None:
        assert check["status"] == "ok", check
    else:
        assert check["status"] == "fail" and variable in check["detail"] and f"Set {variable}" in check["fix"], check


def test_doctor_names_the_base_url_when_it_chose_the_model(invoke, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
    check = {c["check"]: c for c in json.loads(invoke("doctor", "--json").stdout)["checks"]}["model"]
    assert check == {
        "check": "model",
        "status": "ok",
        "detail": "openai-chat:gpt-5.1 (from OPENAI_BASE_URL)",
        "fix": None,
    }


# ══ 3. a closed stdout ════════════════════════════════════════════════════════════════════════════


@pytest.fixture
def many_scripts(sm_env):
    """5,000 scripts in the mapping and one 300 KB script in the cache: more than a pipe holds."""
    data = sm.empty_mapping()
    for i in range(5000):
        name = f"script{i:05d}"
        data["scripts"][name] = {
            "script_name": name,
            "gist_id": f"{i:032x}",
            "filename": f"{name}.py",
            "revision": "a" * 40,
            "sha256": "b" * 64,
            "description": "A script that does something useful with a rather long description",
            "params": [],
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
        }
    code = "".join(f"print({i})\n" for i in range(30000))
    big = data["scripts"]["script00000"]
    big["sha256"] = sm.sha256_text(code)
    sm.write_mapping(data)
    sm.store_cache(big, code)
    sm.write_sync_state({"gist_id": "c" * 32})  # synced before: nothing to fetch
    return sm_env


@pytest.mark.parametrize("args", [["list"], ["show", "script00000"], ["show", "script00000", "--json"]])
def test_closed_stdout_ends_quietly(many_scripts, args):
    env = {k: v for k, v in os.environ.items() if k != "SM_RAISE_ERRORS"}
    sm_proc = subprocess.Popen(
        [sys.executable, str(ROOT / "sm.py"), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    head = subprocess.Popen(["head", "-1"], stdin=sm_proc.stdout, stdout=subprocess.PIPE)
    sm_proc.stdout.close()  # only head holds the reading end now
    first, _ = head.communicate(timeout=60)
    stderr = sm_proc.stderr.read().decode()
    status = sm_proc.wait(timeout=60)
    assert first.strip(), first
    assert stderr == "", stderr
    assert status in (0, 141), (status, stderr)


# ══ 4. :edit without a terminal ═══════════════════════════════════════════════════════════════════


@pytest.mark.slow  # a real `sm create -p` process, model and GitHub included: ~3 s
def test_piped_edit_never_starts_an_editor(env, openai_server, gh_server, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    started = tmp_path / "editor-started"
    for name in ("sensible-editor", "nano", "vim", "vi"):  # what sm looks for when EDITOR is not set
        editor = bin_dir / name
        editor.write_text(f"#!/bin/sh\ntouch {started}\nexec sleep 30\n")  # waits for keys nobody types
        editor.chmod(0o755)
    monkeypatch.delenv("EDITOR", raising=False)
    monkeypatch.delenv("VISUAL", raising=False)
    openai_server.queue(reply("print('V1', args.name)", ["name"]))
    proc = sm_process(
        "create",
        "greet",
        "Greet {{name}}",
        "-p",
        env={**env, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
        input=":edit\n\n",
        timeout=20,
        cmd=[sys.executable, str(ROOT / "sm.py")],
    )
    assert proc.returncode == 0, explain(proc)
    assert not started.exists(), explain(proc)
    assert ":edit needs a terminal" in proc.stderr, explain(proc)
    assert "sm run greet name=VALUE" in proc.stdout  # the review went on and the script was accepted


def test_edit_without_an_editor_says_so(monkeypatch):
    monkeypatch.setattr(sm, "isatty", lambda stream: True)
    monkeypatch.setattr(sm, "which", lambda cmd, *a, **k: None)
    monkeypatch.delenv("EDITOR", raising=False)
    monkeypatch.delenv("VISUAL", raising=False)
    with pytest.raises(sm.ConfigError, match="No editor found: set EDITOR"):
        sm.edit_in_editor("print(1)\n", "x.py")


# ══ 5. a prompt typed on a terminal ═══════════════════════════════════════════════════════════════


def test_prompt_from_a_terminal_says_how_to_end_it(sm_env):
    pexpect = pytest.importorskip("pexpect")
    full_env = {k: v for k, v in os.environ.items() if k != "SM_RAISE_ERRORS"}
    child = pexpect.spawn(
        sys.executable, [str(ROOT / "sm.py"), "create", "greet", "-"], env=full_env, encoding="utf-8", timeout=30
    )
    try:
        child.expect("Type the prompt, end with Ctrl-D")
        child.sendeof()
        child.expect("The prompt is empty")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 2


def test_piped_prompt_has_no_hint(github_env, llm, invoke):
    llm.queue(reply("print('hi', args.name)", ["name"]))
    result = invoke("create", "greet", "-", input="Greet {{name}}")
    assert result.exit_code == 0, result.output
    assert "Ctrl-D" not in result.stderr


# ══ 6. placeholders ═══════════════════════════════════════════════════════════════════════════════


@pytest.mark.parametrize("bad", ["{{}}", "{{ bad name }}", "{{1x}}"])
def test_malformed_placeholder_is_refused_before_anything_is_asked(github_env, llm, invoke, bad):
    result = invoke("create", "files", f"List the files of {bad}")
    assert result.exit_code == 2
    assert f"{bad} is not a valid parameter name" in result.stderr
    assert "{{name}}" in result.stderr and "starting with a letter" in result.stderr
    assert llm.requests == [] and github_env.requests == []


def test_malformed_placeholder_in_edit_is_refused(created, github_env, llm, invoke):
    before = len(llm.requests)
    result = invoke("edit", "greet", "Also take {{1x}}")
    assert result.exit_code == 2 and "{{1x}} is not a valid parameter name" in result.stderr
    assert len(llm.requests) == before


def test_well_formed_placeholders_still_work():
    assert sm.placeholders("{{ name }} and {{out-dir}} and {{a_1}} and {{name}}") == ["name", "out-dir", "a_1"]


# ══ 7. a corrupt mapping ══════════════════════════════════════════════════════════════════════════


def test_corrupt_mapping_names_only_what_exists(sm_env):
    sm_env.mkdir(parents=True)
    (sm_env / "mapping.json").write_text("{")
    with pytest.raises(sm.MappingError) as caught:
        sm.read_mapping()
    assert ".bak" not in str(caught.value) and "`sm sync --from-remote`" in str(caught.value)
    assert_for_people(str(caught.value))
    (sm_env / "mapping.json.bak").write_text('{"scripts": {}}')
    with pytest.raises(sm.MappingError, match=r"rebuild it from mapping\.json\.bak and GitHub"):
        sm.read_mapping()


# ══ 8. `sm edit` of a gist deleted on GitHub ═════════════════════════════════════════════════════


def test_edit_of_a_deleted_gist_fails_before_the_model(created, github_env, llm, invoke):
    github_env.gists.pop(created["gist_id"])
    before = len(llm.requests)
    result = invoke("edit", "greet", "Say hello twice")
    assert result.exit_code == 1
    assert "no longer exists on GitHub" in result.stderr and "sm rm greet" in result.stderr
    assert len(llm.requests) == before  # the model was not paid
    assert github_env.count("GET", rf"/gists/{created['gist_id']}") == 1


# ══ 9. README ═════════════════════════════════════════════════════════════════════════════════════


def test_quickstart_installs_sm_before_using_it():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Quickstart\n+```sh\n(.*?)```", readme, re.S)[1]
    commands = [line for line in block.splitlines() if line.strip() and not line.startswith("export ")]
    first_sm = next(i for i, line in enumerate(commands) if line.startswith("sm "))
    assert any("uv tool install" in line for line in commands[:first_sm]) or all(
        not line.startswith("sm ") for line in commands
    ), block
