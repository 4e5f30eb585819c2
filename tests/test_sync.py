"""Mapping sync: the pure merge, the remote mapping gist, conflicts, offline queueing, retries."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from conftest import ROOT, TOKEN, script_code

import sm


def entry(name, updated="2026-01-01T00:00:00.000000Z", revision="r1", **extra):
    return {
        "script_name": name,
        "gist_id": f"g-{name}",
        "filename": f"{name}.py",
        "created_at": updated,
        "updated_at": updated,
        "revision": revision,
        "sha256": "0" * 64,
        "description": "",
        "params": [],
        **extra,
    }


def mapping(*entries, tombstones=None, **extra):
    return {"version": 1, "scripts": {e["script_name"]: e for e in entries}, "tombstones": tombstones or {}, **extra}


T1, T2, T3 = "2026-01-01T00:00:00.000000Z", "2026-02-01T00:00:00.000000Z", "2026-03-01T00:00:00.000000Z"


# -- merge (pure) -----------------------------------------------------------------------------------


def test_merge_keeps_everything_either_side_has():
    merged = sm.merge_mappings(mapping(entry("a")), mapping(entry("b")))
    assert sorted(merged["scripts"]) == ["a", "b"]


def test_merge_newer_updated_at_wins_both_ways():
    old, new = entry("a", T1, description="old"), entry("a", T2, description="new")
    assert sm.merge_mappings(mapping(old), mapping(new))["scripts"]["a"]["description"] == "new"
    assert sm.merge_mappings(mapping(new), mapping(old))["scripts"]["a"]["description"] == "new"


def test_merge_revision_breaks_ties():
    x, y = entry("a", T1, revision="aaa"), entry("a", T1, revision="bbb")
    assert sm.merge_mappings(mapping(x), mapping(y))["scripts"]["a"]["revision"] == "bbb"
    assert sm.merge_mappings(mapping(y), mapping(x))["scripts"]["a"]["revision"] == "bbb"


def test_tombstone_beats_older_entry():
    stone = {"a": {"deleted_at": T2}}
    merged = sm.merge_mappings(mapping(entry("a", T1)), mapping(tombstones=stone))
    assert merged["scripts"] == {} and merged["tombstones"] == stone


def test_tombstone_loses_to_entry_created_after_it():
    stone = {"a": {"deleted_at": T2}}
    merged = sm.merge_mappings(mapping(tombstones=stone), mapping(entry("a", T3)))
    assert "a" in merged["scripts"] and merged["tombstones"] == {}


def test_offline_machine_cannot_resurrect_deleted_script():
    # a machine offline for a year still holds the entry it last saw; the deletion must stick
    stale = mapping(entry("a", T1))
    remote = mapping(tombstones={"a": {"deleted_at": T2}})
    assert sm.merge_mappings(remote, stale)["scripts"] == {}


def test_unknown_fields_survive_and_version_is_kept():
    local = mapping(entry("a", future_entry_field=[1, 2]), settings={"x": 1})
    remote = mapping(entry("b"), version=3, newer_thing="keep me")
    merged = sm.merge_mappings(remote, local)
    assert merged["version"] == 3
    assert merged["newer_thing"] == "keep me" and merged["settings"] == {"x": 1}
    assert merged["scripts"]["a"]["future_entry_field"] == [1, 2]


@pytest.mark.parametrize("seed", range(20))
def test_merge_is_order_independent(seed):
    import random

    rng = random.Random(seed)
    times = [T1, T2, T3]
    sides = []
    for _ in range(3):
        entries = [entry(n, rng.choice(times), rng.choice("xyz")) for n in "abcd" if rng.random() < 0.6]
        stones = {n: {"deleted_at": rng.choice(times)} for n in "abcd" if rng.random() < 0.3}
        sides.append(mapping(*entries, tombstones=stones))
    results = [sm.merge_mappings(*order) for order in (sides, sides[::-1], sides[1:] + sides[:1])]
    assert results[0] == results[1] == results[2]
    assert sm.merge_mappings(results[0], *sides) == results[0]  # idempotent


# -- remote gist --------------------------------------------------------------------------------------


@pytest.fixture
def machine(github_env, monkeypatch, tmp_path):
    """Switch between machines: each has its own SM_HOME, all share one token and one GitHub."""

    def use(name):
        monkeypatch.setenv("SM_HOME", str(tmp_path / f"machine-{name}"))
        return sm.GitHub(TOKEN)

    return use


@pytest.fixture
def sm_log():
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler = Keep(level=logging.DEBUG)
    logger = logging.getLogger("sm")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def add(gh, name, body="print('hi')"):
    """Upload a real script gist and record it, as `sm create` does after generation."""
    code = script_code(body)
    return sm.upload_new(gh, name, code, f"script {name}", public=False, created=sm.now_iso())


def test_first_change_creates_secret_mapping_gist(machine, github_env):
    gh = machine("A")
    add(gh, "one")
    state = sm.read_sync_state()
    gist = github_env.gists[state["gist_id"]]
    assert gist["public"] is False and gist["description"] == "sm script mapping"
    remote = json.loads(github_env.gist_files(state["gist_id"])["sm-mapping.json"])
    assert list(remote["scripts"]) == ["one"]
    assert state["pending"] is False


def test_new_machine_sees_every_script_and_runs_it(machine, github_env, monkeypatch):
    add(machine("A"), "one")
    add(machine("A"), "two", "print(2)")
    machine("B")
    execs = []
    monkeypatch.setattr(sm, "exec_script", execs.append)
    cli = sm.build_cli()
    listed = CliRunner().invoke(cli, ["list", "--json"])
    assert [r["script_name"] for r in json.loads(listed.stdout)] == ["one", "two"]
    ran = CliRunner().invoke(cli, ["run", "two"])
    assert ran.exit_code == 0, ran.output
    assert execs and open(execs[0][3]).read() == script_code("print(2)")


def test_run_of_unknown_name_pulls_once(machine, github_env, monkeypatch):
    machine("B")
    sm.sync(sm.GitHub(TOKEN))  # B knows the mapping gist, but nothing is in it yet
    add(machine("A"), "late")
    machine("B")
    assert sm.lookup("late")["script_name"] == "late"


def test_mapping_gist_found_by_search_across_pages(machine, github_env):
    for i in range(120):
        github_env.create_gist_direct("alice", {f"f{i}.txt": "x"})
    add(machine("A"), "one")
    mapping_id = sm.read_sync_state()["gist_id"]
    machine("B")
    sm.sync(sm.GitHub(TOKEN))
    assert sm.read_sync_state()["gist_id"] == mapping_id
    assert github_env.count("GET", r"/gists") >= 3  # 122 gists at 100 a page, after the first machine's search
    assert "one" in sm.read_mapping()["scripts"]


def test_sm_mapping_gist_env_wins(machine, github_env, monkeypatch):
    chosen = github_env.create_gist_direct("alice", {"sm-mapping.json": json.dumps(mapping(entry("x")))})
    monkeypatch.setenv("SM_MAPPING_GIST", chosen)
    machine("A")
    sm.sync(sm.GitHub(TOKEN))
    assert "x" in sm.read_mapping()["scripts"]
    assert github_env.count("GET", r"/gists") == 0  # no search needed


def test_unchanged_mapping_costs_one_conditional_request(machine, github_env):
    gh = machine("A")
    add(gh, "one")
    sm.sync(gh)  # fetch GitHub's copy once, with its ETag
    before = len(github_env.requests)
    changes = sm.sync(gh)
    new = github_env.requests[before:]
    assert [(r.method, r.status) for r in new] == [("GET", 304)]
    assert changes == {
        "local": {"added": [], "updated": [], "removed": []},
        "remote": {"added": [], "updated": [], "removed": []},
    }


def test_deletion_syncs_as_tombstone(machine, github_env):
    add(machine("A"), "doomed")
    machine("B")
    sm.sync(sm.GitHub(TOKEN))
    assert "doomed" in sm.read_mapping()["scripts"]
    machine("A")
    sm.delete_entry("doomed")
    machine("B")
    changes = sm.sync(sm.GitHub(TOKEN))
    assert changes["local"]["removed"] == ["doomed"]
    assert "doomed" not in sm.read_mapping()["scripts"]
    assert "doomed" in sm.read_mapping()["tombstones"]


def test_sync_command_reports_both_sides(machine, github_env):
    add(machine("A"), "from-a")
    gh = machine("B")
    sm.sync(gh)
    with sm.locked_mapping() as data:
        data["scripts"]["from-b"] = entry("from-b", sm.now_iso())
    result = CliRunner().invoke(sm.build_cli(), ["sync"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["Local: no changes", "GitHub: added from-b"]


def test_corrupt_mapping_recovers_from_remote(machine, github_env, sm_log):
    add(machine("A"), "keep")
    home = sm.sm_home()
    (home / "mapping.json").write_text("{broken")
    result = CliRunner().invoke(sm.build_cli(), ["list"])
    assert result.exit_code == 1 and "sm sync --from-remote" in result.stderr
    result = CliRunner().invoke(sm.build_cli(), ["sync", "--from-remote"])
    assert result.exit_code == 0, result.output
    assert "keep" in sm.read_mapping()["scripts"]
    kept = [p for p in home.iterdir() if p.name.startswith("mapping.json.corrupt-")]
    assert len(kept) == 1 and kept[0].read_text() == "{broken"


def test_large_mapping_is_read_through_raw_url(machine, github_env):
    machine("A")
    with sm.locked_mapping() as data:
        for i in range(5000):
            data["scripts"][f"s{i:04}"] = entry(f"s{i:04}", description="x" * 200)
    sm.sync(sm.GitHub(TOKEN))
    (mapping_gist,) = github_env.gists
    assert len(github_env.gist_files(mapping_gist)["sm-mapping.json"].encode()) > 1_048_576
    machine("B")
    sm.sync(sm.GitHub(TOKEN))
    assert len(sm.read_mapping()["scripts"]) == 5000
    raw = [r for r in github_env.requests if "/raw/" in r.path]
    assert raw and all("authorization" not in r.headers for r in raw)


# -- network trouble ----------------------------------------------------------------------------------


def test_502_twice_then_success(machine, github_env, sm_log):
    gh = machine("A")
    add(gh, "one")
    github_env.inject("GET", r"/gists/\w+", status=502, times=2)
    sm.sync(gh)
    assert sum("waiting" in m for m in sm_log) == 2


def test_429_retry_after_is_honoured(machine, github_env, sm_log):
    gh = machine("A")
    add(gh, "one")
    github_env.inject(
        "GET", r"/gists/\w+", status=429, headers={"Retry-After": "1"}, body={"message": "secondary rate limit"}
    )
    sm.sync(gh)
    gets = [r for r in github_env.requests if r.method == "GET" and r.path.startswith("/gists/")][-2:]
    assert gets[0].status == 429 and gets[1].status in (200, 304)
    assert gets[1].at - gets[0].at >= 1.0
    assert any("waiting 1.0 s" in m for m in sm_log)


def primary_rate_limit(github_env, path, reset_in):
    """GitHub's answer when the hourly limit is used up: 403, remaining 0, and when it resets."""
    github_env.inject(
        "GET",
        path,
        status=403,
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(time.time()) + reset_in)},
        body={"message": "API rate limit exceeded for user ID 1."},
    )


def test_primary_rate_limit_waits_for_reset(machine, github_env, sm_log):
    gh = machine("A")
    add(gh, "one")
    primary_rate_limit(github_env, r"/gists/\w+", reset_in=1)
    sm.sync(gh)
    assert any("answered 403; waiting" in m for m in sm_log)


def test_rate_limit_beyond_budget_is_a_clear_error(machine, github_env):
    gh = machine("A")
    primary_rate_limit(github_env, r"/gists", reset_in=3600)
    with pytest.raises(sm.GitHubError, match="rate limit reached.*try again at"):
        sm.sync(gh)


def test_reset_connection_is_retried(machine, github_env):
    gh = machine("A")
    add(gh, "one")
    github_env.inject("PATCH", r"/gists/\w+", reset=True)
    with sm.locked_mapping() as data:
        data["scripts"]["two"] = entry("two", sm.now_iso())
    sm.sync(gh)
    remote = json.loads(github_env.gist_files(sm.read_sync_state()["gist_id"])["sm-mapping.json"])
    assert "two" in remote["scripts"]


def test_offline_change_is_kept_and_pushed_later(machine, github_env, monkeypatch, sm_log):
    gh = machine("A")
    add(gh, "one")
    monkeypatch.setenv("SM_GITHUB_API_URL", "http://127.0.0.1:9")
    sm.put_entry(entry("offline-made", sm.now_iso()))
    assert any("will sync to GitHub later" in m for m in sm_log)
    assert sm.read_sync_state()["pending"] is True
    assert "offline-made" in sm.read_mapping()["scripts"]
    monkeypatch.setenv("SM_GITHUB_API_URL", github_env.url)
    changes = sm.sync(sm.GitHub(TOKEN))
    assert changes["remote"]["added"] == ["offline-made"]
    assert sm.read_sync_state()["pending"] is False


def test_mutations_are_spaced_one_second(machine, github_env, monkeypatch):
    monkeypatch.delenv("SM_WRITE_INTERVAL")  # the default, as GitHub asks
    gh = machine("A")
    add(gh, "one")
    add(gh, "two")
    writes = [r for r in github_env.requests if r.method in ("POST", "PATCH", "DELETE")]
    assert len(writes) >= 3
    assert all(b.at - a.at >= 0.99 for a, b in zip(writes, writes[1:], strict=False))


def test_lost_update_is_detected_and_repaired(machine, github_env):
    """B pulls, then A pushes, then B pushes over it: B must notice A's version and merge it back."""
    add(machine("A"), "from-a-1")
    gh_b = machine("B")
    sm.sync(gh_b)
    machine("A")
    with sm.locked_mapping() as data:
        data["scripts"]["from-a-2"] = entry("from-a-2", sm.now_iso())
    state_b_home = sm.sm_home()

    # Make B's pull see the old version: A pushes right after B's GET, before B's PATCH.
    machine("B")
    with sm.locked_mapping() as data:
        data["scripts"]["from-b"] = entry("from-b", sm.now_iso())
    real_push = sm.push_remote
    calls = []

    def push_after_a(gh, state, data):
        if not calls:
            calls.append(1)
            home = os.environ["SM_HOME"]
            os.environ["SM_HOME"] = str(state_b_home)
            try:
                sm.sync(sm.GitHub(TOKEN))  # machine A's push lands first
            finally:
                os.environ["SM_HOME"] = home
        return real_push(gh, state, data)

    sm.push_remote = push_after_a
    try:
        sm.sync(gh_b)
    finally:
        sm.push_remote = real_push
    remote = json.loads(github_env.gist_files(sm.read_sync_state()["gist_id"])["sm-mapping.json"])
    assert {"from-a-1", "from-a-2", "from-b"} <= set(remote["scripts"])
    assert {"from-a-1", "from-a-2", "from-b"} <= set(sm.read_mapping()["scripts"])


WRITER = """
import sys
sys.path.insert(0, {root!r})
import sm
for i in range({n}):
    sm.put_entry({{"script_name": f"{prefix}-{{i}}", "gist_id": "g", "filename": "x.py", "created_at": sm.now_iso(),
                  "updated_at": sm.now_iso(), "revision": "r", "sha256": "0" * 64, "description": "", "params": []}})
"""


def writers(prefix_env_pairs, n):
    procs = []
    for prefix, env in prefix_env_pairs:
        code = WRITER.format(root=str(ROOT), n=n, prefix=prefix)
        full = {**os.environ, **env}
        full.pop("SM_RAISE_ERRORS", None)
        procs.append(subprocess.Popen([sys.executable, "-c", code], env=full, stderr=subprocess.PIPE, text=True))
    for p in procs:
        assert p.wait(timeout=240) == 0, p.stderr.read()


@pytest.mark.slow
def test_parallel_processes_on_one_machine_lose_nothing(sm_env, monkeypatch):
    writers([(f"p{k}", {"SM_HOME": str(sm_env)}) for k in range(4)], n=25)
    assert len(sm.read_mapping()["scripts"]) == 100


@pytest.mark.slow
def test_two_machines_syncing_in_parallel_keep_every_script(github_env, tmp_path):
    homes = {m: tmp_path / m for m in ("A", "B")}
    common = {"SM_GITHUB_API_URL": github_env.url, "GITHUB_PAT": TOKEN}
    writers([(m, {**common, "SM_HOME": str(h)}) for m, h in homes.items()], n=10)
    expected = {f"{m}-{i}" for m in homes for i in range(10)}
    for home in [*homes.values(), homes["A"]]:  # A, B, A: each sees what the other pushed last
        os.environ["SM_HOME"] = str(home)
        sm.sync(sm.GitHub(TOKEN))
    for home in homes.values():
        os.environ["SM_HOME"] = str(home)
        assert set(sm.read_mapping()["scripts"]) == expected
    remote = json.loads(github_env.gist_files(sm.read_sync_state()["gist_id"])["sm-mapping.json"])
    assert set(remote["scripts"]) == expected
    # both machines started without a mapping gist: they must have settled on one
    assert [g for g in github_env.gists if "sm-mapping.json" in github_env.gist_files(g)] == [
        sm.read_sync_state()["gist_id"]
    ]
