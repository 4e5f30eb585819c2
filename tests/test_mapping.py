"""Mapping sync: the pure merge, the remote mapping gist, conflicts, offline queueing, retries."""

from __future__ import annotations

import hashlib
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


def gid(name):
    """A gist id of GitHub's shape, one per script name."""
    return hashlib.md5(name.encode()).hexdigest()


def entry(name, updated="2026-01-01T00:00:00.000000Z", revision="1", clock=None, gist=None, **extra):
    return {
        "script_name": name,
        "gist_id": gist or gid(name),
        "filename": f"{name}.py",
        "created_at": updated,
        "updated_at": updated,
        "revision": revision * 40 if len(revision) == 1 else revision,
        "sha256": "0" * 64,
        "description": "",
        "params": [],
        **({"clock": clock} if clock else {}),
        **extra,
    }


def stone(name, deleted="2026-01-01T00:00:00.000000Z", clock=None):
    return {"deleted_at": deleted, "gist_id": gid(name), **({"clock": clock} if clock else {})}


def mapping(*entries, tombstones=None, **extra):
    return {"version": 1, "scripts": {e["script_name"]: e for e in entries}, "tombstones": tombstones or {}, **extra}


T1, T2, T3 = "2026-01-01T00:00:00.000000Z", "2026-02-01T00:00:00.000000Z", "2026-03-01T00:00:00.000000Z"
# A machine two hours behind: its wall clock says T0 while the other machine's says T1.
T0 = "2025-12-31T22:00:00.000000Z"


# -- merge (pure): one test per row of MERGE_RULES, clock skew included ----------------------------------

A1 = entry("a", T1, "1", clock=f"{T1}/0")
A2_LATE = entry("a", T0, "2", clock=f"{T0}/0")  # edited on the slow machine: its wall clock is behind
A3 = entry("a", T3, "3", clock=f"{T3}/0")
A_OTHER_GIST = entry("a", T2, "4", clock=f"{T2}/0", gist=gid("other"))
STONE_LATE = stone("a", T0, clock=f"{T0}/0")
STONE_T3 = stone("a", T3, clock=f"{T3}/0")


@pytest.mark.parametrize(
    ("base", "local", "remote", "expect_scripts", "expect_stones"),
    [
        pytest.param(A1, A1, A1, {"a": A1}, {}, id="nobody changed it"),
        pytest.param(A1, A2_LATE, A1, {"a": A2_LATE}, {}, id="only this machine edited, its clock behind: kept"),
        pytest.param(A1, A1, A2_LATE, {"a": A2_LATE}, {}, id="only GitHub's side edited, its clock behind: kept"),
        pytest.param(A1, STONE_LATE, A1, {}, {"a": STONE_LATE}, id="only this machine removed, clock behind: removed"),
        pytest.param(A1, A1, STONE_LATE, {}, {"a": STONE_LATE}, id="only GitHub's side removed: removed"),
        pytest.param(A1, A3, A3, {"a": A3}, {}, id="both made the same change"),
        pytest.param(A1, None, A3, {"a": A3}, {}, id="a missing name is not a deletion"),
        pytest.param(A1, A3, None, {"a": A3}, {}, id="a missing name on GitHub is not a deletion"),
        pytest.param(None, None, A1, {"a": A1}, {}, id="new on GitHub"),
        pytest.param(None, A1, None, {"a": A1}, {}, id="new here"),
        pytest.param(A1, A2_LATE, A3, {"a": A3}, {}, id="both edited one gist: the later clock wins"),
        pytest.param(A1, A3, A2_LATE, {"a": A3}, {}, id="both edited one gist, other order"),
        pytest.param(A1, STONE_T3, A3, {"a": A3}, {}, id="removed here, edited there: kept"),
        pytest.param(A1, A3, STONE_T3, {"a": A3}, {}, id="edited here, removed there: kept"),
        pytest.param(A1, STONE_LATE, STONE_T3, {}, {"a": STONE_T3}, id="removed on both"),
        pytest.param(STONE_T3, STONE_T3, A1, {"a": A1}, {}, id="name reused on GitHub's side after a removal"),
    ],
)
def test_merge_rules(base, local, remote, expect_scripts, expect_stones):
    def side(state):
        if state is None:
            return mapping()
        if "deleted_at" in state:
            return mapping(tombstones={"a": state})
        return mapping(state)

    merged, _notes = sm.merge3(side(base), side(local), side(remote))
    assert merged["scripts"] == expect_scripts
    assert merged["tombstones"] == expect_stones


@pytest.mark.parametrize("base", [None, A1], ids=["never synced", "after a sync"])
def test_merge_two_gists_under_one_name_keeps_both(base):
    first = entry("tool", T1, "1", clock=f"{T1}/0", gist=gid("first"))
    second = entry("tool", T0, "2", clock=f"{T2}/0", gist=gid("second"))  # later clock, slower wall clock
    taken = entry("tool-2", T1, "1")
    for local, remote in ((first, second), (second, first)):
        b = mapping(*([base] if base and base["script_name"] == "tool" else []))
        merged, notes = sm.merge3(b, mapping(local, taken), mapping(remote))
        assert merged["scripts"]["tool"]["gist_id"] == gid("first")  # the first one keeps the name
        assert merged["scripts"]["tool-3"]["gist_id"] == gid("second")  # tool-2 is taken
        assert merged["scripts"]["tool-3"]["script_name"] == "tool-3"
        assert any("tool-3" in n for n in notes)


def test_merge_is_symmetric_and_idempotent():
    import random

    rng = random.Random(7)
    states = [None, A1, A2_LATE, A3, STONE_LATE, STONE_T3]
    for _ in range(300):
        names = "abc"
        sides = []
        for _ in range(3):
            entries = [
                {**s, "script_name": n}
                for n in names
                if (s := rng.choice(states)) is not None and "deleted_at" not in s
            ]
            taken = {e["script_name"] for e in entries}
            stones = {n: s for n in names if n not in taken and (s := rng.choice(states)) and "deleted_at" in s}
            sides.append(mapping(*entries, tombstones=stones))
        base, local, remote = sides
        one, _ = sm.merge3(base, local, remote)
        two, _ = sm.merge3(base, remote, local)
        assert one["scripts"].keys() == two["scripts"].keys() and one["tombstones"] == two["tombstones"]
        again, _ = sm.merge3(one, one, one)
        assert again == one
        # nothing is lost: every entry either side changed since the base is still there, maybe renamed
        kept = {(e["gist_id"], e["revision"]) for e in one["scripts"].values()}
        for changed in (local, remote):
            for name, e in changed["scripts"].items():
                if e != base["scripts"].get(name) and name not in (local if changed is remote else remote)["scripts"]:
                    assert (e["gist_id"], e["revision"]) in kept


def test_unknown_fields_survive_and_version_is_kept():
    local = mapping(entry("a", future_entry_field=[1, 2]), settings={"x": 1})
    remote = mapping(entry("b"), version=3, newer_thing="keep me")
    merged, _ = sm.merge3(sm.empty_mapping(), local, remote)
    assert merged["version"] == 3
    assert merged["newer_thing"] == "keep me" and merged["settings"] == {"x": 1}
    assert merged["scripts"]["a"]["future_entry_field"] == [1, 2]


def test_tick_never_goes_back_past_a_clock_it_has_seen():
    data = mapping(entry("a", clock="2999-01-01T00:00:00.000000Z/4"))
    assert sm.clock_of({"clock": sm.tick(data)}) == ("2999-01-01T00:00:00.000000Z", 5)
    assert sm.tick(sm.empty_mapping()) > "2026"


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
        "notes": [],
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
    sm.put_entry({{"script_name": f"{prefix}-{{i}}", "gist_id": "a" * 32, "filename": "x.py", "created_at": sm.now_iso(),
                  "updated_at": sm.now_iso(), "revision": "1" * 40, "sha256": "0" * 64, "description": "", "params": []}})
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
