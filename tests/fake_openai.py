"""A strict fake OpenAI-compatible Chat Completions server for offline tests.

Only ``POST /v1/chat/completions`` exists.  Like the real API it answers a
wrong client with an OpenAI-style error body ``{"error": {"message", "type",
"code", "param"}}``: 404 for other paths, 401 for a missing/wrong
``Authorization: Bearer <api_key>``, 400 for a malformed body (no ``model``,
empty ``messages``, unknown roles, a ``tool`` message whose ``tool_call_id``
answers no preceding assistant tool call, an assistant tool call left without
its tool message, ``tool_choice`` without ``tools``, ...).  Every 4xx/5xx
this server sends is also appended to ``.errors`` as ``"<status>: <message>"``.

Usage::

    with FakeOpenAI() as fake:                 # or FakeOpenAI(responder).start()
        fake.queue({"description": "d", "code": "print(1)"})
        env["OPENAI_BASE_URL"] = fake.url      # http://127.0.0.1:PORT/v1
        ...
        fake.requests                          # parsed JSON bodies, in order

Each request takes the next queued reply (FIFO), else ``responder(request)``;
a queued item may itself be a callable taking the request.  A reply is:

* ``dict`` -- arguments of a call to the forced output tool.  The request must
  carry ``tools`` with exactly one function tool named ``final_result*`` and a
  ``tool_choice`` of ``"required"``, ``"auto"`` or ``{"type": "function",
  "function": {"name": <that tool>}}``; else 400.  Answered with
  ``message.tool_calls=[{id: "call_<n>", ...}]``, finish_reason ``tool_calls``.
* ``ToolReply(arguments, name=None)`` -- the same, but ``arguments`` may be a
  raw string (e.g. broken JSON) and ``name`` overrides the tool name.
* ``str`` -- a plain assistant text message, finish_reason ``stop``.
* error reply -- any dict with a ``"__status__"`` key, best built with
  ``FakeOpenAI.error(status, message, type=..., code=..., headers=...)``::

      {"__status__": 500,
       "__body__": {"error": {...}},        # optional; default OpenAI-style body
       "__headers__": {"retry-after": "0"}} # optional extra response headers

  Note the openai SDK itself retries 408/409/429/5xx twice (queue three, pass
  ``headers={"x-should-retry": "false"}``, or set ``max_retries`` 0).

With no reply queued and no responder the server answers 400
(code ``fake_no_reply``) so a test fails loudly instead of hanging.

With ``"stream": true`` the answer is ``text/event-stream`` (chunked
transfer): ``data: {chat.completion.chunk}`` lines -- role/tool header, then
the arguments (or text) in ``chunk_size``-character pieces with
``stream_delay`` seconds between chunks, then a ``finish_reason`` chunk, a
usage chunk if ``stream_options.include_usage``, and ``data: [DONE]``.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROLES = {"system", "developer", "user", "assistant", "tool"}


@dataclass
class ToolReply:
    """A tool-call reply with raw control over the arguments string / tool name."""

    arguments: dict | str
    name: str | None = None


class _ApiError(Exception):
    def __init__(self, status, message, type="invalid_request_error", code=None, param=None, headers=None):
        super().__init__(message)
        self.status, self.headers = status, headers or {}
        self.body = {"error": {"message": message, "type": type, "param": param, "code": code}}


class FakeOpenAI:
    chunk_size = 40  # characters of arguments/text per streamed chunk
    stream_delay = 0.0  # seconds to sleep between streamed chunks

    def __init__(self, responder=None, *, api_key: str = "sk-test"):
        self.responder, self.api_key = responder, api_key
        self.requests: list[dict] = []
        self.errors: list[str] = []
        self._queue: list = []
        self._lock = threading.Lock()
        self._calls = 0
        self._server = None
        self.url = ""

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> FakeOpenAI:
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.block_on_close = False  # don't join idle keep-alive threads
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        # serve_forever checks for shutdown every poll_interval: 0.5 s by default, paid by every test's teardown
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
        return self

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- replies -----------------------------------------------------------
    def queue(self, *replies) -> None:
        with self._lock:
            self._queue.extend(replies)

    @staticmethod
    def error(
        status: int,
        message: str = "fake error",
        *,
        type: str = "server_error",
        code: str | None = None,
        headers: dict | None = None,
    ) -> dict:
        """Build an error reply (see module docstring)."""
        reply = {
            "__status__": status,
            "__body__": {"error": {"message": message, "type": type, "param": None, "code": code}},
        }
        if headers:
            reply["__headers__"] = dict(headers)
        return reply

    @staticmethod
    def last_user_text(request: dict) -> str:
        for msg in reversed(request.get("messages", [])):
            if msg.get("role") == "user":
                content = msg.get("content")
                if isinstance(content, str):
                    return content
                return "".join(
                    p.get("text", "") for p in content or [] if isinstance(p, dict) and p.get("type") == "text"
                )
        return ""

    def _next_reply(self, request):
        with self._lock:
            reply = self._queue.pop(0) if self._queue else None
        if reply is None:
            if self.responder is None:
                raise _ApiError(400, "FakeOpenAI: no reply queued and no responder", code="fake_no_reply")
            reply = self.responder(request)
        elif callable(reply):
            reply = reply(request)
        return reply

    def _next_call_id(self):
        with self._lock:
            self._calls += 1
            return f"call_{self._calls}"


def _validate(body):
    """Raise _ApiError(400) for what the real API would reject."""
    if not isinstance(body, dict):
        raise _ApiError(400, "We could not parse the JSON body of your request.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise _ApiError(400, "you must provide a model parameter", param="model")
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise _ApiError(400, "Invalid 'messages': empty array or missing.", code="empty_array", param="messages")
    pending: set[str] = set()  # tool_call ids of the latest assistant message still unanswered
    for i, m in enumerate(msgs):
        role = m.get("role") if isinstance(m, dict) else None
        if role not in ROLES:
            raise _ApiError(
                400,
                f"Invalid value for 'messages[{i}].role': {role!r}.",
                code="invalid_value",
                param=f"messages[{i}].role",
            )
        if role != "tool" and pending:
            raise _ApiError(
                400,
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(sorted(pending))}",
                param="messages",
            )
        if role == "assistant":
            pending = {tc.get("id") for tc in m.get("tool_calls") or []}
        elif role == "tool":
            if m.get("tool_call_id") not in pending:
                raise _ApiError(
                    400,
                    f"Invalid parameter: messages with role 'tool' must be a response to a preceeding message "
                    f"with 'tool_calls' (tool_call_id={m.get('tool_call_id')!r}).",
                    param=f"messages[{i}].role",
                )
            pending.discard(m["tool_call_id"])
    if pending:
        raise _ApiError(
            400,
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
            f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(sorted(pending))}",
        )
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list) or not all(
            isinstance(t, dict)
            and t.get("type") == "function"
            and isinstance(t.get("function"), dict)
            and t["function"].get("name")
            for t in tools
        ):
            raise _ApiError(
                400, "Invalid 'tools': each tool must be {type: 'function', function: {name, ...}}.", param="tools"
            )
    if "tool_choice" in body and not tools:
        raise _ApiError(
            400,
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
            param="tool_choice",
        )
    if "stream_options" in body and body.get("stream") is not True:
        raise _ApiError(
            400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.", param="stream_options"
        )


def _output_tool(body):
    """Name of the forced output tool, or 400 if the request can't be answered with a tool call."""
    names = [t["function"]["name"] for t in body.get("tools") or [] if t["function"]["name"].startswith("final_result")]
    if len(names) != 1:
        raise _ApiError(400, f"FakeOpenAI: expected exactly one 'final_result*' tool, got {names}", param="tools")
    choice = body.get("tool_choice")
    ok = choice in ("required", "auto") or (
        isinstance(choice, dict)
        and choice.get("type") == "function"
        and (choice.get("function") or {}).get("name") == names[0]
    )
    if not ok:
        raise _ApiError(
            400,
            f"FakeOpenAI: a tool-call reply needs tool_choice 'required'/'auto'/that function, got {choice!r}",
            param="tool_choice",
        )
    return names[0]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle's algorithm the body waits for the client's delayed
    # ACK, ~40 ms on every request.
    disable_nagle_algorithm = True
    server_fake: FakeOpenAI

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        self._read_body()
        self._send_error(_ApiError(404, f"Invalid URL (GET {self.path})"))

    do_PUT = do_DELETE = do_PATCH = do_GET

    def do_POST(self):
        fake = self.server_fake
        raw = self._read_body()
        try:
            if self.path.split("?")[0] != "/v1/chat/completions":
                raise _ApiError(404, f"Invalid URL (POST {self.path})")
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                body = None
            if isinstance(body, dict):
                with fake._lock:
                    fake.requests.append(body)
            if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                raise _ApiError(401, "Incorrect API key provided: check the key you set.", code="invalid_api_key")
            _validate(body)
            reply = fake._next_reply(body)
            if isinstance(reply, dict) and "__status__" in reply:
                err = _ApiError(reply["__status__"], "", headers=reply.get("__headers__"))
                err.body = reply.get("__body__") or FakeOpenAI.error(reply["__status__"])["__body__"]
                raise err
            self._answer(body, reply)
        except _ApiError as e:
            self._send_error(e)

    # -- helpers -----------------------------------------------------------
    def _read_body(self):
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send_json(self, status, obj, headers=None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, e: _ApiError):
        self.server_fake.errors.append(f"{e.status}: {e.body.get('error', {}).get('message')}")
        self._send_json(e.status, e.body, e.headers)

    def _answer(self, body, reply):
        fake = self.server_fake
        if isinstance(reply, dict):
            reply = ToolReply(reply)
        if isinstance(reply, ToolReply):
            name = reply.name or _output_tool(body)
            args = reply.arguments if isinstance(reply.arguments, str) else json.dumps(reply.arguments)
            call = {"id": fake._next_call_id(), "type": "function", "function": {"name": name, "arguments": args}}
            message, finish, text = {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls", args
        elif isinstance(reply, str):
            message, finish, text = {"role": "assistant", "content": reply}, "stop", reply
        else:
            raise _ApiError(500, f"FakeOpenAI: bad reply {reply!r}", type="server_error")
        prompt = len(json.dumps(body.get("messages"))) // 4 + 1
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": len(text) // 4 + 1,
            "total_tokens": prompt + len(text) // 4 + 1,
        }
        base = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "created": int(time.time()), "model": body["model"]}
        if body.get("stream") is not True:
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            return self._send_json(200, {**base, "object": "chat.completion", "choices": [choice], "usage": usage})

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        base["object"] = "chat.completion.chunk"
        size = max(1, int(fake.chunk_size))
        pieces = [text[i : i + size] for i in range(0, len(text), size)]
        if finish == "tool_calls":
            head = {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"index": 0, **call, "function": {"name": name, "arguments": ""}}],
            }
            deltas = [head] + [{"tool_calls": [{"index": 0, "function": {"arguments": p}}]} for p in pieces]
        else:
            deltas = [{"role": "assistant", "content": ""}] + [{"content": p} for p in pieces]
        chunks = [{**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
        chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append({**base, "choices": [], "usage": usage})
        for i, chunk in enumerate(chunks):
            if i and fake.stream_delay:
                time.sleep(fake.stream_delay)
            self._write_chunk(f"data: {json.dumps(chunk)}\n\n".encode())
        self._write_chunk(b"data: [DONE]\n\n")
        self._write_chunk(b"")  # terminating zero-length chunk

    def _write_chunk(self, data: bytes):
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()
