"""The GitHub client: GitHub's rules for retrying (a pure function) and the client that follows them on the tests'
virtual clock; where the token is sent and where it comes from; gist references."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest
from conftest import TOKEN, add, doctor_json, entry

import sm

# ── GitHub's rules for retrying (pure) ────────────────────────────────────────────────────────────


NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("method", "tries", "answer", "wait"),
    [
        ("GET", 1, {"status": 200}, None),
        ("GET", 1, {"status": 404}, None),
        ("GET", 1, {"status": 502}, 0.5),
        ("GET", 3, {"status": 503}, 2.0),
        ("GET", 8, {"status": 502}, None),  # out of tries
        ("PATCH", 2, {"status": 500}, 1.0),
        ("POST", 1, {"status": 502}, None),  # the gist may exist: create_gist looks for it instead
        ("GET", 1, {"status": 429, "headers": {"retry-after": "7"}}, 7.0),
        (
            "GET",
            1,
            {"status": 403, "headers": {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(NOW + 30)}},
            31.0,
        ),
        ("GET", 1, {"status": 403, "headers": {"retry-after": "soon", "x-ratelimit-remaining": "0"}}, 60.0),
        ("GET", 1, {"status": 403, "message": "You have exceeded a secondary rate limit"}, 60.0),
        ("GET", 1, {"status": 403, "message": "Resource not accessible by integration"}, None),
        ("GET", 1, {"failure": "refused"}, 0.5),
        ("GET", 3, {"failure": "refused"}, None),  # offline: give up soon
        ("GET", 5, {"failure": "failed"}, 8.0),
        ("GET", 6, {"failure": "failed"}, None),
        ("POST", 1, {"failure": "refused"}, 0.5),  # nothing reached GitHub: safe to try again
        ("POST", 1, {"failure": "failed"}, None),  # it may have: the caller is told the answer was lost
    ],
)
def test_retry_wait_follows_githubs_rules(method, tries, answer, wait):
    assert sm.retry_wait(method, tries, now=NOW, jitter=1.0, **answer) == wait


def test_backoff_doubles_up_to_half_a_minute_with_jitter():
    assert [sm.backoff(n, 1.0) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert sm.backoff(3, 0.5) == 1.0


# ── the client: retries on the clock, within the budget, writes spaced ────────────────────────────


def test_waits_go_through_the_clock_and_stay_within_the_budget(github_env, clock, monkeypatch):
    github_env.inject("GET", "/user", status=503, times=50)
    gh = sm.GitHub("ghp_x", github_env.url, retry_budget=5)
    assert gh.request("GET", "/user").status_code == 503  # given up: the caller makes it a clear error
    assert clock.slept and sum(clock.slept) <= 5
    assert github_env.count("GET", "/user") == len(clock.slept) + 1


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


def test_mutations_are_spaced_one_second(machine, github_env, monkeypatch):
    monkeypatch.delenv("SM_WRITE_INTERVAL")  # the default, as GitHub asks
    gh = machine("A")
    add(gh, "one")
    add(gh, "two")
    writes = [r for r in github_env.requests if r.method in ("POST", "PATCH", "DELETE")]
    assert len(writes) >= 3
    assert all(b.at - a.at >= 0.99 for a, b in zip(writes, writes[1:], strict=False))


def test_create_unreachable_host(llm, invoke, monkeypatch):
    monkeypatch.setenv("GITHUB_PAT", TOKEN)
    monkeypatch.setenv("SM_GITHUB_API_URL", "http://127.0.0.1:9")
    result = invoke("create", "x", "print hi")
    assert result.exit_code == 1
    assert "Cannot reach 127.0.0.1:9" in result.stderr
    assert llm.requests == []


def test_missing_gist_says_404_and_scope(created, invoke, github_env):
    github_env.gists.pop(created["gist_id"])
    sm.cached_path(created).unlink()
    result = invoke("show", "greet")
    assert result.exit_code == 1
    assert "not found (404)" in result.stderr and "gist` scope" in result.stderr


# ── requests: GitHub's headers, the token to the API origin only, https ───────────────────────────


def test_requests_carry_github_headers(created, github_env):
    post = next(r for r in github_env.requests if r.method == "POST")
    assert post.headers["accept"] == "application/vnd.github+json"
    assert post.headers["x-github-api-version"] == "2022-11-28"
    assert post.headers["user-agent"].startswith("sm/")
    assert post.headers["authorization"] == f"Bearer {TOKEN}"


def test_token_goes_only_to_the_api_origin():
    """Same host name on another port or scheme is another server: it gets no token."""
    import httpx2

    gh = sm.GitHub(TOKEN, "http://127.0.0.1:8000")
    sent = {}

    def record(method, url, **kw):
        sent[url] = "Authorization" in kw["headers"]
        return httpx2.Response(200, json={})

    gh._client.request = record
    urls = [
        "http://127.0.0.1:8000/gists",
        "http://127.0.0.1:9/gists",
        "https://127.0.0.1:8000/gists",
        "http://localhost:8000/gists",
    ]
    for url in urls:
        gh.request("GET", url)
    assert sent == dict(zip(urls, [True, False, False, False], strict=True))


def test_api_url_without_scheme(invoke, monkeypatch):
    monkeypatch.setenv("GITHUB_PAT", TOKEN)
    monkeypatch.setenv("SM_GITHUB_API_URL", "ghe.example.com/api/v3")
    result = invoke("sync")
    assert result.exit_code == 1 and "must start with https://" in result.stderr


# ── where the token comes from ────────────────────────────────────────────────────────────────────


@pytest.fixture
def fake_gh(tmp_path, monkeypatch):
    """A `gh` on PATH whose `auth token` prints what the test writes to its token file."""
    folder = tmp_path / "ghbin"
    folder.mkdir()
    token_file = folder / "token"
    gh = folder / "gh"
    gh.write_text(
        f'#!/bin/sh\n[ "$1 $2" = "auth token" ] && [ -s {token_file} ] && cat {token_file} && exit 0\nexit 1\n'
    )
    gh.chmod(gh.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(sm, "which", lambda cmd, *a, **k: str(gh) if cmd == "gh" else None)
    return token_file


def test_token_order_ends_with_gh(fake_gh, monkeypatch):
    with pytest.raises(sm.ConfigError, match="GITHUB_PAT.*gh auth login"):
        sm.find_token()  # gh is there but not logged in
    fake_gh.write_text("gho_fromgh\n")
    assert sm.find_token() == ("gho_fromgh", "gh auth token")
    monkeypatch.setenv("GH_TOKEN", "  ")  # blank values are skipped
    assert sm.find_token() == ("gho_fromgh", "gh auth token")
    monkeypatch.setenv("GH_TOKEN", "c")
    assert sm.find_token() == ("c", "GH_TOKEN")
    monkeypatch.setenv("GITHUB_TOKEN", "b")
    assert sm.find_token() == ("b", "GITHUB_TOKEN")
    monkeypatch.setenv("GITHUB_PAT", "a")
    assert sm.find_token() == ("a", "GITHUB_PAT")


def test_gh_token_is_used_reported_and_redacted(fake_gh, github_env, invoke, monkeypatch, local_script):
    monkeypatch.delenv("GITHUB_PAT")
    fake_gh.write_text(TOKEN + "\n")
    result = invoke("-v", "add", "weather", str(local_script))
    assert result.exit_code == 0, result.output
    assert "GitHub token from gh auth token" in result.stderr
    assert doctor_json(invoke)[2]["token"]["detail"] == "from gh auth token"
    github_env.inject("POST", "/gists", status=422, body={"message": f"token {TOKEN} rejected"})
    failed = invoke("add", "again", str(local_script))
    assert failed.exit_code == 1 and "token *** rejected" in failed.stderr
    assert TOKEN not in failed.output


# ── gist references ───────────────────────────────────────────────────────────────────────────────


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
        (f"https://gist.github.com/alice/{ID32.upper()}", ID32),
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
        (f"https://ghe.example.com/gist/alice/{ID20}", ID20),  # GitHub Enterprise
        ("https://gist.github.com/alice/1234567", "1234567"),  # the numeric IDs of old gists
    ],
)
def test_gist_references(text, gist_id):
    assert sm.gist_ref(text).gist_id == gist_id


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "0123456789abcdef",  # too short to be an ID
        "0123456789abcdef0123456789abcdef0",  # too long
        "https://gist.github.com/alice",
        "https://gist.github.com/alice/starred",
        f"https://github.com/alice/{ID32}",
        f"https://evil.example.com/{ID20}",
        f"https://evil.example/gist.github.com/{ID32}",
        f"https://gist.github.com.evil.example/{ID32}",
    ],
)
def test_what_is_not_a_gist_reference(text):
    assert sm.gist_ref(text) is None
    with pytest.raises(sm.UsageProblem, match="Not a gist ID or URL"):
        sm.parse_gist_ref(text)


# ── every gist link form people copy (tests/fixtures/gist_refs.json) ─────────────────────────────────

GIST_REFS = json.loads((Path(__file__).parent / "fixtures" / "gist_refs.json").read_text())
REF_FIELDS = ("gist_id", "revision", "filename", "file_anchor", "user", "host")


@pytest.mark.parametrize("case", GIST_REFS, ids=[c["input"] or "empty" for c in GIST_REFS])
def test_every_gist_link_form(case):
    ref = sm.gist_ref(case["input"])
    if case["gist_id"] is None:
        assert ref is None
        with pytest.raises(sm.UsageProblem, match="Not a gist ID or URL"):
            sm.parse_gist_ref(case["input"])
    else:
        assert {f: getattr(ref, f) for f in REF_FIELDS} == {f: case[f] for f in REF_FIELDS}


GHES_LINK = "https://github.example.com/gist/mira/7d1e2b9c40a35f86e0c4d21ab3f97c58"


def test_an_enterprise_link_is_refused_unless_its_host_is_the_configured_api(monkeypatch):
    with pytest.raises(
        sm.UsageProblem, match=r"sends your token only there.*SM_GITHUB_API_URL=https://github\.example"
    ):
        sm.parse_gist_ref(GHES_LINK)
    monkeypatch.setenv("SM_GITHUB_API_URL", "https://github.example.com/api/v3")
    assert sm.parse_gist_ref(GHES_LINK).gist_id == "7d1e2b9c40a35f86e0c4d21ab3f97c58"
    with pytest.raises(sm.UsageProblem, match="sends your token only there"):
        sm.parse_gist_ref(GHES_LINK.replace("github.example.com", "other.example.com"))


def test_file_anchor_is_githubs_rule():
    assert [sm.file_anchor(n) for n in ("hello_world.py", "My Script.PY", "--a..b.py")] == [
        "hello_world-py",
        "my-script-py",
        "a-b-py",
    ]
