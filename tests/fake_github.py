"""A strict in-process fake of the GitHub Gist REST API, version 2022-11-28.

It follows GitHub's documented behaviour (the docs.github.com REST pages and the
github/rest-api-description schemas base-gist, gist-simple, gist-commit, gist-history,
basic-error and validation-error, as summarised in the project's gist API notes). It is
strict on purpose: whatever GitHub rejects is rejected here too, with GitHub's status code
and error shape, so a client that passes against this fake has a fair chance against
api.github.com. A fake that accepted anything would prove nothing.

One server answers for two host names, the way api.github.com and
gist.githubusercontent.com are different hosts:

    url           http://127.0.0.1:PORT   the REST API
    raw_host_url  http://localhost:PORT   raw file contents (no auth needed)

API routes asked for on the raw host, and raw routes asked for on the API host, get 404.

State lives in ``gists`` (id -> record). A record is a plain dict:

    id, node_id, owner (login), public, description, created_at, updated_at (ISO 8601 Z),
    seq (ordering key, bumped on every update),
    revisions: newest first, each {version, committed_at, user (login),
               files {filename: content}, change_status {total, additions, deletions}}

Every request is logged in ``requests`` (see ``Request``), with the status that was sent
(0 when an injected fault reset the connection).

    with FakeGitHub() as gh:
        gh.add_token("ghp_x", login="alice")
        gh.inject("PATCH", r"/gists/\\w+", status=502, times=2)
        ...
"""

from __future__ import annotations

import base64
import dataclasses
import difflib
import hashlib
import json
import os
import re
import socket
import struct
import sys
import threading
import time
import traceback
import urllib.parse
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_VERSION = "2022-11-28"
DOCS = "https://docs.github.com/rest"
RATE_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
JSON_TYPE = "application/json; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"
INLINE_LIMIT = 1_048_576  # bytes of inline `content` per file (docs: "at most 1 MB")
FILES_SHOWN_LIMIT = 300  # files listed in one gist response
PER_PAGE_DEFAULT, PER_PAGE_MAX = 30, 100
AUTH_LIMIT, ANON_LIMIT = 5000, 60
UNSAFE = ("POST", "PATCH", "PUT", "DELETE")

# extension -> (type, language) as GitHub reports them
_FILE_TYPES = {
    ".py": ("application/x-python", "Python"),
    ".md": ("text/markdown", "Markdown"),
    ".txt": ("text/plain", "Text"),
    ".json": ("application/json", "JSON"),
    ".toml": ("application/toml", "TOML"),
    ".yaml": ("application/x-yaml", "YAML"),
    ".yml": ("application/x-yaml", "YAML"),
    ".sh": ("application/x-sh", "Shell"),
    ".js": ("application/javascript", "JavaScript"),
    ".rb": ("application/x-ruby", "Ruby"),
}


@dataclasses.dataclass
class Request:
    """One logged request. `headers` keys are lower-case; `path` includes the query."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    host: str
    status: int = 0  # the status sent; 0 = connection reset by an injected fault
    at: float = dataclasses.field(default_factory=time.monotonic)  # arrival time, for spacing checks
    lost_status: int | None = None  # handled for real, then the answer was lost (inject(after=True))

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclasses.dataclass
class _Fault:
    method: str
    path_re: re.Pattern[str]
    status: int | None
    headers: dict[str, str]
    body: Any
    reset: bool
    delay: float
    times: int
    after: bool = False  # handle the request for real first, then lose the answer


@dataclasses.dataclass
class _Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: str
    doc: str
    write: bool = False  # needs a token that may write gists
    etag: bool = False  # GET answer carries an ETag and honours If-None-Match
    free: bool = False  # does not count against the primary rate limit
    accepted_scopes: str = ""


@dataclasses.dataclass
class _Ctx:
    """Who is asking: login is None for anonymous; scopes is None for fine-grained tokens."""

    login: str | None
    scopes: str | None
    route: _Route | None
    rec: Request


class _Error(Exception):
    """Raised by handlers; becomes a JSON error reply."""

    def __init__(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(payload.get("message"))
        self.status, self.payload, self.headers = status, payload, headers or {}


def _basic_error(status: int, message: str, doc: str = DOCS) -> _Error:
    return _Error(status, {"message": message, "documentation_url": doc, "status": str(status)})


def _validation_failed(doc: str, code: str, field: str = "files") -> _Error:
    error = {"resource": "Gist", "code": code, "field": field}
    return _Error(
        422,
        {"message": "Validation Failed", "errors": [error], "documentation_url": doc, "status": "422"},
    )


def _invalid_request(doc: str, detail: str) -> _Error:
    """GitHub's answer to a body that breaks the endpoint's JSON schema."""
    return _Error(422, {"message": f"Invalid request.\n\n{detail}", "documentation_url": doc, "status": "422"})


def _rb(value: Any) -> str:
    """A value as GitHub's (Ruby) schema messages print it."""
    return "nil" if value is None else json.dumps(value)


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _parse_iso(text: str) -> float | None:
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _json_bytes(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _line_changes(old: str, new: str) -> tuple[int, int]:
    """(additions, deletions) between two file versions, counted in lines like a git diff."""
    if old == new:
        return 0, 0
    a, b = old.splitlines(), new.splitlines()
    lo = 0  # trim the common prefix and suffix first: exact and fast for typical edits
    while lo < len(a) and lo < len(b) and a[lo] == b[lo]:
        lo += 1
    hi_a, hi_b = len(a), len(b)
    while hi_a > lo and hi_b > lo and a[hi_a - 1] == b[hi_b - 1]:
        hi_a, hi_b = hi_a - 1, hi_b - 1
    a, b = a[lo:hi_a], b[lo:hi_b]
    if not a or not b:
        return len(b), len(a)
    adds = dels = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b).get_opcodes():
        if tag in ("replace", "delete"):
            dels += i2 - i1
        if tag in ("replace", "insert"):
            adds += j2 - j1
    return adds, dels


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    bare = etag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == bare:
            return True
    return False


def _int_param(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _check_text(value: str, doc: str) -> str:
    """Strings GitHub can store: valid Unicode (no lone surrogates from \\ud800 escapes)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _basic_error(400, "Problems parsing JSON", doc) from None
    return value


_GIST = r"/gists/(?P<gist_id>[^/]+)"
_ROUTES = [
    _Route("GET", re.compile(r"/user"), "_get_user", "users/users#get-the-authenticated-user", etag=True),
    _Route("GET", re.compile(r"/rate_limit"), "_get_rate_limit", "rate-limit/rate-limit", free=True),
    _Route("GET", re.compile(r"/gists"), "_list_gists", "gists/gists#list-gists-for-the-authenticated-user", etag=True),
    _Route(
        "POST", re.compile(r"/gists"), "_create_gist", "gists/gists#create-a-gist", write=True, accepted_scopes="gist"
    ),
    _Route("GET", re.compile(_GIST), "_get_gist", "gists/gists#get-a-gist", etag=True),
    _Route("PATCH", re.compile(_GIST), "_update_gist", "gists/gists#update-a-gist", write=True, accepted_scopes="gist"),
    _Route(
        "DELETE", re.compile(_GIST), "_delete_gist", "gists/gists#delete-a-gist", write=True, accepted_scopes="gist"
    ),
    _Route("GET", re.compile(_GIST + r"/commits"), "_list_commits", "gists/gists#list-gist-commits", etag=True),
    _Route(
        "GET", re.compile(_GIST + r"/(?P<sha>[^/]+)"), "_get_revision", "gists/gists#get-a-gist-revision", etag=True
    ),
]
_RAW = re.compile(r"/(?P<login>[^/]+)/(?P<gist_id>[^/]+)/raw/(?P<sha>[0-9a-f]{40})/(?P<filename>[^/]+)")


class FakeGitHub:
    # ══ state and test-facing API ═════════════════════════════════════════════════════════════════

    def __init__(self) -> None:
        self.url = ""
        self.raw_host_url = ""
        self.port = 0
        self.gists: dict[str, dict[str, Any]] = {}
        self.requests: list[Request] = []
        self.rate_limit_limit = AUTH_LIMIT
        self.rate_limit_remaining = AUTH_LIMIT  # authenticated requests, all users together
        self.anon_rate_limit_remaining = ANON_LIMIT  # unauthenticated requests ("per IP")
        self.clock = time.time  # tests may replace it to control timestamps
        self.monotonic = time.monotonic  # when each request arrived (Request.at); tests may replace it too
        self._rate_reset = int(time.time()) + 3600
        self._lock = threading.RLock()
        self._tokens: dict[str, tuple[str, str | None]] = {}
        self._users: dict[str, int] = {}
        self._faults: list[_Fault] = []
        self._seq = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FakeGitHub:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.raw_host_url = f"http://localhost:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, name="fake-github", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add_token(self, token: str, login: str = "alice", scopes: str | None = "gist, repo") -> None:
        """scopes "" = classic token without scopes; None = fine-grained token (no X-OAuth-Scopes)."""
        with self._lock:
            self._user_id(login)
            self._tokens[token] = (login, scopes)

    def gist_files(self, gist_id: str) -> dict[str, str]:
        with self._lock:
            return dict(self.gists[gist_id]["revisions"][0]["files"])

    def revisions(self, gist_id: str) -> list[str]:
        with self._lock:
            return [r["version"] for r in self.gists[gist_id]["revisions"]]

    def external_edit(self, gist_id: str, filename: str, content: str) -> str:
        """The owner edits (or adds) a file in the browser. Returns the head version afterwards
        (unchanged when the content is identical: git makes no empty commit)."""
        if not content.strip():
            raise ValueError("GitHub can't store an empty file")
        with self._lock:
            g = self.gists[gist_id]
            head = g["revisions"][0]
            if head["files"].get(filename) == content:
                return head["version"]
            files = {**head["files"], filename: content}
            return self._commit(g, files, g["owner"], {n: n for n in head["files"]})

    def create_gist_direct(self, owner: str, files: dict[str, str], description: str = "", public: bool = False) -> str:
        if not files or any(not name or "/" in name for name in files):
            raise ValueError("a gist needs at least one file, and names can't be empty or contain '/'")
        if any(not isinstance(c, str) or not c.strip() for c in files.values()):
            raise ValueError("GitHub can't store an empty file")
        with self._lock:
            self._user_id(owner)
            return self._new_gist(owner, dict(files), description, bool(public))["id"]

    def inject(
        self,
        method: str,
        path_regex: str,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        reset: bool = False,
        delay: float = 0.0,
        times: int = 1,
        after: bool = False,
    ) -> None:
        """The next `times` matching requests (method or "*"; path without query fully matching)
        are delayed, then reset, or answered with status/headers/body instead of normal handling.
        With neither status nor reset, the request is only delayed. With after=True the request is
        handled for real first (a gist is created, a file changed) and only then is its answer lost
        to the reset or replaced by the status, as when a proxy in front of GitHub times out."""
        if times < 1:
            raise ValueError("times must be at least 1")
        fault = _Fault(
            method.upper(), re.compile(path_regex), status, dict(headers or {}), body, reset, delay, times, after
        )
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        """GitHub recovers: injected faults that have not fired yet are dropped."""
        with self._lock:
            self._faults.clear()

    def count(self, method: str, path_regex: str) -> int:
        rx, method = re.compile(path_regex), method.upper()
        with self._lock:
            return sum(
                1
                for r in self.requests
                if (method == "*" or r.method == method) and rx.fullmatch(r.path.split("?", 1)[0])
            )

    # ══ internal state changes ════════════════════════════════════════════════════════════════════

    def _user_id(self, login: str) -> int:
        if login not in self._users:
            self._users[login] = len(self._users) + 1
        return self._users[login]

    def _new_gist(self, owner: str, files: dict[str, str], description: str | None, public: bool) -> dict[str, Any]:
        self._seq += 1
        gist_id = hashlib.md5(f"{self._seq}:{os.urandom(8).hex()}".encode()).hexdigest()
        now = _iso(self.clock())
        g = {
            "id": gist_id,
            "node_id": "G_kwDO" + base64.b64encode(bytes.fromhex(gist_id)[:12]).decode().rstrip("="),
            "owner": owner,
            "public": public,
            "description": description,
            "created_at": now,
            "updated_at": now,
            "seq": self._seq,
            "revisions": [],
        }
        self.gists[gist_id] = g
        self._commit(g, files, owner, {})
        return g

    def _commit(self, g: dict[str, Any], files: dict[str, str], user: str, sources: dict[str, str | None]) -> str:
        """Add a revision holding `files`. sources maps a new name to the name it had before
        (renames, unchanged files) so that change_status counts lines like git would."""
        old = g["revisions"][0]["files"] if g["revisions"] else {}
        adds = dels = 0
        for name, content in files.items():
            src = sources.get(name)
            a, d = _line_changes(old.get(src, "") if src else "", content)
            adds, dels = adds + a, dels + d
        kept = {s for s in sources.values() if s}
        dels += sum(len(c.splitlines()) for n, c in old.items() if n not in kept)
        self._seq += 1
        now = self.clock()
        digest = json.dumps(files, sort_keys=True)
        version = hashlib.sha1(f"{g['id']}:{self._seq}:{digest}".encode()).hexdigest()
        g["revisions"].insert(
            0,
            {
                "version": version,
                "committed_at": _iso(now),
                "user": user,
                "files": dict(files),
                "change_status": {"total": adds + dels, "additions": adds, "deletions": dels},
            },
        )
        g["updated_at"], g["seq"] = _iso(now), self._seq
        return version

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method in ("*", method) and fault.path_re.fullmatch(path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # ══ routing ═══════════════════════════════════════════════════════════════════════════════════

    def _serve(self, h: _Handler, body: bytes) -> None:
        headers = {k.lower(): v for k, v in h.headers.items()}
        rec = Request(h.command, h.path, headers, body, headers.get("host", ""), at=self.monotonic())
        path = h.path.split("?", 1)[0]
        fault = self._take_fault(rec.method, path)
        if fault is not None and fault.after:
            with self._lock:
                done = self._route(rec, path)
            rec.lost_status = done.status  # what GitHub did, though the client never hears it
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.reset:
                self._log(rec, 0)
                h.reset_connection()
                return
            if fault.status is not None:
                reply = self._fault_reply(fault)
                self._log(rec, reply.status)
                h.send_reply(reply)
                return
        try:
            with self._lock:
                reply = self._route(rec, path)
        except Exception:  # a bug in the fake: make it loud
            traceback.print_exc(file=sys.stderr)
            reply = _Reply(500, _json_bytes({"message": "fake_github crashed"}), {"Content-Type": JSON_TYPE})
        self._log(rec, reply.status)
        h.send_reply(reply)

    def _log(self, rec: Request, status: int) -> None:
        rec.status = status
        with self._lock:
            self.requests.append(rec)

    def _fault_reply(self, fault: _Fault) -> _Reply:
        status = fault.status or 500
        headers = {"Content-Type": JSON_TYPE}
        if status in (204, 304):
            body = b""
            del headers["Content-Type"]
        elif fault.body is not None:
            body = _json_bytes(fault.body)
        else:
            phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
            body = _json_bytes({"message": phrase, "documentation_url": DOCS, "status": str(status)})
        headers.update(fault.headers)
        return _Reply(status, body, headers)

    def _route(self, rec: Request, path: str) -> _Reply:
        host = rec.host.lower()
        if host == f"localhost:{self.port}":
            return self._raw(rec, path)
        if host != f"127.0.0.1:{self.port}":
            return self._json(404, {"message": "Not Found", "documentation_url": DOCS, "status": "404"})
        return self._api(rec, path)

    def _refresh_window(self) -> None:
        now = int(time.time())
        if now >= self._rate_reset:
            self._rate_reset = now + 3600
            self.rate_limit_remaining, self.anon_rate_limit_remaining = self.rate_limit_limit, ANON_LIMIT

    def _api(self, rec: Request, path: str) -> _Reply:
        hdrs = rec.headers
        self._refresh_window()
        ctx = _Ctx(None, None, None, rec)
        if not hdrs.get("user-agent", "").strip():
            msg = "Request forbidden by administrative rules. Please make sure your request has a User-Agent header"
            return self._finish(ctx, self._error_reply(_basic_error(403, msg)), count=False)
        version = hdrs.get("x-github-api-version")
        if version is not None and version.strip() != API_VERSION:
            err = _basic_error(
                400,
                f"Unsupported 'X-GitHub-Api-Version' header: {version}. The supported versions are {API_VERSION}.",
                f"{DOCS}/overview/api-versions",
            )
            return self._finish(ctx, self._error_reply(err), count=False)

        auth = hdrs.get("authorization")
        if auth is not None:
            scheme, _, token = auth.strip().partition(" ")
            token = token.strip()
            if scheme.lower() not in ("bearer", "token") or token not in self._tokens:
                return self._finish(ctx, self._error_reply(_basic_error(401, "Bad credentials")))
            ctx.login, ctx.scopes = self._tokens[token]

        route, params = None, {}
        for candidate in _ROUTES:
            m = candidate.pattern.fullmatch(path)
            if m and candidate.method == rec.method:
                route, params = candidate, m.groupdict()
                break
        ctx.route = route
        free = route is not None and route.free

        if not free and self._remaining(ctx) <= 0:
            if ctx.login:
                msg = f"API rate limit exceeded for user ID {self._users[ctx.login]}."
            else:
                msg = (
                    "API rate limit exceeded for 127.0.0.1. (But here's the good news: Authenticated requests "
                    "get a higher rate limit. Check out the documentation for more details.)"
                )
            err = _basic_error(403, msg, RATE_DOCS)
            return self._finish(ctx, self._error_reply(err), count=False)

        try:
            if route is None:
                raise _basic_error(404, "Not Found")
            doc = f"{DOCS}/{route.doc}"
            if rec.method in UNSAFE and ("if-match" in hdrs or "if-unmodified-since" in hdrs):
                raise _basic_error(
                    400,
                    "Conditional request headers are not allowed in unsafe requests unless supported by the endpoint",
                    doc,
                )
            if route.write:
                if ctx.login is None:
                    raise _basic_error(401, "Requires authentication", doc)
                if ctx.scopes is not None and "gist" not in [s.strip() for s in ctx.scopes.split(",")]:
                    raise _basic_error(404, "Not Found", doc)  # GitHub hides gists from tokens without the scope
            reply = getattr(self, route.handler)(ctx, **params)
        except _Error as e:
            reply = self._error_reply(e)

        if route is not None and route.etag and rec.method == "GET" and reply.status == 200:
            etag = 'W/"' + hashlib.sha256(reply.body).hexdigest() + '"'
            reply.headers["ETag"] = etag
            if _etag_matches(hdrs.get("if-none-match"), etag):
                reply = _Reply(304, b"", {"ETag": etag})
        return self._finish(ctx, reply, count=not free and reply.status != 304)

    def _remaining(self, ctx: _Ctx) -> int:
        return self.rate_limit_remaining if ctx.login else self.anon_rate_limit_remaining

    def _finish(self, ctx: _Ctx, reply: _Reply, count: bool = True) -> _Reply:
        """Count the request against the primary limit and add GitHub's standard headers."""
        if count:
            if ctx.login:
                self.rate_limit_remaining = max(0, self.rate_limit_remaining - 1)
            else:
                self.anon_rate_limit_remaining = max(0, self.anon_rate_limit_remaining - 1)
        limit = self.rate_limit_limit if ctx.login else ANON_LIMIT
        remaining = self._remaining(ctx)
        headers = {
            "X-GitHub-Api-Version-Selected": API_VERSION,
            "X-GitHub-Media-Type": "github.v3; format=json",
            "X-GitHub-Request-Id": os.urandom(8).hex().upper(),
            "x-ratelimit-limit": str(limit),
            "x-ratelimit-remaining": str(remaining),
            "x-ratelimit-reset": str(self._rate_reset),
            "x-ratelimit-used": str(limit - remaining),
            "x-ratelimit-resource": "core",
            "Vary": "Accept, Authorization, Cookie, X-GitHub-OTP",
        }
        if ctx.login and ctx.scopes is not None:
            headers["X-OAuth-Scopes"] = ctx.scopes
            headers["X-Accepted-OAuth-Scopes"] = ctx.route.accepted_scopes if ctx.route else ""
        elif ctx.login and ctx.route is not None and ctx.route.write:
            headers["X-Accepted-GitHub-Permissions"] = "gists=write"
        headers.update(reply.headers)
        reply.headers = headers
        return reply

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> _Reply:
        return _Reply(status, _json_bytes(payload), {"Content-Type": JSON_TYPE, **(headers or {})})

    def _error_reply(self, e: _Error) -> _Reply:
        return self._json(e.status, e.payload, e.headers)

    def _raw(self, rec: Request, path: str) -> _Reply:
        m = _RAW.fullmatch(path) if rec.method == "GET" else None
        g = self.gists.get(m["gist_id"]) if m else None
        if m and g and g["owner"] == m["login"]:
            filename = urllib.parse.unquote(m["filename"])
            for rev in g["revisions"]:
                if rev["version"] == m["sha"] and filename in rev["files"]:
                    data = rev["files"][filename].encode("utf-8")
                    etag = '"' + hashlib.sha256(data).hexdigest() + '"'
                    if _etag_matches(rec.headers.get("if-none-match"), etag):
                        return _Reply(304, b"", {"ETag": etag})
                    headers = {"Content-Type": TEXT_TYPE, "Cache-Control": "max-age=300", "ETag": etag}
                    return _Reply(200, data, headers)
        return _Reply(404, b"404: Not Found", {"Content-Type": TEXT_TYPE})

    # ══ JSON shapes ═══════════════════════════════════════════════════════════════════════════════

    def _simple_user(self, login: str) -> dict[str, Any]:
        uid = self._user_id(login)
        api = f"{self.url}/users/{login}"
        return {
            "login": login,
            "id": uid,
            "node_id": "U_kgDO" + base64.b64encode(uid.to_bytes(4, "big")).decode().rstrip("="),
            "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
            "gravatar_id": "",
            "url": api,
            "html_url": f"https://github.com/{login}",
            "followers_url": f"{api}/followers",
            "following_url": f"{api}/following{{/other_user}}",
            "gists_url": f"{api}/gists{{/gist_id}}",
            "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{api}/subscriptions",
            "organizations_url": f"{api}/orgs",
            "repos_url": f"{api}/repos",
            "events_url": f"{api}/events{{/privacy}}",
            "received_events_url": f"{api}/received_events",
            "type": "User",
            "user_view_type": "public",
            "site_admin": False,
        }

    def _file_json(self, g: dict[str, Any], rev: dict[str, Any], name: str, full: bool) -> dict[str, Any]:
        content = rev["files"][name]
        data = content.encode("utf-8")
        ext = os.path.splitext(name)[1].lower()
        mime, language = _FILE_TYPES.get(ext, ("text/plain", None))
        raw_url = f"{self.raw_host_url}/{g['owner']}/{g['id']}/raw/{rev['version']}/{urllib.parse.quote(name, safe='')}"
        out: dict[str, Any] = {
            "filename": name,
            "type": mime,
            "language": language,
            "raw_url": raw_url,
            "size": len(data),
        }
        if full:
            truncated = len(data) > INLINE_LIMIT
            inline = data[:INLINE_LIMIT].decode("utf-8", "ignore") if truncated else content
            out.update(truncated=truncated, content=inline, encoding="utf-8")
        return out

    def _history_json(self, g: dict[str, Any], rev: dict[str, Any]) -> dict[str, Any]:
        return {
            "user": self._simple_user(rev["user"]),
            "version": rev["version"],
            "committed_at": rev["committed_at"],
            "change_status": dict(rev["change_status"]),
            "url": f"{self.url}/gists/{g['id']}/{rev['version']}",
        }

    def _commit_json(self, g: dict[str, Any], rev: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"{self.url}/gists/{g['id']}/{rev['version']}",
            "version": rev["version"],
            "user": self._simple_user(rev["user"]),
            "change_status": dict(rev["change_status"]),
            "committed_at": rev["committed_at"],
        }

    def _gist_json(self, g: dict[str, Any], rev_index: int = 0, *, full: bool = True) -> dict[str, Any]:
        """gist-simple (full=True: single gist, create, update, revision) or base-gist (lists)."""
        rev = g["revisions"][rev_index]
        names = sorted(rev["files"])
        api = f"{self.url}/gists/{g['id']}"
        out: dict[str, Any] = {
            "url": api,
            "forks_url": f"{api}/forks",
            "commits_url": f"{api}/commits",
            "id": g["id"],
            "node_id": g["node_id"],
            "git_pull_url": f"https://gist.github.com/{g['id']}.git",
            "git_push_url": f"https://gist.github.com/{g['id']}.git",
            "html_url": f"https://gist.github.com/{g['id']}",
            "files": {n: self._file_json(g, rev, n, full) for n in names[:FILES_SHOWN_LIMIT]},
            "public": g["public"],
            "created_at": g["created_at"],
            "updated_at": g["updated_at"],
            "description": g["description"],
            "comments": 0,
            "comments_enabled": True,
            "user": None,
            "comments_url": f"{api}/comments",
            "owner": self._simple_user(g["owner"]),
        }
        if full:
            out["forks"] = []
            out["history"] = [self._history_json(g, r) for r in g["revisions"][rev_index:]]
        out["truncated"] = len(names) > FILES_SHOWN_LIMIT
        return out

    def _paginate(self, ctx: _Ctx, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
        """per_page (default 30, at most 100) / page slicing plus GitHub's Link header."""
        path, _, query = ctx.rec.path.partition("?")
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
        params = dict(pairs)
        per_page = _int_param(params.get("per_page"), PER_PAGE_DEFAULT)
        per_page = PER_PAGE_DEFAULT if per_page < 1 else min(per_page, PER_PAGE_MAX)
        page = max(1, _int_param(params.get("page"), 1))
        last = max(1, -(-len(items) // per_page))

        def link(p: int, rel: str) -> str:
            qs = urllib.parse.urlencode([(k, v) for k, v in pairs if k != "page"] + [("page", str(p))])
            return f'<http://{ctx.rec.host}{path}?{qs}>; rel="{rel}"'

        links = []
        if page > 1:
            links.append(link(page - 1, "prev"))
        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links.append(link(1, "first"))
        return items[(page - 1) * per_page : page * per_page], ({"Link": ", ".join(links)} if links else {})

    # ══ handlers ══════════════════════════════════════════════════════════════════════════════════

    def _doc(self, ctx: _Ctx) -> str:
        return f"{DOCS}/{ctx.route.doc}" if ctx.route else DOCS

    def _body(self, ctx: _Ctx) -> dict[str, Any]:
        try:
            data = json.loads(ctx.rec.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise _basic_error(400, "Problems parsing JSON", self._doc(ctx)) from None
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise _basic_error(400, "Body should be a JSON object", self._doc(ctx))
        return data

    def _find(self, ctx: _Ctx, gist_id: str, *, own: bool = False) -> dict[str, Any]:
        g = self.gists.get(gist_id)
        if g is None or (own and g["owner"] != ctx.login):
            raise _basic_error(404, "Not Found", self._doc(ctx))
        return g

    def _check_filename(self, ctx: _Ctx, name: str) -> str:
        _check_text(name, self._doc(ctx))
        if not name or "/" in name:
            raise _validation_failed(self._doc(ctx), "invalid")  # "Gist.files is invalid"
        return name

    def _get_user(self, ctx: _Ctx) -> _Reply:
        if ctx.login is None:
            raise _basic_error(401, "Requires authentication", self._doc(ctx))
        mine = [g for g in self.gists.values() if g["owner"] == ctx.login]
        user = self._simple_user(ctx.login)
        user.update(
            user_view_type="private",
            name=None,
            company=None,
            blog="",
            location=None,
            email=None,
            hireable=None,
            bio=None,
            twitter_username=None,
            notification_email=None,
            public_repos=0,
            public_gists=sum(g["public"] for g in mine),
            followers=0,
            following=0,
            created_at="2020-01-01T00:00:00Z",
            updated_at="2020-01-01T00:00:00Z",
            private_gists=sum(not g["public"] for g in mine),
            total_private_repos=0,
            owned_private_repos=0,
            disk_usage=0,
            collaborators=0,
            two_factor_authentication=True,
            plan={"name": "free", "space": 976562499, "collaborators": 0, "private_repos": 10000},
        )
        return self._json(200, user)

    def _get_rate_limit(self, ctx: _Ctx) -> _Reply:
        limit = self.rate_limit_limit if ctx.login else ANON_LIMIT
        remaining = self._remaining(ctx)
        core = {"limit": limit, "used": limit - remaining, "remaining": remaining, "reset": self._rate_reset}
        return self._json(200, {"resources": {"core": core}, "rate": dict(core)})

    def _list_gists(self, ctx: _Ctx) -> _Reply:
        query = dict(urllib.parse.parse_qsl(ctx.rec.path.partition("?")[2], keep_blank_values=True))
        if ctx.login is None:
            items = [g for g in self.gists.values() if g["public"]]
        else:
            items = [g for g in self.gists.values() if g["owner"] == ctx.login]
        if "since" in query:
            since = _parse_iso(query["since"])
            if since is None:
                raise _invalid_request(self._doc(ctx), f"For 'since', {_rb(query['since'])} is not a date-time.")
            items = [g for g in items if _parse_iso(g["updated_at"]) >= since]
        items.sort(key=lambda g: g["seq"], reverse=True)
        page, headers = self._paginate(ctx, items)
        return self._json(200, [self._gist_json(g, full=False) for g in page], headers)

    def _create_gist(self, ctx: _Ctx) -> _Reply:
        doc = self._doc(ctx)
        body = self._body(ctx)
        description = body.get("description")
        if "description" in body and not isinstance(description, str):
            raise _invalid_request(doc, f"For 'properties/description', {_rb(description)} is not a string.")
        if description is not None:
            _check_text(description, doc)
        public = body.get("public", False)
        if public in ("true", "false"):
            public = public == "true"
        if not isinstance(public, bool):
            raise _invalid_request(doc, f"For 'properties/public', {_rb(public)} is not a boolean.")
        files = body.get("files")
        if files is None:
            raise _validation_failed(doc, "missing_field")
        if not isinstance(files, dict):
            raise _invalid_request(doc, f"For 'properties/files', {_rb(files)} is not an object.")
        kept: dict[str, str] = {}
        unnamed = 0
        for name, spec in files.items():
            if not isinstance(spec, dict):
                raise _invalid_request(doc, f"For 'properties/files/{name}', {_rb(spec)} is not an object.")
            if "content" not in spec:
                raise _invalid_request(doc, f'"content" wasn\'t supplied for file {_rb(name)}.')
            content = spec["content"]
            if not isinstance(content, str):
                raise _invalid_request(doc, f"For 'properties/content', {_rb(content)} is not a string.")
            if not content.strip():
                continue  # empty files are silently dropped
            if name == "":
                unnamed += 1
                name = f"gistfile{unnamed}.txt"
            kept[self._check_filename(ctx, name)] = _check_text(content, doc)
        if not kept:
            raise _validation_failed(doc, "missing_field")
        g = self._new_gist(ctx.login, kept, description, public)
        return self._json(201, self._gist_json(g), {"Location": f"{self.url}/gists/{g['id']}"})

    def _get_gist(self, ctx: _Ctx, gist_id: str) -> _Reply:
        return self._json(200, self._gist_json(self._find(ctx, gist_id)))

    def _get_revision(self, ctx: _Ctx, gist_id: str, sha: str) -> _Reply:
        g = self._find(ctx, gist_id)
        for i, rev in enumerate(g["revisions"]):
            if rev["version"] == sha:
                return self._json(200, self._gist_json(g, i))
        raise _basic_error(404, "Not Found", self._doc(ctx))

    def _list_commits(self, ctx: _Ctx, gist_id: str) -> _Reply:
        g = self._find(ctx, gist_id)
        page, headers = self._paginate(ctx, g["revisions"])
        return self._json(200, [self._commit_json(g, r) for r in page], headers)

    def _delete_gist(self, ctx: _Ctx, gist_id: str) -> _Reply:
        g = self._find(ctx, gist_id, own=True)
        del self.gists[g["id"]]
        return _Reply(204)

    def _update_gist(self, ctx: _Ctx, gist_id: str) -> _Reply:
        doc = self._doc(ctx)
        g = self._find(ctx, gist_id, own=True)
        body = self._body(ctx)
        files_spec = body.get("files")
        if "description" not in body and files_spec is None:
            raise _validation_failed(doc, "missing_field")
        description = body.get("description", g["description"])
        if "description" in body:
            if not isinstance(description, str):
                raise _invalid_request(doc, f"For 'properties/description', {_rb(description)} is not a string.")
            _check_text(description, doc)
        if files_spec is not None and not isinstance(files_spec, dict):
            raise _invalid_request(doc, f"For 'properties/files', {_rb(files_spec)} is not an object.")

        head = g["revisions"][0]["files"]
        removed: list[str] = []
        added: list[tuple[str, str, str | None]] = []  # (new name, content, old name)
        for key, spec in (files_spec or {}).items():
            if spec is not None and not isinstance(spec, dict):
                raise _invalid_request(doc, f"For 'properties/files/{key}', {_rb(spec)} is not an object.")
            spec = spec or {}
            content, new_name = spec.get("content"), spec.get("filename")
            if content is not None and not isinstance(content, str):
                raise _invalid_request(doc, f"For 'properties/content', {_rb(content)} is not a string.")
            if new_name is not None and not isinstance(new_name, str):
                raise _invalid_request(doc, f"For 'properties/filename', {_rb(new_name)} is not a string.")
            if key in head:
                removed.append(key)
                if content is None and new_name is None:
                    continue  # null or {}: delete the file
                if content is not None and not content.strip():
                    continue  # emptied: delete the file
                target = self._check_filename(ctx, new_name if new_name is not None else key)
                added.append((target, _check_text(content if content is not None else head[key], doc), key))
            else:
                if content is None:
                    raise _validation_failed(doc, "missing_field")  # delete/rename of a file that isn't there
                if not content.strip():
                    continue  # a new, empty file is dropped
                target = self._check_filename(ctx, new_name if new_name is not None else key)
                added.append((target, _check_text(content, doc), None))

        files = {n: c for n, c in head.items() if n not in removed}
        sources: dict[str, str | None] = {n: n for n in files}
        for target, content, src in added:
            if target in files:
                raise _validation_failed(doc, "already_exists")
            files[target], sources[target] = content, src
        if not files:
            raise _validation_failed(doc, "missing_field")

        desc_changed = description != g["description"]
        g["description"] = description
        if files != head:
            self._commit(g, files, ctx.login, sources)
        elif desc_changed:  # a description-only edit is not a git commit, but it does touch the gist
            self._seq += 1
            g["updated_at"], g["seq"] = _iso(self.clock()), self._seq
        return self._json(200, self._gist_json(g))


# ══ HTTP plumbing ═════════════════════════════════════════════════════════════════════════════════


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64
    fake: FakeGitHub

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle's algorithm the body waits for the client's delayed
    # ACK, ~40 ms on every request.
    disable_nagle_algorithm = True
    timeout = 60  # idle keep-alive connections are dropped after this

    def version_string(self) -> str:
        return "GitHub.com"

    def log_message(self, format: str, *args: Any) -> None:  # silence the default request logging
        pass

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            self.send_reply(_Reply(400, _json_bytes({"message": "Bad request"}), {"Content-Type": JSON_TYPE}))
            return
        self.server.fake._serve(self, body)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _handle

    def send_reply(self, reply: _Reply) -> None:
        self.send_response(reply.status)
        for key, value in reply.headers.items():
            self.send_header(key, value)
        no_body = reply.status in (204, 304)
        if not no_body:
            self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if not no_body and self.command != "HEAD":
            self.wfile.write(reply.body)

    def reset_connection(self) -> None:
        """Drop the connection with a TCP RST and no response at all."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.rfile.close()  # release the makefile() reference so close() really closes the socket
        self.connection.close()
