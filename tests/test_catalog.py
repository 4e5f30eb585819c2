"""Catalogs (issue 13, part 1): bob publishes his scripts' pins, alice subscribes and runs them as ALIAS/NAME,
each on the loopback fake GitHub with their own token and SM_HOME."""

from __future__ import annotations

import json
import stat

import pytest
from click.testing import CliRunner
from conftest import TOKEN, add, script_code

import sm

BOB_TOKEN = "ghp_" + "b" * 36


@pytest.fixture
def users(github_env, monkeypatch, tmp_path):
    """Switch between alice and bob: each has a token and an SM_HOME of their own; returns their GitHub client."""
    github_env.add_token(BOB_TOKEN, login="bob")
    tokens = {"alice": TOKEN, "bob": BOB_TOKEN}

    def use(login):
        monkeypatch.setenv("SM_HOME", str(tmp_path / f"home-{login}"))
        monkeypatch.setenv("GITHUB_PAT", tokens[login])
        monkeypatch.setattr(sm, "_warned", set())
        return sm.GitHub(tokens[login])

    return use


def catalog_of(github_env, gist_id):
    return json.loads(github_env.gist_files(gist_id)[sm.CATALOG_FILE])


@pytest.fixture
def published(users, invoke, github_env):
    """bob's scripts hello and bye, published in his catalog; returns the catalog's gist id."""
    gh = users("bob")
    add(gh, "hello", "print('hello')")
    add(gh, "bye", "print('bye')")
    result = invoke("catalog", "publish")
    assert result.exit_code == 0, result.output
    return json.loads((sm.sm_home() / "catalog.json").read_text())["gist_id"]


def test_publish_writes_one_secret_catalog_of_the_pins_and_updates_it(published, invoke, github_env):
    gist = github_env.gists[published]
    assert gist["public"] is False
    catalog = catalog_of(github_env, published)
    hello = sm.lookup("hello")
    assert sorted(catalog["scripts"]) == ["bye", "hello"]
    assert catalog["scripts"]["hello"] == {f: hello[f] for f in sm.CATALOG_FIELDS}
    assert stat.S_IMODE((sm.sm_home() / "catalog.json").stat().st_mode) == 0o600

    again = invoke("catalog", "publish", "hello", "--json")
    assert again.exit_code == 0, again.output
    data = json.loads(again.stdout)
    assert data["gist_id"] == published and data["scripts"] == ["hello"]
    assert sorted(catalog_of(github_env, published)["scripts"]) == ["hello"]
    catalogs = [g for g in github_env.gists if sm.CATALOG_FILE in github_env.gist_files(g)]
    assert catalogs == [published]


def test_publish_prints_the_catalog_url(users, invoke, github_env):
    add(users("bob"), "hello")
    result = invoke("catalog", "publish")
    assert result.exit_code == 0, result.output
    gist_id = json.loads((sm.sm_home() / "catalog.json").read_text())["gist_id"]
    assert result.stdout == f"https://gist.github.com/{gist_id}\n"


def test_publish_scans_what_goes_in_for_secrets(users, invoke, github_env):
    gh = users("bob")
    entry = add(gh, "hello")
    sm.put_entry(sm.make_entry(entry, description="token ghp_" + "x" * 36))
    public = invoke("catalog", "publish", "--public")
    assert public.exit_code != 0 and "GitHub token" in public.stderr
    assert not any(sm.CATALOG_FILE in github_env.gist_files(g) for g in github_env.gists)
    secret = invoke("catalog", "publish")  # a secret gist: warned, as for any upload
    assert secret.exit_code == 0 and "contains a GitHub token" in secret.stderr


def test_publish_of_an_unknown_name_fails_in_one_line(users, invoke, github_env):
    add(users("bob"), "hello")
    result = invoke("catalog", "publish", "nope")
    assert result.exit_code != 0 and "nope" in result.stderr and "Traceback" not in result.output


def test_subscribe_list_and_unsubscribe(published, users, invoke, github_env):
    users("alice")
    result = invoke("catalog", "add", "team", f"https://gist.github.com/bob/{published}")
    assert result.exit_code == 0, result.output
    assert sm.read_mapping()["catalogs"] == {"team": published}
    listed = invoke("catalog", "list")
    assert listed.stdout == f"team\t{published}\n"
    assert json.loads(invoke("catalog", "list", "--json").stdout) == {"team": published}
    # recorded in the mapping gist: another machine of alice's has it after a sync
    remote = sm.remote_mapping(sm.github())
    assert remote["catalogs"] == {"team": published}

    gone = invoke("catalog", "rm", "team")
    assert gone.exit_code == 0, gone.output
    assert invoke("catalog", "list").stdout == ""
    again = invoke("catalog", "rm", "team")
    assert again.exit_code == 2 and "No catalog named 'team'" in again.stderr


def test_subscribe_refuses_a_bad_alias_and_a_gist_that_is_no_catalog(published, users, invoke, github_env, bobs_gist):
    users("alice")
    bad = invoke("catalog", "add", "a/b", published)
    assert bad.exit_code == 2 and "Invalid script name" in bad.stderr
    no_catalog = invoke("catalog", "add", "team", bobs_gist)
    assert no_catalog.exit_code == 1 and "is not an sm catalog" in no_catalog.stderr
    assert "catalogs" not in sm.read_mapping()


def test_a_malformed_catalog_entry_refuses_the_catalog(published, users, invoke, github_env):
    catalog = catalog_of(github_env, published)
    catalog["scripts"]["hello"]["gist_id"] = "../../etc"
    gh = users("bob")
    gh.update_gist(published, {sm.CATALOG_FILE: json.dumps(catalog)})
    users("alice")
    result = invoke("catalog", "add", "team", published)
    assert result.exit_code == 1 and "its entry 'hello' is malformed" in result.stderr


def test_malformed_subscriptions_in_the_mapping_are_ignored(users, tmp_path):
    data = {"catalogs": {"ok": "a" * 32, "bad/alias": "a" * 32, "bad": "../x", "num": 3}}
    assert sm.subscriptions(data) == {"ok": "a" * 32}
    assert sm.subscriptions({"catalogs": ["x"]}) == {}


def test_a_malformed_subscription_is_named_once_and_can_be_removed(users, invoke):
    """A hand-edited `catalogs` is not ignored in silence: each bad one is named, with the way out, which works."""
    with sm.locked_mapping() as data:
        data["catalogs"] = {"ok": "a" * 32, "bad": "../x"}
    result = invoke("catalog", "list")
    assert result.exit_code == 0, result.output
    assert result.stderr.count("Ignoring the catalog 'bad'") == 1 and "sm catalog rm ALIAS" in result.stderr
    assert invoke("catalog", "rm", "bad").exit_code == 0
    assert sm.read_mapping()["catalogs"] == {"ok": "a" * 32}
    with sm.locked_mapping() as data:
        data["catalogs"] = ["not", "an", "object"]
    assert "`catalogs` is not an object" in invoke("catalog", "list").stderr


# ── sm run ALIAS/NAME ─────────────────────────────────────────────────────────────────────────────────


@pytest.fixture
def subscribed(published, users, invoke):
    """alice, subscribed to bob's catalog as `team`."""
    users("alice")
    assert invoke("catalog", "add", "team", published).exit_code == 0
    return published


def ran_code(result):
    """The code of the file `sm run` handed to uv."""
    (path,) = [a for a in result.execs[-1] if a.endswith(".py")]
    return open(path).read()


def bob_edits_hello(users, invoke, body):
    """bob changes hello on GitHub, pins it in his mapping and publishes his catalog again."""
    gh = users("bob")
    gh.update_gist(sm.lookup("hello")["gist_id"], {"hello.py": script_code(body)})
    assert invoke("run", "hello", "--latest", "--yes").exit_code == 0
    assert invoke("catalog", "publish").exit_code == 0
    users("alice")


def test_first_run_asks_then_stays_pinned_while_the_catalog_moves(subscribed, users, invoke, github_env):
    refused = invoke("run", "team/hello")
    assert refused.exit_code != 0 and not refused.execs
    assert "not a terminal: rerun with --yes" in refused.stderr
    assert "by bob" in refused.stderr and "Dependencies: none" in refused.stderr and "print('hello')" in refused.stderr

    first = invoke("run", "team/hello", "--yes")
    assert first.exit_code == 0, first.output
    assert "print('hello')" in ran_code(first)
    again = invoke("run", "team/hello")  # trusted on this machine: no question
    assert again.exit_code == 0 and "Trust" not in again.stderr and len(again.execs) == 2

    bob_edits_hello(users, invoke, "print('hello v2')")
    pinned = invoke("run", "team/hello")
    assert pinned.exit_code == 0, pinned.output
    assert "print('hello')" in ran_code(pinned) and "v2" not in ran_code(pinned)

    asked = invoke("run", "team/hello", "--latest")
    assert asked.exit_code != 0 and "not a terminal" in asked.stderr and "+print('hello v2')" in asked.stderr
    assert "still runs the pinned revision" in asked.stderr
    moved = invoke("run", "team/hello", "--latest", "--yes")
    assert moved.exit_code == 0, moved.output
    assert "print('hello v2')" in ran_code(moved) and "now pinned" in moved.stderr
    after = invoke("run", "team/hello")
    assert after.exit_code == 0 and "print('hello v2')" in ran_code(after)


def test_a_trusted_catalog_script_runs_on_the_fast_path_until_its_pin_moves(subscribed, users, invoke, github_env):
    """Once trusted here, ALIAS/NAME runs like one of your own scripts: from a run record, before click. Accepting
    another revision (--latest) makes that record stale at once."""
    assert invoke("run", "team/hello", "--yes").exit_code == 0
    execs = invoke("run", "team/hello").execs  # the pinned run writes the record
    assert sm.read_run_record("team/hello") is not None
    sm.fast_run(["run", "team/hello"])
    assert len(execs) == 3 and "print('hello')" in open(execs[-1][-1]).read()

    bob_edits_hello(users, invoke, "print('hello v2')")
    assert invoke("run", "team/hello", "--latest", "--yes").exit_code == 0
    before = len(execs)
    sm.fast_run(["run", "team/hello"])  # the record of the old pin no longer holds: the full CLI's turn
    assert len(execs) == before
    assert invoke("run", "team/hello").exit_code == 0
    sm.fast_run(["run", "team/hello"])
    assert len(execs) == before + 2 and "print('hello v2')" in open(execs[-1][-1]).read()
    assert sm.run_record_path("team%hello") is None and sm.run_record_path("a/b/c") is None


def test_the_pin_is_per_machine(subscribed, users, invoke, monkeypatch, tmp_path):
    assert invoke("run", "team/hello", "--yes").exit_code == 0
    monkeypatch.setenv("SM_HOME", str(tmp_path / "alice-laptop"))  # alice's other machine: synced, not trusted
    assert invoke("sync").exit_code == 0
    refused = invoke("run", "team/hello")
    assert refused.exit_code != 0 and "not a terminal" in refused.stderr and len(refused.execs) == 1


def test_a_tampered_catalog_is_refused(subscribed, users, invoke, github_env):
    catalog = catalog_of(github_env, subscribed)
    catalog["scripts"]["bye"]["sha256"] = "0" * 64
    users("bob").update_gist(subscribed, {sm.CATALOG_FILE: json.dumps(catalog)})
    users("alice")
    result = invoke("run", "team/bye", "--yes")
    assert result.exit_code == 1 and not result.execs
    assert "does not match the sha256 the catalog team lists" in result.stderr


def test_a_name_the_catalog_does_not_list(subscribed, invoke):
    result = invoke("run", "team/nope")
    assert result.exit_code == 2 and "it lists team/bye, team/hello" in result.stderr


def test_list_all_shows_catalog_scripts_as_alias_slash_name(subscribed, users, invoke):
    add(users("alice"), "mine")
    plain = invoke("list")
    assert [line.split("\t")[0] for line in plain.stdout.splitlines()] == ["mine"]
    everything = invoke("list", "--all")
    assert [line.split("\t")[0] for line in everything.stdout.splitlines()] == ["mine", "team/bye", "team/hello"]
    rows = json.loads(invoke("list", "--all", "--json").stdout)
    assert [r["script_name"] for r in rows] == ["mine", "team/bye", "team/hello"]
    assert rows[2]["catalog"] == "team" and rows[0].get("catalog") is None


def test_list_all_shows_the_pin_accepted_here(subscribed, users, invoke):
    assert invoke("run", "team/hello", "--yes").exit_code == 0
    pinned = json.loads(invoke("list", "--all", "--json").stdout)[-1]["revision"]
    bob_edits_hello(users, invoke, "print('hello v2')")
    rows = json.loads(invoke("list", "--all", "--json").stdout)
    assert rows[-1]["script_name"] == "team/hello" and rows[-1]["revision"] == pinned


def test_show_prints_the_pinned_code_of_a_catalog_script(subscribed, users, invoke):
    shown = invoke("show", "team/hello")
    assert shown.exit_code == 0, shown.output
    assert "print('hello')" in shown.stdout
    assert invoke("run", "team/hello", "--yes").exit_code == 0
    bob_edits_hello(users, invoke, "print('hello v2')")
    after = invoke("show", "team/hello", "--json")
    assert after.exit_code == 0 and "print('hello')" in json.loads(after.stdout)["code"]
    rev = invoke("show", "team/hello", "--rev", "abcd")
    assert rev.exit_code == 2 and "--rev is not for a catalog's script" in rev.stderr


def complete(cli, words):
    env = {"_SM_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(len(words.split(" ")) - 1)}
    result = CliRunner().invoke(cli, [], env=env, prog_name="sm")
    return [line.partition(",")[2] for line in result.stdout.splitlines() if line]


def test_completion_and_help_know_catalog_scripts_without_asking_github(users, invoke, cli, github_env):
    gh = users("bob")
    code = script_code("print(args.who)", ["who"])
    entry = sm.upload_new(gh, "greet", code, "greets", public=False, created=sm.now_iso())
    sm.put_entry(sm.make_entry(entry, params=[{"name": "who", "help": "whom to greet"}]))
    assert invoke("catalog", "publish").exit_code == 0
    catalog_id = json.loads((sm.sm_home() / "catalog.json").read_text())["gist_id"]
    users("alice")
    assert invoke("catalog", "add", "team", catalog_id).exit_code == 0
    asked = len(github_env.requests)
    assert complete(cli, "sm run te") == ["team/greet"]
    assert complete(cli, "sm show team/") == ["team/greet"]
    assert complete(cli, "sm rm team/") == []  # your own scripts only
    assert complete(cli, "sm run team/greet ") == ["who="]
    helped = invoke("run", "team/greet", "-h")
    assert helped.exit_code == 0 and "who" in helped.stdout
    assert len(github_env.requests) == asked


def test_history_of_a_catalog_script_marks_the_pin(subscribed, users, invoke):
    assert invoke("run", "team/hello", "--yes").exit_code == 0
    bob_edits_hello(users, invoke, "print('hello v2')")
    rows = json.loads(invoke("history", "team/hello", "--json").stdout)
    assert len(rows) == 2 and [r["pinned"] for r in rows] == [False, True]  # newest first; alice's pin is the old one


def test_add_copies_a_catalog_script_into_your_mapping_at_its_pin(subscribed, users, invoke, github_env):
    bobs = catalog_of(github_env, subscribed)["scripts"]["hello"]
    refused = invoke("add", "hi", "team/hello")
    assert refused.exit_code != 0 and "not a terminal" in refused.stderr and "hi" not in sm.read_mapping()["scripts"]
    added = invoke("add", "hi", "team/hello", "--yes")
    assert added.exit_code == 0, added.output
    hi = sm.lookup("hi")
    assert {f: hi[f] for f in ("gist_id", "revision", "sha256", "filename")} == {
        f: bobs[f] for f in ("gist_id", "revision", "sha256", "filename")
    }
    assert hi["owner"] == "bob"
    ran = invoke("run", "hi")
    assert ran.exit_code == 0 and "print('hello')" in ran_code(ran)


@pytest.mark.parametrize("field", ["sha256", "lock_sha256"])
def test_add_refuses_a_catalog_pin_whose_sha256_differs(subscribed, users, invoke, github_env, field):
    catalog = catalog_of(github_env, subscribed)
    assert catalog["scripts"]["hello"]["lock_sha256"]  # the catalog lists the lock too
    catalog["scripts"]["hello"][field] = "0" * 64
    users("bob").update_gist(subscribed, {sm.CATALOG_FILE: json.dumps(catalog)})
    users("alice")
    result = invoke("add", "hi", "team/hello", "--yes")
    assert result.exit_code == 1 and "does not match the sha256 its catalog lists" in result.stderr
    assert "hi" not in sm.read_mapping()["scripts"]


def test_subscriptions_merge_alias_by_alias():
    base = {"catalogs": {"team": "a" * 32, "old": "b" * 32}}
    local = {"catalogs": {"team": "a" * 32, "old": "b" * 32, "ops": "c" * 32}}  # this machine added ops
    remote = {"catalogs": {"team": "a" * 32}}  # another removed old
    assert sm.merge_catalogs(base, local, remote) == {"ops": "c" * 32, "team": "a" * 32}
    clash = sm.merge_catalogs({"catalogs": {}}, {"catalogs": {"x": "a" * 32}}, {"catalogs": {"x": "b" * 32}})
    assert clash == {"x": "a" * 32}  # both added x: this machine's


def test_a_subscription_added_on_one_machine_survives_the_sync_of_another(
    subscribed, users, invoke, monkeypatch, tmp_path
):
    home_a = sm.sm_home()
    monkeypatch.setenv("SM_HOME", str(tmp_path / "alice-laptop"))
    assert invoke("sync").exit_code == 0
    assert invoke("catalog", "list").stdout == f"team\t{subscribed}\n"
    monkeypatch.setenv("SM_HOME", str(home_a))
    assert invoke("catalog", "add", "ops", subscribed).exit_code == 0
    monkeypatch.setenv("SM_HOME", str(tmp_path / "alice-laptop"))
    assert invoke("catalog", "rm", "team").exit_code == 0  # the laptop had not seen ops: it still syncs through
    assert invoke("catalog", "list").stdout == f"ops\t{subscribed}\n"
    monkeypatch.setenv("SM_HOME", str(home_a))
    assert invoke("sync").exit_code == 0
    assert invoke("catalog", "list").stdout == f"ops\t{subscribed}\n"


def test_public_on_an_existing_secret_catalog_says_it_stays_secret(published, invoke, github_env):
    result = invoke("catalog", "publish", "--public")
    assert result.exit_code == 0 and "stays secret" in result.stderr
    assert github_env.gists[published]["public"] is False
    (sm.sm_home() / "catalog.json").unlink()
    fresh = invoke("catalog", "publish", "--public", "--json")
    assert fresh.exit_code == 0 and "stays secret" not in fresh.stderr
    assert github_env.gists[json.loads(fresh.stdout)["gist_id"]]["public"] is True


def test_an_alias_you_do_not_subscribe_to_is_named(github_env, invoke):
    for command in ("run", "show", "history"):
        result = invoke(command, "nope/x")
        assert result.exit_code == 2 and "No catalog is called 'nope': `sm catalog list`" in result.stderr
