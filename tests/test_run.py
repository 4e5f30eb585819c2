"""Safe, pinned runs: integrity, trust on change, foreign gists, history and rollback."""

from __future__ import annotations

import json

import pytest
from conftest import script_code

import sm


def pinned_gets(github_env, entry):
    return github_env.count("GET", rf"/gists/{entry['gist_id']}(/[0-9a-f]{{40}})?")


def test_pinned_run_makes_no_request(created, invoke, github_env):
    before = len(github_env.requests)
    assert invoke("run", "greet", "name=x").exit_code == 0
    assert len(github_env.requests) == before


def test_tampered_remote_revision_is_refused(created, invoke, github_env):
    rev = github_env.gists[created["gist_id"]]["revisions"][0]
    rev["files"]["greet.py"] = rev["files"]["greet.py"].replace("hello", "pwned")
    sm.cached_path(created).unlink()
    result = invoke("run", "greet", "name=x")
    assert result.exit_code == 1
    assert "Refusing to run greet" in result.stderr and "does not match" in result.stderr
    assert result.execs == []
    assert not sm.cached_path(created).exists()


def browser_edit(github_env, entry, old="hello", new="HOWDY"):
    code = github_env.gist_files(entry["gist_id"])["greet.py"].replace(old, new)
    return github_env.external_edit(entry["gist_id"], "greet.py", code)


def test_latest_unchanged_is_one_conditional_request(created, invoke, github_env):
    assert invoke("run", "greet", "--latest", "name=x").exit_code == 0  # learns the ETag
    before = len(github_env.requests)
    result = invoke("run", "greet", "name=x", "--latest")
    assert result.exit_code == 0, result.output
    assert [(r.method, r.status) for r in github_env.requests[before:]] == [("GET", 304)]
    assert result.execs[-1][3] == str(sm.cached_path(created))


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
    assert again.exit_code == 0 and again.execs[-1][3] == str(sm.cached_path(entry))


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
    assert "HOWDY" in open(ran.execs[-1][3]).read()
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
    assert ran.execs[-1][4:] == ["--who=me"]
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
    assert open(chosen.execs[-1][3]).read() == "print('b')\n"


def test_save_and_file_need_a_gist(created, invoke):
    assert invoke("run", "greet", "--save", "x").exit_code == 2


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("0123456789abcdef0123", "0123456789abcdef0123"),
        ("https://gist.github.com/0123456789abcdef0123", "0123456789abcdef0123"),
        ("https://gist.github.com/alice/0123456789ABCDEF0123456789abcdef", "0123456789abcdef0123456789abcdef"),
        ("https://gist.github.com/0123456789abcdef0123.git", "0123456789abcdef0123"),
        ("https://ghe.example.com/gist/alice/0123456789abcdef0123", "0123456789abcdef0123"),
        ("greet", None),
        ("0123", None),
        ("https://evil.example.com/0123456789abcdef0123", None),
    ],
)
def test_gist_ref(ref, expected):
    assert sm.gist_ref(ref) == expected
