"""Failure modes found in review: each test is one way sm could have lost data, leaked, or misled."""

from __future__ import annotations

import json

from conftest import TOKEN, reply, script_code

import sm

LEAKY_LINE = 'KEY = "' + "ghp_" + "Q" * 36 + '"'


def test_edit_cannot_put_a_secret_into_a_public_gist(github_env, llm, invoke, sm_env):
    llm.queue(reply("print(args.name)", ["name"]))
    assert invoke("create", "pub", "Echo {{name}}", "--public").exit_code == 0
    entry = sm.lookup("pub")
    llm.queue(reply(f"{LEAKY_LINE}\nprint(args.name, KEY)", ["name"]))
    result = invoke("edit", "pub", "also print the key")
    assert result.exit_code == 1
    assert "Refusing to upload pub.py to a public gist" in result.stderr
    assert len(github_env.revisions(entry["gist_id"])) == 1
    assert "ghp_" not in github_env.gist_files(entry["gist_id"])["pub.py"]
    assert (sm_env / "drafts" / "pub.py").exists()


def test_editing_someone_elses_gist_says_so(github_env, invoke, llm):
    bobs = github_env.create_gist_direct("bob", {"hi.py": script_code("print(args.who)", ["who"])}, "Says hi")
    assert invoke("add", "hi", bobs, "--yes").exit_code == 0
    result = invoke("edit", "hi", "shout it")
    assert result.exit_code == 2
    assert "hi is bob's gist: only they can change it" in result.stderr
    assert llm.requests == []


def test_from_remote_offline_keeps_the_backup_entries(created, invoke, sm_env, monkeypatch):
    invoke("list")  # leaves mapping.json.bak with `greet` in it after the next write
    sm.write_mapping(sm.read_mapping())
    (sm_env / "mapping.json").write_text("{broken")
    monkeypatch.setenv("SM_GITHUB_API_URL", "http://127.0.0.1:9")
    result = invoke("sync", "--from-remote")
    assert result.exit_code == 1 and "Cannot reach" in result.stderr
    assert "greet" in sm.read_mapping()["scripts"]  # recovered from the backup before going online


def test_sm_mapping_gist_wins_after_first_sync(created, github_env, monkeypatch):
    other = github_env.create_gist_direct("alice", {"sm-mapping.json": json.dumps(sm.empty_mapping())})
    monkeypatch.setenv("SM_MAPPING_GIST", other)
    sm.sync(sm.GitHub(TOKEN))
    assert sm.read_sync_state()["gist_id"] == other
    assert "greet" in json.loads(github_env.gist_files(other)["sm-mapping.json"])["scripts"]


def test_bad_remote_mapping_is_a_warning_after_a_successful_create(github_env, llm, invoke):
    llm.queue(reply("print(1)"))
    assert invoke("create", "one", "print one").exit_code == 0
    github_env.external_edit(sm.read_sync_state()["gist_id"], "sm-mapping.json", "not json")
    llm.queue(reply("print(2)"))
    result = invoke("create", "two", "print two")
    assert result.exit_code == 0, result.output
    assert "will sync to GitHub later" in result.stderr
    assert "two" in sm.read_mapping()["scripts"]


def test_malformed_local_entry_is_one_warning_and_repaired_from_github(created, invoke, sm_env):
    data = json.loads((sm_env / "mapping.json").read_text())
    data["scripts"]["greet"]["params"] = "name"
    (sm_env / "mapping.json").write_text(json.dumps(data))
    sm.fast_run(["run", "greet", "name=x"])  # returns to the full CLI instead of raising or running
    result = invoke("run", "greet", "name=x")
    assert result.stderr.count("Ignoring the entry 'greet'") == 1 and "params is not a list" in result.stderr
    # the good copy on GitHub wins over the hand-broken one, and the script runs
    assert result.exit_code == 0 and result.execs[-1][-1] == "--name=x"
    assert sm.read_mapping()["scripts"]["greet"]["params"] == created["params"]


def test_malformed_local_entry_offline_is_kept_untouched(created, invoke, sm_env, monkeypatch):
    data = json.loads((sm_env / "mapping.json").read_text())
    data["scripts"]["greet"]["gist_id"] = "../../etc"
    (sm_env / "mapping.json").write_text(json.dumps(data))
    monkeypatch.delenv("GITHUB_PAT")
    result = invoke("run", "greet", "name=x")
    assert result.exit_code == 2 and "Unknown script 'greet'" in result.stderr and result.execs == []
    assert "Ignoring the entry 'greet'" in result.stderr and "gist_id is missing or malformed" in result.stderr
    sm.put_entry({**created, "script_name": "other"})  # a write elsewhere keeps the bad entry as it was
    assert json.loads((sm_env / "mapping.json").read_text())["scripts"]["greet"]["gist_id"] == "../../etc"


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
    assert "HEAD-REV" in open(by_id.execs[-1][3]).read()
    assert "HEAD-REV" not in sm.cached_path(created).read_text() and sm.verified_cache(created)


def test_run_help_after_name_lists_the_scripts_parameters(created, invoke):
    result = invoke("run", "greet", "-h")
    assert result.exit_code == 0
    assert (
        " run [OPTIONS] NAME [ARGS]" in result.stdout
        and "Parameters:\n  name=… (required: the name)\n" in result.stdout
    )
    assert result.execs == []


def test_api_url_without_scheme(invoke, monkeypatch):
    monkeypatch.setenv("GITHUB_PAT", TOKEN)
    monkeypatch.setenv("SM_GITHUB_API_URL", "ghe.example.com/api/v3")
    result = invoke("sync")
    assert result.exit_code == 1 and "must start with https://" in result.stderr


def test_fallback_venvs_do_not_multiply(sm_env, tmp_path):
    pinned = sm.cache_dir() / ("a" * 32) / "x.py"
    other_rev = sm.cache_dir() / ("a" * 32) / ("rev-" + "b" * 40) / "x.py"
    drafts = [tmp_path / f"sm-run-{i}" / "x.py" for i in range(3)]
    assert sm.venv_path(pinned) == sm.venv_path(other_rev) == sm_env / "venvs" / f"{'a' * 32}-x"
    assert {sm.venv_path(d) for d in drafts} == {sm_env / "venvs" / "draft-x"}


def test_redact_masks_what_the_upload_scan_finds():
    aws, pem = "AKIA" + "ABCDEFGHIJKLMNOP", "-----BEGIN RSA PRIVATE KEY-----\nMIIE" + "q" * 60 + "\n"
    out = sm.redact(f"key {aws} and {pem} and ghp_{'x' * 36}")
    assert aws not in out and "PRIVATE KEY" not in out and "MIIE" not in out and "ghp_" not in out
    assert out.count("***") == 3


def test_token_goes_only_to_the_api_origin():
    """Same host name on another port or scheme is another server: it gets no token."""
    import httpx2

    gh = sm.GitHub(TOKEN, "http://127.0.0.1:8000")
    sent = {}

    def record(method, url, **kw):
        sent[url] = "Authorization" in kw["headers"]
        return httpx2.Response(200, json={})

    gh._client.request = record
    urls = [
        "http://127.0.0.1:8000/gists",
        "http://127.0.0.1:9/gists",
        "https://127.0.0.1:8000/gists",
        "http://localhost:8000/gists",
    ]
    for url in urls:
        gh.request("GET", url)
    assert sent == dict(zip(urls, [True, False, False, False], strict=True))
