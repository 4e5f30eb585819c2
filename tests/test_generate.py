"""Generation with PydanticAI's FunctionModel: validation failures go back to the model, bounded; placeholders and
the choice of model."""

from __future__ import annotations

import json

import pytest
from conftest import reply
from pydantic_ai.messages import ModelResponse, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

import sm


def scripted(*replies):
    """A FunctionModel answering with each reply in turn; records what it was sent."""
    seen: list = []

    def fn(messages, info: AgentInfo) -> ModelResponse:
        seen.append(messages)
        args = replies[min(len(seen), len(replies)) - 1]
        return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, args)])

    model = FunctionModel(fn, model_name="scripted")
    model.seen = seen
    return model


def test_valid_reply_is_returned():
    model = scripted(reply("print(args.prefix)", ["prefix"], description="List\n gists"))
    script, history = sm.generate("list gists starting with {{prefix}}", model)
    assert script.params[0].name == "prefix"
    assert script.description == "List gists"
    assert len(model.seen) == 1
    assert history


def test_prompt_tells_model_about_placeholders():
    model = scripted(reply("print(args.city)", ["city"]))
    sm.generate("weather for {{city}}", model)
    first_request = model.seen[0][0]
    text = " ".join(str(getattr(p, "content", "")) for p in first_request.parts)
    assert "--city" in text
    assert "PEP 723" in (first_request.instructions or "")


def test_invalid_reply_is_sent_back_and_repaired():
    broken = reply("print('forgot to read it')", [])  # declares no --city although the prompt needs it
    good = reply("print(args.city)", ["city"])
    model = scripted(broken, good)
    script, _ = sm.generate("weather for {{city}}", model)
    assert "args.city" in script.code
    assert len(model.seen) == 2
    retry = [p for p in model.seen[1][-1].parts if isinstance(p, ToolReturnPart)]
    assert retry and "{{city}} must be declared" in json.dumps(retry[0].content, default=str)


def test_syntax_error_is_repaired():
    bad = reply("print(args.x", ["x"])
    model = scripted(bad, reply("print(args.x)", ["x"]))
    script, _ = sm.generate("echo {{x}}", model)
    assert len(model.seen) == 2
    compile(script.code, "x", "exec")


def test_gives_up_after_bounded_tries():
    model = scripted(reply("print('no block')", []) | {"code": "print('no block')\n"})
    with pytest.raises(sm.GenerationError, match="did not produce a valid script.*PEP 723.*Nothing was uploaded"):
        sm.generate("hello", model, retries=2)
    assert len(model.seen) == 3


def test_change_request_continues_the_conversation():
    model = scripted(reply("print('v1')"), reply("print('v2')"))
    _, history = sm.generate("say v1", model)
    script, _ = sm.generate("now say v2", model, history=history, required=[])
    assert "v2" in script.code
    # the second request carries the first exchange: same conversation, not a fresh prompt
    assert len(model.seen[1]) > len(model.seen[0])


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("list gists starting with {{prefix}}", ["prefix"]),
        ("{{a}} and {{ b }} and {{a}} again", ["a", "b"]),
        ("copy {{src-dir}} to {{dest_dir}}", ["src-dir", "dest_dir"]),
        ("no params, {single} braces", []),  # a malformed {{...}} is refused: see test_messages.py
    ],
)
def test_placeholders(prompt, expected):
    assert sm.placeholders(prompt) == expected


def test_resolve_model_order(monkeypatch):
    with pytest.raises(sm.ConfigError, match="SM_MODEL.*OPENAI_API_KEY.*ANTHROPIC_API_KEY"):
        sm.resolve_model(None)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    assert sm.resolve_model(None).startswith("anthropic:")
    monkeypatch.setenv("SM_MODEL", "google:gemini-2.5-pro")
    assert sm.resolve_model(None) == "google:gemini-2.5-pro"
    assert sm.resolve_model("openai-chat:x") == "openai-chat:x"


def test_a_dependency_that_does_not_resolve_goes_back_to_the_model(wheels):
    """A package that does not exist (an invented name) is a reason to repair, found offline in a local wheel folder."""
    invented = reply("print(args.city)", ["city"])
    invented["code"] = invented["code"].replace("dependencies = []", 'dependencies = ["smtestdep-typo"]')
    good = reply("print(args.city)", ["city"])
    good["code"] = good["code"].replace("dependencies = []", 'dependencies = ["smtestdep"]')
    model = scripted(invented, good)
    script, _ = sm.generate("weather for {{city}}", model)
    assert '"smtestdep"' in script.code
    assert len(model.seen) == 2
    retry = json.dumps([p for p in model.seen[1][-1].parts if isinstance(p, ToolReturnPart)][0].content, default=str)
    assert "dependencies do not resolve" in retry and "smtestdep-typo" in retry and "not found" in retry


def test_a_dependency_check_that_cannot_reach_the_index_lets_the_script_through(monkeypatch):
    monkeypatch.setenv("UV_DEFAULT_INDEX", "http://127.0.0.1:9/simple")  # nothing listens there
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")
    warnings = []
    monkeypatch.setattr(sm.log, "warning", lambda msg, *args: warnings.append(msg % args))
    assert sm.dependency_problem(reply("print(1)")["code"].replace("= []", '= ["zz-sm-offline"]')) is None
    assert len(warnings) == 1 and warnings[0].startswith(
        "Could not check the script's dependencies: error: Failed to fetch"
    )
