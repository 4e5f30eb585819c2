"""Installed commands: `sm install NAME [--as CMD]` writes a launcher into SM_BIN_DIR that runs the pinned revision
with its arguments as they are; `sm install --all` recreates the mapping's commands on another machine."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
from conftest import add, entry, explain

import sm

ECHO = '# /// script\n# requires-python = ">=3.11"\n# dependencies = []\n# ///\nimport json, sys\n\nprint(json.dumps(sys.argv[1:]))\n'


@pytest.fixture
def bin_dir(tmp_path, monkeypatch):
    folder = tmp_path / "bin"
    monkeypatch.setenv("SM_BIN_DIR", str(folder))
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return folder


def test_install_writes_a_launcher_and_records_it(created, invoke, bin_dir):
    result = invoke("install", "greet")
    assert result.exit_code == 0, result.output
    launcher = bin_dir / "greet"
    assert os.access(launcher, os.X_OK) and "Installed" in result.stderr
    assert launcher.read_text().splitlines()[-1].endswith(' run greet -- "$@"')
    assert sm.read_mapping()["scripts"]["greet"]["installed_as"] == "greet"
    assert json.loads(invoke("list", "--json").stdout)[0]["installed_as"] == "greet"

    assert invoke("install", "greet", "--as", "hi").exit_code == 0  # another name: the old command goes
    assert not launcher.exists() and sm.launcher_of(bin_dir / "hi") == "greet"
    assert sm.lookup("greet")["installed_as"] == "hi"


def test_install_warns_when_the_folder_is_not_on_path(created, invoke, tmp_path, monkeypatch):
    monkeypatch.setenv("SM_BIN_DIR", str(tmp_path / "elsewhere"))
    result = invoke("install", "greet")
    assert result.exit_code == 0 and "is not on PATH" in result.stderr


def test_a_command_that_shadows_another_needs_force(created, invoke, bin_dir):
    result = invoke("install", "greet", "--as", "ls")
    assert result.exit_code == 2 and "would shadow" in result.stderr and "--force" in result.stderr
    assert not (bin_dir / "ls").exists() and "installed_as" not in sm.lookup("greet")
    bin_dir.mkdir()
    (bin_dir / "mine").write_text("#!/bin/sh\necho mine\n")  # not sm's: never written over without --force
    assert invoke("install", "greet", "--as", "mine").exit_code == 2
    assert (bin_dir / "mine").read_text() == "#!/bin/sh\necho mine\n"
    assert invoke("install", "greet", "--as", "ls", "--force").exit_code == 0
    assert sm.launcher_of(bin_dir / "ls") == "greet"


def test_bad_command_names_and_a_malformed_record_are_refused(created, invoke, bin_dir):
    assert invoke("install", "greet", "--as", "../evil").exit_code == 2
    assert "installed_as" in sm.entry_problem("a", entry("a", installed_as="../evil"))
    assert sm.entry_problem("a", entry("a", installed_as="a")) is None
    assert invoke("install").exit_code == 2 and invoke("install", "greet", "--all").exit_code == 2


def test_uninstall_rm_and_rename_keep_launchers_in_step(created, invoke, bin_dir):
    assert invoke("install", "greet").exit_code == 0
    assert invoke("rename", "greet", "hello").exit_code == 0
    assert sm.launcher_of(bin_dir / "greet") == "hello"  # the same command runs the script under its new name
    result = invoke("uninstall", "hello")
    assert result.exit_code == 0 and "Uninstalled greet" in result.stderr
    assert not (bin_dir / "greet").exists() and "installed_as" not in sm.lookup("hello")
    assert invoke("uninstall", "hello").exit_code == 2
    assert invoke("install", "hello", "--as", "hi").exit_code == 0
    assert invoke("rm", "hello").exit_code == 0
    assert not (bin_dir / "hi").exists()


def test_install_all_recreates_the_commands_on_another_machine(machine, invoke, bin_dir, tmp_path, monkeypatch):
    gh = machine("A")
    add(gh, "alpha")
    add(gh, "beta")
    assert invoke("install", "alpha").exit_code == 0
    assert invoke("install", "beta", "--as", "bee").exit_code == 0

    machine("B")
    other_bin = tmp_path / "bin-b"
    monkeypatch.setenv("SM_BIN_DIR", str(other_bin))
    refused = invoke("install", "--all")  # no terminal, no --yes: shown, not done
    assert refused.exit_code == 1 and "alpha  runs alpha" in refused.stderr and "bee  runs beta" in refused.stderr
    assert not other_bin.exists()
    result = invoke("install", "--all", "--yes")
    assert result.exit_code == 0, result.output
    assert sm.launcher_of(other_bin / "alpha") == "alpha" and sm.launcher_of(other_bin / "bee") == "beta"
    assert invoke("install", "--all").stderr == ""  # nothing left to do, nothing asked


def test_doctor_lists_missing_launchers_and_launchers_of_removed_scripts(created, invoke, bin_dir):
    from conftest import doctor_json

    assert invoke("install", "greet").exit_code == 0
    assert doctor_json(invoke)[2]["commands"]["status"] == "ok"
    (bin_dir / "greet").unlink()
    (bin_dir / "old").write_text(sm.launcher_text("gone"))
    check = doctor_json(invoke)[2]["commands"]
    assert check["status"] == "warn"
    assert "greet (for greet) is missing" in check["detail"] and "old runs gone" in check["detail"]


@pytest.mark.slow
def test_launcher_passes_arguments_with_spaces_and_quotes_straight_through(github_env, bin_dir, invoke, monkeypatch):
    gh = sm.GitHub(sm.find_token()[0])
    sm.upload_new(gh, "echoargs", ECHO, "Echo the arguments", public=False, created=sm.now_iso())
    assert invoke("install", "echoargs").exit_code == 0
    env = {k: v for k, v in os.environ.items() if k != "SM_RAISE_ERRORS"}
    env["SM_REFRESH_SECONDS"] = "-1"
    line = """echoargs "two words" "it's" '"quoted"' '$HOME' key=value -h -- --yes ''"""
    expected = ["two words", "it's", '"quoted"', "$HOME", "key=value", "-h", "--", "--yes", ""]
    proc = subprocess.run(["sh", "-c", line], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and json.loads(proc.stdout) == expected, explain(proc)

    # The gist moves on and the cache is gone: the launcher still runs the pinned revision, fetched and checked.
    github_env.external_edit(sm.lookup("echoargs")["gist_id"], "echoargs.py", ECHO.replace("print(", "print('new',"))
    monkeypatch.setattr(sm, "_warned", set())
    for path in sm.cache_dir().rglob("*.py"):
        path.unlink()
    proc = subprocess.run(["sh", "-c", "echoargs 'a b'"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and json.loads(proc.stdout) == ["a b"], explain(proc)


def test_list_marks_installed_scripts(created, invoke, bin_dir, capsys):
    assert invoke("install", "greet", "--as", "hi").exit_code == 0
    capsys.readouterr()
    sm.print_table(sm.list_scripts())
    assert "greet → hi" in capsys.readouterr().out


def test_the_launchers_command_line_runs_a_script_with_required_parameters(created, invoke, bin_dir):
    assert invoke("install", "greet").exit_code == 0
    # what `greet --name "A B"` execs: sm run greet -- --name "A B"
    result = invoke("run", "greet", "--", "--name", "A B")
    assert result.exit_code == 0, result.output
    assert result.execs[-1][-2:] == ["--name", "A B"] and result.execs[-1][-3] != "--"


# ── the launcher's own fast path: it execs the script's interpreter without starting sm ───────────────

LOOK = '# /// script\n# requires-python = ">=3.11"\n# dependencies = []\n# ///\nimport json, os, sys\n\nprint(json.dumps({"executable": sys.executable, "prefix": sys.prefix, "path": sys.path, "argv": sys.argv,\n    "orig_argv": sys.orig_argv, "file": __file__, "environ": dict(os.environ), "stdin": sys.stdin.read()}))\n'


@pytest.fixture
def look(github_env, bin_dir, invoke, tmp_path):
    """`peek`, installed as a command and run once through sm (which records the exec); `run(...)` runs the
    launcher, and `fast(...)` a copy of it that cannot fall back to sm (exit 99 where it would start sm)."""
    from conftest import real_uv

    sm.upload_new(sm.github(), "peek", LOOK, "What the script sees", public=False, created=sm.now_iso())
    assert invoke("install", "peek").exit_code == 0
    uv = real_uv()
    env = {k: v for k, v in os.environ.items() if k not in ("SM_DIRECT", "SM_RAISE_ERRORS", "VIRTUAL_ENV")}
    env |= {"PATH": f"{bin_dir}{os.pathsep}{os.path.dirname(uv)}{os.pathsep}{env['PATH']}"}
    env |= {"SM_REFRESH_SECONDS": "-1", "UV_CACHE_DIR": str(tmp_path / "uv-cache")}
    lines = (bin_dir / "peek").read_text().splitlines()
    assert lines[-1].startswith("exec ") and " run peek -- " in lines[-1]
    fast_only = tmp_path / "fast" / "peek"
    fast_only.parent.mkdir()
    fast_only.write_text("\n".join([*lines[:-1], "exit 99", ""]))
    fast_only.chmod(0o755)

    def run(command, *args, **changes):
        proc = subprocess.run(
            [str(command), *args], env={**env, **changes}, input="in\n", capture_output=True, text=True, timeout=120
        )
        return proc

    def seen(command, *args, **changes):
        proc = run(command, *args, **changes)
        assert proc.returncode == 0, explain(proc)
        return json.loads(proc.stdout)

    def through_sm(*args, **changes):
        """The launcher, with a mapping just written by sm aged as if written a while ago: sm records only a
        mapping older than 2 s (aging an older one would undo the record it holds)."""
        aged = time.time_ns() - 3 * 10**9
        if os.stat(sm.mapping_file()).st_mtime_ns > aged:
            os.utime(sm.mapping_file(), ns=(aged, aged))
        return seen(bin_dir / "peek", *args, **changes)

    first = through_sm("a")
    assert first["argv"][1:] == ["a"]
    return {
        "uv": uv,
        "env": env,
        "fast": lambda *a, **c: run(fast_only, *a, **c),
        "seen_fast": lambda *a, **c: seen(fast_only, *a, **c),
        "launcher": through_sm,
        "launcher_as_is": lambda *a, **c: seen(bin_dir / "peek", *a, **c),
        "record": sm.sm_home() / "launch" / "peek",
    }


@pytest.mark.slow
def test_an_installed_command_execs_the_script_itself_as_uv_run_would(look):
    """After the first run, the launcher alone checks the pin and execs the script's interpreter: the script
    sees what it sees under `uv run --script`, arguments with spaces and quotes included."""
    assert look["record"].exists() and sm.lookup("peek")["lock_sha256"]  # its lock is checked too
    assert f"_sm_lk={sm.lock_path_of(sm.cached_file(sm.lookup('peek')))}\n" in look["record"].read_text()
    args = ["two words", "it's", '"q"', "$HOME", "-h", "--", ""]
    by_launcher = look["seen_fast"](*args)
    path = sm.cached_file(sm.lookup("peek"))
    proc = subprocess.run(
        [look["uv"], "run", "--quiet", "--script", path, *args],
        env=look["env"],
        input="in\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    by_uv = json.loads(proc.stdout)
    for view in (by_launcher, by_uv):
        view["environ"].pop("PWD", None)  # sh sets PWD when the caller did not; a shell always has
    assert by_launcher == by_uv
    assert by_launcher["argv"][1:] == args and by_launcher["stdin"] == "in\n"
    assert by_launcher["environ"]["VIRTUAL_ENV"] == by_launcher["prefix"]


def _tamper(look):
    path = sm.cached_file(sm.lookup("peek"))
    with open(path, "a") as f:
        f.write("print('not the pinned revision')\n")


def _tamper_lock(look):
    with open(sm.lock_path_of(sm.cached_file(sm.lookup("peek"))), "a") as f:
        f.write("\n")


def _hand_edit(look):
    mapping = sm.mapping_file()
    with open(mapping, "a") as f:  # in place, the same inode: as an editor that keeps hard links writes it
        f.write("\n")


def _sm_writes_mapping(look):
    with sm.locked_mapping() as data:
        data["scripts"]["peek"]["description"] = "Changed elsewhere"


def _env_gone(look):
    import shutil

    record = look["record"].read_text()
    venv = next(line.split("=", 1)[1] for line in record.splitlines() if line.startswith("_sm_ve="))
    shutil.rmtree(venv)


def _refresh_due(look):
    due = str(look["record"]) + "%due"
    os.utime(due, (1, 1))


def _other_uv_first(look):
    folder = look["record"].parent.parent / "other-uv"
    folder.mkdir()
    (folder / "uv").symlink_to(look["uv"])
    look["env"]["PATH"] = f"{folder}{os.pathsep}{look['env']['PATH']}"


@pytest.mark.slow
@pytest.mark.parametrize(
    "change, extra",
    [
        (_tamper, {}),
        (_tamper_lock, {}),
        (_hand_edit, {}),
        (_sm_writes_mapping, {}),
        (_env_gone, {}),
        (_refresh_due, {}),
        (_other_uv_first, {}),
        (None, {"UV_PYTHON_PREFERENCE": "only-system"}),
        (None, {"SM_REFRESH_SECONDS": "60"}),
        (None, {"SM_DIRECT": "0"}),
    ],
    ids=[
        "tampered",
        "lock-tampered",
        "hand-edit",
        "sm-write",
        "env-gone",
        "refresh-due",
        "other-uv",
        "uv-setting",
        "interval",
        "off",
    ],
)
def test_the_launcher_asks_sm_whenever_anything_it_checks_changed(look, change, extra):
    """Anything that could make the recorded exec wrong sends the launcher through sm (the fast-only copy exits
    99 there); sm then runs the pinned revision, and records again when it can."""
    assert look["seen_fast"]("x")["argv"][1:] == ["x"]  # recorded by the fixture's first run
    if change:
        change(look)
    proc = look["fast"]("x", **extra)
    assert proc.returncode == 99, explain(proc)
    view = look["launcher"]("y", **extra)  # through sm: the pinned revision, fetched again if it was tampered with
    assert view["argv"][1:] == ["y"]
    if extra.get("SM_DIRECT") != "0" and change is not _refresh_due:
        assert look["seen_fast"]("z", **extra)["argv"][1:] == ["z"]  # recorded again


@pytest.mark.slow
def test_a_launcher_follows_a_new_pin(look, github_env):
    """The gist gets a new revision and the mapping moves to it (a sync, `sm run --latest`): the launcher runs
    the new revision, never the recorded one."""
    entry = sm.lookup("peek")
    newer = LOOK.replace('"stdin":', '"newer": True, "stdin":')
    github_env.external_edit(entry["gist_id"], "peek.py", newer)
    gh = sm.github()
    sm.repin(entry, sm.latest_revision(gh, gh.get_gist(entry["gist_id"])[0]), newer, None)
    assert look["fast"]().returncode == 99
    assert look["launcher"]()["newer"] is True
    assert look["seen_fast"]()["newer"] is True


def _new_pin(look, github_env):
    """The gist moves on and the mapping is pinned to the new revision (as `sm run --latest` does)."""
    entry = sm.lookup("peek")
    newer = LOOK.replace('"stdin":', '"newer": True, "stdin":')
    github_env.external_edit(entry["gist_id"], "peek.py", newer)
    gh = sm.github()
    return sm.repin(entry, sm.latest_revision(gh, gh.get_gist(entry["gist_id"])[0]), newer, None)


@pytest.mark.slow
def test_a_mapping_restored_from_its_backup_is_never_taken_for_the_recorded_one(look, github_env):
    """`mv mapping.json.bak mapping.json`, `cp -p`, or a file-sync tool bring back a mapping whose mtime is older
    than the one recorded: another file (or the same file, rewritten in place with an older mtime) is noticed,
    and the launcher runs the pin the restored mapping holds, as `sm run` would."""
    mapping = sm.mapping_file()
    with open(mapping, "rb") as f:
        saved, saved_stat = f.read(), os.stat(mapping)  # the mapping pinning revision 1
    _new_pin(look, github_env)
    assert look["launcher"]()["newer"] is True and look["seen_fast"]()["newer"] is True  # recorded for revision 2

    with open(mapping, "r+b") as f:  # in place, then its old mtime back: as `cp -p` writes over a file
        f.write(saved)
        f.truncate()
    os.utime(mapping, ns=(saved_stat.st_atime_ns, saved_stat.st_mtime_ns))
    assert look["fast"]().returncode == 99
    assert "newer" not in look["launcher"]()  # revision 1 again, through sm (which records it)
    _new_pin(look, github_env)
    look["launcher"]()
    backup = mapping + ".restore"
    with open(backup, "wb") as f:
        f.write(saved)
    os.utime(backup, ns=(saved_stat.st_atime_ns, saved_stat.st_mtime_ns))
    os.replace(backup, mapping)  # another file in its place, older than the record
    assert look["fast"]().returncode == 99
    assert "newer" not in look["launcher"]()


@pytest.mark.slow
def test_no_record_is_made_of_a_mapping_that_may_still_change_within_its_clock_tick(look):
    """git's racy rule: a mapping written less than 2 s ago could be written again with the same mtime, so sm
    records nothing yet; the next run after that does."""
    os.utime(sm.mapping_file())  # written just now, as far as the clock can tell
    look["record"].unlink()
    assert look["launcher_as_is"]("a")["argv"][1:] == ["a"]  # through sm, which runs it and records nothing
    assert not look["record"].exists() and look["fast"]().returncode == 99
    assert look["launcher"]("b")["argv"][1:] == ["b"]  # the mapping two seconds older: recorded
    assert look["record"].exists() and look["seen_fast"]("c")["argv"][1:] == ["c"]


def _launcher_env(bin_dir, tmp_path):
    from conftest import real_uv

    uv = real_uv()
    env = {k: v for k, v in os.environ.items() if k not in ("SM_DIRECT", "SM_RAISE_ERRORS", "VIRTUAL_ENV")}
    env |= {"PATH": f"{bin_dir}{os.pathsep}{os.path.dirname(uv)}{os.pathsep}{env['PATH']}"}
    env |= {"SM_REFRESH_SECONDS": "-1", "UV_CACHE_DIR": str(tmp_path / "uv-cache")}
    return env


def _age_mapping():
    aged = time.time_ns() - 3 * 10**9
    if os.stat(sm.mapping_file()).st_mtime_ns > aged:
        os.utime(sm.mapping_file(), ns=(aged, aged))


@pytest.mark.slow
def test_a_script_named_x_ino_never_sources_the_mapping_as_shell(github_env, bin_dir, invoke, tmp_path):
    """Scripts `peek` and `peek.ino` (a name may hold a dot): no launch record of one is ever a companion file of
    the other (once, peek's hard link to mapping.json was the record peek.ino's launcher sourced, and a $(...) in
    a description ran); and a launcher sources nothing whose first line is not a launch record's."""
    marker = tmp_path / "executed-from-the-mapping"
    gh = sm.github()
    sm.upload_new(gh, "peek", ECHO, f"Echo $(touch {marker})", public=False, created=sm.now_iso())
    sm.upload_new(gh, "peek.ino", ECHO, "Echo too", public=False, created=sm.now_iso())
    assert invoke("install", "peek").exit_code == 0
    assert invoke("install", "peek.ino").exit_code == 0
    env = _launcher_env(bin_dir, tmp_path)

    _age_mapping()
    proc = subprocess.run([str(bin_dir / "peek"), "a"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and json.loads(proc.stdout) == ["a"], explain(proc)
    assert not marker.exists()
    proc = subprocess.run([str(bin_dir / "peek.ino"), "b"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and json.loads(proc.stdout) == ["b"], explain(proc)
    assert not marker.exists()
    (sm.sm_home() / "launch" / "peek.ino").write_text(f"touch {marker}\n")  # whatever a record is not
    proc = subprocess.run([str(bin_dir / "peek.ino"), "c"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and json.loads(proc.stdout) == ["c"] and not marker.exists(), explain(proc)
