"""Catalogs (issue 13, part 1): bob publishes his scripts' pins, alice subscribes and runs them as ALIAS/NAME,
each on the loopback fake GitHub with their own token and SM_HOME."""

from __future__ import annotations

import json
import stat

import pytest
from conftest import TOKEN, add

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
