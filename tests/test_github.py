"""The GitHub client: GitHub's rules for retrying, as a pure function, and the client that follows them."""

from __future__ import annotations

import pytest

import sm

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


def test_waits_go_through_the_clock_and_stay_within_the_budget(github_env, clock, monkeypatch):
    github_env.inject("GET", "/user", status=503, times=50)
    gh = sm.GitHub("ghp_x", github_env.url, retry_budget=5)
    assert gh.request("GET", "/user").status_code == 503  # given up: the caller makes it a clear error
    assert clock.slept and sum(clock.slept) <= 5
    assert github_env.count("GET", "/user") == len(clock.slept) + 1
