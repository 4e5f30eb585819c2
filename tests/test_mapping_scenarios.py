"""Sync that never lies: two machines, a slow clock, lost answers, malformed remote data, a read-only home.

The two-machine tests run real `sm` processes, each with its own SM_HOME, against one loopback GitHub. A machine's
clock is skewed by a sitecustomize module that shifts time.time() in that process only.
"""

from __future__ import annotations

import datetime
import json
import os
import random
import subprocess
import sys
import threading
import time

import pytest
from conftest import ROOT, TOKEN, add, entry, explain, reply, script_code, script_gists

import sm

SM = [sys.executable, str(ROOT / "sm.py")]  # the test venv has every dependency: no uv start-up per command


def mapping_gist(gh):
    (only,) = [g for g in gh.gists if "sm-mapping.json" in gh.gist_files(g)]
    return only


def remote_mapping(gh):
    return json.loads(gh.gist_files(mapping_gist(gh))["sm-mapping.json"])


@pytest.fixture
def machines(tmp_path, env):
    """machines("A"), machines("B", skew=-7200): a function that runs `sm ARGS` as that machine."""
    clock = tmp_path / "clock"
    clock.mkdir()
    (clock / "sitecustomize.py").write_text(
        "import os, time\n"
        "_skew = float(os.environ.get('SKEW_SECONDS') or 0)\n"
        "_real = time.time\n"
        "time.time = lambda: _real() + _skew\n"
    )

    def machine(name, skew=0):
        home = tmp_path / f"machine-{name}"
        extra = {"SM_HOME": str(home), "SM_REFRESH_SECONDS": "-1", "SKEW_SECONDS": str(skew)}
        if skew:
            extra["PYTHONPATH"] = str(clock)

        def run(*args, input="", check=True, **more):
            full = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "SM_RAISE_ERRORS")}
            full.update({**env, **extra, **more})
            proc = subprocess.run([*SM, *args], env=full, input=input, capture_output=True, text=True, timeout=120)
            if check:
                assert proc.returncode == 0, explain(proc)
            return proc

        run.home = home
        run.mapping = lambda: json.loads((home / "mapping.json").read_text())
        return run

    return machine


def write_script(tmp_path, name, body):
    path = tmp_path / f"{name}.py"
    path.write_text(script_code(body))
    return str(path)


# ══ 1. a machine whose clock is behind keeps its own changes ═══════════════════════════════════════════


@pytest.mark.slow
def test_slow_clock_machine_edit_and_removal_survive_a_sync(machines, tmp_path, openai_server, gh_server):
    a, b = machines("A"), machines("B", skew=-2 * 3600)
    a("add", "skew", write_script(tmp_path, "skew", "print('skew v1')"))
    a("add", "skew2", write_script(tmp_path, "skew2", "print('skew2 v1')"))
    b("sync")
    assert time.time() - 7000 > 0  # (the skew is real: B's clock is two hours behind A's)

    openai_server.queue(reply("print('skew2 v2')"))
    edited = b("edit", "skew2", "say v2")
    assert "Updated" in edited.stderr + edited.stdout
    b("rm", "skew", "--yes")
    new_revision = b.mapping()["scripts"]["skew2"]["revision"]

    a("sync")
    for machine in (a, b):
        machine("sync")
        data = machine.mapping()
        assert "skew" not in data["scripts"] and "skew" in data["tombstones"]
        assert data["scripts"]["skew2"]["revision"] == new_revision
    shown = a("show", "skew2")
    assert "skew2 v2" in shown.stdout


# ══ 2. names are claimed, not overwritten ═══════════════════════════════════════════════════════════════


@pytest.mark.slow
def test_name_taken_on_github_is_refused_before_the_model(machines, tmp_path, openai_server, gh_server):
    a, b = machines("A"), machines("B")
    a("add", "tool", write_script(tmp_path, "tool", "print('A')"))
    b("sync")
    a("add", "tool2", write_script(tmp_path, "tool2", "print('A2')"))  # B has not synced since
    # GitHub's mapping (one conditional request) says tool2 is taken: no model call, no gist
    made = b("create", "tool2", "print B", check=False)
    assert made.returncode == 2 and "'tool2' already exists" in made.stderr, explain(made)
    assert openai_server.requests == [] and len(script_gists(gh_server)) == 2


@pytest.mark.slow
def test_names_created_on_two_machines_at_once_are_both_kept(machines, tmp_path, gh_server):
    a, b = machines("A"), machines("B")
    a("add", "first", write_script(tmp_path, "first", "print(1)"))
    b("sync")
    mapping_id = mapping_gist(gh_server)
    a("add", "tool", write_script(tmp_path, "toolA", "print('A')"))
    # B cannot see GitHub's mapping while it adds its own `tool` (both machines effectively offline to each other)
    gh_server.inject("GET", f"/gists/{mapping_id}", status=404, times=2)
    b("add", "tool", write_script(tmp_path, "toolB", "print('B')"))
    assert len(script_gists(gh_server)) == 3
    synced = b("sync")
    assert "'tool-2'" in synced.stderr
    a("sync")
    for machine in (a, b):
        scripts = machine.mapping()["scripts"]
        assert {"first", "tool", "tool-2"} == set(scripts)
        assert {scripts["tool"]["gist_id"], scripts["tool-2"]["gist_id"]} == set(script_gists(gh_server)) - {
            scripts["first"]["gist_id"]
        }
    assert "print('A')" in a("show", "tool").stdout  # the first one keeps the name
    assert "print('B')" in a("show", "tool-2").stdout


@pytest.mark.slow
def test_parallel_creates_of_one_name_make_one_gist(machines, openai_server, gh_server):
    a = machines("A")
    for _ in range(3):
        openai_server.queue(reply("print('same')"))
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(a("create", "same", "print same", check=False)))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = [r for r in results if r.returncode == 0]
    refused = [r for r in results if r.returncode != 0]
    assert len(ok) == 1, [explain(r) for r in results]
    for r in refused:
        assert "Another sm is creating 'same'" in r.stderr or "'same' already exists" in r.stderr, explain(r)
    assert len(script_gists(gh_server)) == 1  # no orphan
    assert len(openai_server.requests) == 1  # the others stopped before paying the model


# ══ 3. malformed remote data is quarantined, never fatal and never copied ══════════════════════════════

BAD_VALUES = [
    pytest.param(("scripts", "bad", "updated_at"), 5, id="updated_at a number"),
    pytest.param(("scripts", "bad"), "just a string", id="entry a string"),
    pytest.param(("scripts", "bad", "gist_id"), "../../..", id="gist_id a path"),
    pytest.param(("scripts", "bad", "gist_id"), "abc?x=/../../escape", id="gist_id smuggling a query"),
    pytest.param(("scripts", "bad", "revision"), None, id="revision null"),
    pytest.param(("scripts", "bad", "filename"), "../x.py", id="filename with a path"),
    pytest.param(("scripts", "bad", "params"), "name", id="params a string"),
    pytest.param(("scripts", "bad", "clock"), [1], id="clock a list"),
    pytest.param(("scripts", "bad", "lock_sha256"), "F" * 64, id="lock_sha256 upper case"),
    pytest.param(("scripts", "bad", "lock_sha256"), "../lock", id="lock_sha256 a path"),
    pytest.param(("scripts", "bad", "lock_sha256"), 7, id="lock_sha256 a number"),
    pytest.param(("tombstones", "gone"), "2026-01-01", id="tombstone a string"),
    pytest.param(("tombstones", "gone", "deleted_at"), 5, id="tombstone deleted_at a number"),
]


@pytest.fixture
def two_good_scripts(github_env):
    """Alice's mapping gist as another machine left it: scripts `good` and `bad`, and a tombstone for `gone`."""
    scripts = {}
    for name in ("good", "bad"):
        code = script_code(f"print({name!r})")
        gist_id = github_env.create_gist_direct("alice", {f"{name}.py": code}, description=f"{name} script")
        scripts[name] = {
            "script_name": name,
            "gist_id": gist_id,
            "filename": f"{name}.py",
            "created_at": "2026-11-01T10:00:00.000000Z",
            "updated_at": "2026-11-01T10:00:00.000000Z",
            "clock": "2026-11-01T10:00:00.000000Z/0",
            "revision": github_env.revisions(gist_id)[0],
            "sha256": sm.sha256_text(code),
            "description": f"{name} script",
            "params": [],
        }
    stones = {"gone": {"deleted_at": "2026-11-02T10:00:00.000000Z", "gist_id": "7" * 32}}
    mapping = {"version": 1, "scripts": scripts, "tombstones": stones}
    github_env.create_gist_direct("alice", {"sm-mapping.json": json.dumps(mapping, indent=1)}, "sm script mapping")
    sm.sync(sm.GitHub(TOKEN))
    assert set(sm.read_mapping()["scripts"]) == {"good", "bad"}
    return github_env


def corrupt_remote(gh, where, value):
    data = remote_mapping(gh)
    target = data
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    gh.external_edit(mapping_gist(gh), "sm-mapping.json", json.dumps(data, indent=1))
    return data


@pytest.mark.parametrize(("where", "value"), BAD_VALUES)
def test_one_malformed_remote_value_breaks_nothing(two_good_scripts, invoke, where, value, tmp_path, sm_env):
    gh = two_good_scripts
    corrupt_remote(gh, where, value)
    synced = invoke("sync")
    assert synced.exit_code == 0, synced.output
    name = where[1]
    assert synced.stderr.count(f"Ignoring the {'entry' if where[0] == 'scripts' else 'tombstone'} {name!r}") == 1
    assert "Traceback" not in synced.output
    # never copied into this machine's mapping; the good entries work on
    local = json.loads((sm_env / "mapping.json").read_text())
    assert value not in [local[where[0]].get(name)] + list((local[where[0]].get(name) or {}).values())
    assert invoke("run", "good").exit_code == 0
    path = tmp_path / "new.py"
    path.write_text(script_code("print('new')"))
    assert invoke("add", "new", str(path)).exit_code == 0
    assert invoke("rm", "good", "--yes").exit_code == 0
    # the bad value is kept on GitHub as it was, beside the changes that synced
    remote = remote_mapping(gh)
    assert "new" in remote["scripts"] and "good" in remote["tombstones"]
    target = remote
    for key in where:
        target = target[key]
    assert target == value


def test_whole_mapping_sections_of_the_wrong_type_are_survived(two_good_scripts, invoke):
    gh = two_good_scripts
    data = remote_mapping(gh)
    data["tombstones"] = ["not", "an", "object"]
    data["version"] = "one"
    gh.external_edit(mapping_gist(gh), "sm-mapping.json", json.dumps(data))
    synced = invoke("sync")
    assert synced.exit_code == 0 and "`tombstones` is not an object" in synced.stderr
    assert set(sm.read_mapping()["scripts"]) == {"good", "bad"}


def random_json(rng, depth=0):
    kind = rng.randrange(8 if depth < 2 else 6)
    return [
        lambda: None,
        lambda: rng.choice([True, False]),
        lambda: rng.randint(-(2**40), 2**40),
        lambda: rng.random() * 1e6,
        lambda: "".join(rng.choice("ab/.?\\\x1b\u202e0f") for _ in range(rng.randrange(0, 50))),
        lambda: rng.choice(["", "..", "/", "0" * 40, "f" * 64, "2729810", "2026-01-01T00:00:00Z"]),
        lambda: [random_json(rng, depth + 1) for _ in range(rng.randrange(3))],
        lambda: {str(rng.random()): random_json(rng, depth + 1) for _ in range(rng.randrange(3))},
    ][kind]()


def test_random_json_in_one_remote_entry_never_breaks_sync(two_good_scripts, monkeypatch):
    """Property: whatever JSON value lands in one field, entry or tombstone, sync succeeds, keeps the good
    entries, never copies a malformed value into the local mapping, and leaves it on GitHub as it is."""
    gh = two_good_scripts
    client = sm.GitHub(TOKEN)
    pristine = remote_mapping(gh)
    rng = random.Random(20261127)
    fields = ["gist_id", "filename", "revision", "sha256", "lock_sha256", "updated_at", "created_at", "params", "clock"]
    fields.append(None)
    for _ in range(40):
        field = rng.choice(fields)
        where = ("scripts", "bad", field) if field else rng.choice([("scripts", "bad"), ("tombstones", "gone")])
        value = random_json(rng)
        data = json.loads(json.dumps(pristine))
        target = data
        for key in where[:-1]:
            target = target[key]
        target[where[-1]] = value
        gh.external_edit(mapping_gist(gh), "sm-mapping.json", json.dumps(data))
        monkeypatch.setattr(sm, "_warned", set())
        sm.sync(client)
        raw_local = json.loads((sm.sm_home() / "mapping.json").read_text())
        assert "good" in raw_local["scripts"]
        assert all(sm.entry_problem(n, e) is None for n, e in raw_local["scripts"].items())
        assert all(sm.tombstone_problem(n, t) is None for n, t in raw_local["tombstones"].items())
        remote_value = remote_mapping(gh)
        for key in where:
            remote_value = remote_value[key]
        item = data[where[0]][where[1]]
        problem = (sm.entry_problem if where[0] == "scripts" else sm.tombstone_problem)(where[1], item)
        if problem:
            assert remote_value == value  # never rewritten by a machine that could not read it


def test_mapping_from_a_newer_sm_is_read_but_never_written_over(two_good_scripts, invoke):
    gh = two_good_scripts
    data = corrupt_remote(gh, ("version",), 2)
    before = gh.revisions(mapping_gist(gh))
    synced = invoke("sync")
    assert synced.exit_code == 1 and "newer sm" in synced.stderr and "upgrade sm" in synced.stderr
    assert gh.revisions(mapping_gist(gh)) == before and remote_mapping(gh) == data


# ══ 4. a deleted mapping gist heals ═════════════════════════════════════════════════════════════════════


@pytest.mark.slow
def test_deleted_mapping_gist_is_recreated_and_found_by_a_new_machine(machines, tmp_path, gh_server):
    a, b = machines("A"), machines("B")
    a("add", "keep", write_script(tmp_path, "keep", "print('kept')"))
    old = mapping_gist(gh_server)
    del gh_server.gists[old]  # deleted in the browser
    synced = a("sync")
    assert f"The mapping gist {old} was deleted on GitHub; recreated it" in synced.stderr
    new = mapping_gist(gh_server)
    assert new != old and "keep" in remote_mapping(gh_server)["scripts"]
    assert "was deleted on GitHub" in a("doctor", check=False).stdout
    b("sync")
    assert "keep" in b.mapping()["scripts"]
    assert len([g for g in gh_server.gists if "sm-mapping.json" in gh_server.gist_files(g)]) == 1


def test_a_read_on_a_fresh_machine_creates_no_mapping_gist(machines, gh_server):
    a = machines("A")
    a("sync")
    listed = a("list", "--json")
    assert json.loads(listed.stdout) == [] and gh_server.gists == {}


# ══ 5. a lost answer to a create leaves no orphan ═══════════════════════════════════════════════════════


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"status": 502}, id="502 before the write: retried"),
        pytest.param({"status": 502, "after": True}, id="502 after the write: adopted"),
        pytest.param({"reset": True, "after": True}, id="connection dropped after the write: adopted"),
        pytest.param({"status": 504, "after": True, "times": 2}, id="lost twice: adopted once"),
    ],
)
def test_lost_create_answer_gives_exactly_one_gist(github_env, llm, invoke, fault):
    llm.queue(reply("print('once')"))
    github_env.inject("POST", "/gists", **fault)
    result = invoke("create", "once", "print once")
    assert result.exit_code == 0, result.output
    (gist_id,) = script_gists(github_env)
    assert sm.read_mapping()["scripts"]["once"]["gist_id"] == gist_id
    assert len([g for g in github_env.gists if "sm-mapping.json" in github_env.gist_files(g)]) == 1


def test_lost_mapping_gist_create_is_adopted(github_env, tmp_path, invoke):
    github_env.inject("POST", "/gists", status=502, after=True, times=2)  # the script's gist, then the mapping's
    path = tmp_path / "a.py"
    path.write_text(script_code("print(1)"))
    assert invoke("add", "a", str(path)).exit_code == 0
    assert len(github_env.gists) == 2
    assert sm.read_sync_state()["gist_id"] == mapping_gist(github_env)


def test_create_that_github_never_takes_names_the_way_to_publish_the_draft(
    github_env, llm, invoke, sm_env, monkeypatch
):
    monkeypatch.setenv("SM_RETRY_BUDGET", "1.5")
    llm.queue(reply("print('kept')"))
    github_env.inject("POST", "/gists", status=503, times=20)
    result = invoke("create", "kept", "print kept")
    assert result.exit_code == 1 and github_env.gists == {}
    draft = sm_env / "drafts" / "kept.py"
    assert f"publish it with `sm add kept {draft}`" in result.stderr
    assert github_env.count("POST", "/gists") >= 2  # a 5xx before the write is retried
    github_env.clear_faults()
    published = invoke("add", "kept", str(draft))  # without paying the model again
    assert published.exit_code == 0 and len(llm.requests) == 1


# ══ 6. values that start with a dash ════════════════════════════════════════════════════════════════════


@pytest.mark.slow
@pytest.mark.parametrize("value", ["-x", "--help", "--msg", "-", "a b", "--msg=y"])
def test_values_that_look_like_options_reach_the_script(machines, tmp_path, gh_server, value):
    a = machines("A")
    path = tmp_path / "echoer.py"
    path.write_text(script_code("print(repr(args.msg))", ["msg"]))
    a("add", "echoer", str(path))
    ran = a("run", "echoer", f"msg={value}")
    assert ran.stdout == f"{value!r}\n"


# ══ 7. a read-only SM_HOME is found out first ═══════════════════════════════════════════════════════════


@pytest.mark.parametrize("how", ["home under a file", "cache is a file", "home in /proc"])
def test_unwritable_home_fails_before_the_model_and_github(github_env, llm, invoke, monkeypatch, tmp_path, how):
    if how == "home under a file":
        (tmp_path / "plain-file").write_text("x")
        home = tmp_path / "plain-file" / "sm"
    elif how == "cache is a file":
        home = tmp_path / "home"
        home.mkdir()
        (home / "cache").write_text("not a folder")
    else:
        home = "/proc/sm-home"
    monkeypatch.setenv("SM_HOME", str(home))
    llm.queue(reply("print(1)"))
    result = invoke("create", "ro", "print one")
    assert result.exit_code == 1, result.output
    assert "sm cannot write to" in result.stderr and "Nothing was generated or uploaded." in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert llm.requests == [] and github_env.gists == {}


# ══ 8. an edit on one machine reaches the other without `sm sync` ═══════════════════════════════════════


@pytest.mark.slow
def test_background_refresh_brings_an_edit_from_another_machine(machines, tmp_path, gh_server):
    a, b = machines("A"), machines("B")
    a("add", "greet", write_script(tmp_path, "greet", "print('v1')"))
    b("sync")
    assert b("run", "greet").stdout == "v1\n"

    # A edits (as `sm edit` does after the model): a new revision of the same gist, pinned in A's mapping
    path = tmp_path / "greet.py"
    path.write_text(script_code("print('v2')"))
    gist = a.mapping()["scripts"]["greet"]["gist_id"]
    gh_server.external_edit(gist, "greet.py", path.read_text())
    data = a.mapping()
    entry = data["scripts"]["greet"]
    a("rollback", "greet", gh_server.revisions(gist)[0], "--yes")
    assert a.mapping()["scripts"]["greet"]["revision"] != entry["revision"]
    v2 = a.mapping()["scripts"]["greet"]["revision"]

    # B's next run still runs its pin, and refreshes in the background: nothing of it in the script's output
    first = b("run", "greet", SM_REFRESH_SECONDS="0")
    assert first.stdout == "v1\n" and "sm:" not in first.stderr
    deadline = time.monotonic() + 30
    while b.mapping()["scripts"]["greet"]["revision"] != v2:
        log = (
            (b.home / "sm.log").read_text()
            if (b.home / "sm.log").exists()
            else f"no sm.log in {sorted(p.name for p in b.home.iterdir())}"
        )
        assert time.monotonic() < deadline, f"the background refresh never brought the new pin; {log}"
        time.sleep(0.1)
    assert b("run", "greet").stdout == "v2\n"
    assert not (b.home / "sm.log").exists() or "Error" not in (b.home / "sm.log").read_text()


# ══ what an independent review found: each a way to lose or corrupt data ═══════════════════════════════


def edit(gh, entry, body):
    code = script_code(body)
    gist = gh.update_gist(entry["gist_id"], {entry["filename"]: code})
    return sm.repin(entry, sm.latest_revision(gh, gist), code, None)


def test_from_remote_recovery_never_undoes_what_github_has(machine, github_env):
    gh = machine("A")
    x = add(gh, "x", "print('v1')")
    add(gh, "y")
    add(gh, "z")
    v2 = edit(gh, x, "print('v2')")
    assert sm.delete_entry("z")["script_name"] == "z"
    (sm.sm_home() / "mapping.json").write_text("{broken")
    sm.sync(gh, from_remote=True)
    remote = remote_mapping(github_env)
    assert remote["scripts"]["x"]["revision"] == v2["revision"]  # the backup held v1: GitHub's v2 stays
    assert "z" not in remote["scripts"] and "z" in remote["tombstones"]
    assert sm.read_mapping()["scripts"]["x"]["revision"] == v2["revision"]


def test_two_machines_that_made_mapping_gists_in_the_same_second_settle_on_one(machine, github_env):
    """A made its mapping gist and listed the user's gists before B's existed, so it kept its own; B's, made in
    the same second, sorts first (the same created_at, a smaller id), so B kept its own too. A's next sync, while
    its gist is new, finds the older one, moves its scripts there and deletes its own: nothing is lost, and
    both machines (and every new one) use the same gist."""
    gh = machine("A")
    add(gh, "alpha")
    (mine,) = [g for g in github_env.gists if "sm-mapping.json" in github_env.gist_files(g)]
    machine("B")
    add(gh, "beta")  # B's first sync adopts A's gist: make it B's own, as if A's had not been listed yet
    beta = sm.read_mapping()
    theirs = github_env.create_gist_direct("alice", {"sm-mapping.json": json.dumps(beta)}, "sm script mapping")
    # the same second, B's sorting first by id; when its random id sorts last, a second earlier does the same
    made = datetime.datetime.fromisoformat(github_env.gists[mine]["created_at"].replace("Z", "+00:00"))
    made -= datetime.timedelta(seconds=1 if theirs > mine else 0)
    github_env.gists[theirs]["created_at"] = made.strftime("%Y-%m-%dT%H:%M:%SZ")
    sm.write_sync_state({"gist_id": theirs})
    machine("A")
    sm.sync(gh)
    assert mine not in github_env.gists  # A moved to the oldest, merged its scripts in, and deleted its own
    machine("B")
    sm.sync(gh)
    for home in ("A", "B"):
        machine(home)
        assert {"alpha", "beta"} <= sm.read_mapping()["scripts"].keys()
        assert sm.read_sync_state()["gist_id"] == theirs


def test_from_remote_recovery_keeps_what_only_the_backup_has(machine, github_env):
    """The backup holds a subscription and a newer sm's field that never reached GitHub (the syncs failed):
    missing on GitHub is not removed there, for these as for names."""
    gh = machine("A")
    add(gh, "x")
    with sm.locked_mapping() as data:
        data["catalogs"] = {"ops": "d" * 32}
    sm.sync(gh)  # GitHub has the catalog ops
    backup = json.loads((sm.sm_home() / "mapping.json").read_text())
    backup["catalogs"] = {"ops": "d" * 32, "team": "c" * 32}
    backup["future"] = {"kept": True}
    (sm.sm_home() / "mapping.json.bak").write_text(json.dumps(backup))
    (sm.sm_home() / "mapping.json").write_text("{broken")
    sm.sync(gh, from_remote=True)
    for mapping in (sm.read_mapping(), remote_mapping(github_env)):
        assert mapping["catalogs"] == {"ops": "d" * 32, "team": "c" * 32} and mapping["future"] == {"kept": True}
        assert "x" in mapping["scripts"]


def test_a_base_from_another_mapping_gist_is_no_ancestor(machine, github_env, monkeypatch):
    gh = machine("A")
    mine = add(gh, "tool", "print('mine')")
    theirs_code = script_code("print('theirs')")
    theirs = github_env.create_gist_direct("alice", {"tool.py": theirs_code})
    other = {
        "version": 1,
        "tombstones": {},
        "scripts": {
            "tool": {
                "script_name": "tool",
                "gist_id": theirs,
                "filename": "tool.py",
                "revision": github_env.revisions(theirs)[0],
                "sha256": sm.sha256_text(theirs_code),
                "updated_at": "2026-01-01T00:00:00.000000Z",
            }
        },
    }
    chosen = github_env.create_gist_direct("alice", {"sm-mapping.json": json.dumps(other)}, "sm script mapping")
    monkeypatch.setenv("SM_MAPPING_GIST", f"https://gist.github.com/alice/{chosen}")  # as people copy it
    sm.sync(gh)
    scripts = sm.read_mapping()["scripts"]
    assert {scripts["tool"]["gist_id"], scripts["tool-2"]["gist_id"]} == {mine["gist_id"], theirs}


def test_a_stale_machine_recreating_the_mapping_gist_reverts_nothing(machine, github_env):
    x = add(machine("A"), "x", "print('v1')")
    sm.sync(machine("B"))
    v2 = edit(machine("A"), x, "print('v2')")
    del github_env.gists[mapping_gist(github_env)]
    sm.sync(machine("B"))  # B still has v1 and recreates the gist from it
    gh = machine("A")
    sm.sync(gh)
    assert sm.read_mapping()["scripts"]["x"]["revision"] == v2["revision"]
    sm.sync(machine("B"))
    assert sm.read_mapping()["scripts"]["x"]["revision"] == v2["revision"]


@pytest.mark.parametrize("value", [5, {"scripts": {"evil": {"gist_id": ".."}}}, "x"])
def test_a_stray_quarantine_key_is_just_an_unknown_field(two_good_scripts, invoke, value):
    gh = two_good_scripts
    data = remote_mapping(gh)
    data["_quarantined"] = value
    gh.external_edit(mapping_gist(gh), "sm-mapping.json", json.dumps(data))
    assert invoke("sync").exit_code == 0
    assert "evil" not in json.dumps(remote_mapping(gh)["scripts"])
    assert set(sm.read_mapping()["scripts"]) == {"good", "bad"}


def test_deeply_nested_remote_json_is_one_line(two_good_scripts, invoke):
    gh = two_good_scripts
    gh.external_edit(mapping_gist(gh), "sm-mapping.json", "[" * 100_000 + "]" * 100_000)
    result = invoke("sync")
    assert result.exit_code == 1 and "is not valid JSON" in result.stderr


def test_a_malformed_tombstone_never_takes_the_good_entry_of_its_name(two_good_scripts, invoke, tmp_path):
    gh = two_good_scripts
    data = remote_mapping(gh)
    data["tombstones"]["good"] = "removed"
    gh.external_edit(mapping_gist(gh), "sm-mapping.json", json.dumps(data))
    path = tmp_path / "new.py"
    path.write_text(script_code("print('new')"))
    assert invoke("add", "new", str(path)).exit_code == 0  # any change: a push
    remote = remote_mapping(gh)
    assert "good" in remote["scripts"] and remote["tombstones"]["good"] == "removed"


def test_a_name_held_by_a_malformed_entry_is_not_given_away(two_good_scripts, invoke, tmp_path):
    gh = two_good_scripts
    data = remote_mapping(gh)
    data["scripts"]["held"] = {"script_name": "held", "updated_at": 5}
    gh.external_edit(mapping_gist(gh), "sm-mapping.json", json.dumps(data))
    path = tmp_path / "held.py"
    path.write_text(script_code("print('held')"))
    result = invoke("add", "held", str(path))
    assert result.exit_code == 2 and "'held' already exists" in result.stderr
    assert remote_mapping(gh)["scripts"]["held"] == {"script_name": "held", "updated_at": 5}


def test_a_new_machine_checks_the_name_on_github_before_the_model(machine, github_env, llm, invoke):
    add(machine("A"), "tool")
    machine("B")  # never synced
    result = invoke("create", "tool", "print something")
    assert result.exit_code == 2 and "'tool' already exists" in result.stderr
    assert llm.requests == []


def test_a_newer_local_mapping_stops_create_and_is_never_pushed(github_env, llm, invoke, sm_env, tmp_path):
    path = tmp_path / "a.py"
    path.write_text(script_code("print(1)"))
    assert invoke("add", "a", str(path)).exit_code == 0
    data = json.loads((sm_env / "mapping.json").read_text())
    data["version"] = 2
    (sm_env / "mapping.json").write_text(json.dumps(data))
    before = {g: github_env.revisions(g) for g in github_env.gists}
    made = invoke("create", "b", "print two")
    assert made.exit_code == 1 and "newer sm" in made.stderr and llm.requests == []
    synced = invoke("sync")
    assert synced.exit_code == 1 and "newer sm" in synced.stderr
    assert {g: github_env.revisions(g) for g in github_env.gists} == before
    assert remote_mapping(github_env)["version"] == 1


def test_an_entry_stored_under_another_name_is_quarantined(created, invoke, sm_env, monkeypatch):
    data = json.loads((sm_env / "mapping.json").read_text())
    data["scripts"]["other"] = data["scripts"]["greet"]  # renamed by hand: the key only
    (sm_env / "mapping.json").write_text(json.dumps(data))
    monkeypatch.delenv("GITHUB_PAT")
    result = invoke("run", "other", "name=x")
    assert result.exit_code == 2 and "script_name is 'greet', not the name it is stored under" in result.stderr


@pytest.mark.parametrize(
    "param",
    [
        {"name": "\x1b]0;owned\x07x", "help": "h", "required": True},
        {"name": "a\nb", "help": "h"},
        {"name": "ok", "help": 5},
        {"name": "ok", "default": {"a": 1}},
    ],
)
def test_malformed_parameters_quarantine_their_entry(param):
    with_params = entry("a", params=[{"name": "fine", "help": "", "required": False}, param])
    assert sm.entry_problem("a", with_params) == "params is not a list of parameters"


def test_clash_notes_from_a_background_sync_are_shown_by_the_next_sync(machine, github_env, monkeypatch, caplog):
    add(machine("A"), "first")
    sm.sync(machine("B"))
    add(machine("A"), "tool", "print('A')")
    gh = machine("B")
    github_env.inject("GET", f"/gists/{mapping_gist(github_env)}", status=404)
    add(gh, "tool", "print('B')")  # B could not see A's tool (its sync after the upload failed)
    monkeypatch.setenv("SM_BACKGROUND", "1")
    sm.sync(gh)
    assert sm.read_sync_state()["unseen_notes"]
    monkeypatch.delenv("SM_BACKGROUND")
    with sm.locked_mapping() as data:  # a change here for the next sync to push
        data["scripts"]["first"]["description"] = "changed on B"
    github_env.inject("PATCH", f"/gists/{mapping_gist(github_env)}", status=502, times=50)
    caplog.clear()
    with pytest.raises(sm.GitHubError):
        sm.sync(gh)  # shows the notes, then GitHub fails it
    assert sum("'tool-2'" in r.getMessage() for r in caplog.records) == 1
    github_env.clear_faults()
    caplog.clear()
    sm.sync(gh)
    assert not any("'tool-2'" in r.getMessage() for r in caplog.records)  # shown once, not again
    assert "unseen_notes" not in sm.read_sync_state()


def test_rename_waits_for_no_one_but_refuses_a_name_being_created(created, invoke):
    with sm.hold_name("taken"):
        result = invoke("rename", "greet", "taken")
    assert result.exit_code == 2 and "Another sm is creating 'taken'" in result.stderr
    assert invoke("rename", "greet", "taken").exit_code == 0


def test_an_exec_that_fails_is_one_line(created, tmp_path, monkeypatch, sm_env):
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "uv").write_bytes(b"\x7fELF not really")
    (fake_bin / "uv").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "SM_RAISE_ERRORS"}
    env.update(PATH=f"{fake_bin}{os.pathsep}{os.environ['PATH']}", SM_REFRESH_SECONDS="-1")
    proc = subprocess.run([*SM, "run", "greet", "name=x"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, explain(proc)
    assert "Could not start" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_doctor_shows_control_characters_from_github_visibly(github_env, invoke, monkeypatch):
    monkeypatch.setenv("SM_MAPPING_GIST", "f" * 32)
    github_env.inject("GET", "/gists/" + "f" * 32, status=403, body={"message": "no\x1b]0;pwned\x07 way"})
    result = invoke("doctor")
    assert "\x1b]0;pwned" not in result.output and "^[]0;pwned^G" in result.output


def test_rename_and_save_never_take_a_name_a_malformed_entry_holds(two_good_scripts, invoke, sm_env, monkeypatch):
    data = json.loads((sm_env / "mapping.json").read_text())
    data["scripts"]["held"] = {"script_name": "held", "updated_at": 5}
    (sm_env / "mapping.json").write_text(json.dumps(data))
    monkeypatch.delenv("GITHUB_PAT")
    renamed = invoke("rename", "good", "held")
    assert renamed.exit_code == 2 and "'held' already exists" in renamed.stderr
    foreign = two_good_scripts.create_gist_direct("bob", {"x.py": script_code("print('x')")})
    saved = invoke("run", foreign, "--yes", "--save", "held")
    assert saved.exit_code == 2 and "'held' already exists" in saved.stderr
    assert json.loads((sm_env / "mapping.json").read_text())["scripts"]["held"] == {
        "script_name": "held",
        "updated_at": 5,
    }


# ── the mapping's own history ─────────────────────────────────────────────────────────────────────────


def test_mapping_history_lists_what_each_revision_changed(machine, invoke):
    gh = machine("A")
    add(gh, "keep")
    add(gh, "gone")
    assert invoke("rm", "gone").exit_code == 0
    result = invoke("mapping", "history", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["added"], r["updated"], r["removed"]) for r in rows] == [
        ([], [], ["gone"]),
        (["gone"], [], []),
        (["keep"], [], []),
    ]
    lines = invoke("mapping", "history").stdout.splitlines()
    assert lines[0].startswith(rows[0]["version"][:12]) and lines[0].endswith("-gone")


def test_an_unreadable_mapping_revision_is_listed_not_fatal(machine, invoke, github_env):
    gh = machine("A")
    add(gh, "keep")
    github_env.external_edit(mapping_gist(github_env), "sm-mapping.json", "{not json")
    add(gh, "next")  # sync reads the broken head and fails: the change waits locally
    github_env.external_edit(mapping_gist(github_env), "sm-mapping.json", sm.encode_mapping(sm.read_mapping()))
    rows = json.loads(invoke("mapping", "history", "--json").stdout)
    assert "not valid JSON" in rows[1]["problem"]
    assert rows[0]["added"] == ["next"]  # compared with the last revision sm could read


def test_mapping_restore_brings_back_a_removed_name_on_every_machine(machine, invoke, github_env):
    gh = machine("A")
    add(gh, "keep")
    add(gh, "gone")
    assert invoke("rm", "gone").exit_code == 0
    sm.sync(machine("B"))
    assert "gone" in sm.read_mapping()["tombstones"]
    machine("A")
    add(gh, "later")
    rows = json.loads(invoke("mapping", "history", "--json").stdout)
    rev = next(r["version"] for r in rows if r["added"] == ["gone"])

    refused = invoke("mapping", "restore", rev[:8])  # no terminal, no --yes: shown, not done
    assert refused.exit_code != 0 and "Comes back: gone" in refused.stderr
    assert "Kept (added since; --exact removes it): later" in refused.stderr
    assert "gone" not in sm.read_mapping()["scripts"]

    result = invoke("mapping", "restore", rev[:8], "--yes")
    assert result.exit_code == 0, result.output
    assert "Restored the mapping of" in result.stderr
    assert {"keep", "gone", "later"} <= set(sm.read_mapping()["scripts"])

    sm.sync(machine("B"))  # B removed gone itself once; the restore is newer and wins
    scripts = sm.read_mapping()["scripts"]
    assert {"keep", "gone", "later"} <= set(scripts) and "gone" not in sm.read_mapping()["tombstones"]
    assert invoke("run", "gone").exit_code == 0

    machine("A")
    exact = invoke("mapping", "restore", rev[:8], "--exact", "--yes", "--json")
    assert exact.exit_code == 0, exact.output
    assert json.loads(exact.stdout)["removed"] == ["later"]
    assert "later" in sm.read_mapping()["tombstones"]
    assert json.loads(invoke("mapping", "history", "--json").stdout)[0]["removed"] == ["later"]


def test_mapping_restore_of_an_unknown_revision_is_one_line(machine, invoke):
    add(machine("A"), "keep")
    result = invoke("mapping", "restore", "abcdef12", "--yes")
    assert result.exit_code == 2 and "see `sm mapping history`" in result.stderr


def test_rm_removes_an_entry_a_warning_named_everywhere(two_good_scripts, invoke, sm_env):
    """The warning says "fix or remove that entry": `sm rm NAME` removes it, here and on GitHub."""
    gh = two_good_scripts
    data = remote_mapping(gh)
    data["scripts"]["held"] = {"script_name": "held", "gist_id": "../../etc", "updated_at": 5}
    gh.external_edit(mapping_gist(gh), "sm-mapping.json", json.dumps(data))
    assert invoke("sync").exit_code == 0
    purge = invoke("rm", "held", "--purge", "--yes")
    assert purge.exit_code == 2 and "Unknown script 'held'" in purge.stderr  # never a purge of an untrusted id
    removed = invoke("rm", "held")
    assert removed.exit_code == 0 and "Removed the malformed entry held" in removed.stderr
    remote = remote_mapping(gh)
    assert "held" not in remote["scripts"] and "gist_id" not in remote["tombstones"]["held"]
    assert set(sm.read_mapping()["scripts"]) == {"good", "bad"} and gh.count("DELETE", r"/gists/.*") == 0


def test_rm_removes_a_malformed_local_entry_offline(created, invoke, sm_env, monkeypatch):
    data = json.loads((sm_env / "mapping.json").read_text())
    data["scripts"]["broken"] = {"script_name": "broken", "gist_id": 5}
    (sm_env / "mapping.json").write_text(json.dumps(data))
    monkeypatch.delenv("GITHUB_PAT")
    removed = invoke("rm", "broken")
    assert removed.exit_code == 0 and "Removed the malformed entry broken" in removed.stderr
    raw = json.loads((sm_env / "mapping.json").read_text())
    assert "broken" not in raw["scripts"] and "broken" in raw["tombstones"] and "greet" in raw["scripts"]
    assert invoke("rm", "nothing").exit_code == 2  # an unknown name is still unknown


def test_a_local_change_never_waits_for_a_slow_sync_and_is_not_lost(machine, github_env):
    """GitHub answers slowly while a sync (a background refresh, say) is under way: a change made here meanwhile
    is saved at once, survives the end of that sync next to what it brought, and goes up with the next sync."""
    import threading
    import time as real_time

    gh = machine("A")
    add(gh, "alpha")
    machine("B")
    add(gh, "beta")  # B's news, which A's slow sync brings
    machine("A")
    github_env.inject("GET", r"/gists/\w+", delay=2)  # the pull of the mapping gist
    slow = threading.Thread(target=sm.sync, args=(gh,))
    slow.start()
    real_time.sleep(0.3)
    # what `sm create` does once its gist exists: store the entry, then sync (which waits its turn)
    change = threading.Thread(target=sm.put_entry, args=(entry("gamma", gist="c" * 32),))
    change.start()
    while "gamma" not in sm.read_mapping()["scripts"]:
        real_time.sleep(0.02)
    assert slow.is_alive()  # saved while the slow sync was still waiting for GitHub
    slow.join(timeout=30)
    change.join(timeout=30)
    assert {"alpha", "beta", "gamma"} <= sm.read_mapping()["scripts"].keys()
    machine("B")
    sm.sync(gh)
    assert {"alpha", "beta", "gamma"} <= sm.read_mapping()["scripts"].keys()
