"""The mapping: names and the file on disk, the pure three-way merge, the mapping gist, and what goes wrong (a corrupt
file, no network, two writers at once)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner
from conftest import ROOT, TOKEN, add, entry, gid, reply, script_code, script_of

import sm

# ── names, and the mapping file on disk ───────────────────────────────────────────────────────────


@pytest.mark.parametrize("name", ["hello", "a", "my-script", "x.y_z-1", "A" * 64, "9lives"])
def test_good_names(name):
    assert sm.check_name(name) == name


@pytest.mark.parametrize("name", ["", "-x", ".hidden", "a/b", "a b", "A" * 65, "ünï", "a;rm -rf", "../x"])
def test_bad_names(name):
    with pytest.raises(sm.UsageProblem, match="Invalid script name"):
        sm.check_name(name)


def test_mapping_atomic_write_keeps_backup(sm_env):
    data = sm.empty_mapping()
    data["scripts"]["a"] = {"gist_id": "1", "filename": "a.py", "revision": "1" * 40, "sha256": "2" * 64}
    sm.write_mapping(data)
    data["future_field"] = {"kept": True}
    sm.write_mapping(data)
    assert sm.read_mapping()["future_field"] == {"kept": True}
    assert "future_field" not in (sm_env / "mapping.json.bak").read_text()
    assert not [p for p in sm_env.iterdir() if p.name.endswith(".tmp")]
    assert oct((sm_env / "mapping.json").stat().st_mode & 0o777) == "0o600"


def test_atomic_write_failure_leaves_old_file(sm_env, monkeypatch):
    target = sm_env / "f.json"
    sm.atomic_write(target, "old")

    def boom(*a):
        raise OSError("disk full")

    monkeypatch.setattr(sm.os, "replace", boom)
    with pytest.raises(OSError):
        sm.atomic_write(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in sm_env.iterdir()] == ["f.json"]


def test_corrupt_mapping_is_reported_and_untouched(sm_env):
    sm_env.mkdir(parents=True, exist_ok=True)
    (sm_env / "mapping.json").write_text("{not json")
    with pytest.raises(sm.MappingError, match="mapping.json is corrupt.*sm sync --from-remote"):
        sm.read_mapping()
    with pytest.raises(sm.MappingError):
        sm.put_entry({"script_name": "x", "gist_id": "1", "filename": "x.py", "revision": "1" * 40, "sha256": "2" * 64})
    assert (sm_env / "mapping.json").read_text() == "{not json"


def test_corrupt_mapping_is_one_line_and_kept(invoke, sm_env):
    sm_env.mkdir(parents=True)
    (sm_env / "mapping.json").write_text('{"scripts": [')
    for args in (["list"], ["run", "x"], ["show", "x"]):
        result = invoke(*args)
        assert result.exit_code == 1, args
        assert "mapping.json is corrupt" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert (sm_env / "mapping.json").read_text() == '{"scripts": ['


def test_make_entry_repins_and_keeps_every_other_field():
    base = {
        "script_name": "a",
        "gist_id": "a" * 32,
        "filename": "a.py",
        "created_at": "2020-01-01T00:00:00.000000Z",
        "updated_at": "2020-01-01T00:00:00.000000Z",
        "revision": "1" * 40,
        "sha256": "2" * 64,
        "from_a_newer_sm": {"kept": True},
    }
    entry = sm.make_entry(base, code="print(2)\n", revision="3" * 40)
    assert entry == {
        **base,
        "revision": "3" * 40,
        "sha256": sm.sha256_text("print(2)\n"),
        "updated_at": entry["updated_at"],
    }
    assert entry["updated_at"] > base["updated_at"]
    with pytest.raises(TypeError, match="needs gist_id, filename"):
        sm.make_entry(code="print(1)\n", script_name="new")


def test_rename_entry_moves_and_tombstones(sm_env):
    entry = {"script_name": "a", "gist_id": "a" * 32, "filename": "a.py", "revision": "1" * 40, "sha256": "2" * 64}
    sm.put_entry(entry)
    sm.put_entry({**entry, "script_name": "b", "gist_id": "b" * 32})
    with pytest.raises(sm.UsageProblem, match="'b' already exists"):
        sm.rename_entry("a", "b")
    moved = sm.rename_entry("a", "c")
    data = sm.read_mapping()
    assert sorted(data["scripts"]) == ["b", "c"]
    assert moved == data["scripts"]["c"]
    assert moved["script_name"] == "c" and moved["gist_id"] == "a" * 32 and moved["filename"] == "a.py"
    assert data["tombstones"]["a"]["gist_id"] == "a" * 32
    with pytest.raises(sm.UsageProblem, match="Unknown script 'a'"):
        sm.rename_entry("a", "d")


# ── merge (pure): one test per row of MERGE_RULES, clock skew included ────────────────────────────


def stone(name, deleted="2026-01-01T00:00:00.000000Z", clock=None):
    return {"deleted_at": deleted, "gist_id": gid(name), **({"clock": clock} if clock else {})}


def mapping(*entries, tombstones=None, **extra):
    return {"version": 1, "scripts": {e["script_name"]: e for e in entries}, "tombstones": tombstones or {}, **extra}


T1, T2, T3 = "2026-01-01T00:00:00.000000Z", "2026-02-01T00:00:00.000000Z", "2026-03-01T00:00:00.000000Z"


# A machine two hours behind: its wall clock says T0 while the other machine's says T1.
T0 = "2025-12-31T22:00:00.000000Z"


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


@pytest.mark.parametrize(
    "base, local, remote, expected",
    [
        ({"x": 1}, {"x": 1}, {"x": 2}, {"x": 2}),  # another machine's newer sm changed it: not reverted here
        ({"x": 1}, {"x": 1}, {}, {}),  # ... or removed it
        ({}, {}, {"x": 2}, {"x": 2}),  # ... or added it
        ({"x": 1}, {"x": 3}, {"x": 1}, {"x": 3}),  # changed here only
        ({"x": 1}, {}, {"x": 1}, {}),  # removed here only
        ({"x": 1}, {"x": 3}, {"x": 2}, {"x": 3}),  # changed on both sides: this machine's
    ],
)
def test_unknown_top_level_fields_merge_three_ways(base, local, remote, expected):
    merged, _ = sm.merge3(mapping(**base), mapping(**local), mapping(**remote))
    assert {k: v for k, v in merged.items() if k not in ("version", "scripts", "tombstones")} == expected


def test_tick_never_goes_back_past_a_clock_it_has_seen():
    data = mapping(entry("a", clock="2999-01-01T00:00:00.000000Z/4"))
    assert sm.clock_of({"clock": sm.tick(data)}) == ("2999-01-01T00:00:00.000000Z", 5)
    assert sm.tick(sm.empty_mapping()) > "2026"


# ── the mapping gist ──────────────────────────────────────────────────────────────────────────────


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
    monkeypatch.setattr(sm, "exec_script", lambda argv, env=None: execs.append(argv))
    cli = sm.build_cli()
    listed = CliRunner().invoke(cli, ["list", "--json"])
    assert [r["script_name"] for r in json.loads(listed.stdout)] == ["one", "two"]
    ran = CliRunner().invoke(cli, ["run", "two"])
    assert ran.exit_code == 0, ran.output
    assert execs and open(script_of(execs[0])).read() == script_code("print(2)")


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


def test_sm_mapping_gist_wins_after_first_sync(created, github_env, monkeypatch):
    other = github_env.create_gist_direct("alice", {"sm-mapping.json": json.dumps(sm.empty_mapping())})
    monkeypatch.setenv("SM_MAPPING_GIST", other)
    sm.sync(sm.GitHub(TOKEN))
    assert sm.read_sync_state()["gist_id"] == other
    assert "greet" in json.loads(github_env.gist_files(other)["sm-mapping.json"])["scripts"]


def test_unchanged_mapping_costs_one_conditional_request(machine, github_env):
    gh = machine("A")
    add(gh, "one")
    sm.sync(gh)  # fetch GitHub's copy once, with its ETag
    before = len(github_env.requests)
    sm.sync(gh)  # the mapping gist was made here moments ago: a sync also checks no other machine's is older
    new = github_env.requests[before:]
    gist = f"/gists/{sm.read_sync_state()['gist_id']}"
    assert [(r.method, r.path.split("?")[0], r.status) for r in new] == [("GET", "/gists", 200), ("GET", gist, 304)]
    sm.write_sync_state({**sm.read_sync_state(), "settle_until": 0})  # a minute later
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


# ── broken, offline, concurrent ───────────────────────────────────────────────────────────────────


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


def test_from_remote_offline_keeps_the_backup_entries(created, invoke, sm_env, monkeypatch):
    invoke("list")  # leaves mapping.json.bak with `greet` in it after the next write
    sm.write_mapping(sm.read_mapping())
    (sm_env / "mapping.json").write_text("{broken")
    monkeypatch.setenv("SM_GITHUB_API_URL", "http://127.0.0.1:9")
    result = invoke("sync", "--from-remote")
    assert result.exit_code == 1 and "Cannot reach" in result.stderr
    assert "greet" in sm.read_mapping()["scripts"]  # recovered from the backup before going online


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


def test_restore_plan_brings_back_changes_back_and_keeps_or_removes_what_came_later():
    old = {"scripts": {"a": entry("a"), "b": entry("b", revision="2"), "q": entry("q")}, "tombstones": {}}
    old[sm.QUARANTINE] = {"scripts": {"bad": {"script_name": "bad"}}}
    now = {"scripts": {"b": entry("b", revision="3"), "c": entry("c"), "bad": entry("bad")}, "tombstones": {}}
    now["scripts"]["q"] = {**old["scripts"]["q"], "clock": "later/0", "updated_at": "later"}  # same pin
    assert sm.restore_plan(now, old, exact=False) == {
        "back": ["a"],
        "changed_back": ["b"],
        "removed": [],
        "kept": ["c"],
    }
    assert sm.restore_plan(now, old, exact=True)["removed"] == ["c"]  # never `bad`: unreadable then, not absent
