"""The review (`create --preview`, `edit --preview`): FunctionModel units, CliRunner with input=, a real pty."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys

import pytest
from conftest import ROOT, explain, reply, script_code, sm_process, the_gist
from pydantic_ai.messages import ModelResponse, ToolCallPart
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, FunctionModel
from rich.console import Console

import sm

CREATED_AT = "2026-01-02T03:04:05.000006Z"


# ── helpers ─────────────────────────────────────────────────────────────────────────────────────


def chat(*replies):
    """A FunctionModel answering with each reply in turn, streamed in 25-character pieces when asked to.

    A reply may be a callable taking the number of the request (1-based). Records what it was sent.
    """
    seen: list = []

    def args_for(messages):
        seen.append(messages)
        r = replies[min(len(seen), len(replies)) - 1]
        return r(len(seen)) if callable(r) else r

    def fn(messages, info: AgentInfo) -> ModelResponse:
        return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, args_for(messages))])

    async def stream(messages, info: AgentInfo):
        text = json.dumps(args_for(messages))
        yield {0: DeltaToolCall(name=info.output_tools[0].name, tool_call_id=f"call_{len(seen)}")}
        for i in range(0, len(text), 25):
            yield {0: DeltaToolCall(json_args=text[i : i + 25])}

    model = FunctionModel(fn, stream_function=stream, model_name="chat")
    model.seen = seen
    return model


def new_draft(model, prompt="Greet {{name}}"):
    return sm.Draft(
        model,
        model_name="chat",
        filename="greet.py",
        origin={"prompt": prompt, "model": "chat", "created_at": CREATED_AT},
        required=sm.placeholders(prompt),
    )


class Review:
    """sm.review driven by a list of answers; the plain rendering lands in .output."""

    def __init__(self, model, answers, *, prompt="Greet {{name}}", **kwargs):
        self.out = io.StringIO()
        self.draft = new_draft(model, prompt)
        self.asked = 0
        answers = iter(answers)

        def ask(question):
            self.out.write(question)
            self.asked += 1
            answer = next(answers, EOFError)
            if isinstance(answer, type) and issubclass(answer, BaseException):
                raise answer
            self.out.write(answer + "\n")
            return answer

        console = Console(file=self.out, width=100)  # not a terminal: the plain rendering
        first = lambda on_partial: self.draft.write(prompt, on_partial=on_partial)  # noqa: E731
        self.final = sm.review(self.draft, first, console=console, ask=ask, **kwargs)

    @property
    def output(self):
        return self.out.getvalue()


def meta(code):
    return sm.read_script(code).metadata()["tool"]["sm"]


V1 = reply("print('V1', args.name)", ["name"], description="Greets")
V2 = reply("print('V2', args.name)", ["name"], description="Greets twice")
NO_PARAM = reply("print('forgot the name')", [])  # fails validation: {{name}} is not declared


# ── answers (pure) ──────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ("accept", "")),
        ("  ", ("accept", "")),
        ("n", ("accept", "")),
        ("No", ("accept", "")),
        ("yes", ("yes", "")),
        ("also print the count", ("change", "also print the count")),
        ("  no, print the count too ", ("change", "no, print the count too")),
        (":edit", ("edit", "")),
        (":e", ("edit", "")),
        (":run name=Ada  city='New York'", ("run", "name=Ada  city='New York'")),
        (":diff", ("diff", "")),
        (":quit", ("quit", "")),
        (":q", ("quit", "")),
        (":help", ("help", "")),
        (":frobnicate now", ("unknown", "frobnicate")),
    ],
)
def test_parse_answer(text, expected):
    assert sm.parse_answer(text) == expected


# ── streaming generation ────────────────────────────────────────────────────────────────────────


def test_streaming_shows_growing_code_and_still_repairs():
    model = chat(NO_PARAM, V1)
    partials: list[tuple[int, str]] = []
    script, history = sm.generate(
        "Greet {{name}}", model, on_partial=lambda partial, attempt: partials.append((attempt, partial.code))
    )
    assert "V1" in script.code
    assert len(model.seen) == 2  # the invalid first answer went back to the model, streaming or not
    first = [code for attempt, code in partials if attempt == 1]
    second = [code for attempt, code in partials if attempt == 2]
    assert len(first) > 3 and len(second) > 3
    assert [len(c) for c in second] == sorted(len(c) for c in second)  # the code grows as it arrives
    assert second[-1] == V1["code"]
    assert history


def test_streaming_failure_is_a_generation_error():
    model = chat(NO_PARAM)
    with pytest.raises(sm.GenerationError, match="did not produce a valid script"):
        sm.generate("Greet {{name}}", model, retries=1, on_partial=lambda partial, attempt: None)
    assert len(model.seen) == 2


# ── the review loop, with injected answers ──────────────────────────────────────────────────────


def test_accept_at_once():
    review = Review(chat(V1), [""])
    assert "print('V1', args.name)" in review.final.code
    assert "--- greet.py ---" in review.output
    assert "Parameter --name (required): the name" in review.output
    assert "Dependencies: none (standard library only)" in review.output
    assert "Description: Greets" in review.output
    assert review.output.count(sm.QUESTION) == 1
    assert "changes" not in meta(review.final.code)
    assert review.final.params == [{"name": "name", "help": "the name", "required": True}]


def test_change_request_continues_the_conversation_and_is_recorded():
    model = chat(V1, V2)
    review = Review(model, ["print it twice", "no"])
    assert "print('V2', args.name)" in review.final.code
    # the same conversation: the second request carries the first exchange, then the plain change
    assert len(model.seen[1]) > len(model.seen[0])
    last = model.seen[1][-1].parts[-1].content
    assert last == "print it twice"
    assert "-print('V1', args.name)\n+print('V2', args.name)" in review.output
    table = meta(review.final.code)
    assert table["prompt"] == "Greet {{name}}"
    assert table["created_at"] == CREATED_AT
    assert [(c["prompt"], c["model"]) for c in table["changes"]] == [("print it twice", "chat")]
    assert table["description"] == review.final.description == "Greets twice"


def test_failed_change_keeps_the_previous_version():
    model = chat(V1, NO_PARAM)
    review = Review(model, ["drop the name", ""])
    assert len(model.seen) == 5  # the change was tried 1 + 3 times
    assert "Error: Model chat did not produce a valid script" in review.output
    assert "The previous version is kept." in review.output
    assert "print('V1', args.name)" in review.final.code
    assert "changes" not in meta(review.final.code)


def test_hand_edit_is_validated_and_its_params_reread():
    def rename(code, filename):
        assert filename == "greet.py"
        return (
            code.replace('"--name"', '"--who"')
            .replace("args.name", "args.who")
            .replace('name = "name"', 'name = "who"')
        )

    review = Review(chat(V1), [":edit", ""], prompt="Greet someone", edit_code=rename)
    assert "args.who" in review.final.code
    assert [p["name"] for p in review.final.params] == ["who"]
    assert "+print('V1', args.who)" in review.output
    assert [c["edit"] for c in meta(review.final.code)["changes"]] == ["by hand"]


def test_invalid_hand_edit_is_refused_and_reopened():
    opened: list[str] = []

    def break_then_fix(code, filename):
        opened.append(code)
        if len(opened) == 1:
            return code.replace("args.name)", "args.name")  # a syntax error
        return code.replace("args.name", "args.name)").replace("'V1'", "'FIXED'")

    review = Review(chat(V1), [":edit", ":edit", ""], edit_code=break_then_fix)
    assert "The edited code was not taken: the code does not compile" in review.output
    assert "print('V1', args.name\n" in opened[1]  # the second :edit reopened the broken edit, not the original
    assert "print('FIXED', args.name)" in review.final.code


def test_a_change_after_a_hand_edit_shows_the_model_the_edited_code():
    model = chat(V1, V2)
    edit = lambda code, filename: code.replace("'V1'", "'BY_HAND'")  # noqa: E731
    review = Review(model, [":edit", "print it twice", ""], edit_code=edit)
    sent = model.seen[1][-1].parts[-1].content
    assert "print('BY_HAND', args.name)" in sent and sent.endswith("print it twice")
    assert [("edit" in c, "prompt" in c) for c in meta(review.final.code)["changes"]] == [(True, False), (False, True)]


def test_ctrl_c_while_editing_belongs_to_the_editor(tmp_path, monkeypatch):
    editor = tmp_path / "editor.py"
    editor.write_text(
        "import os, signal, sys, pathlib\n"
        "os.kill(os.getppid(), signal.SIGINT)\n"  # what a Ctrl-C in the terminal would also send sm
        "p = pathlib.Path(sys.argv[1]); p.write_text(p.read_text() + '# edited\\n')\n"
    )
    monkeypatch.setenv("VISUAL", f"{sys.executable} {editor}")
    monkeypatch.setattr(sm, "isatty", lambda stream: True)  # an editor needs a terminal
    review = Review(chat(V1), [":edit", ""])
    assert review.final.code.endswith("# edited\n")


def test_unchanged_edit_changes_nothing():
    review = Review(chat(V1), [":edit", ""], edit_code=lambda code, filename: code)
    assert "No changes made." in review.output
    assert "changes" not in meta(review.final.code)


def test_run_shows_output_and_exit_code():
    calls = []

    def fake_run(code, filename, args, emit):
        calls.append((code, filename, args))
        emit("hello Ada Lovelace")
        return 3

    review = Review(chat(V1), [":run name='Ada Lovelace' -- --verbose", ""], run_code=fake_run)
    (code, filename, args) = calls[0]
    assert "print('V1', args.name)" in code and filename == "greet.py"
    assert args == ["--name=Ada Lovelace", "--verbose"]
    assert (
        "$ uv run --script greet.py '--name=Ada Lovelace' --verbose\nhello Ada Lovelace\nexit code 3" in review.output
    )


def test_bad_run_arguments_are_one_line_and_the_review_goes_on():
    review = Review(chat(V1), [":run colour=red", ":run", ":run name='unclosed", ""], run_code=None)
    assert "Error: Unknown parameter 'colour'." in review.output
    assert "Error: Missing required parameter name." in review.output
    assert "Error: :run could not split its arguments" in review.output
    assert review.asked == 4


def test_help_unknown_yes_and_diff_without_history():
    review = Review(chat(V1), [":help", ":frobnicate", "yes", ":diff", ""])
    assert ":edit              edit the code in $VISUAL or $EDITOR" in review.output
    assert "Unknown command :frobnicate." in review.output
    assert "Type the change you want, or press Enter to accept." in review.output
    assert "There is no earlier version yet" in review.output


def test_diff_shows_the_last_change():
    review = Review(chat(V1, V2), ["twice", ":diff", ""])
    assert review.output.count("+print('V2', args.name)") == 2


@pytest.mark.parametrize(
    ("answers", "message", "status"),
    [
        ([":quit"], "Quit: nothing was uploaded.", 1),
        ([], "End of input: nothing was uploaded.", 1),
        ([KeyboardInterrupt], "Interrupted: nothing was uploaded.", 130),
    ],
)
def test_leaving_the_review(answers, message, status):
    with pytest.raises(sm.Cancelled) as info:
        Review(chat(V1), answers)
    assert str(info.value) == message
    assert info.value.exit_code == status


def test_terminal_rendering_has_panel_table_and_live_view():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system=None, width=100, height=12)
    candidate = sm.Candidate(
        sm.stamp_script(
            script_code("print(args.city)", ["city"], deps='["rich[jupyter]"]'),
            params=[{"name": "city", "help": "the [city]", "required": False, "default": "Oslo"}],
            description="Weather [today]",
            prompt="p",
            model="m",
            created_at=CREATED_AT,
        ),
        "Weather [today]",
        [{"name": "city", "help": "the [city]", "required": False, "default": "Oslo"}],
    )
    sm.show_script(console, candidate, "weather.py")
    text = out.getvalue()
    assert "weather.py" in text and "print(args.city)" in text
    assert "--city" in text and "Oslo" in text and "the [city]" in text  # markup-like text stays literal
    assert "Dependencies: rich[jupyter]" in text
    assert "Description: Weather [today]" in text

    view = sm.GrowingCode("Writing weather.py", started=0)
    out.truncate(0)
    console.print(view)
    assert "Writing weather.py…" in out.getvalue() and " s" in out.getvalue()  # spinner and elapsed time
    view.update(sm.Candidate("\n".join(f"line_{i} = {i}" for i in range(1, 31)), "", []), attempt=2)
    out.seek(0)
    out.truncate(0)
    console.print(view)
    shown = out.getvalue()
    assert "line_30 = 30" in shown and "line_1 = 1\n" not in shown  # the tail that fits the screen
    assert "30 lines" in shown and "attempt 2" in shown


# ── commands through CliRunner, against the fake GitHub and OpenAI servers ──────────────────────


def test_create_preview_accept_at_once(github_env, llm, invoke):
    llm.queue(V1)
    result = invoke("create", "greet", "Greet {{name}}", "--preview", input="\n")
    assert (result.exit_code, result.stdout) == (0, "sm run greet name=VALUE\n"), result.output
    assert "print('V1', args.name)" in result.stderr
    assert sm.QUESTION in result.stderr
    assert "print('V1', args.name)" in the_gist(github_env)
    assert llm.requests[0]["stream"] is True


def test_create_preview_change_then_accept_uploads_the_revision(github_env, llm, invoke):
    llm.queue(V1, V2)
    result = invoke("create", "greet", "Greet {{name}}", "-p", input="print it twice\n\n")
    assert (result.exit_code, result.stdout) == (0, "sm run greet name=VALUE\n"), result.output
    code = the_gist(github_env)
    assert "print('V2', args.name)" in code and "V1" not in code
    assert [c["prompt"] for c in meta(code)["changes"]] == ["print it twice"]
    assert sm.lookup("greet")["description"] == "Greets twice"
    # one conversation: the change request follows the first answer and its tool result
    roles = [m["role"] for m in llm.requests[1]["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "user"]
    assert llm.requests[1]["messages"][-1]["content"] == "print it twice"
    assert [r.json()["files"].keys() for r in github_env.requests if r.method == "POST"][0] == {
        "greet.py",
        "greet.py.lock",
    }
    assert sum("greet.py" in r.json()["files"] for r in github_env.requests if r.method == "POST") == 1


def test_create_preview_quit_uploads_nothing(github_env, llm, invoke):
    llm.queue(V1)
    result = invoke("create", "greet", "Greet {{name}}", "-p", input=":quit\n")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == "Quit: nothing was uploaded."
    assert "Traceback" not in result.output
    assert github_env.gists == {} and sm.read_mapping()["scripts"] == {}


def test_create_preview_end_of_input_uploads_nothing(github_env, llm, invoke):
    llm.queue(V1, V2)
    result = invoke("create", "greet", "Greet {{name}}", "-p", input="print it twice\n")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == "End of input: nothing was uploaded."
    assert github_env.gists == {}


def test_create_preview_change_repaired_by_the_model(github_env, llm, invoke):
    llm.queue(V1, NO_PARAM, V2)
    result = invoke("create", "greet", "Greet {{name}}", "-p", input="print it twice\n\n")
    assert result.exit_code == 0, result.output
    assert len(llm.requests) == 3
    assert any(m["role"] == "tool" and "{{name}} must be declared" in m["content"] for m in llm.requests[2]["messages"])
    assert "print('V2', args.name)" in the_gist(github_env)
    assert "Error" not in result.stderr


def test_create_preview_edit_with_editor(github_env, llm, invoke, monkeypatch, tmp_path):
    editor = tmp_path / "editor.py"
    editor.write_text(
        "import sys, pathlib\np = pathlib.Path(sys.argv[1])\np.write_text(p.read_text().replace(\"'V1'\", \"'EDITED'\"))\n"
    )
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", f"{sys.executable} {editor}")
    monkeypatch.setattr(sm, "isatty", lambda stream: True)  # an editor needs a terminal
    llm.queue(V1)
    result = invoke("create", "greet", "Greet {{name}}", "-p", input=":edit\n\n")
    assert result.exit_code == 0, result.output
    assert "+print('EDITED', args.name)" in result.stderr
    code = the_gist(github_env)
    assert "print('EDITED', args.name)" in code
    assert meta(code)["changes"][0]["edit"] == "by hand"
    assert len(llm.requests) == 1


def test_create_preview_missing_editor_is_one_line(github_env, llm, invoke, monkeypatch):
    monkeypatch.setenv("EDITOR", "/nonexistent/editor")
    monkeypatch.setattr(sm, "isatty", lambda stream: True)  # an editor needs a terminal
    llm.queue(V1)
    result = invoke("create", "greet", "Greet {{name}}", "-p", input=":edit\n\n")
    assert result.exit_code == 0, result.output
    assert "Error: Cannot start the editor '/nonexistent/editor'" in result.stderr


@pytest.mark.slow
def test_create_preview_run_uses_uv(github_env, llm, invoke):
    llm.queue(reply("print('hello', args.name)\nsys.exit(4)", ["name"]))
    result = invoke("create", "greet", "Greet {{name}}", "-p", input=":run name=Ada\n\n")
    assert result.exit_code == 0, result.output
    assert "$ uv run --script greet.py --name=Ada\nhello Ada\nexit code 4" in result.stderr


def test_preview_prompt_from_piped_stdin_is_refused(github_env, llm, invoke):
    result = invoke("create", "greet", "-", "-p", input="Greet {{name}}\n\n")
    assert result.exit_code == 2
    assert "pass the prompt as an argument" in result.stderr
    assert llm.requests == []


def test_edit_preview_shows_the_diff_against_the_stored_version(created, github_env, llm, invoke):
    llm.queue(reply('print(f"HELLO {args.name}")', ["name"]))
    result = invoke("edit", "greet", "Shout the greeting", "--preview", input="\n")
    assert result.exit_code == 0, result.output
    assert "Revising greet.py with openai-chat:fake-coder…" in result.stderr
    assert '-print(f"hello {args.name}")\n+print(f"HELLO {args.name}")' in result.stderr
    assert 'print(f"HELLO {args.name}")' in github_env.gist_files(created["gist_id"])["greet.py"]


def test_help_shows_the_review_examples_verbatim():
    cli = sm.build_cli()
    assert "printf 'also print the count\\n\\n' | sm create gists" in cli.commands["create"].help
    assert "--preview" in cli.commands["edit"].help


def test_edit_preview_quit_leaves_the_script_alone(created, github_env, llm, invoke):
    llm.queue(reply('print(f"HELLO {args.name}")', ["name"]))
    result = invoke("edit", "greet", "Shout", "-p", input=":q\n")
    assert result.exit_code == 1
    assert "Quit: nothing was uploaded." in result.stderr
    assert len(github_env.revisions(created["gist_id"])) == 1
    assert sm.lookup("greet") == created


# ── real processes: piped answers, a pty, edit then run ─────────────────────────────────────────


@pytest.mark.slow
def test_piped_answers_do_not_wait_for_a_terminal(env, openai_server, gh_server):
    openai_server.queue(V1, V2)
    proc = sm_process("create", "greet", "Greet {{name}}", "-p", env=env, input="print it twice\n\n", timeout=120)
    assert proc.returncode == 0, explain(proc)
    assert proc.stdout == "sm run greet name=VALUE\n"
    assert "print('V2', args.name)" in the_gist(gh_server)


@contextlib.contextmanager
def terminal_session(*args, env):
    """`uv run sm.py ARGS` on a real pty; yields (child, transcript) and closes the child afterwards."""
    pexpect = pytest.importorskip("pexpect")
    full_env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "SM_RAISE_ERRORS", "NO_COLOR")}
    full_env.update(env, TERM="xterm-256color")
    child = pexpect.spawn(
        "uv",
        ["run", "--quiet", str(ROOT / "sm.py"), *args],
        env=full_env,
        cwd=str(ROOT),
        encoding="utf-8",
        dimensions=(40, 120),
        timeout=120,
    )
    child.logfile_read = transcript = io.StringIO()
    try:
        yield child, transcript
        child.expect(pexpect.EOF)
    finally:
        child.close()


@pytest.mark.slow
def test_preview_in_a_real_terminal(env, openai_server, gh_server):
    openai_server.chunk_size, openai_server.stream_delay = 20, 0.005
    openai_server.queue(
        reply("print('FIRST_VERSION', args.name)", ["name"]), reply("print('SECOND_VERSION', args.name)", ["name"])
    )
    with terminal_session("create", "greet", "Greet {{name}}", "--preview", env=env) as (child, transcript):
        child.expect("FIRST_VERSION")
        child.expect("Do you have any changes")
        child.sendline("say the second version")
        child.expect("SECOND_VERSION")
        child.expect("Do you have any changes")
        child.sendline("")
        child.expect("sm run greet name=VALUE")
    assert child.exitstatus == 0, transcript.getvalue()
    assert "Traceback" not in transcript.getvalue()
    assert "\x1b[" in transcript.getvalue()  # it really drew on a terminal
    code = the_gist(gh_server)
    assert "print('SECOND_VERSION', args.name)" in code
    assert [c["prompt"] for c in meta(code)["changes"]] == ["say the second version"]


@pytest.mark.slow
def test_ctrl_c_in_a_real_terminal_uploads_nothing(env, openai_server, gh_server):
    openai_server.queue(V1)
    with terminal_session("create", "greet", "Greet {{name}}", "-p", env=env) as (child, transcript):
        child.expect("Do you have any changes")
        child.sendintr()
        child.expect("Interrupted: nothing was uploaded.")
    assert child.exitstatus == 130, transcript.getvalue()
    assert "Traceback" not in transcript.getvalue()
    assert gh_server.gists == {}
