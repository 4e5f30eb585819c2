"""sm on a real terminal (a pty at a fixed size): the bytes that reach the screen.

sm runs as `python sm.py` in the test's virtual environment, not through `uv run`. The trust prompts and
`sm show` (what a person is asked to trust) take under a second each and stay in the quick suite; the rest,
which write a script with the model or wait for GitHub, are marked slow.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import sys

import pytest
from conftest import ROOT, TOKEN, reply, script_code

import sm

pexpect = pytest.importorskip("pexpect")

ESC_LINE = "import os; os.system('echo PWNED')  #\x1b[2K\x1b[1Gimport sys"
PADDED = "x = 1" + " " * 150 + '; __import__("os").system("echo PWNED")'
HOSTILE = script_code(f"{ESC_LINE}\n{PADDED}", ["name"])
QUESTION = b"Do you have any changes? "


@pytest.fixture
def tty_env(github_env, sm_env):
    return {"SM_HOME": str(sm_env), "SM_GITHUB_API_URL": github_env.url, "GITHUB_PAT": TOKEN}


@contextlib.contextmanager
def terminal(*args, env, size=(20, 60), color=True):
    """`python sm.py ARGS` on a pty of `size` (rows, columns); yields (child, the bytes it wrote)."""
    drop = ("VIRTUAL_ENV", "SM_RAISE_ERRORS", "NO_COLOR", "COLUMNS", "LINES", "PAGER", "LESS", "SM_THEME")
    full_env = {k: v for k, v in os.environ.items() if k not in drop}
    full_env.update(env, TERM="xterm-256color", SM_RETRY_BUDGET="30")
    if not color:
        full_env["NO_COLOR"] = "1"
    child = pexpect.spawn(
        sys.executable,
        [str(ROOT / "sm.py"), *args],
        env=full_env,
        cwd=str(ROOT),
        dimensions=size,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # even when pytest runs in the background
    )
    child.timeout = 30
    child.logfile_read = screen = io.BytesIO()
    try:
        yield child, screen
    finally:
        child.close(force=True)


def finish(child):
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


def text_of(screen: io.BytesIO) -> str:
    """The screen's text: colours and the status line's redraws removed, wrapped rows joined again."""
    text = screen.getvalue().decode("utf-8", "replace")
    text = re.sub(r"\x1b\[[0-9;]*m|\x1b\[\?25[lh]|\r\x1b\[2K|\x1b\[1A\x1b\[2K", "", text).replace("\r\n", "\n")
    return re.sub(r"\n *↪", "", text)


def words(text: str) -> str:
    """Messages wrap between words on a narrow terminal: compare their words."""
    return " ".join(text.split())


def rows_of(screen: io.BytesIO) -> list[str]:
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue().decode("utf-8", "replace"))
    return [row.rstrip("\r").rsplit("\r", 1)[-1] for row in text.split("\n")]


def assert_shown_not_obeyed(screen: io.BytesIO, columns: int):
    raw = screen.getvalue()
    assert b"\x1b[2K\x1b[1Gimport sys" not in raw and b"\x1b[1G" not in raw  # the gist's bytes never arrive
    text = text_of(screen)
    assert "#^[[2K^[[1Gimport sys" in text  # they are shown instead
    assert PADDED in text  # the padded line, whole, its dangerous end included
    assert max(len(row) for row in rows_of(screen)) <= columns, [r for r in rows_of(screen) if len(r) > columns]


# ── trust prompts ───────────────────────────────────────────────────────────────────────────────


def answer_no(*args, env, columns, color):
    """Run sm, answer the trust question with n; returns the screen's text once it is checked."""
    with terminal(*args, env=env, size=(20, columns), color=color) as (child, screen):
        child.expect(r"\[y/N\]")
        child.sendline("n")
        assert finish(child) == 1
    assert_shown_not_obeyed(screen, columns)
    if color:  # plain text in the terminal's own foreground, not white
        assert b"38;5;231" not in screen.getvalue() and b"\x1b[97m" not in screen.getvalue()
    return text_of(screen)


def added(invoke, folder, code, name="greet"):
    """A script of yours with this code, added through the CLI; returns its mapping entry."""
    (folder / f"{name}.py").write_text(code)
    assert invoke("add", name, str(folder / f"{name}.py")).exit_code == 0
    return sm.lookup(name)


@pytest.mark.parametrize("color", [True, False], ids=["colour", "plain"])
@pytest.mark.parametrize("columns", [60, 120])
def test_foreign_gist_trust_prompt_shows_the_hidden_command(github_env, tty_env, color, columns):
    gist_id = github_env.create_gist_direct("mallory", {"tool.py": HOSTILE}, description="Totally \x1b[8mhidden")
    text = answer_no("run", gist_id, "name=x", env=tty_env, columns=columns, color=color)
    assert "Totally ^[[8mhidden" in text
    assert "contains 2 control characters" in text
    assert "Nothing ran: tool.py from mallory's gist" in words(text) and "Error" not in text


@pytest.mark.parametrize("color", [True, False], ids=["colour", "plain"])
@pytest.mark.parametrize("columns", [60, 120])
def test_latest_diff_shows_the_hidden_command(github_env, tty_env, invoke, tmp_path, color, columns):
    entry = added(invoke, tmp_path, script_code("print('hello', args.name)", ["name"]))
    github_env.external_edit(entry["gist_id"], "greet.py", HOSTILE)
    text = answer_no("run", "greet", "--latest", "name=x", env=tty_env, columns=columns, color=color)
    assert "Trust and run this revision?" in words(text)
    assert f"+{PADDED}" in text
    assert f"`sm run greet` still runs the pinned revision {entry['revision'][:8]}." in words(text)


def test_show_on_a_terminal_is_made_visible_and_wrapped(github_env, tty_env, invoke, tmp_path):
    added(invoke, tmp_path, HOSTILE)
    with terminal("show", "greet", env=tty_env, size=(60, 60)) as (child, screen):
        assert finish(child) == 0
    assert_shown_not_obeyed(screen, 60)


@pytest.mark.slow
def test_list_and_json_on_a_terminal(github_env, tty_env, invoke, tmp_path):
    for name, description in (("greet", "Greets someone " * 8), ("odd", "Looks \u202eharmless")):
        (tmp_path / f"{name}.py").write_text(script_code("print(args.name)", ["name"]))
        assert invoke("add", name, str(tmp_path / f"{name}.py"), "-d", description).exit_code == 0
    with terminal("list", env=tty_env) as (child, screen):
        assert finish(child) == 0
    rows = [row for row in rows_of(screen) if row.strip()]
    assert len(rows) == 3 and all(len(row) <= 60 for row in rows), screen.getvalue()
    assert "…" in rows[1] and "Looks <U+202E>harmless" in rows[2]
    with terminal("list", "--wide", env=tty_env) as (child, screen):
        assert finish(child) == 0
    assert screen.getvalue().count(b"Greets") == screen.getvalue().count(b"someone") == 8  # all of it, wrapped
    with terminal("list", "--json", env=tty_env) as (child, screen):
        assert finish(child) == 0
    raw = screen.getvalue()
    assert "\u202e".encode() not in raw and b"\\u202e" in raw
    assert [r["script_name"] for r in json.loads(raw.decode())] == ["greet", "odd"]


# ── the status line ─────────────────────────────────────────────────────────────────────────────


@pytest.mark.slow
def test_status_line_through_every_wait(github_env, tty_env, invoke, tmp_path):
    added(invoke, tmp_path, script_code("print(args.name)", ["name"]))
    github_env.inject("GET", r"/gists/\w+", status=429, headers={"retry-after": "2"})
    github_env.inject("GET", r"/gists/\w+", delay=1.0)
    with terminal("sync", env=tty_env) as (child, screen):
        child.expect("Waiting 2 s for GitHub \\(rate limit\\)… Ctrl-C stops".encode())
        child.expect("Syncing mapping…".encode())
        assert finish(child) == 0
    assert b"Local: no changes" in screen.getvalue()


@pytest.mark.slow
def test_ctrl_c_stops_the_retries_of_latest(github_env, tty_env, invoke, tmp_path):
    entry = added(invoke, tmp_path, script_code("print(args.name)", ["name"]))
    github_env.inject("GET", rf"/gists/{entry['gist_id']}", status=503, times=100)
    with terminal("run", "greet", "--latest", "name=x", env=tty_env) as (child, screen):
        child.expect("Ctrl-C stops")
        child.sendintr()
        child.expect("Stopped: nothing ran")
        assert finish(child) == 130
    assert f"`sm run greet` runs the pinned revision {entry['revision'][:8]}." in words(text_of(screen))


# ── the review ──────────────────────────────────────────────────────────────────────────────────


@pytest.fixture
def review_env(tty_env, openai_server):
    openai_server.queue(reply("print('V1', args.name)", ["name"]), reply("print('V2', args.name)", ["name"]))
    return {
        **tty_env,
        "SM_MODEL": "openai-chat:fake-coder",
        "OPENAI_BASE_URL": openai_server.url,
        "OPENAI_API_KEY": "sk-test",
    }


def after(screen: io.BytesIO, mark: bytes) -> bytes:
    return screen.getvalue().rsplit(mark, 1)[1]


@pytest.mark.slow
def test_review_question_survives_line_editing(review_env):
    with terminal("create", "greet", "Greet {{name}}", "-p", env=review_env) as (child, screen):
        child.expect("Do you have any changes")
        child.sendline(":help")
        child.expect("Do you have any changes")
        child.send("abc")
        child.expect("abc")
        child.send("\x15")  # Ctrl-U
        child.send("\x1b[A")  # Up: the earlier answer
        child.expect(":help")
        edited = after(screen, b"abc")
        child.send("\x15")
        child.sendline(":quit")
        child.expect("Quit: nothing was uploaded")
        assert finish(child) == 1
    # readline knows the question is its prompt: it redraws after it, or redraws it; it never wipes it
    for redraw in edited.split(b"\r")[1:]:
        assert re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]|[\x01\x02]", b"", redraw).startswith(QUESTION)


@pytest.mark.slow
def test_ctrl_c_at_the_question_ends_its_line_first(review_env, github_env):
    with terminal("create", "greet", "Greet {{name}}", "-p", env=review_env) as (child, screen):
        child.expect("Do you have any changes")
        child.sendintr()
        child.expect("Interrupted: nothing was uploaded.")
        assert finish(child) == 130
    before = screen.getvalue().split(b"Interrupted: nothing was uploaded.")[0]
    assert before.endswith(b"\n")
    assert github_env.gists == {}


@pytest.mark.slow
def test_review_folds_metadata_and_pages_the_whole_script(review_env, tmp_path):
    paged = tmp_path / "paged.txt"
    pager = tmp_path / "pager.py"
    pager.write_text(f"import sys, pathlib\npathlib.Path({str(paged)!r}).write_text(sys.stdin.read())\n")
    env = {**review_env, "PAGER": f"{sys.executable} {pager}"}
    with terminal("create", "greet", "Greet {{name}}", "-p", env=env, size=(20, 60)) as (child, screen):
        child.expect("Do you have any changes")
        child.sendline(":code")
        child.expect("Do you have any changes")
        child.sendline(":quit")
        assert finish(child) == 1
    text = text_of(screen)
    assert "# [tool.sm] [tool.uv] … " in text and "lines, :meta shows them" in text
    assert "print('V1', args.name)" in text
    whole = re.sub(r"\x1b\[[0-9;]*m", "", paged.read_text())  # everything, metadata unfolded, for the pager
    assert 'prompt = "Greet {{name}}"' in whole and "exclude-newer" in whole and "print('V1', args.name)" in whole
