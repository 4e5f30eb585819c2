"""Pure helpers behind add/rm/rename/doctor: gist references, option discovery, secret scanning,
requires-python, redaction, the renamed mapping entry, and the pyproject that `sm self publish` ships."""

from __future__ import annotations

import tomllib

import pytest
from conftest import ROOT, script_code

import sm

ID32 = "0123456789abcdef0123456789abcdef"
ID20 = "0123456789abcdef0123"


@pytest.mark.parametrize(
    ("text", "gist_id"),
    [
        (ID32, ID32),
        (ID20, ID20),
        (f"  {ID32.upper()}  ", ID32),
        (f"https://gist.github.com/{ID32}", ID32),
        (f"https://gist.github.com/alice/{ID32}", ID32),
        (f"https://gist.github.com/alice-b/{ID32}/", ID32),
        (f"https://gist.github.com/{ID32}.git", ID32),
        (f"https://gist.github.com/alice/{ID32}/{'a' * 40}", ID32),
        (f"https://gist.github.com/alice/{ID32}/revisions", ID32),
        (f"https://gist.github.com/alice/{ID32}#file-hello-py", ID32),
        (f"https://gist.github.com/alice/{ID32}?permalink_comment_id=1", ID32),
        (f"gist.github.com/alice/{ID20}", ID20),
        (f"git+https://gist.github.com/{ID32}.git", ID32),
        (f"git@gist.github.com:{ID32}.git", ID32),
        (f"https://gist.githubusercontent.com/alice/{ID32}/raw/{'b' * 40}/hello.py", ID32),
        ("https://gist.github.com/alice/1234567", "1234567"),  # the numeric IDs of old gists
    ],
)
def test_parse_gist_ref(text, gist_id):
    assert sm.parse_gist_ref(text) == gist_id


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "0123456789abcdef",  # too short to be an ID
        "0123456789abcdef0123456789abcdef0",  # too long
        "1234567",  # a bare number could be anything
        "https://gist.github.com/alice",
        "https://gist.github.com/alice/starred",
        f"https://github.com/alice/{ID32}",
        f"https://evil.example/gist.github.com/{ID32}",
        f"https://gist.github.com.evil.example/{ID32}",
    ],
)
def test_parse_gist_ref_rejects(text):
    with pytest.raises(sm.UsageProblem, match="Not a gist ID or URL"):
        sm.parse_gist_ref(text)


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
                {"name": "since", "help": "", "required": False},
            ],
        ),
        (
            CLICK,
            [
                {"name": "city", "help": "the city", "required": True},
                {"name": "units", "help": "metric or imperial", "required": False, "default": "metric"},
                {"name": "from", "help": "python keyword, renamed", "required": False},
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


GH_TOKEN = "ghp_" + "A1b2C3d4" * 5  # built up, so that this file itself holds nothing token-shaped
PAT = "github_pat_" + "11ABCDEFG0" * 3 + "_" + "x" * 59
OPENAI = "sk-proj-" + "Ab3_-" * 12
OPENAI_LEGACY = "sk-" + "T3BlbkFJ" * 6
ANTHROPIC = "sk-ant-api03-" + "Zz9_" * 20
AWS_ID = "AKIA" + "Q7XZ4R2N6M8P3K5W"  # not AWS's documented example keys: those are no secret (see test_security)
AWS_SECRET = "Zq8/Lm3+Rt7Vw2Xy" + "Kp4Hn6Jb1Cd5Fg9Ts0Ue2Wa7"
PRIVATE_KEY = (
    "-----BEGIN "
    + "OPENSSH PRIVATE KEY-----\n"
    + "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ" * 2
    + "\n-----END OPENSSH PRIVATE KEY-----"
)


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        (f'TOKEN = "{GH_TOKEN}"', "a GitHub token"),
        (f"token = '{PAT}'", "a GitHub token"),
        (f'client = OpenAI(api_key="{OPENAI}")', "an OpenAI API key"),
        (f"key = {OPENAI_LEGACY!r}", "an OpenAI API key"),
        (f'os.environ["ANTHROPIC_API_KEY"] = "{ANTHROPIC}"', "an Anthropic API key"),
        (f'aws_access_key_id = "{AWS_ID}"', "an AWS access key ID"),
        (f'aws_secret_access_key = "{AWS_SECRET}"', "an AWS secret access key"),
        (f'KEY = """{PRIVATE_KEY}"""', "a private key"),
        (f'KEY = """{PRIVATE_KEY.replace("OPENSSH ", "RSA ")}"""', "a private key"),
    ],
)
def test_find_secrets(line, kind):
    code = f"import os\n\n{line}\nprint('ok')\n"
    assert sm.find_secrets(code) == [(kind, 3)]


@pytest.mark.parametrize(
    "code",
    [
        'token = os.environ["GITHUB_PAT"]  # e.g. ghp_...',
        "import sklearn  # pip install scikit-learn; sk-learn-compatible-estimators-everywhere",
        'task = "risk-assessment-0123456789abcdefghijkl"',
        'print("-----BEGIN PUBLIC KEY-----")',
        "# see https://github.com/settings/tokens",
    ],
)
def test_find_secrets_ignores_lookalikes(code):
    assert sm.find_secrets(code) == []


def test_sm_itself_holds_no_secrets():
    assert sm.find_secrets((ROOT / "sm.py").read_text()) == []


def test_check_secrets_refuses_public_and_warns_secret(caplog):
    code = f'KEY = "{GH_TOKEN}"\n'
    with pytest.raises(
        sm.ValidationFailed, match=r"Refusing to upload x.py to a public gist: it contains a GitHub token \(line 1\)"
    ):
        sm.check_secrets(code, "x.py", public=True)
    with caplog.at_level("WARNING", logger="sm"):
        sm.check_secrets(code, "x.py", public=False)
    assert "x.py contains a GitHub token (line 1)" in caplog.text
    assert GH_TOKEN not in caplog.text


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


def test_redact_known_values_and_shapes(monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "plain-looking-secret-value")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-short")
    sm.KNOWN_SECRETS.add("from-gh-auth-token-1234")
    text = f"a plain-looking-secret-value b sk-short c from-gh-auth-token-1234 d {GH_TOKEN} e {PAT} f {OPENAI} g"
    assert sm.redact(text) == "a *** b *** c *** d *** e *** f *** g"
    assert sm.redact("nothing to hide: ghp_, sk-learn") == "nothing to hide: ghp_, sk-learn"


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


def test_generated_pyproject_matches_the_real_one():
    code = (ROOT / "sm.py").read_text()
    made = tomllib.loads(sm.pyproject_for(code))
    real = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for key in ("name", "dynamic", "requires-python", "dependencies", "scripts"):
        assert made["project"][key] == real["project"][key], key
    assert made["build-system"] == real["build-system"]
    assert made["tool"]["flit"]["module"] == real["tool"]["flit"]["module"]


@pytest.mark.parametrize(
    ("n", "text"), [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KB"), (5 * 1024**2, "5.0 MB"), (3 * 1024**3, "3.0 GB")]
)
def test_human_size(n, text):
    assert sm.human_size(n) == text


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
