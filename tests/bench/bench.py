"""sm's overhead, measured side by side with uv itself in one run: `just bench`.

Rows (median of N runs each, the two sides interleaved so machine noise hits both alike):
  1. `sm run NAME` on a cached script vs `uv run --script <that file>` with the same arguments,
     for the installed `sm` command (uv tool install) and for `uv run sm.py`; then the first run after the
     script's uv environment was removed (sm goes through uv and records again) vs uv on a cold environment.
  2. The command `sm install` makes, run with the same arguments, vs `uv run --script`.
  3. `sm list --json` with 10,000 scripts in the mapping vs `sm --version`.
  4. `sm run NAME --latest` against the loopback fake GitHub when nothing changed (one 304).
  5. Ten runs of one script leave exactly one uv environment for it.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import sm  # noqa: E402

N = int(os.environ.get("BENCH_RUNS", "15"))

SCRIPT = """# /// script
# requires-python = ">=3.11"
# dependencies = []
#
# [tool.sm]
# description = "bench"
#
# [[tool.sm.params]]
# name = "who"
# help = "who"
# required = true
# ///
import argparse

parser = argparse.ArgumentParser()
parser.add_argument("--who", required=True)
print("hello", parser.parse_args().who)
"""


# A script that does next to nothing: its own start-up is the floor under any launcher.
HELLO = '# /// script\n# requires-python = ">=3.11"\n# dependencies = []\n# ///\nprint("hello")\n'


def script_lock(code: str) -> str:
    """uv's own lock of a script, as `sm create` uploads it with the script."""
    with tempfile.TemporaryDirectory() as t:
        path = Path(t) / "bench.py"
        path.write_text(code)
        subprocess.run([real_uv(), "lock", "--quiet", "--script", str(path)], check=True)
        return Path(f"{path}.lock").read_text()


LOCKS: dict[str, str] = {}  # code -> its lock, made by main()


def entry(name: str, gist_id: str, revision: str = "0" * 40, locked: bool = True, code: str = SCRIPT) -> dict:
    return {
        **({"lock_sha256": hashlib.sha256(LOCKS[code].encode()).hexdigest()} if locked else {}),
        "script_name": name,
        "gist_id": gist_id,
        "filename": f"{name}.py",
        "created_at": "2026-01-01T00:00:00.000000Z",
        "updated_at": "2026-01-01T00:00:00.000000Z",
        "revision": revision,
        "sha256": hashlib.sha256(code.encode()).hexdigest(),
        "description": "bench script",
        "params": [{"name": "who", "help": "who", "required": True}] if code == SCRIPT else [],
    }


def write_home(
    home: Path, extra: int = 0, revision: str = "0" * 40, gist_id: str = "b" * 32, locked: bool = True
) -> Path:
    scripts = {"bench": entry("bench", gist_id, revision, locked), "hello": entry("hello", "d" * 32, code=HELLO)}
    for i in range(extra):
        scripts[f"s{i:05}"] = entry(f"s{i:05}", f"{i:032x}")
    home.mkdir(parents=True, exist_ok=True)
    os.environ["SM_HOME"] = str(home)  # written by sm itself, as every change writes it
    sm.write_mapping({"version": 1, "scripts": scripts, "tombstones": {}})
    del os.environ["SM_HOME"]
    (home / "sync.json").write_text(json.dumps({"gist_id": "c" * 32}))  # a machine that has synced before
    for folder, name, code, lock in ((gist_id, "bench", SCRIPT, locked), ("d" * 32, "hello", HELLO, True)):
        cached = home / "cache" / folder / f"{name}.py"
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(code)
        if lock:
            Path(f"{cached}.lock").write_text(LOCKS[code])  # beside it, as `sm run` places the pinned lock
    return home / "cache" / gist_id / "bench.py"


def timed(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"failed: {cmd}\n{proc.stderr.decode()}")
    return elapsed


def side_by_side(a: list[str], b: list[str], env: dict) -> tuple[float, float]:
    timed(a, env), timed(b, env)  # warm caches and uv environments
    ta, tb = [], []
    for _ in range(N):
        ta.append(timed(a, env))
        tb.append(timed(b, env))
    return statistics.median(ta), statistics.median(tb)


def real_uv() -> str:
    """uv's own binary: a pyenv shim is a bash script that adds ~60 ms to every call and would hide sm's cost."""
    import shutil

    found = shutil.which("uv") or "uv"
    with open(found, "rb") as f:
        if f.read(2) == b"#!":
            return subprocess.run(["pyenv", "which", "uv"], capture_output=True, text=True, check=True).stdout.strip()
    return found


def install_sm(tmp: Path) -> Path:
    env = {**os.environ, "UV_TOOL_DIR": str(tmp / "tools"), "UV_TOOL_BIN_DIR": str(tmp / "bin")}
    # --compile-bytecode: what a first run leaves behind anyway, unless PYTHONDONTWRITEBYTECODE is set
    subprocess.run(["uv", "tool", "install", "--quiet", "--compile-bytecode", str(ROOT)], env=env, check=True)
    return tmp / "bin" / "sm"


def main() -> None:
    LOCKS.update({code: script_lock(code) for code in (SCRIPT, HELLO)})
    rows = []
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        home = tmp / "home"
        cached = write_home(home)
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "GITHUB_PAT")}
        env["SM_HOME"] = str(home)
        uv = real_uv()
        env["PATH"] = f"{os.path.dirname(uv)}{os.pathsep}{env['PATH']}"  # sm execs this uv too, not the shim
        installed = install_sm(tmp)
        uv_direct = [uv, "run", "--script", str(cached), "--who", "x"]
        for label, sm_cmd, extra in (
            ("installed sm", [str(installed)], {}),
            ("installed sm, refresh due every run", [str(installed)], {"SM_REFRESH_SECONDS": "0"}),
            ("uv run sm.py", [uv, "run", "--quiet", str(ROOT / "sm.py")], {}),
        ):
            m_sm, m_uv = side_by_side([*sm_cmd, "run", "bench", "who=x"], uv_direct, {**env, **extra})
            rows.append(
                (
                    f"sm run (cached, locked), {label}",
                    m_sm,
                    f"uv run --script: {m_uv * 1000:.0f} ms",
                    m_sm / m_uv,
                    "≤ 1.0" if label == "installed sm" else "one fork" if extra else "-",
                )
            )

        # `sm install`'s launcher: after its first run (side_by_side's warm-up), sh checks the pin and execs the
        # script's interpreter itself, without starting sm (record_launch).
        launchers = tmp / "launchers"
        for name in ("bench", "hello"):
            subprocess.run(
                [str(installed), "install", name],
                env={**env, "SM_BIN_DIR": str(launchers)},
                check=True,
                capture_output=True,
            )
        time.sleep(2.1)  # sm records a launch only of a mapping older than 2 s (it was just written by install)
        m_cmd, m_uv = side_by_side([str(launchers / "bench"), "--who", "x"], uv_direct, env)
        rows.append(
            ("installed command (sm install)", m_cmd, f"uv run --script: {m_uv * 1000:.0f} ms", m_cmd / m_uv, "≤ 0.6")
        )
        # The floor under both: the script's own interpreter, started by hand with nothing checked.
        record = (home / "launch" / "bench").read_text()
        python = next(line.split("=", 1)[1] for line in record.splitlines() if line.startswith("_sm_py="))
        m_floor, m_uv = side_by_side([python, str(cached), "--who", "x"], uv_direct, env)
        rows.append(
            (
                "the script's interpreter alone (the floor)",
                m_floor,
                f"uv run --script: {m_uv * 1000:.0f} ms",
                m_floor / m_uv,
                "-",
            )
        )
        hello = [uv, "run", "--script", str(home / "cache" / ("d" * 32) / "hello.py")]
        m_cmd, m_uv = side_by_side([str(launchers / "hello")], hello, env)
        rows.append(
            (
                "installed command, a script that only prints",
                m_cmd,
                f"uv run --script: {m_uv * 1000:.0f} ms",
                m_cmd / m_uv,
                "≤ 0.6",
            )
        )
        cold_env = {**env, "UV_CACHE_DIR": str(tmp / "uv-cold")}  # environments removed here are nobody else's
        m_cold_sm, m_cold_uv = side_by_side(
            ["sh", "-c", f'rm -rf "$UV_CACHE_DIR/environments-v2"; exec {installed} run bench who=x'],
            ["sh", "-c", f'rm -rf "$UV_CACHE_DIR/environments-v2"; exec {" ".join(uv_direct)}'],
            cold_env,
        )
        rows.append(
            (
                "sm run, first run after its env was removed",
                m_cold_sm,
                f"uv run --script, cold env: {m_cold_uv * 1000:.0f} ms",
                m_cold_sm / m_cold_uv,
                "reported",
            )
        )

        big = tmp / "big"
        write_home(big, extra=10_000)
        big_env = {**env, "SM_HOME": str(big)}
        m_list, m_ver = side_by_side([str(installed), "list", "--json"], [str(installed), "--version"], big_env)
        rows.append(
            ("sm list --json, 10,000 scripts", m_list, f"sm --version: {m_ver * 1000:.0f} ms", m_list / m_ver, "≤ 1.5")
        )

        from fake_github import FakeGitHub

        with FakeGitHub() as gh:
            gh.add_token("ghp_bench", login="bench")
            gist_id = gh.create_gist_direct("bench", {"bench.py": SCRIPT})
            latest_home = tmp / "latest"
            write_home(latest_home, revision=gh.revisions(gist_id)[0], gist_id=gist_id, locked=False)
            # the machine's mapping gist exists too, so the one background refresh in this row finds it
            mapping = json.loads((latest_home / "mapping.json").read_text())
            mapping_id = gh.create_gist_direct("bench", {"sm-mapping.json": json.dumps(mapping)}, "sm script mapping")
            (latest_home / "sync.json").write_text(json.dumps({"gist_id": mapping_id}))
            latest_env = {**env, "SM_HOME": str(latest_home), "SM_GITHUB_API_URL": gh.url, "GITHUB_PAT": "ghp_bench"}
            before = len(gh.requests)
            m_latest, m_pinned = side_by_side(
                [str(installed), "run", "bench", "--latest", "who=x"],
                [str(installed), "run", "bench", "who=x"],
                latest_env,
            )
            requests = gh.requests[before:]
            statuses = sorted({r.status for r in requests[1:]})  # after the warm-up, which learns the ETag
            rows.append(
                (
                    "sm run --latest, unchanged",
                    m_latest,
                    f"pinned sm run: {m_pinned * 1000:.0f} ms; {len(requests) - 1} requests for {N + 1} runs, statuses {statuses}",
                    m_latest / m_pinned,
                    "1 request → 304",
                )
            )

        uv_cache = tmp / "uv-cache"
        ten_env = {**env, "UV_CACHE_DIR": str(uv_cache)}
        for _ in range(10):
            timed([str(installed), "run", "bench", "who=x"], ten_env)
        envs = (
            [p.name for p in (uv_cache / "environments-v2").iterdir()]
            if (uv_cache / "environments-v2").exists()
            else []
        )
        rows.append(("10 runs → uv environments", float(len(envs)), ", ".join(envs), None, "exactly 1"))

    print(
        f"sm benchmark, {time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {subprocess.run([real_uv(), '--version'], capture_output=True, text=True).stdout.strip()}, median of {N}"
    )
    print(f"| {'case':45} | {'sm':>9} | {'ratio':>6} | {'target':>15} | baseline |")
    print(f"|{'-' * 47}|{'-' * 11}|{'-' * 8}|{'-' * 17}|----------|")
    for name, value, baseline, ratio, target in rows:
        shown = f"{value * 1000:.0f} ms" if ratio is not None else f"{value:.0f}"
        print(
            f"| {name:45} | {shown:>9} | {(f'{ratio:.2f}×' if ratio is not None else '-'):>6} | {target:>15} | {baseline} |"
        )


if __name__ == "__main__":
    main()
