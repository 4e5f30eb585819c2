"""The pure core: PEP 723 parsing, placeholders, validation, [tool.sm] stamping, argv building."""

from __future__ import annotations

import tomllib

import pytest
from conftest import script_code

import sm


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("list gists starting with {{prefix}}", ["prefix"]),
        ("{{a}} and {{ b }} and {{a}} again", ["a", "b"]),
        ("copy {{src-dir}} to {{dest_dir}}", ["src-dir", "dest_dir"]),
        ("no params, {single} braces", []),  # a malformed {{...}} is refused: see test_messages.py
    ],
)
def test_placeholders(prompt, expected):
    assert sm.placeholders(prompt) == expected


@pytest.mark.parametrize("name", ["hello", "a", "my-script", "x.y_z-1", "A" * 64, "9lives"])
def test_good_names(name):
    assert sm.check_name(name) == name


@pytest.mark.parametrize("name", ["", "-x", ".hidden", "a/b", "a b", "A" * 65, "ünï", "a;rm -rf", "../x"])
def test_bad_names(name):
    with pytest.raises(sm.UsageProblem, match="Invalid script name"):
        sm.check_name(name)


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
        sm.read_script(code).metadata()


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


PARAMS = [
    {"name": "prefix", "help": "gist prefix", "required": True},
    {"name": "max_items", "help": "limit", "required": False, "default": "10"},
]


@pytest.mark.parametrize(
    ("pairs", "argv"),
    [
        (["prefix=demo"], ["--prefix=demo"]),
        (["prefix=a=b c"], ["--prefix=a=b c"]),
        (["prefix=", "max-items=3"], ["--prefix=", "--max_items=3"]),
        (["prefix=$(rm -rf /); echo"], ["--prefix=$(rm -rf /); echo"]),
        # a value that looks like an option stays the value of its key, one word each
        (["prefix=-x"], ["--prefix=-x"]),
        (["prefix=--help"], ["--prefix=--help"]),
        # a key given twice is passed twice (argparse append, click multiple)
        (["prefix=a", "prefix=b"], ["--prefix=a", "--prefix=b"]),
    ],
)
def test_build_script_args(pairs, argv):
    assert sm.build_script_args(PARAMS, pairs) == argv


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (["colour=red", "prefix=x"], "Unknown parameter 'colour'. Parameters:\n  prefix="),
        ([], "Missing required parameter prefix. Parameters:\n  prefix="),
        (["prefix"], "Expected key=value, got 'prefix'"),
    ],
)
def test_build_script_args_errors_list_parameters(pairs, message):
    with pytest.raises(sm.UsageProblem) as err:
        sm.build_script_args(PARAMS, pairs)
    assert message in str(err.value)
    assert "max_items=… (default '10': limit)" in str(err.value)


def test_parse_run_tail():
    req = sm.parse_run_tail(["--latest", "greet", "a=1", "--rev", "abc", "-y", "--", "--raw", "x=y", "--"])
    assert req.name == "greet" and req.pairs == ["a=1"]
    assert req.passthrough == ["--raw", "x=y", "--"]
    assert req.options == {"latest": True, "rev": "abc", "yes": True}


def test_parse_run_tail_rejects_unknown_option():
    with pytest.raises(sm.UsageProblem, match="after `--`"):
        sm.parse_run_tail(["--verbose"])


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


def test_resolve_model_order(monkeypatch):
    with pytest.raises(sm.ConfigError, match="SM_MODEL.*OPENAI_API_KEY.*ANTHROPIC_API_KEY"):
        sm.resolve_model(None)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    assert sm.resolve_model(None).startswith("anthropic:")
    monkeypatch.setenv("SM_MODEL", "google:gemini-2.5-pro")
    assert sm.resolve_model(None) == "google:gemini-2.5-pro"
    assert sm.resolve_model("openai-chat:x") == "openai-chat:x"


def test_token_order(monkeypatch):
    with pytest.raises(sm.ConfigError, match="GITHUB_PAT"):
        sm.find_token()
    monkeypatch.setenv("GH_TOKEN", "c")
    monkeypatch.setenv("GITHUB_TOKEN", "b")
    assert sm.find_token() == ("b", "GITHUB_TOKEN")
    monkeypatch.setenv("GITHUB_PAT", "a")
    assert sm.find_token() == ("a", "GITHUB_PAT")
