"""What a person sees: control characters made visible, long lines wrapped, the review's layout, the list,
and the wording of declines and GitHub outages. Real terminals are in test_output_pty.py."""

from __future__ import annotations

import io
import json
import re

import pytest
from conftest import reply, script_code
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
    assert result.execs[-1][3] == str(sm.cached_path(github_down))
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
