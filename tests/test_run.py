"""sm run: its one parser, the pinned revision checked before every run, --latest, --rev, history and rollback,
gists that are not in the mapping, and running without uv."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from conftest import entry, real_uv, script_args, script_code, script_of

import sm

# ── sm run's one parser, and key=value to argv ────────────────────────────────────────────────────


def test_parse_run_tail():
    req = sm.parse_run_tail(["--latest", "greet", "a=1", "--rev", "abc", "-y", "--", "--raw", "x=y", "--"])
    assert req.name == "greet" and req.pairs == ["a=1"]
    assert req.passthrough == ["--raw", "x=y", "--"]
    assert req.options == {"latest": True, "rev": "abc", "yes": True}


@pytest.mark.parametrize(
    "words, options",
    [
        (["URL", "-yf", "a.py"], {"yes": True, "file": "a.py"}),
        (["URL", "-fa.py", "-y"], {"file": "a.py", "yes": True}),
        (["URL", "-yh"], {"yes": True, "help": True}),
    ],
)
def test_short_options_may_come_together(words, options):
    req = sm.parse_run_tail(words)
    assert req.name == "URL" and req.options == options and not req.pairs


@pytest.mark.parametrize("word, message", [("-yx", "Unknown option -x"), ("-yf", "-f needs a value")])
def test_short_options_together_are_checked_one_by_one(word, message):
    with pytest.raises(sm.UsageProblem, match=message):
        sm.parse_run_tail(["URL", word])


def test_parse_run_tail_rejects_unknown_option():
    with pytest.raises(sm.UsageProblem, match="after `--`"):
        sm.parse_run_tail(["--verbose"])


PARAMS = [
    {"name": "prefix", "help": "gist prefix", "required": True},
    {"name": "max_items", "help": "limit", "required": False, "default": "10"},
]


@pytest.mark.parametrize(
    ("pairs", "argv"),
    [
        (["prefix=demo"], ["--prefix=demo"]),
        (["prefix=a=b c"], ["--prefix=a=b c"]),
        (["prefix=", "max-items=3"], ["--prefix=", "--max_items=3"]),
        (["prefix=$(rm -rf /); echo"], ["--prefix=$(rm -rf /); echo"]),
        # a value that looks like an option stays the value of its key, one word each
        (["prefix=-x"], ["--prefix=-x"]),
        (["prefix=--help"], ["--prefix=--help"]),
        # a key given twice is passed twice (argparse append, click multiple)
        (["prefix=a", "prefix=b"], ["--prefix=a", "--prefix=b"]),
    ],
)
def test_build_script_args(pairs, argv):
    assert sm.build_script_args(PARAMS, pairs) == argv


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (["colour=red", "prefix=x"], "Unknown parameter 'colour'. Parameters:\n  prefix="),
        ([], "Missing required parameter prefix. Parameters:\n  prefix="),
        (["prefix"], "Expected key=value, got 'prefix'"),
    ],
)
def test_build_script_args_errors_list_parameters(pairs, message):
    with pytest.raises(sm.UsageProblem) as err:
        sm.build_script_args(PARAMS, pairs)
    assert message in str(err.value)
    assert "max_items=… (default '10': limit)" in str(err.value)


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


def test_run_help_after_name_lists_the_scripts_parameters(created, invoke):
    result = invoke("run", "greet", "-h")
    assert result.exit_code == 0
    assert (
        " run [OPTIONS] NAME [ARGS]" in result.stdout
        and "Parameters:\n  name=… (required: the name)\n" in result.stdout
    )
    assert result.execs == []


def test_run_options_go_before_or_after_name_and_help_lists_them(created, invoke, github_env):
    for args in (
        ["--rev", created["revision"][:8], "greet", "name=x"],
        ["greet", "name=x", "--rev", created["revision"]],
    ):
        result = invoke("run", *args)
        assert result.exit_code == 0, result.output
        assert script_args(result.execs[-1]) == ["--name=x"] and script_of(result.execs[-1]) == str(
            sm.cached_path(created)
        )
    helped = invoke("run", "--help")
    for option in ("--latest", "--rev SHA", "-y, --yes", "-f, --file FILE", "--save NAME"):
        assert option in helped.stdout


# ── the pinned revision, checked before every run ─────────────────────────────────────────────────


def pinned_gets(github_env, entry):
    return github_env.count("GET", rf"/gists/{entry['gist_id']}(/[0-9a-f]{{40}})?")


def test_pinned_run_makes_no_request(created, invoke, github_env):
    before = len(github_env.requests)
    assert invoke("run", "greet", "name=x").exit_code == 0
    assert len(github_env.requests) == before


def test_run_builds_uv_argv_from_cache(created, invoke, github_env):
    before = len(github_env.requests)
    result = invoke("run", "greet", "name=Ada Lovelace", "--", "--extra", "x=y")
    assert result.exit_code == 0, result.output
    (argv,) = result.execs
    assert argv[1:5] == ["run", "--locked", "--script", str(sm.cached_path(created))]  # its lock is beside it
    assert argv[5:] == ["--name=Ada Lovelace", "--extra", "x=y"]
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


def test_tampered_remote_revision_is_refused(created, invoke, github_env):
    rev = github_env.gists[created["gist_id"]]["revisions"][0]
    rev["files"]["greet.py"] = rev["files"]["greet.py"].replace("hello", "pwned")
    sm.cached_path(created).unlink()
    result = invoke("run", "greet", "name=x")
    assert result.exit_code == 1
    assert "Refusing to run greet" in result.stderr and "does not match" in result.stderr
    assert result.execs == []
    assert not sm.cached_path(created).exists()


# ── --latest, --rev, history and rollback ─────────────────────────────────────────────────────────


def browser_edit(github_env, entry, old="hello", new="HOWDY"):
    code = github_env.gist_files(entry["gist_id"])["greet.py"].replace(old, new)
    return github_env.external_edit(entry["gist_id"], "greet.py", code)


def test_latest_unchanged_is_one_conditional_request(created, invoke, github_env):
    assert invoke("run", "greet", "--latest", "name=x").exit_code == 0  # learns the ETag
    before = len(github_env.requests)
    result = invoke("run", "greet", "name=x", "--latest")
    assert result.exit_code == 0, result.output
    assert [(r.method, r.status) for r in github_env.requests[before:]] == [("GET", 304)]
    assert script_of(result.execs[-1]) == str(sm.cached_path(created))


def test_latest_after_browser_edit_refused_without_yes(created, invoke, github_env):
    head = browser_edit(github_env, created)
    result = invoke("run", "greet", "name=x", "--latest")
    assert result.exit_code == 1
    assert result.execs == []
    assert '-print(f"hello {args.name}")' in result.stderr and '+print(f"HOWDY {args.name}")' in result.stderr
    assert f"latest {head[:8]}" in result.stderr
    assert "rerun with --yes" in result.stderr
    assert sm.lookup("greet")["revision"] == created["revision"]  # still pinned to what was accepted
    assert "hello" in sm.cached_path(created).read_text()


def test_latest_with_yes_runs_and_pins_new_revision(created, invoke, github_env):
    head = browser_edit(github_env, created)
    result = invoke("run", "greet", "name=x", "--latest", "-y")
    assert result.exit_code == 0, result.output
    entry = sm.lookup("greet")
    assert entry["revision"] == head
    assert "HOWDY" in sm.cached_path(entry).read_text()
    assert entry["sha256"] == sm.sha256_text(sm.cached_path(entry).read_text())
    remote = json.loads(github_env.gist_files(sm.read_sync_state()["gist_id"])["sm-mapping.json"])
    assert remote["scripts"]["greet"]["revision"] == head  # the new pin synced
    # and the plain run now uses the new pin without asking
    again = invoke("run", "greet", "name=y")
    assert again.exit_code == 0 and script_of(again.execs[-1]) == str(sm.cached_path(entry))


def test_latest_dependency_change_shows_dependency_diff(created, invoke, github_env):
    browser_edit(github_env, created, "# dependencies = []", '# dependencies = ["requests"]')
    result = invoke("run", "greet", "name=x", "--latest")
    assert result.exit_code == 1
    assert "+requests" in result.stderr


def test_history_show_rev_run_rev_and_rollback(created, invoke, github_env):
    first = created["revision"]
    second = browser_edit(github_env, created)
    rows = json.loads(invoke("history", "greet", "--json").stdout)
    assert [r["version"] for r in rows] == [second, first]
    assert [r["pinned"] for r in rows] == [False, True]
    assert rows[0]["additions"] == 1 and rows[0]["deletions"] == 1
    plain = invoke("history", "greet").stdout.splitlines()
    assert plain[1].startswith(f"* {first[:12]}") and plain[0].startswith(f"  {second[:12]}")

    shown = invoke("show", "greet", "--rev", second[:8])
    assert shown.exit_code == 0 and "HOWDY" in shown.stdout

    refused = invoke("run", "greet", "name=x", "--rev", second[:8])
    assert refused.exit_code == 1 and refused.execs == []
    ran = invoke("run", "greet", "name=x", "--rev", second, "--yes")
    assert ran.exit_code == 0, ran.output
    assert "HOWDY" in open(script_of(ran.execs[-1])).read()
    assert sm.lookup("greet")["revision"] == first  # a one-off: the pin stays

    refused_back = invoke("rollback", "greet", first[:10])
    assert refused_back.exit_code == 1 and "rerun with --yes" in refused_back.stderr
    assert len(github_env.revisions(created["gist_id"])) == 2
    back = invoke("rollback", "greet", first[:10], "--yes")
    assert back.exit_code == 0, back.output
    entry = sm.lookup("greet")
    revisions = github_env.revisions(created["gist_id"])
    assert len(revisions) == 3 and entry["revision"] == revisions[0]
    assert github_env.gist_files(created["gist_id"])["greet.py"] == sm.cached_path(entry).read_text()
    assert "hello" in sm.cached_path(entry).read_text()


def test_bad_revision(created, invoke):
    assert "not in the history" in invoke("show", "greet", "--rev", "abcdef12").stderr
    assert "is not a revision" in invoke("show", "greet", "--rev", "zz; rm").stderr


# ── gists that are not in the mapping ─────────────────────────────────────────────────────────────


FOREIGN = script_code('print(f"foreign {args.who}")', ["who"])


def test_foreign_gist_runs_with_yes_then_saves(github_env, invoke):
    gist_id = github_env.create_gist_direct(
        "mallory", {"tool.py": FOREIGN, "README.md": "# hi"}, description="Their tool"
    )
    refused = invoke("run", f"https://gist.github.com/mallory/{gist_id}", "who=me")
    assert refused.exit_code == 1 and refused.execs == []
    assert "by mallory" in refused.stderr and 'print(f"foreign' in refused.stderr

    ran = invoke("run", gist_id, "who=me", "--yes")
    assert ran.exit_code == 0, ran.output
    assert script_args(ran.execs[-1]) == ["--who=me"]
    assert sm.read_mapping()["scripts"] == {}  # not saved unless asked

    saved = invoke("run", gist_id, "who=me", "--yes", "--save", "theirs")
    assert saved.exit_code == 0, saved.output
    entry = sm.lookup("theirs")
    assert entry["gist_id"] == gist_id and entry["revision"] == github_env.revisions(gist_id)[0]
    assert entry["sha256"] == sm.sha256_text(FOREIGN)
    assert invoke("run", "theirs", "who=again").exit_code == 0


def test_foreign_gist_with_several_python_files(github_env, invoke):
    gist_id = github_env.create_gist_direct("bob", {"a.py": FOREIGN, "b.py": "print('b')\n"})
    result = invoke("run", gist_id, "--yes")
    assert result.exit_code == 2 and "choose one with --file" in result.stderr
    chosen = invoke("run", gist_id, "--yes", "--file", "b.py")
    assert chosen.exit_code == 0, chosen.output
    assert open(script_of(chosen.execs[-1])).read() == "print('b')\n"


def test_save_and_file_need_a_gist(created, invoke):
    assert invoke("run", "greet", "--save", "x").exit_code == 2


def test_saved_foreign_gist_reads_argparse_options(github_env, invoke):
    code = "# /// script\n# requires-python = '>=3.11'\n# dependencies = []\n# ///\nimport argparse\np = argparse.ArgumentParser()\np.add_argument('--city', required=True, help='where')\nprint(p.parse_args().city)\n"
    gist_id = github_env.create_gist_direct("bob", {"w.py": code})
    result = invoke("run", gist_id, "ciyt=x", "--yes", "--save", "w")
    assert result.exit_code == 2 and "Unknown parameter 'ciyt'" in result.stderr and "city=" in result.stderr
    assert invoke("run", gist_id, "city=x", "--yes", "--save", "w").exit_code == 0
    assert sm.lookup("w")["params"] == [{"name": "city", "help": "where", "required": True}]


def test_running_your_own_gist_by_id_leaves_the_pinned_copy(created, invoke, github_env):
    github_env.external_edit(created["gist_id"], "greet.py", script_code("print('HEAD-REV', args.name)", ["name"]))
    by_id = invoke("run", created["gist_id"], "name=x", "--yes")  # the gist's head, run as any other gist
    assert by_id.exit_code == 0, by_id.output
    assert "HEAD-REV" in open(script_of(by_id.execs[-1])).read()
    assert "HEAD-REV" not in sm.cached_path(created).read_text() and sm.verified_cache(created)


# ── without uv ────────────────────────────────────────────────────────────────────────────────────


def test_run_without_uv_says_how_to_install_it_and_falls_back(created, invoke, monkeypatch, sm_env):
    monkeypatch.setattr(sm, "which", lambda cmd, *a, **k: None)
    result = invoke("run", "greet", "name=x")
    assert result.exit_code == 0, result.output
    assert "uv is not installed" in result.stderr and "pip install uv" in result.stderr
    venv_python = sm_env / "venvs" / f"{created['gist_id']}-greet" / "bin" / "python"
    assert result.execs == [[str(venv_python), str(sm.cached_path(created)), "--name=x"]]


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


def test_fallback_venvs_do_not_multiply(sm_env, tmp_path):
    pinned = sm.cache_dir() / ("a" * 32) / "x.py"
    other_rev = sm.cache_dir() / ("a" * 32) / ("rev-" + "b" * 40) / "x.py"
    drafts = [tmp_path / f"sm-run-{i}" / "x.py" for i in range(3)]
    assert sm.venv_path(pinned) == sm.venv_path(other_rev) == sm_env / "venvs" / f"{'a' * 32}-x"
    assert {sm.venv_path(d) for d in drafts} == {sm_env / "venvs" / "draft-x"}


def test_fast_path_leaves_the_no_uv_case_to_the_cli(added, monkeypatch):
    monkeypatch.setattr(sm, "which", lambda cmd, *a, **k: None)
    monkeypatch.setattr(sm, "exec_script", lambda argv, env=None: pytest.fail(f"fast path exec'd {argv}"))
    sm.fast_run(["run", "weather", "city=x"])  # returns: the full CLI handles it


def test_a_warning_from_the_fast_path_is_reported_once(added, monkeypatch, capsys, sm_env):
    sm.cached_path(added).write_text("tampered")
    monkeypatch.setattr(sm, "exec_script", lambda argv, env=None: None)
    monkeypatch.setattr(logging.getLogger("sm"), "handlers", [])
    with pytest.raises(SystemExit):
        sm.main(["run", "weather", "city=x"])
    err = capsys.readouterr().err
    assert err == "sm: The cached copy of weather does not match its recorded sha256; fetching it again.\n"
    assert "does not match" in (sm_env / "sm.log").read_text()


def test_a_required_parameter_may_come_after_the_double_dash():
    params = [{"name": "max_count", "required": True}, {"name": "city", "required": True}]
    assert sm.build_script_args(params, ["city=Oslo"], ["--max-count", "3"]) == ["--city=Oslo"]
    assert sm.build_script_args(params, [], ["--city=Oslo", "--max_count=3"]) == []
    with pytest.raises(sm.UsageProblem, match="Missing required parameter city"):
        sm.build_script_args(params, [], ["--max-count", "3", "city"])


def test_run_a_revision_link_runs_that_revision(bobs_gist, invoke, github_env):
    first = github_env.revisions(bobs_gist)[0]
    github_env.external_edit(bobs_gist, "hello.py", script_code("print('new', args.who)", ["who"]))
    result = invoke("run", f"https://gist.github.com/bob/{bobs_gist}/{first}", "--yes", "who=me")
    assert result.exit_code == 0, result.output
    ran = result.execs[-1]
    path = next(a for a in ran if a.endswith("hello.py"))
    assert first in path and "new" not in open(path).read()


def test_run_a_bare_number_is_a_gist_id_and_creates_nothing(github_env, invoke):
    result = invoke("run", "2729810", "--yes")
    assert result.exit_code == 1
    assert "2729810" in result.stderr and "not found (404)" in result.stderr
    assert "Unknown script" not in result.stderr
    assert github_env.count("GET", r"/gists/2729810") == 1
    assert github_env.count("POST", r"/gists") == 0


# ── owners: old gists carry `user`, anonymous ones neither, and your own are yours (issue 11) ─────────

GISTS = Path(__file__).parent / "fixtures" / "gists"


def serve_body(github_env, name):
    """The fake answers GET /gists/ID with a recorded body of an old shape; returns that body."""
    body = json.loads((GISTS / name).read_text())
    github_env.inject("GET", rf"/gists/{body['id']}", status=200, body=body, times=10)
    return body


def test_an_old_numeric_gist_runs_and_its_owner_is_its_user(github_env, invoke):
    serve_body(github_env, "old_numeric_gist.json")
    result = invoke("run", "2729810", "--yes", "--save", "primes", "--", "50")
    assert result.exit_code == 0, result.output
    assert "Gist 2729810 by pkessler (public)" in result.stderr
    assert "Not your gist: pkessler can change it" in result.stderr
    assert result.execs[-1][-1] == "50"
    assert sm.lookup("primes")["owner"] == "pkessler"


def test_an_anonymous_gist_stores_a_null_owner(github_env, invoke):
    serve_body(github_env, "anonymous_gist.json")
    result = invoke("run", "e11a755b076409cf0860", "--yes", "--save", "tally")
    assert result.exit_code == 0, result.output
    assert sm.lookup("tally")["owner"] is None
    assert "unknown owner" not in sm.mapping_path().read_text()
    listed = invoke("list", "--json")
    assert json.loads(listed.stdout)[0]["owner"] is None
    refused = invoke("rollback", "tally", "bf1f4ec4", "--yes")
    assert refused.exit_code == 2 and "tally is an anonymous gist: nobody can change it." in refused.stderr


def test_running_your_own_gist_by_id_is_not_someone_elses(github_env, invoke):
    mine = github_env.create_gist_direct("alice", {"mine.py": script_code("print(1)")}, "Mine")
    for _ in range(2):
        result = invoke("run", mine, "--yes")
        assert result.exit_code == 0, result.output
        assert f"Gist {mine} by alice" in result.stderr and "Not your gist" not in result.stderr
    assert github_env.count("GET", "/user") == 1  # the login is remembered with the sync state


def test_a_stored_unknown_owner_sentence_reads_as_null(github_env, invoke):
    legacy = entry("old", owner="an unknown owner")
    sm.write_mapping({"version": 1, "scripts": {"old": legacy}, "tombstones": {}})
    assert sm.read_mapping()["scripts"]["old"]["owner"] is None


# ── every input as key=value (issue 11) ────────────────────────────────────────────────────────────

FIXTURE_SCRIPTS = Path(__file__).parent / "fixtures" / "scripts"


def test_positionals_flags_and_repeats_reach_the_script(github_env, invoke):
    assert invoke("add", "cp", str(FIXTURE_SCRIPTS / "argparse_positionals.py")).stdout == (
        "sm run cp src=VALUE dest=VALUE\n"
    )
    result = invoke("run", "cp", "dest=b.txt", "src=a.txt")
    assert result.exit_code == 0, result.output
    assert result.execs[-1][-2:] == ["a.txt", "b.txt"]
    helped = invoke("run", "cp", "-h")
    assert "src=… (positional, required: file to copy)" in helped.output


def test_a_typer_argument_is_a_key(github_env, invoke):
    assert invoke("add", "hello", str(FIXTURE_SCRIPTS / "typer_plain.py")).exit_code == 0
    result = invoke("run", "hello", "name=Bob", "times=2")
    assert result.exit_code == 0, result.output
    assert result.execs[-1][-2:] == ["--times=2", "Bob"]


def test_a_script_reading_sys_argv_takes_its_arguments_after_dashes(github_env, invoke):
    added = invoke("add", "mean", str(FIXTURE_SCRIPTS / "sys_argv_function.py"))
    assert added.stdout == "sm run mean -- ARGS...\n"
    refused = invoke("run", "mean", "values=1")
    assert refused.exit_code == 2 and "put its arguments after `--`" in refused.stderr
    ran = invoke("run", "mean", "--", "1", "2", "--mean")
    assert ran.exit_code == 0 and ran.execs[-1][-3:] == ["1", "2", "--mean"]


# ── direct exec: the script's own interpreter, as uv would start it ───────────────────────────────

VIEW = """import json, os
view = {"executable": sys.executable, "prefix": sys.prefix, "path": sys.path, "argv": sys.argv,
        "orig_argv": sys.orig_argv, "file": __file__, "environ": dict(os.environ), "stdin": sys.stdin.read(),
        "parent": os.path.basename(os.readlink(f"/proc/{os.getppid()}/exe"))}
print(json.dumps(view))
sys.exit(7)"""


@pytest.fixture
def view_script(tmp_path, invoke, github_env, monkeypatch):
    """A script `view` that prints what it sees as JSON, and the environment to run sm and uv in."""
    import sys

    from conftest import ROOT

    path = tmp_path / "view.py"
    path.write_text(script_code(VIEW, ["who"]).replace("parser.parse_args()", "parser.parse_known_args()[0]"))
    assert invoke("add", "view", str(path)).exit_code == 0
    uv = real_uv()
    env = {k: v for k, v in os.environ.items() if k not in ("SM_DIRECT", "GITHUB_PAT", "SM_GITHUB_API_URL")}
    env |= {"PATH": f"{os.path.dirname(uv)}{os.pathsep}{env['PATH']}", "SM_REFRESH_SECONDS": "-1"}
    env["UV_CACHE_DIR"] = str(tmp_path / "uv-cache")
    return {
        "entry": sm.lookup("view"),
        "uv": uv,
        "env": env,
        "sm": [sys.executable, str(ROOT / "sm.py"), "run", "view", "who=x", "--", "a", "b c", "-q"],
    }


def run_view(cmd, env):
    import subprocess

    proc = subprocess.run(cmd, env=env, input="from stdin\n", capture_output=True, text=True, timeout=300)
    assert proc.returncode == 7, proc.stderr
    return json.loads(proc.stdout)


needs_proc = pytest.mark.skipif(not os.path.exists("/proc/self/exe"), reason="tells uv's children by /proc")


@pytest.mark.slow
@needs_proc
def test_direct_exec_shows_the_script_what_uv_run_shows_it(view_script, sm_env):
    path = sm.cached_file(view_script["entry"])
    uv = [view_script["uv"], "run", "--quiet", "--script", path, "--who=x", "a", "b c", "-q"]
    env = view_script["env"]
    by_uv = run_view(uv, env)
    first = run_view(view_script["sm"], env)  # the first run records uv's decision
    record = sm_env / "direct" / sm.sha256_text(f"{path}\n{view_script['entry']['sha256']}")
    assert record.exists()
    by_sm = run_view(view_script["sm"], env)
    assert by_uv.pop("parent") == "uv"  # uv runs the script as its child; sm leaves uv out
    assert first.pop("parent") == by_sm.pop("parent") != "uv"
    assert by_sm == first == by_uv
    assert by_sm["prefix"] == by_sm["environ"]["VIRTUAL_ENV"] != env.get("VIRTUAL_ENV")
    assert by_sm["environ"]["UV_RUN_RECURSION_DEPTH"] == str(int(env.get("UV_RUN_RECURSION_DEPTH", 0)) + 1)
    assert by_sm["stdin"] == "from stdin\n"
    assert by_sm["argv"] == [path, "--who=x", "a", "b c", "-q"]


@pytest.mark.slow
@needs_proc
def test_direct_exec_goes_through_uv_again_when_the_environment_is_gone(view_script, sm_env):
    import shutil

    env = view_script["env"]
    first = run_view(view_script["sm"], env)
    shutil.rmtree(first["prefix"])
    again = run_view(view_script["sm"], env)  # uv builds it again, and sm records it again
    assert first["parent"] == again["parent"] != "uv"
    assert again["prefix"] == first["prefix"] and again["executable"] == first["executable"]
    (record,) = (sm_env / "direct").iterdir()  # recorded again in place
    record = record.read_text()
    assert first["executable"] in record.splitlines()


@pytest.mark.slow
@needs_proc
def test_sm_direct_0_runs_through_uv_every_time(view_script, sm_env):
    env = {**view_script["env"], "SM_DIRECT": "0"}
    view = run_view(view_script["sm"], env)
    view = run_view(view_script["sm"], env)
    assert view["stdin"] == "from stdin\n" and view["parent"] == "uv"
    assert not (sm_env / "direct").exists()


def test_direct_exec_is_not_used_when_a_key_changed(added, monkeypatch, sm_env):
    """A record for other script bytes, another uv, or other UV_* settings is not trusted: uv is asked again."""
    monkeypatch.delenv("SM_DIRECT")
    path = sm.cached_file(added)
    asked = []
    monkeypatch.setattr(sm, "record_direct", lambda keys, path, uv: asked.append(keys) or None)
    assert sm.direct_command(added, path, [], sm.which("uv")) is None
    assert len(asked) == 1
    monkeypatch.setenv("UV_PYTHON", "3.99")
    sm.direct_command(added, path, [], sm.which("uv"))
    assert asked[1][:5] == asked[0][:5] and asked[1][5] != asked[0][5]
    monkeypatch.setenv("SM_DIRECT", "0")
    assert sm.direct_command(added, path, [], sm.which("uv")) is None and len(asked) == 2
    # uv keys environments by path: two names with the same code in two gists have a record each
    assert sm.direct_record_path(path, added["sha256"]) != sm.direct_record_path(path + "x", added["sha256"])


def test_a_recorded_run_needs_neither_json_nor_the_mapping(added, invoke, monkeypatch, sm_env):
    """The first fast run writes what running needs of the entry; later runs read it, until the mapping changes."""
    runs, cached = [], sm.cached_path(added)
    monkeypatch.setattr(sm, "exec_script", lambda argv, env=None: runs.append(argv))
    sm.fast_run(["run", "weather", "city=Oslo"])
    assert runs[-1][-1] == "--city=Oslo"
    monkeypatch.setattr(sm, "json", None)  # any use of json now fails, and the fast path gives up
    monkeypatch.setattr(sm, "re", None)
    sm.fast_run(["run", "weather", "city=Rome", "--", "-x"])
    assert runs[-1][-2:] == ["--city=Rome", "-x"]
    sm.fast_run(["run", "weather", "town=Rome"])  # a parameter it does not take: the full CLI says so
    assert len(runs) == 2
    cached.write_text("tampered")
    sm.fast_run(["run", "weather", "city=Oslo"])  # the sha256 is still checked before every run
    assert len(runs) == 2


def test_a_run_record_is_not_used_once_the_mapping_changed(added, monkeypatch):
    runs = []
    monkeypatch.setattr(sm, "exec_script", lambda argv, env=None: runs.append(argv))
    sm.fast_run(["run", "weather", "city=Oslo"])
    with sm.locked_mapping() as data:
        data["scripts"]["weather"]["params"] = []
    sm.fast_run(["run", "weather", "city=Oslo"])  # the parameter is gone now: the full CLI reports it
    assert len(runs) == 1
    sm.fast_run(["run", "weather"])
    assert len(runs) == 2


def test_sm_run_imports_no_re_or_json_once_recorded(added, monkeypatch, sm_env):
    import subprocess
    import sys

    from conftest import ROOT

    probe = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); import sm; "
        "sm.exec_script = lambda *a, **k: print(sorted({'re', 'json'} & set(sys.modules)), a[0][-1]); "
        "sm.fast_run(['run', 'weather', 'city=Oslo'])"
    )
    env = {**os.environ, "SM_REFRESH_SECONDS": "-1"}
    first = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
    again = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
    assert first.stdout == "['json', 're'] --city=Oslo\n", first.stderr
    assert again.stdout == "[] --city=Oslo\n", again.stderr


@pytest.mark.slow
@needs_proc
def test_direct_exec_behind_a_wrapper_passes_the_real_uv_on(view_script, tmp_path):
    """A pyenv shim is a script in front of uv: the script still gets uv's own binary as $UV, as under uv run."""
    shim = tmp_path / "shim" / "uv"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec {view_script["uv"]} "$@"\n')
    shim.chmod(0o755)
    env = {**view_script["env"], "PATH": f"{shim.parent}{os.pathsep}{view_script['env']['PATH']}"}
    run_view(view_script["sm"], env)
    view = run_view(view_script["sm"], env)
    assert view["parent"] != "uv" and view["environ"]["UV"] == view_script["uv"]


@pytest.mark.slow
@needs_proc
def test_gc_removes_the_environment_direct_exec_recorded_once_the_script_is_gone(view_script, invoke):
    env = view_script["env"]
    view = run_view(view_script["sm"], env)
    assert ("uv environment", view["prefix"]) not in {(i["kind"], i["path"]) for i in sm.gc_plan()}
    with sm.locked_mapping() as data:  # removed on another machine, say: sync drops the entry
        del data["scripts"]["view"]
    assert ("uv environment", view["prefix"]) in {(i["kind"], i["path"]) for i in sm.gc_plan()}
    assert invoke("gc", "--yes").exit_code == 0
    assert not os.path.exists(view["prefix"])


SIGNALLED = """import signal, time
def handler(signum, frame):
    print("handled", signum, flush=True)
    sys.exit(3)
signal.signal(signal.SIGTERM, handler)
print("ready", flush=True)
time.sleep(30)
sys.exit(9)"""


@pytest.mark.slow
@needs_proc
def test_a_signal_to_sm_reaches_the_script_as_under_uv_run(tmp_path, invoke, github_env, view_script, sm_env):
    """SIGTERM sent to the process sm started as (a service manager, `kill`) reaches the script's handler once,
    and the script's exit status is the command's, under uv run and under direct exec alike."""
    import signal
    import subprocess
    import sys

    from conftest import ROOT

    path = tmp_path / "sig.py"
    path.write_text(script_code(SIGNALLED))
    assert invoke("add", "sig", str(path)).exit_code == 0
    env = view_script["env"]

    def signalled(cmd, env):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        return out, proc.returncode

    sm_run = [sys.executable, str(ROOT / "sm.py"), "run", "sig"]
    signalled(sm_run, env)  # records
    assert len(list((sm_env / "direct").iterdir())) == 1  # so the next run execs the interpreter itself
    by_uv = signalled([view_script["uv"], "run", "-q", "--script", sm.cached_file(sm.lookup("sig"))], env)
    by_sm = signalled(sm_run, env)
    assert by_sm == by_uv == ("handled 15\n", 3)


def test_the_run_record_keeps_positionals_and_flags(github_env, invoke):
    """The fast path's per-name record carries each input's kind: a positional stays a positional on the
    second run, when the mapping is no longer read."""
    assert invoke("add", "cp", str(FIXTURE_SCRIPTS / "argparse_positionals.py")).exit_code == 0
    execs = invoke("list").execs
    for _ in range(2):  # the first run writes the record, the second reads it
        sm.fast_run(["run", "cp", "dest=b.txt", "src=a.txt"])
        assert execs[-1][-2:] == ["a.txt", "b.txt"]
    assert sm.read_run_record("cp")[0]["params"][0]["kind"] == "positional"


@pytest.mark.parametrize("words", [["URL", "-f=a.py"], ["URL", "-y", "-f=a.py"]])
def test_short_file_option_with_an_equals_sign_still_names_the_file(words):
    """`-f=a.py` names the file a.py, as `--file=a.py` does: short options together (-yf) take nothing with `=`."""
    assert sm.parse_run_tail(words).options.get("file") == "a.py"
