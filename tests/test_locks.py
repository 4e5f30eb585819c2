"""Lockfiles in the gist (issue 12): uv's NAME.py.lock uploaded in the same revision as the script, its sha256
recorded in the mapping, verified and placed beside the cached script, and run with `uv run --locked`."""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import TOKEN, explain, make_wheel, reply, script_args, script_code, script_of

import sm


def dep_reply(body="import smtestdep\nprint(smtestdep.GREETING, args.name)", deps='["smtestdep"]'):
    """A model's answer whose script needs smtestdep, which only the `wheels` folder has."""
    answer = reply(body, ["name"], description="Greets with a dependency")
    answer["code"] = script_code(body, ["name"], deps=deps)
    return answer


@pytest.fixture
def locked(wheels, github_env, llm, invoke):
    """`greet`, created through the CLI with a dependency found in the wheels folder: it has a lock."""
    llm.queue(dep_reply())
    result = invoke("create", "greet", "Greet {{name}} with smtestdep")
    assert result.exit_code == 0, result.output
    return sm.lookup("greet")


def script_gists_of(gh):
    return [g for g in gh.gists if "sm-mapping.json" not in gh.gist_files(g)]


def lock_beside(entry):
    return sm.cached_path(entry).with_name(entry["filename"] + ".lock")


# ── uploading ─────────────────────────────────────────────────────────────────────────────────────────


def test_create_uploads_the_lock_in_the_same_revision_as_the_script(locked, github_env):
    gist_id = locked["gist_id"]
    assert len(github_env.revisions(gist_id)) == 1  # one POST, both files
    files = github_env.gist_files(gist_id)
    assert set(files) == {"greet.py", "greet.py.lock"}
    lock = files["greet.py.lock"]
    assert 'name = "smtestdep"' in lock and 'version = "1.0"' in lock
    assert locked["lock_sha256"] == sm.sha256_text(lock)
    assert locked["sha256"] == sm.sha256_text(files["greet.py"])
    # the lock is what uv makes of the uploaded code, exclude-newer included
    assert "exclude-newer" in lock
    assert lock_beside(locked).read_text() == lock


def test_the_dependency_check_resolves_once_and_its_lock_is_uploaded(wheels, github_env, llm, invoke, monkeypatch):
    calls = []
    real = sm._uv_lock
    monkeypatch.setattr(sm, "_resolved", {})
    monkeypatch.setattr(sm, "_uv_lock", lambda uv, code: calls.append(code) or real(uv, code))
    llm.queue(dep_reply())
    assert invoke("create", "greet", "Greet {{name}}").exit_code == 0
    assert len(calls) == 1  # made while the model's answer was checked, used again to upload


def test_an_unresolvable_dependency_is_repaired_through_the_model_and_the_fix_is_locked(
    wheels, github_env, llm, invoke
):
    llm.queue(dep_reply(deps='["smtestdep-typo"]'))
    llm.queue(dep_reply())
    result = invoke("create", "greet", "Greet {{name}}")
    assert result.exit_code == 0, result.output
    assert "smtestdep-typo" in json.dumps(llm.requests[1]["messages"])  # the model was told what did not resolve
    assert 'name = "smtestdep"' in github_env.gist_files(sm.lookup("greet")["gist_id"])["greet.py.lock"]


def test_a_lock_that_cannot_be_made_offline_lets_the_script_through_without_one(github_env, llm, invoke):
    # the autouse fixture's index does not answer: as on a machine without network
    llm.queue(dep_reply())
    result = invoke("create", "greet", "Greet {{name}}")
    assert result.exit_code == 0, result.output
    assert "greet is uploaded without a lock: error: Failed to fetch" in result.stderr
    entry = sm.lookup("greet")
    assert "lock_sha256" not in entry and set(github_env.gist_files(entry["gist_id"])) == {"greet.py"}


def test_no_lock_uploads_none(github_env, llm, invoke):
    llm.queue(reply('print("hi", args.name)', ["name"]))
    assert invoke("create", "greet", "Greet {{name}}", "--no-lock").exit_code == 0
    entry = sm.lookup("greet")
    assert "lock_sha256" not in entry
    assert set(github_env.gist_files(entry["gist_id"])) == {"greet.py"}
    assert not lock_beside(entry).exists()


def test_a_secret_in_the_lock_is_refused_like_one_in_the_code(github_env, llm, invoke, monkeypatch):
    leaky = "version = 1\n# index https://user:ghp_abcdefghijklmnopqrstuvwxyz0123456789@example.com\n"
    monkeypatch.setattr(sm, "resolve_lock", lambda code: (leaky, None, None))
    llm.queue(reply('print("hi", args.name)', ["name"]))
    result = invoke("create", "greet", "Greet {{name}}", "--public")
    assert result.exit_code == 1 and not script_gists_of(github_env)
    assert "Refusing to upload greet.py.lock to a public gist" in result.stderr
    assert "ghp_abcdefghij" not in result.output and "Traceback" not in result.output
    llm.queue(reply('print("hi", args.name)', ["name"]))
    secret = invoke("create", "greet", "Greet {{name}}")  # a secret gist: a warning, as for the code
    assert secret.exit_code == 0 and "greet.py.lock contains" in secret.stderr


def test_edit_locks_the_new_code_and_no_lock_deletes_the_lock_in_the_same_revision(locked, github_env, llm, invoke):
    gist_id = locked["gist_id"]
    llm.queue(dep_reply('import smtestdep\nprint("HI", smtestdep.GREETING, args.name)'))
    assert invoke("edit", "greet", "Shout").exit_code == 0
    edited = sm.lookup("greet")
    assert edited["lock_sha256"] == sm.sha256_text(github_env.gist_files(gist_id)["greet.py.lock"])

    llm.queue(dep_reply('import smtestdep\nprint("hi", smtestdep.GREETING, args.name)'))
    result = invoke("edit", "greet", "Whisper", "--no-lock")
    assert result.exit_code == 0, result.output
    assert len(github_env.revisions(gist_id)) == 3  # one revision per edit: the lock went with the code
    assert set(github_env.gist_files(gist_id)) == {"greet.py"}
    entry = sm.lookup("greet")
    assert "lock_sha256" not in entry and not lock_beside(entry).exists()


def test_edit_no_lock_removes_a_lock_another_machine_committed_while_the_model_wrote(
    locked, github_env, llm, invoke, monkeypatch
):
    """The gist is read before the model is asked; a lock committed meanwhile (another machine's `sm lock`) is
    for the old code, and must not stay beside the new one."""
    gist_id = locked["gist_id"]
    llm.queue(dep_reply('import smtestdep\nprint("hi", smtestdep.GREETING, args.name)'))
    assert invoke("edit", "greet", "Whisper", "--no-lock").exit_code == 0
    assert set(github_env.gist_files(gist_id)) == {"greet.py"}
    real = sm.check_gist_exists

    def then_locked_elsewhere(gh, entry):
        head = real(gh, entry)
        github_env.external_edit(gist_id, "greet.py.lock", LOCK_ONE)
        return head

    monkeypatch.setattr(sm, "check_gist_exists", then_locked_elsewhere)
    llm.queue(dep_reply('import smtestdep\nprint("HI", smtestdep.GREETING, args.name)'))
    result = invoke("edit", "greet", "Shout", "--no-lock")
    assert result.exit_code == 0, result.output
    assert set(github_env.gist_files(gist_id)) == {"greet.py"} and "HI" in github_env.gist_files(gist_id)["greet.py"]


def test_sm_lock_adds_a_lock_as_a_new_revision_and_says_when_nothing_changed(wheels, github_env, invoke, tmp_path):
    path = tmp_path / "greet.py"
    path.write_text(dep_reply()["code"])
    assert invoke("add", "greet", str(path), "--no-lock").exit_code == 0
    before = sm.lookup("greet")
    assert "lock_sha256" not in before and set(github_env.gist_files(before["gist_id"])) == {"greet.py"}

    result = invoke("lock", "greet")
    assert result.exit_code == 0, result.output
    assert "Locked greet: revision" in result.stderr
    entry = sm.lookup("greet")
    assert entry["revision"] != before["revision"] == github_env.revisions(entry["gist_id"])[1]
    files = github_env.gist_files(entry["gist_id"])
    assert files["greet.py"] == path.read_text() and entry["sha256"] == before["sha256"]
    assert entry["lock_sha256"] == sm.sha256_text(files["greet.py.lock"])
    assert lock_beside(entry).read_text() == files["greet.py.lock"]

    again = invoke("lock", "greet")
    assert again.exit_code == 0 and "greet is already locked at revision" in again.stderr
    assert "nothing changed" in again.stderr
    as_json = invoke("lock", "greet", "--json")
    assert as_json.exit_code == 0 and json.loads(as_json.stdout)["revision"] == entry["revision"]
    assert len(github_env.revisions(entry["gist_id"])) == 2


def test_sm_lock_is_for_the_owner_only(bobs_gist, github_env, invoke):
    assert invoke("add", "hello", bobs_gist, "--yes").exit_code == 0
    result = invoke("lock", "hello")
    assert result.exit_code == 2 and "bob's gist: only they can change it" in result.stderr


def test_sm_lock_of_dependencies_that_do_not_resolve_changes_nothing(wheels, github_env, invoke, tmp_path):
    path = tmp_path / "greet.py"
    path.write_text(dep_reply(deps='["smtestdep-typo"]')["code"])
    assert invoke("add", "greet", str(path), "--no-lock").exit_code == 0
    result = invoke("lock", "greet")
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: greet was not locked: its dependencies do not resolve") and "Nothing changed" in line
    assert len(github_env.revisions(sm.lookup("greet")["gist_id"])) == 1


def test_add_locks_a_local_file_and_refuses_dependencies_that_do_not_resolve(wheels, github_env, invoke, tmp_path):
    path = tmp_path / "greet.py"
    path.write_text(dep_reply()["code"])
    assert invoke("add", "greet", str(path)).exit_code == 0
    assert "greet.py.lock" in github_env.gist_files(sm.lookup("greet")["gist_id"])

    path.write_text(dep_reply(deps='["smtestdep-typo"]')["code"])
    refused = invoke("add", "typo", str(path))
    assert refused.exit_code == 1 and "--no-lock" in refused.stderr and "smtestdep-typo" in refused.stderr
    assert "typo" not in sm.read_mapping()["scripts"]


def test_rollback_locks_the_old_code_again(locked, github_env, llm, invoke):
    llm.queue(dep_reply('import smtestdep\nprint("HI", smtestdep.GREETING, args.name)'))
    assert invoke("edit", "greet", "Shout", "--no-lock").exit_code == 0
    result = invoke("rollback", "greet", locked["revision"][:8], "--yes")
    assert result.exit_code == 0, result.output
    entry = sm.lookup("greet")
    files = github_env.gist_files(entry["gist_id"])
    assert entry["revision"] == github_env.revisions(entry["gist_id"])[0]
    assert entry["sha256"] == locked["sha256"] and entry["lock_sha256"] == sm.sha256_text(files["greet.py.lock"])

    assert invoke("rollback", "greet", locked["revision"][:8], "--yes", "--no-lock").exit_code == 0
    assert "greet.py.lock" not in github_env.gist_files(entry["gist_id"])
    assert "lock_sha256" not in sm.lookup("greet")


# ── running ───────────────────────────────────────────────────────────────────────────────────────────


def test_run_places_the_verified_lock_and_passes_locked(locked, invoke, monkeypatch):
    ran = invoke("run", "greet", "name=Ada")
    assert ran.exit_code == 0, ran.output
    (argv,) = ran.execs
    assert argv[1:3] == ["run", "--locked"] and script_of(argv) == str(sm.cached_path(locked))
    assert script_args(argv) == ["--name=Ada"]
    # the fast path, from the run record and from the mapping
    fast = []
    monkeypatch.setattr(sm, "exec_script", lambda argv, env=None: fast.append(argv))
    sm.fast_run(["run", "greet", "name=Ada"])
    sm.fast_run(["run", "greet", "name=Ada"])
    assert fast == [argv, argv]


def test_a_lock_tampered_in_the_cache_is_fetched_again(locked, invoke, github_env, monkeypatch):
    lock = lock_beside(locked)
    good = lock.read_text()
    lock.write_text(good.replace('version = "1.0"', 'version = "9.9"'))
    with monkeypatch.context() as m:
        m.setattr(sm, "exec_script", lambda argv, env=None: pytest.fail("the fast path ran a tampered lock"))
        sm.fast_run(["run", "greet", "name=Ada"])  # falls back to the full CLI
    ran = invoke("run", "greet", "name=Ada")
    assert ran.exit_code == 0, ran.output
    assert "The lock beside the cached copy of greet does not match its recorded sha256" in ran.stderr
    assert lock.read_text() == good and "--locked" in ran.execs[-1]


def test_a_missing_lock_in_the_cache_is_fetched_again(locked, invoke):
    lock_beside(locked).unlink()
    ran = invoke("run", "greet", "name=Ada")
    assert ran.exit_code == 0 and lock_beside(locked).exists() and "--locked" in ran.execs[-1]


def test_a_lock_on_github_that_does_not_match_the_pin_is_refused(locked, invoke, github_env):
    with sm.locked_mapping() as data:  # the pin records another lock than the revision holds
        data["scripts"]["greet"]["lock_sha256"] = "f" * 64
    sm.cached_path(locked).unlink()
    ran = invoke("run", "greet", "name=Ada")
    assert ran.exit_code == 1 and ran.execs == []
    (line,) = ran.stderr.strip().splitlines()
    assert line == (
        f"Error: Refusing to run greet: the lock of revision {locked['revision'][:8]} on GitHub does not match the "
        "sha256 recorded when you accepted it. The gist was altered; inspect it with `sm show`."
    )


def test_a_stale_lock_beside_an_unlocked_script_is_removed_before_the_run(github_env, invoke, monkeypatch):
    gh = sm.GitHub(TOKEN)
    entry = sm.upload_new(gh, "greet", script_code("print('hi')"), "hi", public=False, created="x", locked=False)
    stale = lock_beside(entry)
    stale.write_text("version = 1\n# an older revision's lock\n")
    fast = []
    with monkeypatch.context() as m:
        m.setattr(sm, "exec_script", lambda argv, env=None: fast.append(argv))
        sm.fast_run(["run", "greet"])
    assert not stale.exists() and fast and "--locked" not in fast[0]
    stale.write_text("version = 1\n")
    ran = invoke("run", "greet")
    assert ran.exit_code == 0 and not stale.exists() and "--locked" not in ran.execs[-1]


def test_latest_takes_the_lock_of_the_new_revision(locked, invoke, github_env):
    gist_id = locked["gist_id"]
    github_env.external_edit(gist_id, "greet.py", github_env.gist_files(gist_id)["greet.py"] + "# v2\n")
    github_env.external_edit(gist_id, "greet.py.lock", "version = 1\n# their new lock\n")
    ran = invoke("run", "greet", "name=Ada", "--latest", "--yes")
    assert ran.exit_code == 0, ran.output
    entry = sm.lookup("greet")
    assert entry["lock_sha256"] == sm.sha256_text("version = 1\n# their new lock\n")
    assert lock_beside(entry).read_text() == "version = 1\n# their new lock\n" and "--locked" in ran.execs[-1]


def test_a_foreign_gist_runs_with_the_lock_its_revision_holds(github_env, invoke):
    lock = "version = 1\n# bob's lock\n"
    code = script_code('print(f"hi {args.who}")', ["who"])
    gist_id = github_env.create_gist_direct("bob", {"hello.py": code, "hello.py.lock": lock}, "Says hi")
    ran = invoke("run", gist_id, "who=me", "--yes")
    assert ran.exit_code == 0, ran.output
    path = script_of(ran.execs[-1])
    assert "--locked" in ran.execs[-1] and open(path + ".lock").read() == lock
    saved = invoke("run", gist_id, "who=me", "--yes", "--save", "hello")
    assert saved.exit_code == 0 and sm.lookup("hello")["lock_sha256"] == sm.sha256_text(lock)
    shown = invoke("show", "hello", "--json")
    assert json.loads(shown.stdout)["lock_sha256"] == sm.sha256_text(lock)
    assert invoke("show", "hello").stdout == code  # the script only


def test_a_second_machine_gets_the_lock_when_it_runs(machine, wheels, llm, invoke):
    machine("A")
    llm.queue(dep_reply())
    assert invoke("create", "greet", "Greet {{name}}").exit_code == 0
    on_a = sm.lookup("greet")

    machine("B")
    assert invoke("sync").exit_code == 0
    entry = sm.lookup("greet")
    assert entry["lock_sha256"] == on_a["lock_sha256"]
    ran = invoke("run", "greet", "name=Ada")
    assert ran.exit_code == 0, ran.output
    assert "--locked" in ran.execs[-1] and sm.sha256_text(lock_beside(entry).read_text()) == entry["lock_sha256"]


@pytest.mark.parametrize("bad", ["F" * 64, "f" * 63, "../x", 64, ["f" * 64]])
def test_a_malformed_lock_sha256_makes_the_entry_unusable(bad):
    from conftest import entry

    assert sm.entry_problem("a", entry("a", lock_sha256=bad)).startswith("lock_sha256 is malformed")
    assert sm.entry_problem("a", entry("a", lock_sha256=None)) is None
    assert sm.entry_problem("a", entry("a", lock_sha256="f" * 64)) is None


# ── with the real uv ──────────────────────────────────────────────────────────────────────────────────


@pytest.mark.slow
def test_real_uv_runs_the_placed_lock_and_refuses_one_that_drifted(locked, wheels, invoke, github_env, monkeypatch):
    ran = invoke("run", "greet", "name=Ada")
    argv = ran.execs[-1]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{argv}\n{proc.stdout}\n{proc.stderr}"
    assert proc.stdout == "hello from a dependency Ada\n"

    # direct exec records the environment with `uv sync --locked`
    monkeypatch.setenv("SM_DIRECT", "1")
    path = sm.cached_file(locked)
    direct = sm.direct_command(locked, path, ["--name=Bo"], argv[0])
    assert direct is not None, "uv sync --locked did not record the environment"
    proc = subprocess.run(direct[0], env=direct[1], capture_output=True, text=True, timeout=60)
    assert proc.stdout == "hello from a dependency Bo\n"

    # someone adds a dependency in the gist and leaves the old lock: uv refuses it instead of re-locking
    gist_id = locked["gist_id"]
    make_wheel(wheels, "smtestdep2")
    code = github_env.gist_files(gist_id)["greet.py"].replace('["smtestdep"]', '["smtestdep", "smtestdep2"]')
    github_env.external_edit(gist_id, "greet.py", code)
    ran = invoke("run", "greet", "name=Ada", "--latest", "--yes")
    argv = ran.execs[-1]
    lock = lock_beside(sm.lookup("greet"))
    before = lock.read_bytes()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "--locked" in proc.stderr, f"{argv}\n{proc.stdout}\n{proc.stderr}"
    assert lock.read_bytes() == before  # never rewritten


def test_a_catalog_lists_the_lock_and_a_subscriber_runs_with_it(github_env, invoke, monkeypatch, tmp_path):
    github_env.add_token("ghp_" + "b" * 36, login="bob")
    monkeypatch.setenv("SM_HOME", str(tmp_path / "home-bob"))
    monkeypatch.setenv("GITHUB_PAT", "ghp_" + "b" * 36)
    hello = sm.upload_new(
        sm.GitHub("ghp_" + "b" * 36), "hello", script_code("print('hi')"), "hi", public=False, created="x"
    )
    assert invoke("catalog", "publish").exit_code == 0
    catalog = json.loads((sm.sm_home() / "catalog.json").read_text())["gist_id"]

    monkeypatch.setenv("SM_HOME", str(tmp_path / "home-alice"))
    monkeypatch.setenv("GITHUB_PAT", TOKEN)
    assert invoke("catalog", "add", "bob", catalog).exit_code == 0
    ran = invoke("run", "bob/hello", "--yes")
    assert ran.exit_code == 0, ran.output
    argv = ran.execs[-1]
    assert "--locked" in argv and sm.sha256_text(open(script_of(argv) + ".lock").read()) == hello["lock_sha256"]


def test_adopting_a_gist_takes_its_lock_unless_no_lock(github_env, invoke):
    lock = "version = 1\n# bob's lock\n"
    code = script_code('print(f"hi {args.who}")', ["who"])
    gist_id = github_env.create_gist_direct("bob", {"hello.py": code, "hello.py.lock": lock}, "Says hi")
    assert invoke("add", "hello", gist_id, "--yes").exit_code == 0
    assert sm.lookup("hello")["lock_sha256"] == sm.sha256_text(lock)
    assert lock_beside(sm.lookup("hello")).read_text() == lock
    assert invoke("add", "plain", gist_id, "--yes", "--no-lock").exit_code == 0
    plain = sm.lookup("plain")
    assert "lock_sha256" not in plain and not lock_beside(plain).exists()
    ran = invoke("run", "plain", "who=me")
    assert ran.exit_code == 0 and "--locked" not in ran.execs[-1]


LOCK_ONE = 'version = 1\nrequires-python = ">=3.11"\n\n[[package]]\nname = "smtestdep"\nversion = "1.0"\n'


def test_a_revision_that_changes_only_the_lock_shows_the_versions_it_changes(github_env, invoke):
    """Someone else's gist: a revision that only changes NAME.py.lock (a downgrade the requirement allows) changes
    what gets installed, so the review says which versions, and the first review lists what the lock pins."""
    code = script_code('print(f"hi {args.who}")', ["who"])
    gist_id = github_env.create_gist_direct("bob", {"hello.py": code, "hello.py.lock": LOCK_ONE}, "Says hi")
    first = invoke("add", "hello", gist_id)  # no terminal: shown, then refused
    assert "Locked versions: smtestdep==1.0" in first.stderr
    assert invoke("add", "hello", gist_id, "--yes").exit_code == 0
    github_env.external_edit(gist_id, "hello.py.lock", LOCK_ONE.replace('version = "1.0"', 'version = "0.1"'))
    shown = invoke("run", "hello", "who=me", "--latest")
    assert shown.exit_code == 1 and "Trust and run this revision?" in shown.stderr
    assert "-smtestdep==1.0" in shown.stderr and "+smtestdep==0.1" in shown.stderr
    assert "code: unchanged" in shown.stderr and "dependencies: unchanged" in shown.stderr


def test_locked_versions_reads_what_a_lock_pins():
    assert sm.locked_versions(LOCK_ONE) == ["smtestdep==1.0"]
    assert sm.locked_versions(None) == [] and sm.locked_versions("[[package]]\nname = 'x'\n") == []
    assert sm.locked_versions("not = [toml") == ["(a lock that uv cannot read)"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "setting", [("UV_EXCLUDE_NEWER", "2024-06-01T00:00:00Z"), ("UV_PRERELEASE", "allow"), ("UV_RESOLUTION", "lowest")]
)
def test_a_lock_runs_whatever_resolution_settings_a_machine_has(locked, wheels, invoke, monkeypatch, setting):
    """A lock records uv's resolution settings and `--locked` compares them: UV_EXCLUDE_NEWER (uv's advice against
    supply-chain surprises), UV_PRERELEASE or UV_RESOLUTION set on one machine would make every lock "need
    updating" there, or a lock made there elsewhere. sm keeps them out of the locks it makes and the locked runs;
    the script's own [tool.uv] is what travels with it."""
    monkeypatch.setenv(*setting)
    code = sm.pinned_code(locked, sm.github)
    lock, problem, trouble = sm.resolve_lock(code)  # made on the machine that has the setting
    assert lock is not None and problem is trouble is None and setting[1] not in lock
    execs = []
    monkeypatch.setattr(sm, "exec_script", lambda argv, env=None: execs.append((argv, env)))
    assert invoke("run", "greet", "name=Ada").exit_code == 0
    argv, env = execs[-1]
    assert "--locked" in argv and setting[0] not in env
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout == "hello from a dependency Ada\n", explain(proc)
    monkeypatch.setenv("SM_DIRECT", "1")  # direct exec records the environment with `uv sync --locked` too
    direct = sm.direct_command(locked, sm.cached_file(locked), ["--name=Bo"], argv[0])
    assert direct is not None and direct[1][setting[0]] == setting[1]  # the script itself still sees it
    proc = subprocess.run(direct[0], env=direct[1], capture_output=True, text=True, timeout=60)
    assert proc.stdout == "hello from a dependency Bo\n", explain(proc)


def test_a_lock_that_could_smuggle_a_pip_option_is_not_given_to_pip(tmp_path):
    """Without uv, the lock's pins become a pip constraints file, which may also carry options: a package name
    or version that is not plainly NAME==VERSION drops the lock rather than reach pip."""
    script = tmp_path / "s.py"
    lock = tmp_path / "s.py.lock"
    lock.write_text(LOCK_ONE)
    assert sm.lock_pins(script) == ["smtestdep==1.0"]
    lock.write_text(LOCK_ONE.replace('name = "smtestdep"', 'name = "x==1\\n--index-url http://evil/simple\\ny"'))
    assert sm.lock_pins(script) == []
    lock.write_text(LOCK_ONE.replace('version = "1.0"', 'version = "1.0 --hash=sha256:0"'))
    assert sm.lock_pins(script) == []
    assert sm.pip_install_command(tmp_path / "python", ["x"], tmp_path / "c.txt")[-4:] == [
        "--constraint",
        str(tmp_path / "c.txt"),
        "--",
        "x",
    ]


LOCK_PYPI = (
    'version = 1\nrequires-python = ">=3.11"\n\n[[package]]\nname = "smtestdep"\nversion = "1.0"\n'
    'source = { registry = "https://pypi.org/simple" }\n'
    'wheels = [{ url = "https://files.pythonhosted.org/smtestdep-1.0-py3-none-any.whl", hash = "sha256:'
    + "a" * 64
    + '" }]\n'
)
LOCK_ELSEWHERE = (
    LOCK_PYPI.replace("https://pypi.org/simple", "https://evil.example/simple")
    .replace("https://files.pythonhosted.org/", "https://evil.example/files/")
    .replace("a" * 64, "b" * 64)
)


def test_a_lock_that_moves_a_package_to_another_index_is_not_shown_as_unchanged(github_env, invoke):
    """Someone else's gist gets a revision that changes only NAME.py.lock: the same versions, but wheels from
    another index with other hashes. What a locked run installs changed, so the review never says unchanged."""
    code = script_code('print(f"hi {args.who}")', ["who"])
    gist_id = github_env.create_gist_direct("bob", {"hello.py": code, "hello.py.lock": LOCK_PYPI}, "Says hi")
    assert invoke("add", "hello", gist_id, "--yes").exit_code == 0
    github_env.external_edit(gist_id, "hello.py.lock", LOCK_ELSEWHERE)
    shown = invoke("run", "hello", "who=me", "--latest")
    assert shown.exit_code == 1 and "Trust and run this revision?" in shown.stderr
    assert "locked versions: unchanged" not in shown.stderr, shown.stderr
    assert "evil.example" in shown.stderr, shown.stderr


def test_sm_lock_never_reverts_a_newer_revision(github_env, invoke, local_script):
    """`sm lock NAME` uploads the pinned code with its lock as the gist's newest revision: when the gist has moved
    on (an edit from another machine or the browser), that would undo the edit, so sm says so and changes nothing."""
    assert invoke("add", "weather", str(local_script), "--no-lock").exit_code == 0
    entry = sm.lookup("weather")
    newer = local_script.read_text().replace("print(args.city", "print('newer', args.city")
    github_env.external_edit(entry["gist_id"], "weather.py", newer)
    revisions = github_env.revisions(entry["gist_id"])
    result = invoke("lock", "weather")
    assert result.exit_code == 2 and "has a newer revision" in result.stderr and "--latest" in result.stderr
    assert github_env.revisions(entry["gist_id"]) == revisions and sm.lookup("weather") == entry
    assert github_env.gist_files(entry["gist_id"]) == {"weather.py": newer}


def test_the_first_review_reads_a_lock_past_githubs_inline_limit(github_env, invoke):
    """GitHub inlines at most 1 MB of a gist file (`truncated: true`, the rest via raw_url). sm fetches the whole
    lock to run with (gist_lock uses file_content), but trust_summary reads the inline `content`, so the review
    of a large lock (many packages with many wheels) says the lock cannot be read, or lists only some packages."""
    packages = "".join(
        f'\n[[package]]\nname = "pkg{i:05d}"\nversion = "1.{i}"\nsource = {{ registry = "https://pypi.org/simple" }}\n'
        for i in range(12000)
    )
    lock = 'version = 1\nrequires-python = ">=3.11"\n' + packages
    assert len(lock.encode()) > 1_048_576
    code = script_code('print(f"hi {args.who}")', ["who"])
    gist_id = github_env.create_gist_direct("bob", {"hello.py": code, "hello.py.lock": lock}, "Says hi")
    shown = invoke("add", "hello", gist_id)  # no terminal: shown, then refused
    line = next(x for x in shown.stderr.splitlines() if x.startswith("Locked versions:"))
    assert "cannot read" not in line and "pkg11999==1.11999" in line, line[:200] + " ... " + line[-200:]
