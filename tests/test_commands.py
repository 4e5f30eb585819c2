"""sm add, rm, rename, doctor, self publish, completion, auth fallbacks, secret scanning and logging,
through click's CliRunner against the loopback fake GitHub (and fake OpenAI for `create`)."""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import subprocess
import sys

import pytest
from click.testing import CliRunner
from conftest import ROOT, TOKEN, reply, script_code

import sm

REAL_EXEC_SCRIPT = sm.exec_script


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


# ══ add ═══════════════════════════════════════════════════════════════════════════════════════════


def test_add_local_file_uploads_it_unchanged_with_argparse_params(local_script, invoke, github_env):
    result = invoke("add", "weather", str(local_script))
    assert result.exit_code == 0, result.output
    assert result.stdout == "sm run weather city=VALUE\n"
    assert "Added weather: https://gist.github.com/" in result.stderr
    entry = sm.lookup("weather")
    assert github_env.gists[entry["gist_id"]]["public"] is False
    assert github_env.gist_files(entry["gist_id"]) == {"weather.py": local_script.read_text()}
    assert entry["params"] == [
        {"name": "city", "help": "the city", "required": True},
        {"name": "units", "help": "metric or imperial", "required": False, "default": "metric"},
    ]
    assert entry["description"] == "Print the weather for a city."
    assert entry["revision"] == github_env.revisions(entry["gist_id"])[0]
    run = invoke("run", "weather", "city=Oslo")
    assert run.execs[-1][-1:] == ["--city=Oslo"]


def test_add_local_file_with_tool_sm_table_uses_it(tmp_path, invoke, github_env):
    code = sm.stamp_script(
        script_code("print(args.n)", ["n"]),
        params=[{"name": "n", "help": "how many", "required": False, "default": "3"}],
        description="Counts",
        prompt="p",
        model="m",
        created_at="2025-01-01T00:00:00.000000Z",
    )
    (tmp_path / "count.py").write_text(code)
    result = invoke("add", "count", str(tmp_path / "count.py"), "--json")
    assert result.exit_code == 0, result.output
    entry = json.loads(result.stdout)
    assert entry["params"] == [{"name": "n", "help": "how many", "required": False, "default": "3"}]
    assert entry["description"] == "Counts"
    assert entry == sm.lookup("count")


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("print('no metadata')\n", "expected exactly one `# /// script` block"),
        ("def broken(:\n", "does not compile"),
    ],
)
def test_add_local_file_must_pass_create_checks(tmp_path, invoke, github_env, code, message):
    (tmp_path / "bad.py").write_text(code)
    result = invoke("add", "bad", str(tmp_path / "bad.py"))
    assert result.exit_code == 1
    assert "is not ready for sm" in result.stderr and message in result.stderr
    assert github_env.requests == [] and sm.read_mapping()["scripts"] == {}


def test_add_missing_file(tmp_path, invoke, github_env):
    result = invoke("add", "x", str(tmp_path / "nope.py"))
    assert result.exit_code == 2
    assert "Cannot read" in result.stderr and "nope.py" in result.stderr


def test_add_refuses_existing_name_without_force(local_script, invoke, github_env):
    assert invoke("add", "weather", str(local_script)).exit_code == 0
    again = invoke("add", "weather", str(local_script))
    assert again.exit_code == 2 and "already exists" in again.stderr and "--force" in again.stderr
    assert invoke("add", "weather", str(local_script), "--force").exit_code == 0
    assert gist_posts(github_env) == 2


def test_add_adopts_a_gist_pinned_at_its_current_revision(bobs_gist, invoke, github_env):
    url = f"https://gist.github.com/bob/{bobs_gist}"
    result = invoke("add", "hi", url, "--yes")
    assert result.exit_code == 0, result.output
    assert result.stdout == "sm run hi who=VALUE\n"
    # the trust display: owner, visibility, revision, dependencies, parameters, and a warning
    assert f"Gist {bobs_gist} by bob (secret): Says hi" in result.stderr
    assert "Dependencies: none; requires-python >=3.11" in result.stderr
    assert "Parameters: who" in result.stderr
    assert "Not your gist: bob can change it" in result.stderr
    entry = sm.lookup("hi")
    head = github_env.revisions(bobs_gist)[0]
    assert (entry["gist_id"], entry["filename"], entry["revision"], entry["owner"]) == (
        bobs_gist,
        "hello.py",
        head,
        "bob",
    )
    assert gist_posts(github_env) == 0  # adopted in place, nothing uploaded
    # bob edits his gist: sm keeps running the revision that was adopted
    github_env.external_edit(bobs_gist, "hello.py", script_code("print('pwned', args.who)", ["who"]))
    sm.cached_path(entry).unlink()
    run = invoke("run", "hi", "who=me")
    assert run.exit_code == 0, run.output
    assert "pwned" not in sm.cached_path(entry).read_text()


def test_add_gist_asks_first_and_refuses_without_a_terminal(bobs_gist, invoke, github_env, monkeypatch):
    result = invoke("add", "hi", bobs_gist)
    assert result.exit_code == 1
    assert "not a terminal: rerun with --yes" in result.stderr and "Nothing was added: hello.py" in result.stderr
    assert sm.read_mapping()["scripts"] == {}

    monkeypatch.setattr(sm, "interactive", lambda: True)
    declined = invoke("add", "hi", bobs_gist, input="n\n")
    assert declined.exit_code == 1 and "was not trusted" in declined.stderr
    assert sm.read_mapping()["scripts"] == {}
    accepted = invoke("add", "hi", bobs_gist, input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert 'print(f"hi {args.who}")' in accepted.stderr  # the code was shown before the question
    assert "Adopt as hi: hello.py from bob's gist at revision" in accepted.stderr
    assert "hi" in sm.read_mapping()["scripts"]


def test_add_gist_with_several_scripts_needs_file(github_env, invoke):
    gist_id = github_env.create_gist_direct(
        "alice", {"a.py": script_code("print(1)"), "b.py": script_code("print(2)")}, "two"
    )
    result = invoke("add", "two", gist_id, "--yes")
    assert result.exit_code == 1 and "choose one with --file" in result.stderr
    result = invoke("add", "two", gist_id, "--yes", "--file", "b.py")
    assert result.exit_code == 0, result.output
    assert sm.lookup("two")["filename"] == "b.py"
    assert "Not your gist" not in result.stderr  # alice is the token's user


def test_add_gist_must_pass_checks(github_env, invoke):
    gist_id = github_env.create_gist_direct("bob", {"plain.py": "print('no metadata')\n"})
    result = invoke("add", "plain", gist_id, "--yes")
    assert result.exit_code == 1
    assert f"plain.py in gist {gist_id} is not ready for sm" in result.stderr


@pytest.mark.parametrize(
    ("source", "message", "code"),
    [
        ("not-a-gist", "No such file, and not a gist ID or URL either: 'not-a-gist'", 2),
        ("https://gist.github.com/bob/" + "f" * 32, "not found (404)", 1),
    ],
)
def test_add_bad_gist_reference(github_env, invoke, source, message, code):
    result = invoke("add", "x", source, "--yes")
    assert result.exit_code == code
    assert message in result.stderr
    if code == 2:
        assert github_env.requests == []


def test_add_public_gist_adoption_rejects_public_flag(bobs_gist, invoke):
    result = invoke("add", "hi", bobs_gist, "--public", "--yes")
    assert result.exit_code == 2 and "--public applies to local files" in result.stderr


# ══ secret scanning ═══════════════════════════════════════════════════════════════════════════════

LEAKY = 'KEY = "' + "ghp_" + "Q" * 36 + '"\n'


def test_public_upload_with_a_secret_is_refused(tmp_path, invoke, github_env):
    (tmp_path / "leak.py").write_text(script_code("print(KEY)").replace("import sys\n", "import sys\n" + LEAKY))
    result = invoke("add", "leak", str(tmp_path / "leak.py"), "--public")
    assert result.exit_code == 1
    assert "Refusing to upload leak.py to a public gist: it contains a GitHub token (line 7)" in result.stderr
    assert gist_posts(github_env) == 0
    secret = invoke("add", "leak", str(tmp_path / "leak.py"))
    assert secret.exit_code == 0, secret.output
    assert "leak.py contains a GitHub token (line 7): the gist is secret" in secret.stderr
    assert "Q" * 36 not in secret.output


def test_public_create_with_a_secret_is_refused_and_kept(github_env, llm, invoke, sm_env):
    llm.queue(reply("print(KEY)".replace("print", LEAKY + "print")))
    result = invoke("create", "leak", "print a key", "--public")
    assert result.exit_code == 1
    assert "Refusing to upload leak.py to a public gist" in result.stderr
    assert "sm add leak " in result.stderr and (sm_env / "drafts" / "leak.py").exists()
    assert script_gists(github_env) == []


# ══ rm ════════════════════════════════════════════════════════════════════════════════════════════


@pytest.fixture
def added(local_script, invoke, github_env):
    assert invoke("add", "weather", str(local_script)).exit_code == 0
    return sm.lookup("weather")


def test_rm_forgets_the_name_and_keeps_the_gist(added, invoke, github_env):
    assert sm.cached_path(added).exists()
    result = invoke("rm", "weather")
    assert result.exit_code == 0, result.output
    assert f"Removed weather; its gist {added['gist_id']} stays on GitHub." in result.stderr
    data = sm.read_mapping()
    assert data["scripts"] == {}
    assert data["tombstones"]["weather"]["gist_id"] == added["gist_id"]
    assert added["gist_id"] in github_env.gists
    assert not sm.cached_path(added).parent.exists()


def test_rm_unknown_name_suggests(added, invoke):
    result = invoke("rm", "wether")
    assert result.exit_code == 2 and "Did you mean weather?" in result.stderr


def test_rm_purge_needs_confirmation(added, invoke, github_env, monkeypatch):
    result = invoke("rm", "weather", "--purge")  # no terminal to ask on: a no, as for every question
    assert result.exit_code == 1 and "rerun with --yes" in result.stderr and "Nothing was removed" in result.stderr
    assert added["gist_id"] in github_env.gists and "weather" in sm.read_mapping()["scripts"]
    monkeypatch.setattr(sm, "interactive", lambda: True)
    declined = invoke("rm", "weather", "--purge", input="n\n")
    assert declined.exit_code == 1 and "Delete gist" in declined.stderr
    assert added["gist_id"] in github_env.gists and "weather" in sm.read_mapping()["scripts"]


def test_rm_purge_deletes_the_gist(added, invoke, github_env):
    result = invoke("rm", "weather", "--purge", "--yes")
    assert result.exit_code == 0, result.output
    assert added["gist_id"] not in github_env.gists
    assert "tombstones" in sm.read_mapping() and "weather" in sm.read_mapping()["tombstones"]


def test_rm_purge_of_someone_elses_gist_is_refused(bobs_gist, invoke, github_env):
    assert invoke("add", "hi", bobs_gist, "--yes").exit_code == 0
    result = invoke("rm", "hi", "--purge", "--yes")
    assert result.exit_code == 1
    assert "belongs to bob, so only they can delete it" in result.stderr
    assert bobs_gist in github_env.gists and "hi" in sm.read_mapping()["scripts"]
    assert invoke("rm", "hi").exit_code == 0


def test_rm_purge_of_a_gist_already_gone(added, invoke, github_env):
    github_env.gists.pop(added["gist_id"])
    result = invoke("rm", "weather", "--purge", "--yes")
    assert result.exit_code == 0, result.output
    assert "already deleted on GitHub" in result.stderr
    assert sm.read_mapping()["scripts"] == {}


def test_rm_purge_of_a_shared_gist_is_refused(bobs_gist, invoke, github_env):
    assert invoke("add", "hi", bobs_gist, "--yes").exit_code == 0
    assert invoke("add", "hello", bobs_gist, "--yes").exit_code == 0
    result = invoke("rm", "hi", "--purge", "--yes")
    assert result.exit_code == 2 and "also registered as hello" in result.stderr
    assert invoke("rm", "hi").exit_code == 0
    assert sm.cached_path(sm.lookup("hello")).exists()  # still used by `hello`


# ══ rename ════════════════════════════════════════════════════════════════════════════════════════


def test_rename(added, invoke, github_env):
    before = len(github_env.requests)
    result = invoke("rename", "weather", "forecast")
    assert result.exit_code == 0, result.output
    assert result.stderr == "Renamed weather to forecast.\n"
    data = sm.read_mapping()
    assert list(data["scripts"]) == ["forecast"]
    assert data["scripts"]["forecast"]["script_name"] == "forecast"
    assert data["tombstones"]["weather"]["gist_id"] == added["gist_id"]
    # only the mapping gist was touched (the rename synced); the script's gist keeps its name and file
    assert all(added["gist_id"] not in r.path for r in github_env.requests[before:])
    before = len(github_env.requests)
    run = invoke("run", "forecast", "city=Rome")
    assert run.exit_code == 0 and run.execs[-1][-1:] == ["--city=Rome"]
    assert len(github_env.requests) == before  # the cache still serves it


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["wether", "x"], "Did you mean weather?"),
        (["weather", "bad/name"], "Invalid script name"),
        (["weather", "weather"], "already exists"),
    ],
)
def test_rename_errors(added, invoke, args, message):
    result = invoke("rename", *args)
    assert result.exit_code == 2 and message in result.stderr
    assert list(sm.read_mapping()["scripts"]) == ["weather"]


# ══ doctor ════════════════════════════════════════════════════════════════════════════════════════


def doctor_json(invoke):
    result = invoke("doctor", "--json")
    report = json.loads(result.stdout)
    return result, report, {c["check"]: c for c in report["checks"]}


def test_doctor_all_good(github_env, invoke, monkeypatch, added):
    monkeypatch.setenv("SM_MODEL", "openai:gpt-5.1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")  # doctor checks that the model's key is set
    result, report, checks = doctor_json(invoke)
    assert result.exit_code == 0 and report["ok"] is True
    assert [c["check"] for c in report["checks"]] == [
        "uv",
        "API",
        "token",
        "token scope",
        "mapping",
        "mapping gist",
        "model",
        "SM_HOME",
        "cache",
    ]
    assert checks["uv"]["status"] == "ok" and checks["uv"]["detail"].startswith("uv ")
    assert checks["token"]["detail"] == "from GITHUB_PAT"
    assert checks["token scope"]["detail"] == "valid for alice; classic token, scopes: gist, repo"
    assert checks["mapping"]["detail"].startswith("1 scripts in ")
    assert checks["mapping gist"] == {
        "check": "mapping gist",
        "status": "ok",
        "detail": f"{sm.read_sync_state()['gist_id']} is reachable",
        "fix": None,
    }
    assert checks["model"]["detail"] == "openai:gpt-5.1 (from SM_MODEL)"
    assert checks["cache"]["detail"].startswith(f"{sm.human_size(added_size(added))} in 1 files")
    plain = invoke("doctor")
    assert plain.exit_code == 0
    assert re.search(r"^✓ token scope +valid for alice", plain.stdout, re.M)
    assert "\x1b[" not in plain.stdout  # piped: no colour


def added_size(entry):
    return sm.cached_path(entry).stat().st_size


def test_doctor_reports_fine_grained_tokens(github_env, invoke, monkeypatch):
    github_env.add_token("github_pat_finegrained0123456789", login="carol", scopes=None)
    monkeypatch.setenv("GITHUB_PAT", "github_pat_finegrained0123456789")
    _, _, checks = doctor_json(invoke)
    assert checks["token scope"]["status"] == "ok"
    assert "valid for carol; fine-grained token" in checks["token scope"]["detail"]
    assert "Gists permission" in checks["token scope"]["detail"]


def test_doctor_failures_come_with_fixes(github_env, invoke, monkeypatch):
    github_env.add_token("ghp_noscope", scopes="repo")
    monkeypatch.setenv("GITHUB_PAT", "ghp_noscope")
    result, report, checks = doctor_json(invoke)
    assert result.exit_code == 1 and report["ok"] is False
    assert checks["token scope"]["status"] == "fail"
    assert "lacks the `gist` scope (it has: repo)" in checks["token scope"]["detail"]
    assert "GITHUB_PAT" in checks["token scope"]["fix"]
    assert checks["model"]["status"] == "fail" and "SM_MODEL" in checks["model"]["fix"]
    plain = invoke("doctor")
    assert plain.exit_code == 1
    assert re.search(r"^✗ token scope .*\n +fix: Create a token with the gist scope", plain.stdout, re.M)


def test_doctor_without_token_or_uv(invoke, monkeypatch):
    monkeypatch.setattr(sm, "which", lambda cmd, *a, **k: None)
    result, _, checks = doctor_json(invoke)
    assert result.exit_code == 1
    assert checks["uv"]["status"] == "warn" and "pip install uv" in checks["uv"]["fix"]
    assert checks["token"]["status"] == "fail" and "gh auth login" in checks["token"]["fix"]
    assert checks["token scope"]["status"] == "skip"


def test_doctor_bad_token_and_unreachable_github(github_env, invoke, monkeypatch):
    monkeypatch.setenv("GITHUB_PAT", "ghp_wrong")
    _, _, checks = doctor_json(invoke)
    assert "401" in checks["token scope"]["detail"]
    monkeypatch.setenv("GITHUB_PAT", TOKEN)
    monkeypatch.setenv("SM_GITHUB_API_URL", "http://127.0.0.1:9")
    _, _, checks = doctor_json(invoke)
    assert "Cannot reach 127.0.0.1:9" in checks["token scope"]["detail"]
    assert "network" in checks["token scope"]["fix"]


def test_doctor_mapping_gist(github_env, invoke, monkeypatch):
    wrong = github_env.create_gist_direct("alice", {"mapping.json": "{}"})
    monkeypatch.setenv("SM_MAPPING_GIST", wrong)
    _, _, checks = doctor_json(invoke)
    assert checks["mapping gist"]["status"] == "fail" and "holds no sm-mapping.json" in checks["mapping gist"]["detail"]
    gist_id = github_env.create_gist_direct("alice", {"sm-mapping.json": "{}"})
    monkeypatch.setenv("SM_MAPPING_GIST", gist_id)
    _, _, checks = doctor_json(invoke)
    assert checks["mapping gist"] == {
        "check": "mapping gist",
        "status": "ok",
        "detail": f"{gist_id} is reachable",
        "fix": None,
    }
    monkeypatch.setenv("SM_MAPPING_GIST", "f" * 32)
    _, _, checks = doctor_json(invoke)
    assert checks["mapping gist"]["status"] == "fail" and "404" in checks["mapping gist"]["detail"]


def test_doctor_unwritable_home_and_corrupt_mapping(tmp_path, invoke, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SM_HOME", str(blocker))
    _, _, checks = doctor_json(invoke)
    assert checks["SM_HOME"]["status"] == "fail" and "set SM_HOME" in checks["SM_HOME"]["fix"]
    home = tmp_path / "home"
    home.mkdir()
    (home / "mapping.json").write_text("{")
    monkeypatch.setenv("SM_HOME", str(home))
    _, _, checks = doctor_json(invoke)
    assert checks["mapping"]["status"] == "fail" and "corrupt" in checks["mapping"]["detail"]


# ══ auth ══════════════════════════════════════════════════════════════════════════════════════════


@pytest.fixture
def fake_gh(tmp_path, monkeypatch):
    """A `gh` on PATH whose `auth token` prints what the test writes to its token file."""
    folder = tmp_path / "ghbin"
    folder.mkdir()
    token_file = folder / "token"
    gh = folder / "gh"
    gh.write_text(
        f'#!/bin/sh\n[ "$1 $2" = "auth token" ] && [ -s {token_file} ] && cat {token_file} && exit 0\nexit 1\n'
    )
    gh.chmod(gh.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(sm, "which", lambda cmd, *a, **k: str(gh) if cmd == "gh" else None)
    return token_file


def test_token_order_ends_with_gh(fake_gh, monkeypatch):
    with pytest.raises(sm.ConfigError, match="gh auth login"):
        sm.find_token()  # gh is there but not logged in
    fake_gh.write_text("gho_fromgh\n")
    assert sm.find_token() == ("gho_fromgh", "gh auth token")
    monkeypatch.setenv("GH_TOKEN", "  ")  # blank values are skipped
    assert sm.find_token() == ("gho_fromgh", "gh auth token")
    monkeypatch.setenv("GH_TOKEN", "c")
    assert sm.find_token() == ("c", "GH_TOKEN")
    monkeypatch.setenv("GITHUB_TOKEN", "b")
    assert sm.find_token() == ("b", "GITHUB_TOKEN")
    monkeypatch.setenv("GITHUB_PAT", "a")
    assert sm.find_token() == ("a", "GITHUB_PAT")


def test_gh_token_is_used_reported_and_redacted(fake_gh, github_env, invoke, monkeypatch, local_script):
    monkeypatch.delenv("GITHUB_PAT")
    fake_gh.write_text(TOKEN + "\n")
    result = invoke("-v", "add", "weather", str(local_script))
    assert result.exit_code == 0, result.output
    assert "GitHub token from gh auth token" in result.stderr
    assert doctor_json(invoke)[2]["token"]["detail"] == "from gh auth token"
    github_env.inject("POST", "/gists", status=422, body={"message": f"token {TOKEN} rejected"})
    failed = invoke("add", "again", str(local_script))
    assert failed.exit_code == 1 and "token *** rejected" in failed.stderr
    assert TOKEN not in failed.output


# ══ the token never shows ═════════════════════════════════════════════════════════════════════════


def test_token_never_appears_in_output_or_log_with_verbose(
    github_env, llm, invoke, local_script, bobs_gist, sm_env, monkeypatch
):
    monkeypatch.setattr(sm, "exec_script", REAL_EXEC_SCRIPT)  # so that it logs the uv command line...
    monkeypatch.setattr(sm.os, "execv", lambda path, argv: None)  # ...and then returns
    llm.queue(reply('print(f"hello {args.name}")', ["name"]))
    steps = [
        ["create", "greet", "Greet {{name}}"],
        ["list"],
        ["list", "--json"],
        ["show", "greet"],
        ["show", "greet", "--json"],
        ["run", "greet", "name=x"],
        ["add", "weather", str(local_script)],
        ["add", "hi", bobs_gist, "--yes"],
        ["rename", "weather", "forecast"],
        ["rm", "forecast", "--purge", "--yes"],
        ["rm", "hi"],
        ["doctor"],
        ["doctor", "--json"],
        ["self", "publish"],
        ["self", "publish", "--json"],
        ["completion", "bash"],
        ["run", "nothing"],
        ["add", "x", "https://gist.github.com/bob/" + "f" * 32, "--yes"],
    ]
    github_env.inject("GET", r"/user", status=503, body={"message": f"echoing {TOKEN}"}, times=1)
    seen = []
    for args in steps:
        result = invoke("-v", *args)
        seen.append((args, result.output))
    github_env.inject("POST", "/gists", status=422, body={"message": f"bad token {TOKEN}"})
    seen.append((["add"], invoke("-v", "add", "again", str(local_script)).output))
    everything = "\n".join(out for _, out in seen)
    assert "GitHub token from GITHUB_PAT" in everything  # -v says where the token came from
    assert "GET http" in everything and "cache hit" in everything and "exec: " in everything
    for args, out in seen:
        assert TOKEN not in out, args
    log_text = (sm_env / "sm.log").read_text()
    assert "ERROR" in log_text and "bad token ***" in log_text
    assert TOKEN not in log_text


# ══ logging ═══════════════════════════════════════════════════════════════════════════════════════


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


def test_redaction_filter_masks_records():
    sm.setup_logging(verbose=False)
    record = logging.LogRecord("sm", logging.WARNING, __file__, 1, "token %s here", ("ghp_" + "Z" * 36,), None)
    for handler in sm.log.handlers:
        for f in handler.filters:
            (f.filter if hasattr(f, "filter") else f)(record)
    assert record.getMessage() == "token *** here"


# ══ completion, help, output ══════════════════════════════════════════════════════════════════════


def complete(cli, words: str, shell: str = "bash") -> list[str]:
    parts = words.split(" ")
    env = {"_SM_COMPLETE": f"{shell}_complete", "COMP_WORDS": words, "COMP_CWORD": str(len(parts) - 1)}
    if shell == "fish":
        env["COMP_CWORD"] = parts[-1]
    result = CliRunner().invoke(cli, [], env=env, prog_name="sm")
    return [line for line in result.stdout.splitlines() if line]


@pytest.fixture
def two_scripts(sm_env):
    base = {"revision": "1" * 40, "sha256": "2" * 64}
    params = [{"name": "prefix", "help": "the prefix", "required": True}, {"name": "max_count", "help": ""}]
    sm.put_entry({**base, "script_name": "gists", "gist_id": "a" * 32, "filename": "gists.py", "params": params})
    sm.put_entry({**base, "script_name": "greet", "gist_id": "b" * 32, "filename": "greet.py", "description": "Hi"})


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (
            "sm ",
            [
                "add",
                "completion",
                "create",
                "doctor",
                "edit",
                "history",
                "list",
                "rename",
                "rm",
                "rollback",
                "run",
                "self",
                "show",
                "sync",
            ],
        ),
        ("sm r", ["rename", "rm", "rollback", "run"]),
        ("sm run ", ["gists", "greet"]),
        ("sm run gr", ["greet"]),
        ("sm show g", ["gists", "greet"]),
        ("sm rm gi", ["gists"]),
        ("sm rename gi", ["gists"]),
        ("sm run gists ", ["prefix=", "max_count="]),
        ("sm run gists pre", ["prefix="]),
        ("sm run gists max-", ["max_count="]),
        ("sm run gists prefix=x ", ["max_count="]),
        ("sm run gists prefix=", []),
        ("sm run gists -- ", []),
        ("sm run greet ", []),
        ("sm run nothing ", []),
        ("sm self ", ["publish"]),
    ],
)
def test_completion(cli, two_scripts, words, expected):
    assert complete(cli, words) == [f"plain,{e}" for e in expected]


def test_completion_with_descriptions(cli, two_scripts):
    assert complete(cli, "sm run gists p", "fish") == ["plain,prefix=\tthe prefix"]
    assert complete(cli, "sm run gre", "zsh") == ["plain", "greet", "Hi"]


def test_completion_survives_a_corrupt_mapping(cli, sm_env):
    sm_env.mkdir(parents=True)
    (sm_env / "mapping.json").write_text("{")
    assert complete(cli, "sm run ") == []
    assert complete(cli, "sm run x ") == []


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(invoke, shell):
    result = invoke("completion", shell)
    assert result.exit_code == 0
    assert "_SM_COMPLETE" in result.stdout
    # `prefix=` must not be followed by a space: bash and zsh are told so; fish does it by itself
    if shell == "bash":
        assert "[[ $value == *= ]] && compopt -o nospace" in result.stdout
    if shell == "zsh":
        assert "compadd -U -V unsorted -S '' -a completions_nospace" in result.stdout
        assert 'completions_nospace+=("$key")' in result.stdout


def test_completion_imports_nothing_heavy(two_scripts, sm_env):
    probe = (
        "import runpy, sys\n"
        f"sys.argv = ['sm']\n"
        "try:\n"
        f"    runpy.run_path({str(ROOT / 'sm.py')!r}, run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('pydantic_ai', 'pydantic', 'rich', 'httpx2', 'httpx', 'openai')\n"
        "print('HEAVY:' + ','.join(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
    )
    env = {
        "SM_HOME": str(sm_env),
        "PATH": os.environ["PATH"],
        "_SM_COMPLETE": "bash_complete",
        "COMP_WORDS": "sm run gists pre",
        "COMP_CWORD": "3",
    }
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    assert proc.stdout.splitlines() == ["plain,prefix=", "HEAVY:"], proc.stdout + proc.stderr


def test_every_command_and_subcommand_has_help_with_an_example(cli):
    def walk(group, prefix):
        for name, command in group.commands.items():
            yield f"{prefix} {name}", command
            if hasattr(command, "commands"):
                yield from walk(command, f"{prefix} {name}")

    for path, command in walk(cli, "sm"):
        assert command.help and command.help.strip().splitlines()[0], path
        assert "\b" in command.help and path in command.help, f"{path} has no example"


def test_unknown_command_suggests(invoke):
    result = invoke("lsit")
    assert result.exit_code == 2 and "Did you mean 'list'?" in result.stderr


def test_show_json(added, invoke):
    result = invoke("show", "weather", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["code"] == sm.cached_path(added).read_text()
    assert data["gist_id"] == added["gist_id"] and data["params"] == added["params"]


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


# ══ self publish ══════════════════════════════════════════════════════════════════════════════════


def test_self_publish_creates_then_updates_one_secret_gist(github_env, invoke, sm_env):
    first = invoke("self", "publish")
    assert first.exit_code == 0, first.output
    (gist_id,) = script_gists(github_env)
    assert first.stdout == f"uv tool install git+https://gist.github.com/{gist_id}.git\n"
    assert github_env.gists[gist_id]["public"] is False
    files = github_env.gist_files(gist_id)
    assert files == {"sm.py": (ROOT / "sm.py").read_text(), "pyproject.toml": (ROOT / "pyproject.toml").read_text()}
    assert json.loads((sm_env / "self.json").read_text())["gist_id"] == gist_id

    again = invoke("self", "publish", "--json")
    assert again.exit_code == 0, again.output
    data = json.loads(again.stdout)
    assert data["gist_id"] == gist_id and data["install"] == first.stdout.strip()
    assert script_gists(github_env) == [gist_id] and gist_posts(github_env) == 1
    assert len(github_env.revisions(gist_id)) == 1  # same content: no new revision

    github_env.gists.pop(gist_id)  # deleted on GitHub: publish again to a new gist
    third = invoke("self", "publish")
    assert third.exit_code == 0 and "is gone; publishing to a new one" in third.stderr
    assert len(script_gists(github_env)) == 1 and gist_id not in github_env.gists


def test_self_publish_from_an_installed_copy_rebuilds_pyproject(github_env, invoke, tmp_path, monkeypatch):
    lone = tmp_path / "site-packages" / "sm.py"
    lone.parent.mkdir()
    lone.write_text((ROOT / "sm.py").read_text())
    monkeypatch.setattr(sm, "__file__", str(lone))
    assert invoke("self", "publish").exit_code == 0
    (gist_id,) = script_gists(github_env)
    assert github_env.gist_files(gist_id)["pyproject.toml"] == sm.pyproject_for(lone.read_text())


# ══ the no-uv fallback ════════════════════════════════════════════════════════════════════════════


def test_fallback_checks_requires_python(tmp_path, invoke, github_env, monkeypatch):
    (tmp_path / "new.py").write_text(script_code("print(1)").replace(">=3.11", ">=3.99"))
    assert invoke("add", "new", str(tmp_path / "new.py")).exit_code == 0
    monkeypatch.setattr(sm, "which", lambda cmd, *a, **k: None)
    result = invoke("run", "new")
    assert result.exit_code == 1
    assert f"new.py needs Python >=3.99 but this is Python {sm.platform_python()}" in result.stderr
    assert "pip install uv" in result.stderr and result.execs == []


def test_fallback_venv_is_reused_until_deps_change(tmp_path, monkeypatch):
    venv = tmp_path / "venvs" / "g-x"
    python = sm.ensure_venv(venv, [])
    assert python == venv / "bin" / "python" and python.exists()
    (venv / "marker").write_text("kept")
    assert sm.ensure_venv(venv, []) == python
    assert (venv / "marker").exists()
    monkeypatch.setattr(sm.sys, "version", sm.sys.version + " (another build)")  # a new Python: rebuild
    sm.ensure_venv(venv, [])
    assert not (venv / "marker").exists()


def test_fast_path_leaves_the_no_uv_case_to_the_cli(added, monkeypatch):
    monkeypatch.setattr(sm, "which", lambda cmd, *a, **k: None)
    monkeypatch.setattr(sm, "exec_script", lambda argv: pytest.fail(f"fast path exec'd {argv}"))
    sm.fast_run(["run", "weather", "city=x"])  # returns: the full CLI handles it


def test_a_warning_from_the_fast_path_is_reported_once(added, monkeypatch, capsys, sm_env):
    sm.cached_path(added).write_text("tampered")
    monkeypatch.setattr(sm, "exec_script", lambda argv: None)
    monkeypatch.setattr(logging.getLogger("sm"), "handlers", [])
    with pytest.raises(SystemExit):
        sm.main(["run", "weather", "city=x"])
    err = capsys.readouterr().err
    assert err == "sm: The cached copy of weather does not match its recorded sha256; fetching it again.\n"
    assert "does not match" in (sm_env / "sm.log").read_text()
