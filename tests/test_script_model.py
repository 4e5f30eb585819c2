"""The script model: the PEP 723 block read once (ScriptInfo), parameters, what a candidate script must meet, and
[tool.sm] stamped with tomlkit."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from conftest import script_code

import sm

# ── the PEP 723 block, read once ──────────────────────────────────────────────────────────────────


def test_read_metadata_ok():
    meta = sm.read_script(script_code("print(1)", deps='["httpx"]')).metadata()
    assert meta == {"requires-python": ">=3.11", "dependencies": ["httpx"]}


@pytest.mark.parametrize(
    ("code", "problem"),
    [
        ("print(1)\n", "found 0"),
        (script_code("print(1)") + "\n" + script_code("print(2)"), "found 2"),
        ("# /// script\n# dependencies = [\n# ///\nprint(1)\n", "not valid TOML"),
        ('# /// script\n# requires-python = ">=3.11"\n# ///\nprint(1)\n', "dependencies"),
        ("# /// script\n# dependencies = []\n# ///\nprint(1)\n", "requires-python"),
        ('# /// script\n# requires-python = ">=3.11"\n# dependencies = "httpx"\n# ///\n', "dependencies"),
    ],
)
def test_read_metadata_problems(code, problem):
    with pytest.raises(sm.ValidationFailed, match=problem):
        sm.read_script(code).metadata(strict=True)  # the rule for scripts sm generates


@pytest.mark.parametrize(
    ("spec", "version", "ok"),
    [
        (">=3.11", (3, 11, 7), True),
        (">=3.12", (3, 11, 7), False),
        (">=3.11,<3.12", (3, 11, 0), True),
        (">=3.11, <3.12", (3, 12, 0), False),
        (">3.11", (3, 11, 0), False),
        (">3.11", (3, 11, 1), True),
        ("<=3.11", (3, 11, 5), False),
        ("==3.11.*", (3, 11, 9), True),
        ("==3.11.*", (3, 12, 0), False),
        ("!=3.11.*", (3, 11, 2), False),
        ("!=3.10", (3, 11, 0), True),
        ("==3.11", (3, 11, 0), True),
        ("==3.11", (3, 11, 4), False),
        ("~=3.10", (3, 13, 0), True),
        ("~=3.10", (4, 0, 0), False),
        ("~=3.10.2", (3, 10, 5), True),
        ("~=3.10.2", (3, 11, 0), False),
        (">=3", (3, 8, 0), True),
        ("", (3, 11, 0), True),
    ],
)
def test_python_satisfies(spec, version, ok):
    assert sm.python_satisfies(spec, version) is ok


@pytest.mark.parametrize("spec", [">=three", "~=3", ">=3.*", "3.11", ">=3.11rc1"])
def test_python_satisfies_unreadable(spec):
    with pytest.raises(sm.ValidationFailed, match="cannot read requires-python"):
        sm.python_satisfies(spec, (3, 11, 0))


# ── parameters: [tool.sm], else the code's --options ──────────────────────────────────────────────


ARGPARSE = """
import argparse
p = argparse.ArgumentParser(description="demo")
p.add_argument("--prefix", required=True, help="only gists whose description starts with this")
p.add_argument("-n", "--limit", type=int, default=10, help="how many")
p.add_argument("--out-dir", help="where to write")
p.add_argument("--verbose", action="store_true", help="a flag: not a key=value parameter")
p.add_argument("--colour", action=argparse.BooleanOptionalAction)
p.add_argument("-q", help="short options only: not reachable as key=value")
p.add_argument("path", help="positional")
g = p.add_argument_group("more")
g.add_argument("--since", default=None, help=HELP_TEXT)
args = p.parse_args()
"""


CLICK = """
import click

@click.command()
@click.option("--city", required=True, help="the city")
@click.option("--units", "-u", default="metric", show_default=True, help="metric or imperial")
@click.option("--shout/--no-shout", default=False)
@click.option("--debug", is_flag=True)
@click.option("-v", "--verbose", count=True)
@click.option("--from", "from_", help="python keyword, renamed")
@click.argument("extra")
def main(city, units, shout, debug, verbose, from_, extra):
    pass
"""


@pytest.mark.parametrize(
    ("code", "params"),
    [
        (
            ARGPARSE,
            [
                {"name": "prefix", "help": "only gists whose description starts with this", "required": True},
                {"name": "limit", "help": "how many", "required": False, "default": "10"},
                {"name": "out-dir", "help": "where to write", "required": False},
                {"name": "verbose", "help": "a flag: not a key=value parameter", "required": False, "kind": "flag"},
                {"name": "colour", "help": "", "required": False, "kind": "flag"},
                {"name": "q", "help": "short options only: not reachable as key=value", "required": False, "cli": "-q"},
                {"name": "path", "help": "positional", "required": True, "kind": "positional"},
                {"name": "since", "help": "", "required": False},
            ],
        ),
        (
            CLICK,
            [
                {"name": "city", "help": "the city", "required": True},
                {"name": "units", "help": "metric or imperial", "required": False, "default": "metric"},
                {"name": "shout", "help": "", "required": False, "kind": "flag"},
                {"name": "debug", "help": "", "required": False, "kind": "flag"},
                {"name": "verbose", "help": "", "required": False, "kind": "flag"},
                {"name": "from", "help": "python keyword, renamed", "required": False},
                {"name": "extra", "help": "", "required": True, "kind": "positional"},
            ],
        ),
        ("print('no options')\n", []),
        (
            'import argparse\np = argparse.ArgumentParser()\np.add_argument("--x")\np.add_argument("--x")\n',
            [{"name": "x", "help": "", "required": False}],
        ),
    ],
)
def test_params_from_options(code, params):
    assert sm.read_script(code).options == params


def test_script_params_prefers_tool_sm_table():
    code = script_code("print(args.name)", ["name"])
    assert [p["name"] for p in sm.read_script(code).params] == ["name"]  # from argparse: no table yet
    stamped = sm.stamp_script(
        code,
        params=[{"name": "name", "help": "who to greet", "required": False, "default": "World"}],
        description="d",
        prompt="p",
        model="m",
        created_at="2025-01-01T00:00:00.000000Z",
    )
    assert sm.read_script(stamped).params == [
        {"name": "name", "help": "who to greet", "required": False, "default": "World"}
    ]


# ── what a candidate script must meet ─────────────────────────────────────────────────────────────


def test_problems_none_for_valid_script():
    assert sm.script_problems(script_code("print(args.prefix)", ["prefix"]), [{"name": "prefix"}], ["prefix"]) == []


def test_problems_syntax_error():
    assert "does not compile" in sm.script_problems("def (:\n", [], [])[0]


def test_problems_undeclared_placeholder():
    code = script_code("print(args.prefix)", ["prefix"])
    problems = sm.script_problems(code, [], ["prefix"])
    assert any("{{prefix}} must be declared" in p for p in problems)


def test_problems_option_missing_from_code():
    code = script_code("print('hi')")
    problems = sm.script_problems(code, [{"name": "city"}], ["city"])
    assert problems == ["parameter 'city' must be accepted as the command-line option --city"]


def test_problems_option_never_read():
    code = script_code("print('hi')", ["city"])
    assert sm.script_problems(code, [{"name": "city"}], ["city"]) == [
        "parameter 'city' is declared but the code never reads its value"
    ]


def test_problems_hyphenated_param_read_as_underscore():
    code = script_code("print(args.max_items)", ["max-items"])
    assert sm.script_problems(code, [{"name": "max-items"}], ["max-items"]) == []


# ── stamping [tool.sm], through tomlkit ───────────────────────────────────────────────────────────


def test_stamp_records_params_and_provenance_under_tool_sm():
    code = script_code("print(args.prefix)", ["prefix"], deps='["httpx"]')
    params = [{"name": "prefix", "help": "gist prefix", "required": True, "default": None}]
    stamped = sm.stamp_script(
        code,
        params=params,
        description="List gists",
        prompt="list {{prefix}}",
        model="openai:gpt-5.1",
        created_at="2026-11-27T10:00:00.123456Z",
    )
    meta = sm.read_script(stamped).metadata()
    assert meta["dependencies"] == ["httpx"]
    assert meta["tool"]["sm"] == {
        "description": "List gists",
        "prompt": "list {{prefix}}",
        "model": "openai:gpt-5.1",
        "created_at": "2026-11-27T10:00:00.123456Z",
        "params": [{"name": "prefix", "help": "gist prefix", "required": True}],
    }
    assert meta["tool"]["uv"] == {"exclude-newer": "2026-11-27T10:00:00Z"}
    assert "sm" not in meta["tool"]["uv"]
    assert stamped.split("# ///\n", 1)[1] == code.split("# ///\n", 1)[1]  # the code itself is untouched
    assert sm.read_script(stamped).declared == [{"name": "prefix", "help": "gist prefix", "required": True}]
    compile(stamped, "x.py", "exec")


def test_stamp_without_exclude_newer():
    stamped = sm.stamp_script(
        script_code("print(1)"),
        params=[],
        description="d",
        prompt="p",
        model="m",
        created_at="2026-11-27T10:00:00.000000Z",
        exclude_newer=False,
    )
    assert "uv" not in sm.read_script(stamped).metadata()["tool"]


AWKWARD = 'multi\nline "quoted" \\ back\tslash \x7f \x1b[2K ünïcode 😀 \u2028 \x85 end'


def test_stamping_round_trips_awkward_strings():
    """What stamp_script writes reads back as it was given (the check the old hand-written writer made at
    run time), and every line of the block stays a `#` line, whatever the strings hold."""
    code = script_code("print(args.a, args.b)", ["a", "b"], deps='["httpx>=0.27", \'rich; python_version >= "3.11"\']')
    params = [
        {"name": "a", "help": AWKWARD, "required": True},
        {"name": "b", "help": "", "required": False, "default": AWKWARD},
    ]
    changes = [{"prompt": AWKWARD, "model": "m", "at": "2026-01-02T00:00:00.000000Z"}]
    stamped = sm.stamp_script(
        code,
        params=params,
        description=AWKWARD,
        prompt=AWKWARD,
        model="m",
        created_at="2026-01-01T00:00:00.5Z",
        changes=changes,
    )
    (block,) = sm.script_blocks(stamped)
    assert all(line.startswith("#") for line in block.group().splitlines())
    meta = tomllib.loads(sm.block_toml(block))
    assert meta["dependencies"] == ["httpx>=0.27", 'rich; python_version >= "3.11"']
    assert meta["tool"] == {
        "sm": {
            "description": AWKWARD,
            "prompt": AWKWARD,
            "model": "m",
            "created_at": "2026-01-01T00:00:00.5Z",
            "changes": changes,
            "params": params,
        },
        "uv": {"exclude-newer": "2026-01-01T00:00:00Z"},
    }
    assert sm.read_script(sm.pin_resolution(stamped, "2026-03-04T05:06:07.123Z")).tool["uv"] == {
        "exclude-newer": "2026-03-04T05:06:07Z"
    }


def test_stamping_keeps_the_blocks_comments_and_order():
    block = (
        "# /// script\n"
        "# dependencies = [\n"
        "#     # standard library only\n"
        "# ]\n"
        '# requires-python = ">=3.11"  # match, case\n'
        "#\n"
        "# [tool.uv]\n"
        '# index-url = "https://pypi.example/simple"  # the team mirror\n'
    )
    stamped = sm.stamp_script(
        block + "# ///\nprint(1)\n",
        params=[],
        description="d",
        prompt="p",
        model="m",
        created_at="2026-01-01T00:00:00.000000Z",
    )
    assert stamped.startswith(block + '# exclude-newer = "2026-01-01T00:00:00Z"\n')
    assert stamped.endswith("# ///\nprint(1)\n") and "# [tool.sm]\n" in stamped


# ── PEP 723 as uv reads it, for scripts you bring (issue 11) ─────────────────────────────────────────

FIXTURE_SCRIPTS = Path(__file__).parent / "fixtures" / "scripts"
EXPECTED = json.loads((FIXTURE_SCRIPTS / "expected.json").read_text())["scripts"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_metadata_reads_as_uv_does(name):
    code = (FIXTURE_SCRIPTS / name).read_bytes().decode("utf-8")
    script = sm.read_script(code)
    assert script.problem is None
    want = EXPECTED[name]
    assert script.meta.get("requires-python") == want["requires_python"]
    assert script.meta.get("dependencies") == want["dependencies"]


def test_bom_and_crlf_read_the_same_as_plain_text():
    plain = script_code('print("hi")', ["who"])
    for variant in ("\ufeff" + plain, plain.replace("\n", "\r\n"), "\ufeff" + plain.replace("\n", "\r\n")):
        script = sm.read_script(variant)
        assert (script.problem, script.meta, script.params) == (
            None,
            sm.read_script(plain).meta,
            [{"name": "who", "help": "the who", "required": True}],
        )
        assert sm.script_problems(variant, [], []) == []


@pytest.mark.parametrize(
    ("code", "missing"),
    [
        ('# /// script\n# requires-python = ">=3.11"\n# ///\nprint(1)\n', "dependencies"),
        ("# /// script\n# dependencies = []\n# ///\nprint(1)\n", "requires-python"),
    ],
)
def test_generated_scripts_keep_the_stricter_rule(code, missing):
    assert sm.script_problems(code, [], [], strict=False) == []
    assert sm.read_script(code).metadata() is not None
    (problem,) = sm.script_problems(code, [], [])
    assert missing in problem


# ── every input as key=value: what the code declares (issue 11, tests/fixtures/scripts/expected.json) ─


def shape(params):
    return [(p["name"], sm.kind_of(p), p.get("multiple", False), p["required"]) for p in params]


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if n != "py312_type_alias.py"))
def test_every_input_is_read(name):
    want = EXPECTED[name]
    got = sm.read_script((FIXTURE_SCRIPTS / name).read_bytes().decode("utf-8")).options
    free = [p for p in got if p.get("kind") == "free"]
    assert bool(free) == want["free_args"]
    assert shape([p for p in got if not free]) == [
        (p["name"], p["kind"], p["multiple"], p["required"]) for p in want["params"]
    ]
    assert [p.get("default") for p in got if not free] == [p["default"] for p in want["params"]]
    assert [p.get("cli", None if sm.kind_of(p) == "positional" else f"--{p['name']}") for p in got if not free] == [
        p["cli"] for p in want["params"]
    ]


def test_stored_params_without_kind_are_options():
    old = [{"name": "city", "help": "", "required": True}]
    assert sm.param_problem(old[0]) is None
    assert sm.build_script_args(old, ["city=Oslo"]) == ["--city=Oslo"]


@pytest.mark.parametrize(
    "param",
    [{"name": "x", "kind": "sometimes"}, {"name": "x", "multiple": "yes"}, {"name": "x", "cli": "--x; rm"}],
)
def test_malformed_kinds_are_refused(param):
    assert sm.param_problem(param)


def fixture_params(name):
    return sm.read_script((FIXTURE_SCRIPTS / name).read_bytes().decode("utf-8")).options


@pytest.mark.parametrize(
    ("script", "pairs", "argv"),
    [
        ("argparse_positionals.py", ["dest=b", "src=a"], ["a", "b"]),
        ("argparse_positionals.py", ["src=-a", "dest=b"], ["--", "-a", "b"]),
        ("argparse_flags.py", ["dry-run", "verbose=false", "root=/tmp"], ["--dry-run", "--root=/tmp"]),
        ("argparse_flags.py", ["dry_run=true"], ["--dry-run"]),
        ("argparse_append.py", ["folder=x", "exclude=*.pyc", "exclude=*.o"], ["--exclude=*.pyc", "--exclude=*.o", "x"]),
        ("argparse_nargs_plus.py", ["files=a.txt", "files=b.txt"], ["a.txt", "b.txt"]),
        ("argparse_short_only.py", ["n=5", "i"], ["-n5", "-i"]),
        ("typer_annotated_option.py", ["version=1.0", "out=v.json"], ["--version=1.0", "--out=v.json"]),
        ("typer_annotated_option.py", ["version=1.0", "output=v.json"], ["--version=1.0", "--out=v.json"]),
        ("typer_plain.py", ["name=Bob", "times=2"], ["--times=2", "Bob"]),
        ("click_multiple.py", ["ext=.py", "ext=.md", "root=src"], ["--ext=.py", "--ext=.md", "src"]),
    ],
)
def test_pairs_become_the_scripts_argv(script, pairs, argv):
    assert sm.build_script_args(fixture_params(script), pairs) == argv


@pytest.mark.parametrize(
    ("script", "pairs", "message"),
    [
        ("sys_argv_bare.py", ["file=a"], "reads its arguments itself.*after `--`"),
        ("argparse_subcommands.py", ["add=milk"], "reads its arguments itself"),
        ("argparse_positionals.py", ["dest=b"], "Give src too: it comes before dest"),
        ("argparse_positionals.py", ["src=a", "src=b"], "src takes one value"),
        ("argparse_flags.py", ["verbose=maybe"], "verbose is a flag"),
        ("typer_annotated_option.py", ["out=v.json"], "Missing required parameter version"),
    ],
)
def test_pairs_that_cannot_be_placed(script, pairs, message):
    with pytest.raises(sm.UsageProblem, match=message):
        sm.build_script_args(fixture_params(script), pairs)


def test_run_line_and_help_show_every_input():
    params = fixture_params("click_arguments.py")
    assert sm.run_line("ren", params) == "sm run ren old=VALUE new=VALUE"
    assert sm.run_line("argv", fixture_params("sys_argv_bare.py")) == "sm run argv -- ARGS..."
    assert sm.run_line("files", fixture_params("argparse_nargs_plus.py")) == "sm run files files=VALUE..."
    text = sm.describe_params(params)
    assert "old=… (positional, required)" in text and "paths=… (positional, repeatable, optional)" in text
    assert "dry-run (a flag, optional: Show the new names without renaming.)" in text
