"""Every command through click's CliRunner, against the loopback fake GitHub and fake OpenAI servers: create, edit,
list, show, add, rm, rename, doctor, self publish, completion and help."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import (
    ROOT,
    TOKEN,
    doctor_json,
    explain,
    gist_posts,
    reply,
    script_code,
    script_gists,
    script_of,
    sm_process,
    the_gist,
)

import sm

# ── create ────────────────────────────────────────────────────────────────────────────────────────


def test_create_uploads_secret_gist_and_records_mapping(created, github_env, llm):
    entry = created
    gist = github_env.gists[entry["gist_id"]]
    assert gist["public"] is False
    files = github_env.gist_files(entry["gist_id"])
    assert list(files) == ["greet.py", "greet.py.lock"]  # uv's lock, in the same revision as the code
    code = files["greet.py"]
    assert entry["sha256"] == hashlib.sha256(code.encode()).hexdigest()
    assert entry["lock_sha256"] == hashlib.sha256(files["greet.py.lock"].encode()).hexdigest()
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


# ── edit ──────────────────────────────────────────────────────────────────────────────────────────


def test_edit_makes_a_new_revision_and_run_uses_it(created, github_env, llm, invoke):
    old_code = sm.cached_path(created).read_text()
    llm.queue(reply('print(f"HELLO {args.name}")', ["name"], description="Shouts at someone"))
    result = invoke("edit", "greet", "Shout the greeting")
    assert (result.exit_code, result.stdout) == (0, "sm run greet name=VALUE\n"), result.output
    assert "Updated greet to revision" in result.stderr

    gist_id = created["gist_id"]
    assert github_env.count("PATCH", f"/gists/{gist_id}") == 1
    assert sum("greet.py" in r.json()["files"] for r in github_env.requests if r.method == "POST") == 1
    assert len(github_env.revisions(gist_id)) == 2
    code = github_env.gist_files(gist_id)["greet.py"]
    entry = sm.lookup("greet")
    assert entry["revision"] == github_env.revisions(gist_id)[0] != created["revision"]
    assert entry["sha256"] == sm.sha256_text(code)
    assert entry["description"] == "Shouts at someone" == github_env.gists[gist_id]["description"]
    assert entry["params"] == [{"name": "name", "help": "the name", "required": True}]
    assert entry["updated_at"] > created["updated_at"]
    assert entry["created_at"] == created["created_at"]

    table, old_table = sm.read_script(code).table, sm.read_script(old_code).table
    assert (table["prompt"], table["model"], table["created_at"]) == (
        old_table["prompt"],
        old_table["model"],
        old_table["created_at"],
    )
    assert [c["prompt"] for c in table["changes"]] == ["Shout the greeting"]
    assert (
        sm.read_script(code).metadata()["tool"]["uv"]["exclude-newer"]
        >= sm.read_script(old_code).metadata()["tool"]["uv"]["exclude-newer"]
    )

    # the model was shown the stored code, and told what to change
    message = llm.requests[-1]["messages"][-1]["content"]
    assert 'print(f"hello {args.name}")' in message and "Shout the greeting" in message

    ran = invoke("run", "greet", "name=Ada")
    assert ran.exit_code == 0
    path = script_of(ran.execs[-1])
    assert open(path).read() == code


def commented(body):
    """A model's answer whose PEP 723 block holds a comment of its own."""
    answer = reply(body, ["name"])
    block = "# dependencies = [\n#     # standard library only\n# ]"
    return {**answer, "code": answer["code"].replace("# dependencies = []", block)}


def test_a_comment_in_the_block_survives_create_and_edit(github_env, llm, invoke):
    llm.queue(commented('print(f"hello {args.name}")'))
    assert invoke("create", "greet", "Greet {{name}}").exit_code == 0
    assert "# dependencies = [\n#     # standard library only\n# ]\n" in the_gist(github_env)
    llm.queue(commented('print(f"HELLO {args.name}")'))
    assert invoke("edit", "greet", "Shout it").exit_code == 0
    code = the_gist(github_env)
    assert "# dependencies = [\n#     # standard library only\n# ]\n" in code and "HELLO" in code
    assert sm.read_script(code).table["changes"][0]["prompt"] == "Shout it"


def test_an_inline_tool_table_is_extended_not_refused(github_env, llm, invoke):
    """PEP 723 allows `tool = { uv = {...} }` on one line; stamping must add [tool.sm] beside it, not crash."""
    answer = reply('print(f"hello {args.name}")', ["name"])
    inline = '# dependencies = []\n# tool = { uv = { index-url = "https://pypi.org/simple" } }'
    llm.queue({**answer, "code": answer["code"].replace("# dependencies = []", inline)})
    result = invoke("create", "greet", "Greet {{name}}")
    assert result.exit_code == 0, result.output
    script = sm.read_script(the_gist(github_env))
    assert script.meta["tool"]["uv"]["index-url"] == "https://pypi.org/simple"
    assert [p["name"] for p in script.table["params"]] == ["name"]


def test_run_help_without_a_name_is_only_sms_help(invoke):
    result = invoke("run", "--rev", "abcd", "-h")
    assert result.exit_code == 0 and "None" not in result.output and "Usage:" in result.output


def test_edit_reads_the_prompt_from_stdin(created, github_env, llm, invoke):
    llm.queue(reply('print(f"HELLO {args.name}")', ["name"]))
    result = invoke("edit", "greet", "-", input="Shout the greeting\n")
    assert result.exit_code == 0, result.output
    assert "Shout the greeting" in llm.requests[-1]["messages"][-1]["content"]


def test_edit_keeps_an_unpinned_script_unpinned(github_env, llm, invoke):
    llm.queue(reply("print('V1', args.name)", ["name"]), reply("print('V2', args.name)", ["name"]))
    assert invoke("create", "greet", "Greet {{name}}", "--no-exclude-newer").exit_code == 0
    assert invoke("edit", "greet", "twice").exit_code == 0
    assert "uv" not in sm.read_script(the_gist(github_env)).metadata().get("tool", {})


def test_edit_warns_when_the_gist_changed_on_github(created, github_env, llm, invoke):
    github_env.external_edit(created["gist_id"], "greet.py", "print('edited in the browser')\n")
    llm.queue(reply('print(f"HELLO {args.name}")', ["name"]))
    result = invoke("edit", "greet", "Shout")
    assert result.exit_code == 0, result.output
    assert f"had changed on GitHub since revision {created['revision'][:8]}" in result.stderr
    assert len(github_env.revisions(created["gist_id"])) == 3  # the browser edit stays in the history


def test_edit_unknown_script(github_env, llm, invoke):
    result = invoke("edit", "nope", "anything")
    assert result.exit_code == 2
    assert "Unknown script 'nope'" in result.stderr
    assert llm.requests == []


def test_edit_that_fails_uploads_nothing(created, github_env, llm, invoke):
    llm.queue(*[reply("print('no name')", [])] * 4, reply("print('never reads it')", []))
    result = invoke("edit", "greet", "Use {{colour}}")
    assert result.exit_code == 1
    assert "did not produce a valid script" in result.stderr
    assert len(github_env.revisions(created["gist_id"])) == 1


def test_editing_someone_elses_gist_says_so(github_env, invoke, llm):
    bobs = github_env.create_gist_direct("bob", {"hi.py": script_code("print(args.who)", ["who"])}, "Says hi")
    assert invoke("add", "hi", bobs, "--yes").exit_code == 0
    result = invoke("edit", "hi", "shout it")
    assert result.exit_code == 2
    assert "hi is bob's gist: only they can change it" in result.stderr
    assert llm.requests == []


@pytest.mark.slow
def test_edit_then_run_runs_the_new_code(env, openai_server):
    openai_server.queue(reply('print(f"hello {args.name}")', ["name"]))
    assert sm_process("create", "greet", "Greet {{name}}", env=env).returncode == 0
    openai_server.queue(reply('print(f"HELLO {args.name.upper()}!")', ["name"]))
    edited = sm_process("edit", "greet", "Shout it", env=env)
    assert edited.returncode == 0, explain(edited)
    ran = sm_process("run", "greet", "name=ada", env=env, input="")
    assert (ran.returncode, ran.stdout) == (0, "HELLO ADA!\n"), explain(ran)


# ── list, show ────────────────────────────────────────────────────────────────────────────────────


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


def test_show_json(added, invoke):
    result = invoke("show", "weather", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["code"] == sm.cached_path(added).read_text()
    assert data["gist_id"] == added["gist_id"] and data["params"] == added["params"]


# ── add ───────────────────────────────────────────────────────────────────────────────────────────


def test_add_local_file_uploads_it_unchanged_with_argparse_params(local_script, invoke, github_env):
    result = invoke("add", "weather", str(local_script))
    assert result.exit_code == 0, result.output
    assert result.stdout == "sm run weather city=VALUE\n"
    assert "Added weather: https://gist.github.com/" in result.stderr
    entry = sm.lookup("weather")
    assert github_env.gists[entry["gist_id"]]["public"] is False
    files = github_env.gist_files(entry["gist_id"])
    assert files["weather.py"] == local_script.read_text() and set(files) == {"weather.py", "weather.py.lock"}
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


def test_add_a_script_without_a_pep_723_block_as_uv_runs_it(tmp_path, invoke, github_env):
    (tmp_path / "plain.py").write_text("import sys\nprint('plain', *sys.argv[1:])\n")
    added = invoke("add", "plain", str(tmp_path / "plain.py"))
    assert added.exit_code == 0, added.output
    ran = invoke("run", "plain", "--", "a b")
    assert ran.exit_code == 0 and ran.execs[-1][-1] == "a b"


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("# /// script\n# dependencies = []\n# ///\nprint(1)\n\n# /// script\n# dependencies = []\n# ///\n", "found 2"),
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
    gist_id = github_env.create_gist_direct("bob", {"plain.py": "def broken(:\n    pass\n"})
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


# ── rm ────────────────────────────────────────────────────────────────────────────────────────────


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


# ── rename ────────────────────────────────────────────────────────────────────────────────────────


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


# ── doctor ────────────────────────────────────────────────────────────────────────────────────────


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
    assert checks["cache"]["detail"].startswith(f"{sm.human_size(added_size(added))} in 2 files")
    plain = invoke("doctor")
    assert plain.exit_code == 0
    assert re.search(r"^✓ token scope +valid for alice", plain.stdout, re.M)
    assert "\x1b[" not in plain.stdout  # piped: no colour


def added_size(entry):
    path = sm.cached_path(entry)
    return path.stat().st_size + path.with_name(path.name + ".lock").stat().st_size


@pytest.mark.parametrize(
    ("n", "text"), [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KB"), (5 * 1024**2, "5.0 MB"), (3 * 1024**3, "3.0 GB")]
)
def test_human_size(n, text):
    assert sm.human_size(n) == text


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


# ── self publish ──────────────────────────────────────────────────────────────────────────────────


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


# ── completion ────────────────────────────────────────────────────────────────────────────────────


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
                "catalog",
                "completion",
                "create",
                "doctor",
                "edit",
                "gc",
                "history",
                "install",
                "list",
                "lock",
                "mapping",
                "rename",
                "rm",
                "rollback",
                "run",
                "self",
                "show",
                "sync",
                "uninstall",
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
        # sm's own options may come before NAME
        ("sm run --latest gr", ["greet"]),
        ("sm run -y gists pre", ["prefix="]),
        ("sm run --rev abcd gists ", ["prefix=", "max_count="]),
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


# ── help, version, and commands that only forward ─────────────────────────────────────────────────


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
    assert len(commands) >= 17  # the walk finds them all
    for command in commands:
        body = command.body[1:]  # after the docstring
        assert not body or body[-1].end_lineno - body[0].lineno < 8, f"{command.name} does more than forward"
        assert command.name.endswith(("_command", "_group")) or command.name == "cli"  # shadows no function


# ── gist links: a revision, a file, a raw URL (issue 11) ─────────────────────────────────────────────


@pytest.fixture
def edited_gist(bobs_gist, github_env):
    """bob's gist after bob edited it: (gist id, first revision, head revision)."""
    first = github_env.revisions(bobs_gist)[0]
    head = github_env.external_edit(bobs_gist, "hello.py", script_code("print('new', args.who)", ["who"]))
    return bobs_gist, first, head


def test_add_a_revision_link_pins_that_revision_and_latest_offers_the_head(edited_gist, invoke, github_env):
    gist_id, first, head = edited_gist
    result = invoke("add", "hi", f"https://gist.github.com/bob/{gist_id}/{first}", "--yes")
    assert result.exit_code == 0, result.output
    assert f"File hello.py, revision {first[:8]}" in result.stderr
    entry = sm.lookup("hi")
    assert entry["revision"] == first
    assert "new" not in sm.cached_path(entry).read_text()
    latest = invoke("run", "hi", "--latest", "--yes", "who=me")
    assert latest.exit_code == 0, latest.output
    assert sm.lookup("hi")["revision"] == head


def test_add_a_raw_url_is_not_a_local_path(edited_gist, invoke):
    gist_id, first, _ = edited_gist
    raw = f"https://gist.githubusercontent.com/bob/{gist_id}/raw/{first}/hello.py"
    result = invoke("add", "hi", raw, "--yes")
    assert result.exit_code == 0, result.output
    assert (sm.lookup("hi")["revision"], sm.lookup("hi")["filename"]) == (first, "hello.py")


def test_a_link_whose_sha_is_not_a_revision_says_so(bobs_gist, invoke, github_env):
    blob = "b4f8c26402ca065f9ce013b6d450b62cb3f97b7a"  # an API raw_url's blob SHA, not a commit
    result = invoke("add", "hi", f"https://gist.githubusercontent.com/bob/{bobs_gist}/raw/{blob}/hello.py", "--yes")
    assert result.exit_code == 2
    assert f"b4f8c264 in the link is not a revision of gist {bobs_gist}" in result.stderr
    assert sm.read_mapping()["scripts"] == {}
    assert github_env.count("GET", rf"/gists/{bobs_gist}/{blob}") == 0


def test_a_file_anchor_selects_the_file(github_env, invoke):
    gist_id = github_env.create_gist_direct(
        "bob", {"csv_to_json.py": script_code("print(1)"), "json_to_csv.py": script_code("print(2)")}
    )
    result = invoke("add", "two", f"https://gist.github.com/bob/{gist_id}#file-json_to_csv-py", "--yes")
    assert result.exit_code == 0, result.output
    assert sm.lookup("two")["filename"] == "json_to_csv.py"
    missing = invoke("add", "three", f"https://gist.github.com/bob/{gist_id}#file-nothing-py", "--yes")
    assert missing.exit_code == 2 and "no single file for #file-nothing-py" in missing.stderr


def test_show_a_revision_link_shows_that_revision_and_saves_nothing(edited_gist, invoke, github_env):
    gist_id, first, _ = edited_gist
    result = invoke("show", f"https://gist.github.com/bob/{gist_id}/{first}")
    assert result.exit_code == 0, result.output
    assert result.stdout == github_env.gists[gist_id]["revisions"][1]["files"]["hello.py"]
    newest = invoke("show", f"https://gist.github.com/bob/{gist_id}")
    assert "print('new', args.who)" in newest.stdout
    assert sm.read_mapping()["scripts"] == {} and gist_posts(github_env) == 0


def test_an_enterprise_link_never_reaches_the_network(github_env, invoke):
    result = invoke("add", "hi", "https://github.example.com/gist/bob/7d1e2b9c40a35f86e0c4d21ab3f97c58", "--yes")
    assert result.exit_code == 2 and "sends your token only there" in result.stderr
    assert github_env.requests == []


# ── scripts people bring: PEP 723 as uv reads it (issue 11) ──────────────────────────────────────────

FIXTURE_SCRIPTS = ROOT / "tests" / "fixtures" / "scripts"
PYTHON_312 = sorted(Path("/root/.pyenv/versions").glob("3.12*/bin"))  # where this machine keeps a 3.12


@pytest.fixture
def with_python_312(monkeypatch):
    """A Python 3.12 that `uv python find` sees, if this machine has one."""
    if not PYTHON_312 or not (uv := shutil.which("uv")):
        pytest.skip("no Python 3.12 on this machine")
    monkeypatch.setenv("PATH", f"{PYTHON_312[0]}{os.pathsep}{os.environ['PATH']}")
    found = subprocess.run([uv, "python", "find", ">=3.12"], capture_output=True, text=True)
    if found.returncode != 0:
        pytest.skip(f"uv finds no Python 3.12: {found.stderr}")


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURE_SCRIPTS.glob("*.py")))
def test_add_accepts_every_script_uv_runs(name, github_env, invoke, with_python_312):
    result = invoke("add", "brought", str(FIXTURE_SCRIPTS / name))
    assert result.exit_code == 0, result.output
    assert "was not checked" not in result.stderr
    assert sm.lookup("brought")["filename"] == "brought.py"


def test_newer_syntax_is_checked_with_a_python_that_fits(github_env, invoke, with_python_312, tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text((FIXTURE_SCRIPTS / "py312_type_alias.py").read_text() + "\ndef oops(:\n")
    result = invoke("add", "broken", str(broken))
    assert result.exit_code == 1
    assert "does not compile with Python >=3.12: invalid syntax" in result.stderr


def test_newer_syntax_without_a_python_that_fits_is_accepted_with_a_note(github_env, invoke, monkeypatch):
    monkeypatch.setattr(sm, "which", lambda cmd: None)
    result = invoke("add", "alias", str(FIXTURE_SCRIPTS / "py312_type_alias.py"))
    assert result.exit_code == 0, result.output
    assert "was not checked: no Python for its requires-python >=3.12 was found" in result.stderr


def test_gist_content_with_crlf_and_bom_is_read_like_a_local_file(github_env, invoke):
    code = (FIXTURE_SCRIPTS / "utf8_bom.py").read_bytes().decode("utf-8").replace("\n", "\r\n")
    gist_id = github_env.create_gist_direct("bob", {"hello.py": code})
    result = invoke("add", "hello", gist_id, "--yes")
    assert result.exit_code == 0, result.output
    entry = sm.lookup("hello")
    assert [p["name"] for p in entry["params"]] == ["name", "lang"]
    assert sm.read_code("hello")[1] == code  # the cache keeps the bytes its sha256 was taken of


def test_inputs_only_a_newer_python_can_read_go_after_dashes(github_env, invoke, with_python_312):
    result = invoke("add", "alias", str(FIXTURE_SCRIPTS / "py312_type_alias.py"))
    assert (result.exit_code, result.stdout) == (0, "sm run alias -- ARGS...\n"), result.output


@pytest.mark.parametrize("name", ["crlf_line_endings.py", "utf8_bom.py"])
def test_add_uploads_crlf_and_bom_files_byte_for_byte(name, github_env, invoke):
    assert invoke("add", "brought", str(FIXTURE_SCRIPTS / name)).exit_code == 0
    uploaded = github_env.gist_files(sm.lookup("brought")["gist_id"])["brought.py"]
    assert uploaded.encode("utf-8") == (FIXTURE_SCRIPTS / name).read_bytes()


# ── gc ────────────────────────────────────────────────────────────────────────────────────────────


def direct_record(sm_env, script_path, sha, venv):
    """A record as direct exec writes it, naming a uv environment (a folder with a pyvenv.cfg)."""
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (venv / "lib.so").write_bytes(b"x" * 5000)
    record = sm_env / "direct" / sha
    record.parent.mkdir(parents=True, exist_ok=True)
    lines = [sm.DIRECT_FORMAT, str(script_path), sha, "-", "uv 1 2 3", "abc", "/usr/bin/uv", str(venv)]
    record.write_text("\n".join([*lines, f"{venv}/bin/python", "uv 1 2 3"]))
    return record


@pytest.fixture
def garbage(added, sm_env, tmp_path):
    """What a removed script, an old draft and an old pin leave behind, beside what the live `weather` uses."""
    envs = tmp_path / "uv-cache" / "environments-v2"
    gone = "f" * 32
    (sm_env / "cache" / gone / f"rev-{'1' * 40}").mkdir(parents=True)
    (sm_env / "cache" / gone / "old.py").write_text("print('old')\n")
    (sm_env / "venvs" / f"{gone}-old").mkdir(parents=True)
    (sm_env / "drafts").mkdir(exist_ok=True)
    (sm_env / "drafts" / "ancient.py").write_text("print(1)\n")
    os.utime(sm_env / "drafts" / "ancient.py", (0, 0))
    (sm_env / "drafts" / "recent.py").write_text("print(2)\n")
    live = sm.cached_file(added)
    stale = direct_record(sm_env, sm_env / "cache" / gone / "old.py", "a" * 64, envs / "old-1111")
    kept = [
        direct_record(sm_env, live, added["sha256"], envs / "weather-2222"),
        direct_record(sm_env, live, "b" * 64, envs / "weather-2222x"),  # the live path's earlier pin
        envs / "stranger-3333",  # uv's, not recorded by sm
        sm_env / "drafts" / "recent.py",
        sm_env / "cache" / added["gist_id"],
    ]
    (envs / "stranger-3333").mkdir()
    (sm_env / "launch").mkdir()
    # installed commands' launch records; a live script may be called weather.map (a name may hold a dot)
    for name in ("weather", "weather%map", "weather%due", "weather%ino", "gone", "gone%map", "gone%due", "gone%ino"):
        (sm_env / "launch" / name).write_text("")
    kept += [sm_env / "launch" / n for n in ("weather", "weather%map", "weather%due", "weather%ino")]
    removed = {
        *{("launch record", str(sm_env / "launch" / n)) for n in ("gone", "gone%map", "gone%due", "gone%ino")},
        ("cached script", str(sm_env / "cache" / gone)),
        ("fallback venv", str(sm_env / "venvs" / f"{gone}-old")),
        ("old draft", str(sm_env / "drafts" / "ancient.py")),
        ("uv environment", str(envs / "old-1111")),
        ("direct record", str(stale)),
    }
    return removed, kept


def test_gc_dry_run_lists_what_no_live_entry_uses_and_removes_nothing(garbage, invoke):
    removed, kept = garbage
    result = invoke("gc", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["dry_run"] is True
    assert {(i["kind"], i["path"]) for i in report["removed"]} == removed
    assert report["bytes"] == sum(i["bytes"] for i in report["removed"]) > 5000
    assert all(os.path.exists(p) for _, p in removed) and all(p.exists() for p in kept)

    text = invoke("gc", "--dry-run")
    assert text.exit_code == 0
    assert len(text.stdout.splitlines()) == len(removed) and "uv environment: " in text.stdout
    assert text.stderr.startswith("Would free ") and text.stderr.endswith(" in 9 items.\n")


def test_gc_asks_then_removes_and_a_second_gc_finds_nothing(garbage, invoke):
    removed, kept = garbage
    refused = invoke("gc")  # no terminal to ask on, and no --yes
    assert refused.exit_code == 1 and "Nothing was removed." in refused.stderr
    assert all(os.path.exists(p) for _, p in removed)
    result = invoke("gc", "--yes")
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("Freed ")
    assert not any(os.path.exists(p) for _, p in removed) and all(p.exists() for p in kept)
    assert json.loads(invoke("gc", "--dry-run", "--json").stdout)["removed"] == []
    assert invoke("run", "weather", "city=x").exit_code == 0


def test_doctor_says_what_gc_would_free(garbage, invoke):
    _, _, checks = doctor_json(invoke)
    assert "`sm gc` would free " in checks["cache"]["detail"] and " in 9 items" in checks["cache"]["detail"]
