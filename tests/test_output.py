"""What a person sees: control characters made visible, long lines wrapped, the review's layout, the list, the
wording of declines and GitHub outages, logging; and the bytes that reach a real terminal (a pty at a fixed size,
`python sm.py` in the test's virtual environment: the trust prompts and `sm show` stay in the quick suite; what
writes a script with the model or waits for GitHub is marked slow)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import sys

import pexpect
import pytest
from conftest import ROOT, TOKEN, reply, script_code, script_of
from rich.console import Console

import sm

ESC_LINE = "import os; os.system('echo PWNED')  #\x1b[2K\x1b[1Gimport sys"
PADDED = "x = 1" + " " * 150 + '; __import__("os").system("echo PWNED")'


# ── visible(): the one function everything from outside goes through ─────────────────────────────


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("a\x1b[2Kb", "a^[[2Kb"),
        ("bell\x07 nul\x00 del\x7f", "bell^G nul^@ del^?"),
        ("csi\x9b31m nel\x85", "csiM-^[31m nelM-^E"),
        ("abc\u202edef\u2066x\u2069\u200f", "abc<U+202E>def<U+2066>x<U+2069><U+200F>"),
        ("over\rwrite", "over^Mwrite"),
        ("line\r\nnext\n\tindented", "line\r\nnext\n\tindented"),  # newlines and tabs are text
        ("plain café ✓ 日本", "plain café ✓ 日本"),
    ],
)
def test_visible_shows_control_characters_like_cat_v(raw, shown):
    assert sm.visible(raw) == shown


def test_visible_one_line_also_shows_line_breaks_and_tabs():
    assert sm.visible("a\nb\tc\r\nd", one_line=True) == "a^Jb^Ic^M^Jd"


def test_control_count_ignores_newlines_and_tabs():
    assert sm.control_count(ESC_LINE + "\n\tx\r\n") == 2
    assert sm.control_count("print('hi')\n") == 0


# ── code and diffs on a terminal: wrapped, never cut, in the terminal's own colours ──────────────


def plain_rows(rows):
    return [row.plain for row in rows]


def joined(rows):
    """The lines behind the rows: each ↪ row continues the row before it."""
    return re.sub(r"\n *↪", "", "\n".join(plain_rows(rows)))


@pytest.mark.parametrize("width", [60, 120])
@pytest.mark.parametrize("numbers", [False, True])
def test_long_lines_wrap_with_a_marker_and_nothing_is_lost(width, numbers):
    code = f"import os\n{PADDED}\n{ESC_LINE}\n"
    rows = sm.code_rows(code, "python", width, color=True, numbers=numbers)
    assert all(len(row.plain) <= width for row in rows)
    assert any("↪" in row.plain for row in rows)
    text = joined(rows)
    assert PADDED in text
    assert "#^[[2K^[[1Gimport sys" in text
    assert "\x1b" not in text


def test_wide_characters_are_cut_by_their_width():
    rows = sm.code_rows("s = '" + "日本" * 40 + "'", "python", 30, color=False)
    assert all(sum(2 if ord(c) > 0x2E80 else 1 for c in row.plain) <= 30 for row in rows)
    assert joined(rows) == "s = '" + "日本" * 40 + "'"


def test_the_live_preview_wraps_long_lines_too():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system=None, width=60, height=20)
    view = sm.GrowingCode("Writing greet.py", started=0)
    view.update(sm.Candidate(f"import os\n{PADDED}\n{ESC_LINE}", "", []), attempt=1)
    console.print(view)
    text = re.sub(r"\n *↪", "", out.getvalue())
    assert PADDED in text and "#^[[2K^[[1Gimport sys" in text and "\x1b[2K" not in text
    assert all(len(row) <= 60 for row in out.getvalue().splitlines())


def render(rows, width=60):
    out = io.StringIO()
    Console(file=out, force_terminal=True, color_system="256", width=width).print(*rows, soft_wrap=True)
    return out.getvalue()


def test_plain_text_uses_the_terminals_own_foreground(monkeypatch):
    monkeypatch.delenv("SM_THEME", raising=False)
    shown = render(sm.code_rows("value = compute(other)\n", "python", 60, color=True))
    assert "231" not in shown and "\x1b[97m" not in shown and "\x1b[37m" not in shown
    assert "value = compute(other)" in shown  # no colour at all for plain names and operators


def test_sm_theme_picks_any_pygments_style(monkeypatch):
    monkeypatch.setenv("SM_THEME", "monokai")
    themed = render(sm.code_rows("value = compute(other)\n", "python", 60, color=True))
    assert "\x1b[38;5;231mvalue" in themed  # monokai's own foreground, asked for by name


def test_unknown_sm_theme_warns_and_keeps_the_default(monkeypatch, caplog):
    monkeypatch.setenv("SM_THEME", "no-such-style")
    sm.syntax_theme.cache_clear()
    shown = render(sm.code_rows("value = 1\n", "python", 60, color=True))
    assert "value = " in shown
    assert "SM_THEME=no-such-style is not a Pygments style" in caplog.text


# ── the review: sm's metadata folded, the diff first, :code and :meta ────────────────────────────


def stamped(body="print(args.name)"):
    return sm.stamp_script(
        script_code(body, ["name"]),
        params=[{"name": "name", "help": "the name", "required": True}],
        description="Greets",
        prompt="Greet {{name}}",
        model="m",
        created_at="2026-01-02T03:04:05.000006Z",
    )


def test_metadata_is_folded_into_one_line():
    code = stamped()
    out = io.StringIO()
    sm.show_script(
        Console(file=out, width=100), sm.Candidate(code, "Greets", sm.read_script(code).declared), "greet.py"
    )
    text = out.getvalue()
    assert "# [tool.sm] [tool.uv] … 13 lines, :meta shows them" in text
    assert "prompt = " not in text and "exclude-newer" not in text
    assert "# dependencies = []" in text and "print(args.name)" in text


def test_a_tool_uv_setting_that_is_not_sms_is_never_folded():
    code = stamped().replace('# exclude-newer = "', '# index-url = "https://evil.example/simple"\n# exclude-newer = "')
    out = io.StringIO()
    sm.show_code(Console(file=out, width=100), code, "greet.py", fold=True)
    assert "index-url" in out.getvalue() and "[tool.sm] …" in out.getvalue()


def test_terminal_review_numbers_lines_across_the_fold():
    code = stamped()
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system=None, width=60, height=40)
    sm.show_code(console, code, "greet.py", fold=True)
    lines = out.getvalue().splitlines()
    fold = next(i for i, line in enumerate(lines) if "[tool.sm] [tool.uv]" in line)
    assert lines[fold - 1].startswith(" 4 #") and lines[fold + 1].startswith("18 # ///")


V1 = reply("print('V1', args.name)", ["name"], description="Greets")
V2 = reply("print('V2', args.name)", ["name"], description="Greets twice")


def test_after_a_change_the_diff_comes_first_and_the_code_on_request(github_env, llm, invoke):
    llm.queue(V1, V2)
    result = invoke("create", "greet", "Greet {{name}}", "-p", input="print it twice\n:code\n:meta\n\n")
    assert result.exit_code == 0, result.output
    after_change = result.stderr.split("Do you have any changes? print it twice")[1].split("Do you have any")[0]
    assert "-print('V1', args.name)\n+print('V2', args.name)" in after_change
    assert "--- greet.py ---" not in after_change  # the whole script is not printed again
    whole = result.stderr.split(":code\n")[1].split("Do you have any")[0]
    assert 'prompt = "Greet {{name}}"' in whole and "print('V2', args.name)" in whole
    meta = result.stderr.split(":meta\n")[1].split("Do you have any")[0]
    assert "[tool.sm]" in meta and "exclude-newer" in meta and "import argparse" not in meta


# ── trust: everything from GitHub is shown made visible, and declining is not an error ───────────


def hostile(body=ESC_LINE):
    return script_code(body, ["who"])


def test_a_foreign_gist_is_shown_without_raw_escapes_even_when_piped(github_env, invoke):
    gist_id = github_env.create_gist_direct(
        "mal\x1b[8mlory", {"tool.py": hostile()}, description="Harmless \x1b[8mhidden\u202e"
    )
    result = invoke("run", gist_id, "who=me")
    assert result.exit_code == 1 and result.execs == []
    assert "\x1b" not in result.stderr and "\u202e" not in result.stderr
    assert "#^[[2K^[[1Gimport sys" in result.stderr
    assert "Harmless ^[[8mhidden<U+202E>" in result.stderr
    assert "contains 2 control characters" in result.stderr


def test_declining_is_not_an_error_and_says_what_still_runs(created, invoke, github_env):
    github_env.external_edit(created["gist_id"], "greet.py", hostile())
    result = invoke("run", "greet", "name=x", "--latest")
    assert result.exit_code == 1 and result.execs == []
    assert "Error" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Nothing ran: revision ")
    assert f"`sm run greet` still runs the pinned revision {created['revision'][:8]}." in last
    assert "the code of latest" in result.stderr and "contains 2 control characters" in result.stderr


def test_declining_a_foreign_gist_or_a_rollback_is_not_an_error(created, invoke, github_env):
    gist_id = github_env.create_gist_direct("mallory", {"tool.py": hostile("print(1)")})
    ran = invoke("run", gist_id)
    assert ran.exit_code == 1 and "Error" not in ran.stderr
    assert ran.stderr.strip().endswith(f"Nothing ran: tool.py from mallory's gist {gist_id} was not trusted.")
    added = invoke("add", "theirs", gist_id)
    assert added.exit_code == 1 and "Nothing was added: tool.py" in added.stderr
    github_env.external_edit(created["gist_id"], "greet.py", hostile("print(2)"))
    back = invoke("rollback", "greet", created["revision"][:8])
    assert back.exit_code == 1 and "Error" not in back.stderr


def test_trusting_a_new_revision_says_it_is_now_pinned(created, invoke, github_env):
    head = github_env.external_edit(created["gist_id"], "greet.py", script_code("print(3)", ["name"]))
    result = invoke("run", "greet", "name=x", "--latest", "-y")
    assert result.exit_code == 0, result.output
    assert f"greet is now pinned at revision {head[:8]}." in result.stderr


@pytest.fixture
def github_down(created, github_env, monkeypatch):
    monkeypatch.setenv("SM_RETRY_BUDGET", "0")  # no waiting between tries in tests
    github_env.inject("GET", rf"/gists/{created['gist_id']}", status=503, times=50)
    return created


def test_github_down_during_latest_falls_back_to_the_pin_with_yes(github_down, invoke):
    result = invoke("run", "greet", "name=x", "--latest", "-y")
    assert result.exit_code == 0, result.output
    assert script_of(result.execs[-1]) == str(sm.cached_path(github_down))
    assert f"running the pinned revision {github_down['revision'][:8]} of greet" in result.stderr


def test_github_down_during_latest_without_yes_says_how_to_run_the_pin(github_down, invoke):
    result = invoke("run", "greet", "name=x", "--latest")
    assert result.exit_code == 1 and result.execs == []
    assert "503" in result.stderr
    assert f"`sm run greet` runs the pinned revision {github_down['revision'][:8]}." in result.stderr


def test_parameter_errors_are_short_lines(created, invoke):
    result = invoke("run", "greet", "colour=red")
    assert result.exit_code == 2
    assert "Error: Unknown parameter 'colour'. Parameters:\n  name=… (required: the name)\n" in result.stderr


# ── list, history, JSON; nothing of the status line off a terminal ───────────────────────────────


def test_list_on_a_terminal_is_one_line_per_script(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "60")
    rows = [
        {"script_name": "greet", "description": "Greets someone " * 10, "params": [{"name": "name"}]},
        {"script_name": "weather-report", "description": "Weather \x1b[8m", "updated_at": "2026-01-02T03:04:05Z"},
    ]
    sm.print_table(rows)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(len(line) <= 60 for line in lines)
    assert lines[1].startswith("greet           Greets some") and "…" in lines[1]
    assert lines[2].startswith("weather-report  Weather ^[[8m")
    sm.print_table(rows, wide=True)
    assert capsys.readouterr().out.count("Greets someone") == 10  # all of it, wrapped


def test_list_piped_keeps_its_format_with_control_characters_made_visible(created, invoke):
    with sm.locked_mapping() as data:
        data["scripts"]["greet"]["description"] = "Greets\x1b[8m\tsomeone"
    plain = invoke("list")
    assert plain.stdout.startswith("greet\tGreets^[[8m^Isomeone\tname\t")


def test_json_on_a_terminal_escapes_what_a_terminal_would_act_on(monkeypatch):
    monkeypatch.setattr(sm, "isatty", lambda stream: True)
    text = sm.json_text({"description": "a\u202eb\x9b", "name": "café"})
    assert "\u202e" not in text and "\\u202e" in text and "\\u009b" in text
    assert json.loads(text) == {"description": "a\u202eb\x9b", "name": "café"}
    assert "café" in sm.json_text({"name": "café"})


def test_no_status_line_when_stderr_is_not_a_terminal(created, invoke):
    result = invoke("sync")
    assert result.exit_code == 0
    assert "Syncing" not in result.stderr and "⠋" not in result.stderr


def test_log_file_gets_warnings_and_errors_not_debug(added, invoke, sm_env, github_env):
    log_file = sm_env / "sm.log"
    github_env.gists.pop(added["gist_id"])
    assert invoke("-v", "rm", "weather", "--purge", "--yes").exit_code == 0  # warns: already deleted
    assert invoke("run", "nothing").exit_code == 2  # a usage error: not logged
    text = log_file.read_text()
    assert re.search(r"^\d{4}-\d\d-\d\d .* WARNING Gist \w+ was already deleted on GitHub\.$", text, re.M)
    assert "DEBUG" not in text and "GET http" not in text
    assert "Unknown script" not in text
    handler = next(h for h in sm.log.handlers if hasattr(h, "maxBytes"))
    assert 0 < handler.maxBytes <= 5_000_000 and handler.backupCount >= 1


def test_log_file_never_breaks_a_command(tmp_path, invoke, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("SM_HOME", str(blocker))
    result = invoke("rm", "x")
    assert result.exit_code in (1, 2)
    assert "Logging error" not in result.output and "Traceback" not in result.output


def test_status_goes_to_stderr_and_stdout_stays_data(local_script, invoke, github_env):
    result = invoke("add", "weather", str(local_script), "--json")
    json.loads(result.stdout)  # nothing else on stdout
    renamed = invoke("rename", "weather", "w2")
    assert renamed.exit_code == 0 and renamed.stdout == "sm run w2 city=VALUE\n" and renamed.stderr
    assert json.loads(invoke("rename", "w2", "w3", "--json").stdout)["script_name"] == "w3"
    removed = invoke("rm", "w3")
    assert removed.exit_code == 0 and removed.stdout == "" and removed.stderr


@pytest.mark.parametrize(
    ("tty", "no_color", "coloured"), [(True, None, True), (True, "1", False), (False, None, False)]
)
def test_colour_only_on_a_terminal_without_no_color(monkeypatch, tty, no_color, coloured):
    class Stream:
        def isatty(self):
            return tty

    if no_color:
        monkeypatch.setenv("NO_COLOR", no_color)
    monkeypatch.delenv("TERM", raising=False)
    assert sm.use_color(Stream()) is coloured
    report = sm.doctor_report([{"check": "uv", "status": "ok", "detail": "fine", "fix": None}], color=coloured)
    assert ("\x1b[" in report) is coloured


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


def add_local(invoke, folder, code, name="greet"):
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
    entry = add_local(invoke, tmp_path, script_code("print('hello', args.name)", ["name"]))
    github_env.external_edit(entry["gist_id"], "greet.py", HOSTILE)
    text = answer_no("run", "greet", "--latest", "name=x", env=tty_env, columns=columns, color=color)
    assert "Trust and run this revision?" in words(text)
    assert f"+{PADDED}" in text
    assert f"`sm run greet` still runs the pinned revision {entry['revision'][:8]}." in words(text)


def test_show_on_a_terminal_is_made_visible_and_wrapped(github_env, tty_env, invoke, tmp_path):
    add_local(invoke, tmp_path, HOSTILE)
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


@pytest.mark.slow
def test_status_line_through_every_wait(github_env, tty_env, invoke, tmp_path):
    add_local(invoke, tmp_path, script_code("print(args.name)", ["name"]))
    github_env.inject("GET", r"/gists/\w+", status=429, headers={"retry-after": "2"})
    github_env.inject("GET", r"/gists/\w+", delay=1.0)
    with terminal("sync", env=tty_env) as (child, screen):
        child.expect("Waiting 2 s for GitHub \\(rate limit\\)… Ctrl-C stops".encode())
        child.expect("Syncing mapping…".encode())
        assert finish(child) == 0
    assert b"Local: no changes" in screen.getvalue()


@pytest.mark.slow
def test_ctrl_c_stops_the_retries_of_latest(github_env, tty_env, invoke, tmp_path):
    entry = add_local(invoke, tmp_path, script_code("print(args.name)", ["name"]))
    github_env.inject("GET", rf"/gists/{entry['gist_id']}", status=503, times=100)
    with terminal("run", "greet", "--latest", "name=x", env=tty_env) as (child, screen):
        child.expect("Ctrl-C stops")
        child.sendintr()
        child.expect("Stopped: nothing ran")
        assert finish(child) == 130
    assert f"`sm run greet` runs the pinned revision {entry['revision'][:8]}." in words(text_of(screen))


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
