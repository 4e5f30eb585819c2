"""Security (issue 15): nothing from GitHub becomes a path unchecked, trust in other people's code is per
machine, what sm keeps is private, what it uploads or sends is scanned, and the token goes out over https only."""

from __future__ import annotations

import json
import logging
import os
import stat

import httpx2
import pytest
from conftest import REAL_EXEC_SCRIPT, ROOT, TOKEN, gist_posts, reply, script_code, script_gists, script_of

import sm

LEAKED = "ghp_" + "Q7x" * 12  # token-shaped, built up so this file holds nothing token-shaped itself


def push_remote_entry(github_env, name, **fields):
    """Someone who can write the mapping gist (a leaked token, another tool) sets an entry, newer than any so far."""
    gist_id = sm.read_sync_state()["gist_id"]
    data = json.loads(github_env.gist_files(gist_id)["sm-mapping.json"])
    base = data["scripts"].get(name) or next(iter(data["scripts"].values()))
    data["scripts"][name] = {**base, "script_name": name, **fields, "updated_at": sm.now_iso()}
    github_env.external_edit(gist_id, "sm-mapping.json", json.dumps(data))


def files_under(root, skip=None):
    return {p for p in root.rglob("*") if skip is None or skip not in p.parents and p != skip}


# -- nothing from GitHub becomes a path unchecked ---------------------------------------------------


def test_home_path_stays_inside_sm_home(sm_env, tmp_path):
    inside = sm.home_path("cache", "a" * 32, "x.py")
    assert inside == os.path.join(os.path.realpath(sm_env), "cache", "a" * 32, "x.py")
    for parts in [("..",), ("cache", "..", "..", "x"), (str(tmp_path / "elsewhere"),), ("cache", "/etc"), ("a\0b",)]:
        with pytest.raises(sm.IntegrityError, match="leads outside"):
            sm.home_path(*parts)
    (sm_env / "cache").mkdir(parents=True)
    (sm_env / "cache" / "link").symlink_to(tmp_path)  # a symlink inside $SM_HOME leads out of it
    with pytest.raises(sm.IntegrityError):
        sm.home_path("cache", "link", "x.py")


@pytest.fixture
def victim(tmp_path):
    folder = tmp_path / "victim"
    folder.mkdir()
    (folder / "precious.txt").write_text("keep me")
    return folder


HOSTILE = {
    "absolute gist_id": lambda created, victim: {"gist_id": str(victim)},
    "dot-dot gist_id": lambda created, victim: {"gist_id": ".."},
    # httpx reads `?` as the start of a query string (so GitHub serves the real gist), the file system does not
    "?-smuggled gist_id": lambda created, victim: {"gist_id": f"{created['gist_id']}?x=/../../../escape"},
    "filename with a slash": lambda created, victim: {"filename": "../../../escape.py"},
    "malformed revision": lambda created, victim: {"revision": "../../../escape"},
}


@pytest.mark.parametrize("hostile", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_mapping_entry_reaches_nothing_outside_sm_home(
    created, github_env, invoke, sm_env, tmp_path, victim, hostile
):
    # The entry keeps greet's revision and sha256: whatever sm fetched would pass the sha256 check.
    push_remote_entry(github_env, "evil", **hostile(created, victim))
    outside = files_under(tmp_path, skip=sm_env)
    invoke("sync")
    execs = []
    for args in (
        ["run", "evil", "name=x"],
        ["run", "evil", "name=x", "--yes"],
        ["run", "evil", "name=x", "--latest", "--yes"],
        ["show", "evil"],
        ["history", "evil"],
        ["rm", "evil", "--purge", "--yes"],
        ["rm", "evil"],
    ):
        result = invoke(*args)
        assert "Traceback" not in result.output
        execs = result.execs
    sm.fast_run(["run", "evil", "name=x"])  # the fast path falls back to the full CLI rather than exec
    assert execs == []
    assert files_under(tmp_path, skip=sm_env) == outside
    assert (victim / "precious.txt").read_text() == "keep me"
    assert sm.verified_cache(created) and (sm_env / "sync.json").exists()  # $SM_HOME was not emptied
    assert len(github_env.revisions(created["gist_id"])) == 1 and created["gist_id"] in github_env.gists


@pytest.mark.parametrize(
    "bad", [{"gist_id": ".."}, {"filename": "../x.py"}, {"revision": "x" * 40}, {"sha256": None}, {"params": "x"}]
)
def test_a_malformed_entry_becomes_no_path(created, bad):
    # read_mapping and sync set such entries aside; the path layer refuses them all the same
    entry = {**created, **bad}
    for make in (sm.entry_path, sm.cached_file, sm.head_meta_path, lambda e: sm.revision_path(e, "a" * 40)):
        with pytest.raises(sm.IntegrityError, match="Refusing to use the mapping entry 'greet': "):
            make(entry)
    sm.drop_local_copies({**entry, "script_name": "gone"})  # removes nothing, and raises nothing
    assert sm.verified_cache(created)


def test_smuggled_mapping_gist_id_reaches_no_url(github_env, invoke):
    gist_id = github_env.create_gist_direct("alice", {"sm-mapping.json": json.dumps(sm.empty_mapping())})
    before = len(github_env.requests)
    result = invoke("sync", env={"SM_MAPPING_GIST": f"{gist_id}?x=/../../escape"})
    assert result.exit_code == 1 and "SM_MAPPING_GIST is not a gist ID or URL" in result.stderr
    assert all("escape" not in r.path for r in github_env.requests[before:])


def fake_gist_api(gist):
    """A GitHub client whose server answers every request with `gist`: a server is not obliged to refuse
    file names that GitHub refuses."""
    gh = sm.GitHub(TOKEN, "http://127.0.0.1:9")
    gh._client.request = lambda method, url, **kw: httpx2.Response(200, json=gist)
    return gh


@pytest.fixture
def asked(monkeypatch):
    """The questions sm asks, each answered yes."""
    questions = []
    monkeypatch.setattr(sm, "confirm", lambda question, show="", **kw: questions.append(question))
    return questions


@pytest.mark.parametrize("filename", ["../escape.py", "a/b.py", "..", "bell\x07.py"])
def test_foreign_gist_filename_must_be_one_plain_name(filename, asked):
    code = script_code("print(1)")
    gist = {
        "id": "a" * 32,
        "files": {filename: {"filename": filename, "content": code}},
        "history": [{"version": "b" * 40}],
        "owner": {"login": "mallory"},
    }
    with pytest.raises(sm.SmError):
        sm.adopt_gist(fake_gist_api(gist), "a" * 32, yes=False, filename=filename)
    assert asked == []


def test_foreign_gist_with_a_malformed_revision_is_refused_before_the_question(asked):
    code = script_code("print(1)")
    gist = {
        "id": "a" * 32,
        "files": {"x.py": {"filename": "x.py", "content": code}},
        "history": [{"version": "../../escape"}],
    }
    with pytest.raises(sm.IntegrityError, match="revision is missing or malformed"):
        sm.adopt_gist(fake_gist_api(gist), "a" * 32, yes=False)
    assert asked == []


# -- trust in other people's code is per machine ----------------------------------------------------


@pytest.fixture
def swapped(created, github_env, invoke):
    """greet's pin, swapped in the mapping gist to mallory's gist holding her code."""
    evil = script_code("print('PWNED', args.name)", ["name"])
    gist_id = github_env.create_gist_direct("mallory", {"greet.py": evil}, "greet")
    push_remote_entry(
        github_env,
        "greet",
        gist_id=gist_id,
        revision=github_env.revisions(gist_id)[0],
        sha256=sm.sha256_text(evil),
        lock_sha256=None,  # her gist has no lock (with greet's, it would be refused for not holding it)
    )
    assert invoke("sync").exit_code == 0
    assert sm.lookup("greet")["gist_id"] == gist_id
    return gist_id


def test_swapped_pin_to_someone_elses_gist_is_reviewed_before_it_runs(swapped, invoke):
    refused = invoke("run", "greet", "name=x")
    assert refused.exit_code == 1 and refused.execs == []
    assert "pinned to mallory's gist" in refused.stderr and "not been reviewed on this machine" in refused.stderr
    assert "print('PWNED', args.name)" in refused.stderr  # what would run was shown in full
    sm.fast_run(["run", "greet", "name=x"])
    assert refused.execs == []  # nothing was cached for the fast path either

    trusted = invoke("run", "greet", "name=x", "--yes")
    assert trusted.exit_code == 0, trusted.output
    assert "PWNED" in open(script_of(trusted.execs[-1])).read()
    again = invoke("run", "greet", "name=x")  # accepted on this machine: no question any more
    assert again.exit_code == 0 and len(again.execs) == 2
    assert sm.is_accepted(sm.lookup("greet"))


def test_trust_is_not_synced_to_other_machines(swapped, invoke, github_env, sm_env, tmp_path, monkeypatch):
    assert invoke("run", "greet", "name=x", "--yes").exit_code == 0
    assert "accepted" not in github_env.gist_files(sm.read_sync_state()["gist_id"])["sm-mapping.json"]
    monkeypatch.setenv("SM_HOME", str(tmp_path / "other-machine"))
    assert invoke("sync").exit_code == 0
    elsewhere = invoke("run", "greet", "name=x")
    assert elsewhere.exit_code == 1 and "not been reviewed on this machine" in elsewhere.stderr


def test_swapped_pin_shows_the_whole_code_for_latest_and_rev(swapped, invoke, github_env):
    github_env.external_edit(swapped, "greet.py", script_code("print('PWNED AGAIN', args.name)", ["name"]))
    for args in (["--latest"], ["--rev", github_env.revisions(swapped)[0]]):
        result = invoke("run", "greet", "name=x", *args)
        assert result.exit_code == 1 and result.execs == []
        # the pinned code was never reviewed here: a diff against it would hide what both revisions share
        assert "Not your gist: mallory can change it" in result.stderr
        assert "\n print('PWNED'" not in result.stderr and "print('PWNED AGAIN', args.name)" in result.stderr


def test_show_of_a_swapped_pin_caches_nothing_runnable(swapped, invoke):
    shown = invoke("show", "greet")
    assert shown.exit_code == 0 and "PWNED" in shown.stdout
    assert sm.verified_cache(sm.lookup("greet")) is None
    assert invoke("run", "greet", "name=x").exit_code == 1


def test_own_edit_from_another_machine_runs_without_questions(created, github_env, invoke):
    new = script_code("print('V2', args.name)", ["name"])
    head = github_env.external_edit(created["gist_id"], "greet.py", new)
    push_remote_entry(github_env, "greet", revision=head, sha256=sm.sha256_text(new))
    assert invoke("sync").exit_code == 0
    result = invoke("run", "greet", "name=x")
    assert result.exit_code == 0, result.output
    assert "V2" in open(script_of(result.execs[-1])).read()
    assert sm.read_sync_state()["login"] == "alice"  # asked once, then remembered


def test_every_way_of_accepting_code_records_it(created, github_env, invoke, llm, tmp_path):
    assert sm.is_accepted(created)  # create
    llm.queue(reply('print(f"hi {args.name}")', ["name"]))
    assert invoke("edit", "greet", "say hi").exit_code == 0
    assert sm.is_accepted(sm.lookup("greet"))  # edit
    bobs = github_env.create_gist_direct("bob", {"b.py": script_code("print(args.x)", ["x"])})
    assert invoke("add", "b", bobs, "--yes").exit_code == 0
    assert sm.is_accepted(sm.lookup("b"))  # add a gist
    local = tmp_path / "l.py"
    local.write_text(script_code("print(args.x)", ["x"]))
    assert invoke("add", "l", str(local)).exit_code == 0
    assert sm.is_accepted(sm.lookup("l"))  # add a file
    head = github_env.external_edit(bobs, "b.py", script_code("print('B2', args.x)", ["x"]))
    assert invoke("run", "b", "x=1", "--latest", "--yes").exit_code == 0
    assert sm.lookup("b")["revision"] == head and sm.is_accepted(sm.lookup("b"))  # --latest
    first = github_env.revisions(bobs)[-1]
    assert invoke("run", "b", "x=1", "--rev", first, "--yes").exit_code == 0
    assert sm.is_accepted(
        {**sm.lookup("b"), "revision": first, "sha256": sm.sha256_text(script_code("print(args.x)", ["x"]))}
    )
    carols = github_env.create_gist_direct("carol", {"c.py": script_code("print(2)")})
    result = invoke("run", carols, "--yes")
    assert result.exit_code == 0
    code = open(script_of(result.execs[-1])).read()
    assert f"{carols}/{github_env.revisions(carols)[0]}/{sm.sha256_text(code)}" in sm.accepted_pins()  # run GIST
    greet = sm.lookup("greet")
    assert invoke("rollback", "greet", created["revision"], "--yes").exit_code == 0
    assert sm.is_accepted(sm.lookup("greet")) and sm.lookup("greet")["revision"] != greet["revision"]  # rollback
    assert stat.S_IMODE(sm.trust_record_path().stat().st_mode) == 0o600


# -- private at rest --------------------------------------------------------------------------------


def assert_private(home):
    loose = {
        str(p.relative_to(home)): oct(stat.S_IMODE(p.lstat().st_mode))
        for p in [home, *home.rglob("*")]
        if "venvs" not in p.relative_to(home).parts
        and stat.S_IMODE(p.lstat().st_mode) != (0o700 if p.is_dir() else 0o600)
    }
    assert loose == {}


def test_everything_in_sm_home_is_private(created, github_env, invoke, llm, sm_env, tmp_path):
    assert_private(sm_env)
    assert invoke("run", "greet", "name=x").exit_code == 0
    assert invoke("sync").exit_code == 0
    local = tmp_path / "w.py"
    local.write_text(script_code("print(args.city)", ["city"]))
    assert invoke("add", "w", str(local)).exit_code == 0
    assert invoke("run", "w", "city=x", "--latest").exit_code == 0
    bobs = github_env.create_gist_direct("bob", {"b.py": script_code("print(1)")})
    assert invoke("add", "b", bobs, "--yes").exit_code == 0
    assert invoke("run", bobs, "--yes").exit_code == 0
    assert invoke("rm", "w").exit_code == 0
    llm.queue(reply("print(args.name)", ["name"]))
    assert invoke("create", "greet", "Greet {{name}}", "--force").exit_code == 0  # warns: the old gist is kept
    llm.queue(reply(f'KEY = "{LEAKED}"\nprint(args.name, KEY)', ["name"]))
    assert invoke("create", "leaky", "Greet {{name}}", "--public").exit_code == 1  # the draft is kept
    for name in ("sm.log", "mapping.json", "mapping.json.bak", "sync.json", "trusted.json", "drafts/leaky.py"):
        assert (sm_env / name).exists(), name
    assert_private(sm_env)


def test_a_loose_sm_home_is_tightened(github_env, invoke, sm_env):
    sm_env.mkdir()
    os.chmod(sm_env, 0o755)
    assert invoke("sync").exit_code == 0
    assert stat.S_IMODE(sm_env.stat().st_mode) == 0o700


def test_files_are_never_written_through_a_symlink(sm_env, tmp_path):
    sm.write_mapping(sm.empty_mapping())
    target = tmp_path / "bashrc"
    target.write_text("mine")
    (sm_env / "mapping.json.bak").symlink_to(target)
    (sm_env / "sm.log").symlink_to(target)
    sm.write_mapping(sm.empty_mapping())
    sm.setup_logging(False)
    sm.log.warning("a warning for the log")
    assert target.read_text() == "mine"
    assert not (sm_env / "mapping.json.bak").is_symlink() and (sm_env / "mapping.json.bak").stat().st_mode & 0o077 == 0


def test_a_cache_file_others_can_write_is_fetched_again(created, github_env, invoke):
    path = sm.cached_path(created)
    path.chmod(0o666)
    assert sm.verified_cache(created) is None
    assert invoke("run", "greet", "name=x").exit_code == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and sm.verified_cache(created)


# -- everything uploaded or sent is scanned ---------------------------------------------------------


def test_public_add_refuses_a_token_in_the_description(github_env, invoke, local_script):
    result = invoke("add", "w", str(local_script), "--public", "-d", f"uses {LEAKED}")
    assert result.exit_code == 1
    assert "Refusing to upload the description to a public gist: it contains a GitHub token" in result.stderr
    assert LEAKED not in result.output and github_env.count("POST", "/gists") == 0


def test_public_add_refuses_a_token_in_the_file_name(github_env, invoke, local_script):
    result = invoke("add", LEAKED, str(local_script), "--public")
    assert result.exit_code == 1 and "Refusing to upload a file name to a public gist" in result.stderr
    assert LEAKED not in result.output and github_env.count("POST", "/gists") == 0


def test_secret_gist_with_a_token_in_the_description_only_warns(github_env, invoke, local_script):
    result = invoke("add", "w", str(local_script), "-d", f"uses {LEAKED}")
    assert result.exit_code == 0 and "the description contains a GitHub token" in result.stderr


def test_public_create_and_edit_refuse_a_token_in_the_description(github_env, llm, invoke, sm_env):
    llm.queue(reply("print(args.name)", ["name"]))
    # the description is stamped into the code's [tool.sm] table too, so either scan may find it first
    refused = invoke("create", "pub", "Echo {{name}}", "--public", "-d", f"token {LEAKED}")
    assert refused.exit_code == 1 and "Refusing to upload" in refused.stderr and LEAKED not in refused.output
    assert (sm_env / "drafts" / "pub.py").exists() and github_env.count("POST", "/gists") == 0
    llm.queue(reply("print(args.name)", ["name"]))
    assert invoke("create", "pub", "Echo {{name}}", "--public").exit_code == 0
    gist_id = sm.lookup("pub")["gist_id"]
    llm.queue(reply("print(args.name, args.name)", ["name"], description=f"prints {LEAKED}"))
    edited = invoke("edit", "pub", "print it twice")
    assert edited.exit_code == 1 and "Refusing to upload" in edited.stderr and LEAKED not in edited.output
    assert len(github_env.revisions(gist_id)) == 1


def test_a_prompt_holding_a_secret_is_not_sent_without_yes(github_env, llm, invoke):
    refused = invoke("create", "x", f"List my gists with the token {LEAKED}")
    assert refused.exit_code == 1
    assert "The prompt contains a GitHub token (line 1), so it was not sent to the model" in refused.stderr
    assert "--yes" in refused.stderr and LEAKED not in refused.output
    assert llm.requests == [] and github_env.requests == []
    llm.queue(reply("print(1)"))
    sent = invoke("create", "x", f"List my gists with the token {LEAKED}", "--yes")
    assert sent.exit_code == 0, sent.output and len(llm.requests) == 1


def test_a_prompt_holding_a_secret_is_asked_about_on_a_terminal(github_env, llm, invoke, monkeypatch):
    monkeypatch.setattr(sm, "interactive", lambda: True)
    declined = invoke("create", "x", f"use {LEAKED}", input="n\n")
    assert declined.exit_code == 1 and "Send it to the model anyway?" in declined.stderr
    assert llm.requests == []


def test_edit_and_review_changes_are_scanned_too(created, llm, invoke):
    refused = invoke("edit", "greet", f"authenticate with {LEAKED}")
    assert refused.exit_code == 1 and "not sent to the model" in refused.stderr and llm.requests[1:] == []
    llm.queue(reply('print(f"hi {args.name}")', ["name"]))
    review = invoke("edit", "greet", "say hi", "--preview", input=f"also use {LEAKED}\n\n")
    assert review.exit_code == 0, review.output
    assert "not sent to the model" in review.stderr and len(llm.requests) == 2  # the change request stayed here


@pytest.mark.parametrize(
    "code",
    [
        'T = ("ghp_' + "A" * 20 + '"\n     "' + "B" * 20 + '")',
        'T = "ghp_' + "A" * 20 + '" + \\\n    "' + "B" * 20 + '"',
        "T = 'sk-ant-api03-" + "x" * 15 + "'\n    '" + "y" * 20 + "'",
    ],
)
def test_tokens_split_across_string_literals_are_found(code):
    hits = sm.find_secrets(f"import os\n\n{code}\nprint(1)\n")
    assert len(hits) == 1 and hits[0][1] == 3


@pytest.mark.parametrize(
    "code",
    [
        'aws_access_key_id = "AKIAIOSFODNN7EXAMPLE"',
        'aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"',
        'if text.startswith("-----BEGIN RSA PRIVATE KEY-----"):',
        'MARKER = "-----BEGIN OPENSSH PRIVATE KEY-----"\nEND = "-----END OPENSSH PRIVATE KEY-----"',
        'a = ""\nb = ""',
    ],
)
def test_documented_examples_and_bare_markers_are_not_secrets(code):
    assert sm.find_secrets(code) == []
    sm.check_upload({"x.py": code}, "AWS example AKIAIOSFODNN7EXAMPLE", public=True)


# -- https only -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://api.github.com", True),
        ("https://ghe.example.com/api/v3", True),
        ("http://127.0.0.1:8000", True),
        ("http://127.3.4.5", True),
        ("http://[::1]:8080/api", True),
        ("http://localhost:9", True),
        ("http://LOCALHOST", True),
        ("http://api.github.com", False),
        ("http://ghe.example.com/api/v3", False),
        ("http://localhost.example.com", False),
        ("http://127.0.0.1.example.com", False),
        ("http://10.0.0.1", False),
        ("http://[::2]", False),
    ],
)
def test_api_url_is_https_or_loopback(url, allowed, monkeypatch):
    monkeypatch.setenv("SM_GITHUB_API_URL", url)
    if not allowed:
        with pytest.raises(sm.ConfigError, match="must use https://.*clear text"):
            sm.api_url()
        monkeypatch.setenv("SM_ALLOW_HTTP", "1")  # said explicitly
    assert sm.api_url() == url


def test_plain_http_is_refused_before_any_request(invoke, monkeypatch):
    monkeypatch.setenv("GITHUB_PAT", TOKEN)
    monkeypatch.setenv("SM_GITHUB_API_URL", "http://ghe.example.com/api/v3")
    sent = []
    monkeypatch.setattr(httpx2.Client, "request", lambda *a, **k: sent.append(a))
    result = invoke("sync")
    assert result.exit_code == 1 and "must use https://" in result.stderr and sent == []


def test_doctor_says_which_transport(github_env, invoke, monkeypatch):
    report = {c["check"]: c for c in json.loads(invoke("doctor", "--json").stdout)["checks"]}
    assert report["API"]["status"] == "ok" and "plain http, allowed for a loopback host" in report["API"]["detail"]
    # no token below: doctor sends nothing to these hosts
    monkeypatch.delenv("GITHUB_PAT")
    monkeypatch.setenv("SM_GITHUB_API_URL", "http://ghe.example.com/api/v3")
    report = {c["check"]: c for c in json.loads(invoke("doctor", "--json").stdout)["checks"]}
    assert report["API"]["status"] == "fail" and "must use https://" in report["API"]["detail"]
    monkeypatch.setenv("SM_ALLOW_HTTP", "1")
    report = {c["check"]: c for c in json.loads(invoke("doctor", "--json").stdout)["checks"]}
    assert report["API"]["status"] == "warn" and "allowed by SM_ALLOW_HTTP=1" in report["API"]["detail"]
    monkeypatch.setenv("SM_GITHUB_API_URL", "https://ghe.example.com/api/v3")
    report = {c["check"]: c for c in json.loads(invoke("doctor", "--json").stdout)["checks"]}
    assert report["API"] == {
        "check": "API",
        "status": "ok",
        "detail": "https://ghe.example.com/api/v3 (https)",
        "fix": None,
    }


# -- lesser findings --------------------------------------------------------------------------------


@pytest.mark.parametrize("dep", ["--index-url=https://evil.example", "-e .", "six\n--pre", "", "six; \x1b[2K"])
def test_pip_fallback_refuses_what_is_not_a_requirement(dep, tmp_path):
    with pytest.raises(sm.ValidationFailed, match="not a PEP 508 requirement"):
        sm.ensure_venv(tmp_path / "venv", ["six", dep])
    assert not (tmp_path / "venv").exists()


def test_pip_fallback_passes_requirements_after_double_dash(tmp_path):
    deps = ["six", "requests[socks]>=2.31,<3", 'tomli; python_version < "3.11"', "pkg @ https://example.org/p.whl"]
    cmd = sm.pip_install_command(tmp_path / "python", deps)
    assert cmd[cmd.index("--") + 1 :] == deps and cmd.index("--") > cmd.index("install")


def test_completion_quotes_what_came_through_sync(sm_env):
    entry = {
        "script_name": "a;touch pwned",
        "gist_id": "a" * 32,
        "filename": "a.py",
        "revision": "b" * 40,
        "sha256": "c" * 64,
        "description": "line one\nline\x1b[2K two",
        "params": [{"name": "x;id", "help": "evil\nhelp"}, {"name": "city"}],
    }
    good = {**entry, "script_name": "good", "params": [{"name": "city"}, {"name": "max_n", "help": "evil\nhelp"}]}
    # a parameter name that is not a plain name quarantines its entry: it never reaches completion at all
    assert sm.entry_problem("bad", {**entry, "script_name": "bad"}) == "params is not a list of parameters"
    sm_env.mkdir()
    (sm_env / "mapping.json").write_text(
        json.dumps({"version": 1, "scripts": {"a;touch pwned": entry, "good": good}, "tombstones": {}})
    )
    names = {i.value: i.help for i in sm.complete_script_names(None, None, "")}
    assert "a;touch pwned" not in names and names.get("good") == "line one line [2K two"
    assert set(names) <= {"'a;touch pwned'", "good"}

    class Ctx:
        params = {"name": "good", "args": ()}

    args = {i.value: i.help for i in sm.complete_run_args(Ctx, None, "")}
    assert args == {"max_n=": "evil help", "city=": None}


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


def test_edit_cannot_put_a_secret_into_a_public_gist(github_env, llm, invoke, sm_env):
    llm.queue(reply("print(args.name)", ["name"]))
    assert invoke("create", "pub", "Echo {{name}}", "--public").exit_code == 0
    entry = sm.lookup("pub")
    llm.queue(reply(f"{LEAKY}print(args.name, KEY)", ["name"]))
    result = invoke("edit", "pub", "also print the key")
    assert result.exit_code == 1
    assert "Refusing to upload pub.py to a public gist" in result.stderr
    assert len(github_env.revisions(entry["gist_id"])) == 1
    assert "ghp_" not in github_env.gist_files(entry["gist_id"])["pub.py"]
    assert (sm_env / "drafts" / "pub.py").exists()


GH_TOKEN = "ghp_" + "A1b2C3d4" * 5  # built up, so that this file itself holds nothing token-shaped


PAT = "github_pat_" + "11ABCDEFG0" * 3 + "_" + "x" * 59


OPENAI = "sk-proj-" + "Ab3_-" * 12


OPENAI_LEGACY = "sk-" + "T3BlbkFJ" * 6


ANTHROPIC = "sk-ant-api03-" + "Zz9_" * 20


AWS_ID = "AKIA" + "Q7XZ4R2N6M8P3K5W"  # not AWS's documented example keys: those are no secret (see test_security)


AWS_SECRET = "Zq8/Lm3+Rt7Vw2Xy" + "Kp4Hn6Jb1Cd5Fg9Ts0Ue2Wa7"


PRIVATE_KEY = (
    "-----BEGIN "
    + "OPENSSH PRIVATE KEY-----\n"
    + "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ" * 2
    + "\n-----END OPENSSH PRIVATE KEY-----"
)


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        (f'TOKEN = "{GH_TOKEN}"', "a GitHub token"),
        (f"token = '{PAT}'", "a GitHub token"),
        (f'client = OpenAI(api_key="{OPENAI}")', "an OpenAI API key"),
        (f"key = {OPENAI_LEGACY!r}", "an OpenAI API key"),
        (f'os.environ["ANTHROPIC_API_KEY"] = "{ANTHROPIC}"', "an Anthropic API key"),
        (f'aws_access_key_id = "{AWS_ID}"', "an AWS access key ID"),
        (f'aws_secret_access_key = "{AWS_SECRET}"', "an AWS secret access key"),
        (f'KEY = """{PRIVATE_KEY}"""', "a private key"),
        (f'KEY = """{PRIVATE_KEY.replace("OPENSSH ", "RSA ")}"""', "a private key"),
    ],
)
def test_find_secrets(line, kind):
    code = f"import os\n\n{line}\nprint('ok')\n"
    assert sm.find_secrets(code) == [(kind, 3)]


@pytest.mark.parametrize(
    "code",
    [
        'token = os.environ["GITHUB_PAT"]  # e.g. ghp_...',
        "import sklearn  # pip install scikit-learn; sk-learn-compatible-estimators-everywhere",
        'task = "risk-assessment-0123456789abcdefghijkl"',
        'print("-----BEGIN PUBLIC KEY-----")',
        "# see https://github.com/settings/tokens",
    ],
)
def test_find_secrets_ignores_lookalikes(code):
    assert sm.find_secrets(code) == []


def test_sm_itself_holds_no_secrets():
    assert sm.find_secrets((ROOT / "sm.py").read_text()) == []


def test_check_secrets_refuses_public_and_warns_secret(caplog):
    code = f'KEY = "{GH_TOKEN}"\n'
    with pytest.raises(
        sm.ValidationFailed, match=r"Refusing to upload x.py to a public gist: it contains a GitHub token \(line 1\)"
    ):
        sm.check_secrets(code, "x.py", public=True)
    with caplog.at_level("WARNING", logger="sm"):
        sm.check_secrets(code, "x.py", public=False)
    assert "x.py contains a GitHub token (line 1)" in caplog.text
    assert GH_TOKEN not in caplog.text


def test_redact_masks_known_values_token_shapes_and_what_the_upload_scan_finds(monkeypatch):
    """Every error message and log line goes through redact()."""
    monkeypatch.setenv("GITHUB_TOKEN", "plain-looking-secret-value")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-short")
    sm.KNOWN_SECRETS.add("from-gh-auth-token-1234")
    text = f"a plain-looking-secret-value b sk-short c from-gh-auth-token-1234 d {GH_TOKEN} e {PAT} f {OPENAI} g"
    assert sm.redact(text) == "a *** b *** c *** d *** e *** f *** g"
    assert sm.redact("nothing to hide: ghp_, sk-learn") == "nothing to hide: ghp_, sk-learn"
    scanned = sm.redact(f"key {AWS_ID} and {PRIVATE_KEY}")  # the upload scan's patterns
    assert scanned.startswith("key *** and ***") and AWS_ID not in scanned and "b3BlbnNzaC1rZXkt" not in scanned
    sm.setup_logging(verbose=False)  # and the log's filter applies it to every record
    record = logging.LogRecord("sm", logging.WARNING, __file__, 1, "token %s here", (GH_TOKEN,), None)
    for handler in sm.log.handlers:
        for f in handler.filters:
            (f.filter if hasattr(f, "filter") else f)(record)
    assert record.getMessage() == "token *** here"
