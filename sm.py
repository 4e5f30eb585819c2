#!/usr/bin/env -S uv run --script
# /// script
# requires-python = ">=3.11"
# dependencies = [
#     "click>=8.1",
#     "rich>=13.7",
#     "pydantic>=2.10",
#     "httpx2>=2.16",
#     "pydantic-ai-slim[openai,anthropic,google,groq]>=2.68,<3",
#     "tomlkit>=0.13",
# ]
# ///
"""sm, a Script Manager: LLM-written Python scripts, stored in GitHub Gists, run anywhere with uv.

uv run sm.py --help
"""

from __future__ import annotations

import os
import sys
import time

# The file reads from cheap to expensive, one banner per section, in dependency order:
#   Errors · Secrets & logging · Paths & config · Fast paths · Script model · GitHub client · Mapping & sync ·
#   Generation · Review UI · Operations · CLI wiring · main
# The fast-path rule: `sm run NAME` on a verified cache and `sm list --json` finish within the first four
# sections, which use the standard library only. Every other import happens inside the function that needs
# it, because on the run path each millisecond is paid on top of uv's own start-up.

# typing costs ~2 ms at start-up, and annotations here are never evaluated (PEP 563): import it for checkers only.
TYPE_CHECKING = False


class _OnFirstUse:
    """A module imported when first used: `re` and `json` cost ~5 ms together, and contextlib and functools (with
    collections) ~3 ms, which `sm run` on a recorded script never needs (see run_record)."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        module = __import__(self._name)
        globals()[self._name] = module  # later uses find the module itself
        return getattr(module, attr)


json = _OnFirstUse("json")
re = _OnFirstUse("re")
contextlib = _OnFirstUse("contextlib")
functools = _OnFirstUse("functools")


def contextmanager(func: Callable[..., Iterator[Any]]) -> Callable[..., Any]:
    """contextlib.contextmanager, made when the function is first called rather than when sm is imported."""
    made: list[Callable[..., Any]] = []

    def call(*args: Any, **kwargs: Any) -> Any:
        if not made:
            made.append(contextlib.contextmanager(func))
        return made[0](*args, **kwargs)

    call.__name__, call.__qualname__, call.__doc__ = func.__name__, func.__qualname__, func.__doc__
    return call


def memo(size: int | None = None) -> Callable[[Callable[..., Any]], Any]:
    """functools.cache (or, given a size, an LRU cache) for positional arguments, without functools."""

    def wrap(func: Callable[..., Any]) -> Any:
        seen: dict[tuple[Any, ...], Any] = {}

        def call(*args: Any) -> Any:
            if args in seen:
                seen[args] = seen.pop(args)  # the most recent last: the first one is the one to drop
            else:
                seen[args] = func(*args)
                if size is not None and len(seen) > size:
                    del seen[next(iter(seen))]
            return seen[args]

        call.__name__, call.__qualname__, call.__doc__ = func.__name__, func.__qualname__, func.__doc__
        call.cache_clear = seen.clear  # type: ignore[attr-defined]
        return call

    return wrap


class cached_property:  # noqa: N801 - functools.cached_property's name, without functools
    """Computed on first access, then kept in the instance's __dict__ (which lookups find before a non-data
    descriptor like this one)."""

    def __init__(self, func: Callable[[Any], Any]):
        self.func, self.__doc__ = func, func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.func(obj)
        return value


if TYPE_CHECKING:
    import ast
    from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
    from pathlib import Path  # pathlib costs ~3 ms: imported where a Path is made, never on the run path
    from typing import Any

    import click
    import httpx2

__version__ = "0.1.0"


# ══════════════════════════════════════════════════════════════════════════════════════════════════
# Errors
# ══════════════════════════════════════════════════════════════════════════════════════════════════
# Lower layers raise these; only the CLI layer turns them into one line on stderr and an exit code.


class SmError(Exception):
    """Something the user can fix; the message says what happened and what to do."""

    exit_code = 1


class UsageProblem(SmError):
    """Bad input on the command line (exit 2, like click's usage errors)."""

    exit_code = 2


class ConfigError(SmError):
    """Missing token, model or tool."""


class ValidationFailed(SmError):
    """A script does not meet sm's rules (PEP 723 block, parameters)."""


class GitHubError(SmError):
    """GitHub refused a request or could not be reached."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class OfflineError(GitHubError):
    """GitHub could not be reached at all (DNS, refused connection, timeouts)."""


class AnswerLost(GitHubError):
    """A write reached GitHub, but its answer did not come back: it may or may not have happened."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


class MappingError(SmError):
    """The local mapping file is unreadable or inconsistent."""


class GenerationError(SmError):
    """The model could not produce a valid script."""


class IntegrityError(SmError):
    """Code fetched from GitHub is not the code the user accepted."""


class Cancelled(SmError):
    """The user declined (a trust question) or left a review (:quit, Ctrl-C, end of input): nothing ran or was
    uploaded. Not an error: the CLI prints it without "Error:", with its own exit code."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def _short(e: BaseException) -> str:
    """The first line of an exception, without its full stop: callers put it inside their own sentence."""
    return (str(e).splitlines() or [""])[0].strip().rstrip(".") or type(e).__name__


def _clip(value: Any, width: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"


# ══════════════════════════════════════════════════════════════════════════════════════════════════
# Secrets & logging
# ══════════════════════════════════════════════════════════════════════════════════════════════════
# Tokens never appear in output, logs or errors: redact() masks every token sm knows of. Text from outside
# (code, descriptions, GitHub's messages) is made visible() before a terminal or the log sees it: its control
# characters are shown, never obeyed. Uploads and prompts are scanned for credentials before they leave.


class _Log:
    """A logger made on first use: importing logging costs more than sm's whole run path."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        if attr == "debug" and "logging" not in sys.modules:
            return _ignore  # nothing can have asked for debug output before logging was even imported
        import logging

        return getattr(logging.getLogger(self._name), attr)


def _ignore(*args: Any, **kwargs: Any) -> None:
    pass


log = _Log("sm")


# Errors that click prints itself go to the log file only, through this child logger.
errors_log = _Log("sm.errors")


def log_file() -> Path:
    return sm_home() / "sm.log"


def setup_logging(verbose: bool, *, console: bool = True) -> None:
    """-v: debug lines on stderr. Always: warnings and errors, redacted, in $SM_HOME/sm.log (rotated at 1 MB)."""
    import logging.handlers
    from pathlib import Path

    class OneLine(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return f"sm: {record.getMessage()}" if record.levelno < logging.ERROR else f"Error: {record.getMessage()}"

    class Redact(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            record.msg, record.args = visible(redact(record.getMessage())), None
            return True

    class Stderr(logging.StreamHandler):  # sys.stderr as it is at each write: a status line redirects it
        def emit(self, record: logging.LogRecord) -> None:
            self.stream = sys.stderr
            super().emit(record)

    class LogFile(logging.handlers.RotatingFileHandler):
        def _open(self) -> Any:  # created on the first warning, so read-only commands leave no trace
            private_dir(Path(self.baseFilename).parent)
            return open(self.baseFilename, self.mode, encoding=self.encoding, errors=self.errors, opener=private_opener)

        def handleError(self, record: logging.LogRecord) -> None:  # an unwritable log must not break a command
            pass

    redactor = Redact()
    stderr = Stderr()
    stderr.setFormatter(OneLine())
    stderr.addFilter(redactor)
    stderr.addFilter(lambda record: record.name != errors_log.name)
    file = LogFile(log_file(), maxBytes=1_000_000, backupCount=2, encoding="utf-8", delay=True)
    file.setLevel(logging.WARNING)
    file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    file.addFilter(redactor)
    for handler in log.handlers:
        handler.close()
    log.handlers[:] = [stderr, file] if console else [file]
    log.setLevel(logging.DEBUG if verbose else logging.WARNING)
    log.propagate = False


# Tokens sm has used in this process; redact() masks them in logs and error messages.
KNOWN_SECRETS: set[str] = set()


TOKEN_VARS = ("GITHUB_PAT", "GITHUB_TOKEN", "GH_TOKEN")


def find_token() -> tuple[str, str]:
    """Return (token, where it came from). Never log or print the token itself."""
    for var in TOKEN_VARS:
        if value := os.environ.get(var, "").strip():
            KNOWN_SECRETS.add(value)
            return value, var
    gh = which("gh")
    if gh:
        import subprocess

        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([gh, "auth", "token"], capture_output=True, text=True, timeout=10)
            if out.returncode == 0 and out.stdout.strip():
                KNOWN_SECRETS.add(out.stdout.strip())
                return out.stdout.strip(), "gh auth token"
    raise ConfigError(
        "No GitHub token: set GITHUB_PAT to a token with the gist scope "
        "(https://github.com/settings/tokens), or log in with `gh auth login`."
    )


TOKEN_SHAPES = r"\b(?:gh[pousr]_|github_pat_|sk-)[A-Za-z0-9_-]{16,}"


def redact(text: str) -> str:
    """Mask the tokens sm knows of (used this run, or set in the environment) and anything shaped like one."""
    secret_vars = (*TOKEN_VARS, *(var for var, _ in DEFAULT_MODELS))
    values = KNOWN_SECRETS | {os.environ.get(var, "").strip() for var in secret_vars}
    for value in sorted((v for v in values if len(v) >= 8), key=len, reverse=True):  # no real token is shorter
        text = text.replace(value, "***")
    for _kind, pattern in SECRET_PATTERNS:  # the upload scan's patterns: AWS keys, private key blocks too
        text = re.sub(pattern, "***", text)
    return re.sub(TOKEN_SHAPES, "***", text)


SECRET_PATTERNS = (
    ("a GitHub token", r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})"),
    ("an Anthropic API key", r"\bsk-ant-[a-z]+\d*-[A-Za-z0-9_-]{30,}"),
    ("an OpenAI API key", r"\bsk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{30,}|[A-Za-z0-9]{32,})"),
    ("an AWS access key ID", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    ("an AWS secret access key", r"(?i)aws_?secret_?access_?key\W{1,6}[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])"),
    # A key block, not the bare marker that code checking for keys contains: the base64 body must follow
    # (after optional PEM headers, also as the \n escapes of a string literal).
    (
        "a private key",
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?:\s|\\[rn])*"
        r"(?:[A-Za-z-]+: [^\n\\]*(?:\s|\\[rn])+)*[A-Za-z0-9+/]{40}[A-Za-z0-9+/=\s\\]*",
    ),
)
# AWS's documentation uses key ids ending in EXAMPLE and secret keys ending in EXAMPLEKEY (AKIAIOSFODNN7EXAMPLE,
# wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY): placeholders, not secrets.
EXAMPLE_SUFFIXES = ("EXAMPLE", "EXAMPLEKEY")
# Two string literals that Python joins, across spaces, line breaks or a `+`: a token split this way
# ("ghp_abc" "def…") is found once they are joined.
SPLIT_STRING = r"""(?<=[A-Za-z0-9_/+=-])["']\s*\+?\s*(?:\\\n\s*)?["'](?=[A-Za-z0-9_/+=-])"""


def find_secrets(text: str) -> list[tuple[str, int]]:
    """(kind, line number) of everything that looks like a credential. Never returns the value itself."""
    hits = set()
    cuts = [(m.start(), m.end()) for m in re.finditer(SPLIT_STRING, text)]
    joined = re.sub(SPLIT_STRING, "", text) if cuts else text
    for kind, rx in SECRET_PATTERNS:
        for m in re.finditer(rx, joined):
            if m.group().rstrip().endswith(EXAMPLE_SUFFIXES):
                continue
            pos = m.start()
            for start, end in cuts:  # back to a position in `text`: add what was cut before the match
                if start > pos:
                    break
                pos += end - start
            hits.add((kind, text.count("\n", 0, pos) + 1))
    return sorted(hits, key=lambda h: (h[1], h[0]))


def check_secrets(text: str, filename: str, *, public: bool) -> None:
    """Refuse to publish credentials; a secret gist only gets a warning, since anyone with its URL can read it."""
    if not (hits := find_secrets(text)):
        return
    found = ", ".join(f"{kind} (line {line})" for kind, line in hits)
    if public:
        raise ValidationFailed(
            f"Refusing to upload {filename} to a public gist: it contains {found}. "
            "Read secrets from the environment instead, or keep the gist secret (no --public)."
        )
    log.warning("%s contains %s: the gist is secret, but anyone with its URL can read it.", filename, found)


def check_upload(files: dict[str, str | None], description: str | None, *, public: bool) -> None:
    """Scan everything a gist upload carries: each file's name and content, and the description."""
    for fname, text in files.items():
        check_secrets(fname, "a file name", public=public)
        if text is not None:  # None: the file is deleted
            check_secrets(text, fname, public=public)
    if description:
        check_secrets(description, "the description", public=public)


def check_prompt(text: str, *, yes: bool) -> None:
    """A prompt goes to the model's provider: one that looks like it holds a credential is sent only when the
    user says so (asked on a terminal, --yes otherwise)."""
    if not (hits := find_secrets(text)):
        return
    found = ", ".join(f"{kind} (line {line})" for kind, line in hits)
    if yes:
        log.warning("The prompt contains %s; sending it to the model because of --yes.", found)
        return
    if not interactive():
        raise ValidationFailed(
            f"The prompt contains {found}, so it was not sent to the model. Remove it (scripts read secrets "
            "from the environment), or pass --yes to send it anyway."
        )
    confirm(
        f"The prompt contains {found}. Send it to the model anyway?",
        yes=False,
        declined="Nothing was sent to the model.",
    )


# What a terminal would act on instead of showing: C0 controls but tab and newline (and a CR that ends
# a line), DEL, C1 controls, and the Unicode controls that reorder or break what is displayed (bidi
# embeddings, overrides, isolates and marks, as in "Trojan Source", CVE-2021-42574).
CONTROL_PATTERN = (
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]|\r(?!\n)"
)


def visible(text: str, *, one_line: bool = False) -> str:
    """`text` with its control characters shown, as `cat -v` does: ESC as ^[, DEL as ^?, C1 as M-^[,
    and bidi controls as <U+202E>. Newlines and tabs stay, unless `one_line`."""
    return re.sub(r"[\t\n\r]|" + CONTROL_PATTERN if one_line else CONTROL_PATTERN, _shown, text)


def _shown(match: re.Match[str]) -> str:
    n = ord(match.group())
    if n < 0x20 or n == 0x7F:
        return "^" + chr(n ^ 0x40)
    if n < 0xA0:
        return "M-^" + chr((n - 0x80) ^ 0x40)
    return f"<U+{n:04X}>"


def control_count(text: str) -> int:
    return len(re.findall(CONTROL_PATTERN, text))


# ══════════════════════════════════════════════════════════════════════════════════════════════════
# Paths & config
# ══════════════════════════════════════════════════════════════════════════════════════════════════
# Everything resolves per call from the environment, never at import time, so tests can point
# SM_HOME anywhere.

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"  # patterns compile on first use (re caches them)
DEFAULT_API_URL = "https://api.github.com"


# Provider key → default model, in the order they are tried when neither --model nor SM_MODEL is set.
DEFAULT_MODELS: tuple[tuple[str, str], ...] = (
    ("OPENAI_API_KEY", "openai:gpt-5.1"),
    ("ANTHROPIC_API_KEY", "anthropic:claude-sonnet-4-5"),
    ("GOOGLE_API_KEY", "google:gemini-2.5-pro"),
    ("GEMINI_API_KEY", "google:gemini-2.5-pro"),
    ("GROQ_API_KEY", "groq:openai/gpt-oss-120b"),
)
# Servers that speak OpenAI's protocol (vLLM, llama.cpp, LM Studio...) mostly offer Chat Completions only,
# not the Responses API that `openai:` uses, so an OPENAI_BASE_URL without a chosen model means `openai-chat:`.
COMPATIBLE_DEFAULT = ("OPENAI_BASE_URL", "openai-chat:gpt-5.1")
# What each provider sm ships needs from the environment: any one of the variables, and how to say it.
MODEL_SETTINGS: dict[str, tuple[tuple[str, ...], str]] = {
    "openai": (
        ("OPENAI_API_KEY", "OPENAI_BASE_URL"),
        "Set OPENAI_API_KEY, or OPENAI_BASE_URL for an OpenAI-compatible server",
    ),
    "anthropic": (("ANTHROPIC_API_KEY",), "Set ANTHROPIC_API_KEY"),
    "google": (("GOOGLE_API_KEY", "GEMINI_API_KEY"), "Set GOOGLE_API_KEY"),
    "groq": (("GROQ_API_KEY",), "Set GROQ_API_KEY"),
    "ollama": (("OLLAMA_BASE_URL",), "Set OLLAMA_BASE_URL to the server's URL (for example http://localhost:11434/v1)"),
}
MODEL_SETTINGS["openai-chat"] = MODEL_SETTINGS["openai-responses"] = MODEL_SETTINGS["openai"]


def home_dir() -> str:
    return os.path.expanduser(os.environ.get("SM_HOME") or os.path.join("~", ".sm"))


def sm_home() -> Path:
    from pathlib import Path

    return Path(home_dir())


def mapping_file() -> str:  # a plain string: `sm run` reads it before anything else
    return os.path.join(home_dir(), "mapping.json")


def mapping_path() -> Path:
    from pathlib import Path

    return Path(mapping_file())


def cache_folder() -> str:
    return home_path("cache")


def cache_dir() -> Path:
    from pathlib import Path

    return Path(cache_folder())


def bin_dir() -> str:
    """Where `sm install` puts launchers: SM_BIN_DIR, else ~/.local/bin (on PATH on most systems, as for pipx)."""
    return os.path.expanduser(os.environ.get("SM_BIN_DIR") or os.path.join("~", ".local", "bin"))


def home_path(*parts: str) -> str:
    """$SM_HOME/PARTS, resolved, and refused unless it stays inside $SM_HOME.

    Every path that holds something from GitHub or a mapping entry (a gist id, a file name, a revision) is
    made here, before anything reads, writes, removes or runs it: `..`, an absolute part or a symlink cannot
    lead out of $SM_HOME.
    """
    home = os.path.realpath(home_dir())
    try:
        path = os.path.realpath(os.path.join(home, *parts))
    except ValueError:  # a NUL byte
        path = ""
    if not path.startswith(home.rstrip(os.sep) + os.sep):
        raise IntegrityError(
            f"Refusing the path {_clip(os.path.join(*parts), 80)}: it leads outside {home}. It came from a mapping "
            "entry or a gist; remove that entry (`sm rm NAME`) or fix it in the mapping gist."
        )
    return path


def private_dir(folder: Path | str) -> None:
    """Create `folder` and its missing parents with mode 0700; a looser $SM_HOME itself is tightened to 0700.
    What sm keeps (code, drafts, logs, the mapping) is nobody else's to read."""
    target = parent = os.fspath(folder)
    missing = []
    while not os.path.isdir(parent) and os.path.dirname(parent) != parent:
        missing.append(parent)
        parent = os.path.dirname(parent)
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)
    with contextlib.suppress(OSError):
        if target == home_dir() and os.stat(target).st_mode & 0o077:
            os.chmod(target, 0o700)


def private_opener(path: str, flags: int) -> int:
    """An `opener` for open(): mode 0600 (also for a file that exists), and never through a symlink."""
    fd = os.open(path, flags | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)
    return fd


def atomic_write(path: Path, data: str | bytes, mode: int = 0o600) -> None:
    """Write via a temporary file in the same folder, fsync, then rename: readers never see half a file, and a
    symlink at `path` is replaced, never written through."""
    import tempfile

    private_dir(path.parent)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def check_home() -> None:
    """Before a model or GitHub is paid for: can sm keep what they produce? One line naming the path if not."""
    import tempfile

    home = home_dir()
    for folder in (home, os.path.join(home, "cache"), os.path.join(home, "drafts")):
        try:
            private_dir(folder)
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as e:
            raise ConfigError(
                f"sm cannot write to {folder} ({e.strerror or e}): make it writable, or point SM_HOME at a "
                "folder that is. Nothing was generated or uploaded."
            ) from e
    if os.path.isdir(mapping_file()):
        raise ConfigError(f"{mapping_file()} is a folder, not a file: move it away. Nothing was generated or uploaded.")
    if (version := read_mapping()["version"]) > MAPPING_VERSION:
        raise MappingError(
            f"{mapping_file()} was written by a newer sm (mapping version {version}): {UPGRADE_HINT}. "
            "Nothing was generated or uploaded."
        )


def api_url() -> str:
    url = (os.environ.get("SM_GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/")
    if problem := url_problem(url, "SM_GITHUB_API_URL"):
        raise ConfigError(problem)
    return url


def url_problem(url: str, what: str) -> str | None:
    """Why sm will not send requests to `url`, or None: https only, so the token never travels in clear text."""
    if url.startswith("https://"):
        return None
    if not url.startswith("http://"):
        return f"{what} must start with https:// (got {url!r}); GitHub Enterprise: https://HOST/api/v3."
    if http_allowance(url):
        return None
    return (
        f"{what} must use https:// (got {url!r}): over http:// the token would travel in clear text. "
        "Plain http is allowed only for loopback hosts, or with SM_ALLOW_HTTP=1."
    )


def http_allowance(url: str) -> str | None:
    """Why plain http may be used for `url`: a loopback host (a local test server), or SM_ALLOW_HTTP=1."""
    import ipaddress
    from urllib.parse import urlsplit

    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return None
    with contextlib.suppress(ValueError):
        if host == "localhost" or ipaddress.ip_address(host).is_loopback:
            return "a loopback host"
    if os.environ.get("SM_ALLOW_HTTP") == "1":
        return "SM_ALLOW_HTTP=1"
    return None


def resolve_model(explicit: str | None) -> str:
    """--model, then SM_MODEL, then a current model for whichever provider key is present."""
    if explicit:
        return explicit
    if env := os.environ.get("SM_MODEL", "").strip():
        return env
    if found := default_model():
        return found[0]
    choices = ", ".join(f"{var} (→ {model})" for var, model in DEFAULT_MODELS)
    raise ConfigError(
        f"No model configured: set SM_MODEL (e.g. openai:gpt-5.1, anthropic:claude-sonnet-4-5, "
        f"google:gemini-2.5-pro, ollama:qwen2.5-coder with OLLAMA_BASE_URL, or openai-chat:NAME with "
        f"OPENAI_BASE_URL), pass --model, or set one of {choices}."
    )


def default_model() -> tuple[str, str] | None:
    """(model, the variable that chose it) when neither --model nor SM_MODEL is set, or None."""
    for var, model in (COMPATIBLE_DEFAULT, *DEFAULT_MODELS):
        if os.environ.get(var, "").strip():
            return model, var
    return None


def model_setup_problem(model: str) -> tuple[str, str] | None:
    """What the model's provider lacks in the environment, as (what is missing, what to do), or None."""
    needs, fix = MODEL_SETTINGS.get(model.partition(":")[0], ((), ""))
    if not needs or any(os.environ.get(var, "").strip() for var in needs):
        return None
    missing = f"{needs[0]} is not set" if len(needs) == 1 else f"neither {' nor '.join(needs)} is set"
    return missing, f"{fix}, or choose another model with SM_MODEL or --model."


def check_name(name: str) -> str:
    if not re.fullmatch(NAME_PATTERN, name):
        raise UsageProblem(
            f"Invalid script name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit."
        )
    return name


# What GitHub's own identifiers look like. Anything read from GitHub or from a mapping file is checked
# against these before it becomes part of a path, a URL or a command line (see entry_problem).
GIST_ID_PATTERN = r"[0-9a-f]{20,32}|[0-9]{1,12}"  # hex ids, and the numeric ids of gists from before ~2014
REVISION_PATTERN = r"[0-9a-f]{40}"
SHA256_PATTERN = r"[0-9a-f]{64}"


def filename_problem(filename: Any) -> str | None:
    """Why `filename` cannot be a gist file sm stores on disk, or None: one path component, printable."""
    if type(filename) is not str or not filename:
        return "the filename is not a string"
    if filename in (".", "..") or "/" in filename or "\\" in filename or len(filename) > 255:
        return f"the filename {filename!r} is not a single file name"
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in filename):
        return f"the filename {filename!r} holds control characters"
    return None


def entry_problem(name: Any, entry: Any) -> str | None:
    """Why a mapping entry cannot be used, or None. Checked for every entry, local or remote, before use:
    its fields become cache paths, URLs and the argv of `uv run`."""
    if type(name) is not str or not re.fullmatch(NAME_PATTERN, name):
        return "the name is not a valid script name"
    if type(entry) is not dict:
        return f"the entry is a {type(entry).__name__}, not an object"
    if entry.get("script_name") != name and not (name == "unsaved" and entry.get("script_name") is None):
        # every change is stored under entry["script_name"]: a mismatch would land it on another script
        return f"script_name is {_clip(entry.get('script_name'))}, not the name it is stored under"
    for field, pattern in (("gist_id", GIST_ID_PATTERN), ("revision", REVISION_PATTERN), ("sha256", SHA256_PATTERN)):
        value = entry.get(field)
        if type(value) is not str or not re.fullmatch(pattern, value):
            return f"{field} is missing or malformed ({_clip(value)})"
    lock = entry.get("lock_sha256")  # absent or null: the script has no lock
    if lock is not None and (type(lock) is not str or not re.fullmatch(SHA256_PATTERN, lock)):
        return f"lock_sha256 is malformed ({_clip(lock)})"
    if problem := filename_problem(entry.get("filename")):
        return problem
    for field in ("updated_at", "created_at", "description", "clock"):
        if entry.get(field) is not None and type(entry[field]) is not str:
            return f"{field} is not a string ({_clip(entry[field])})"
    params = entry.get("params")
    if params is not None and (type(params) is not list or any(map(param_problem, params))):
        return "params is not a list of parameters"
    command = entry.get("installed_as")  # becomes a file name in SM_BIN_DIR
    if command is not None and (type(command) is not str or not re.fullmatch(COMMAND_PATTERN, command)):
        return f"installed_as is not a command name ({_clip(command)})"
    return None


# An installed command's name: one file in SM_BIN_DIR, and a word to type.
COMMAND_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}"
PARAM_NAME_PATTERN = r"[A-Za-z][A-Za-z0-9_.-]*"


def param_problem(param: Any) -> str | None:
    """Parameter names end up on command lines, in help and in completion: printable names only."""
    if type(param) is not dict or type(param.get("name")) is not str:
        return "not a parameter"
    if not re.fullmatch(PARAM_NAME_PATTERN, param["name"]):
        return f"the parameter name {_clip(param['name'])} is not a plain name"
    if param.get("help") is not None and type(param["help"]) is not str:
        return "help is not a string"
    if param.get("default") is not None and type(param["default"]) not in (str, int, float, bool):
        return "default is not a plain value"
    if param.get("kind", "option") not in ("option", "positional", "flag", "free"):
        return f"the kind {_clip(param['kind'])} is not option, positional, flag or free"
    if type(param.get("multiple", False)) is not bool:
        return "multiple is not true or false"
    if param.get("cli") is not None and (
        type(param["cli"]) is not str or not re.fullmatch(r"--?[A-Za-z0-9][A-Za-z0-9_-]*", param["cli"])
    ):
        return f"cli {_clip(param['cli'])} is not an option spelling"
    return None


def now_iso() -> str:
    """UTC timestamp with microseconds; ISO strings of this one shape sort chronologically."""
    import datetime as dt

    return dt.datetime.fromtimestamp(time.time(), dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def isatty(stream: Any) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def interactive() -> bool:
    """Is there a person to ask? Piped stdin answers for them (or refuses), never waits on a terminal."""
    return isatty(sys.stdin)


def sha256_text(text: str) -> str:
    return sha256_hex(text.encode("utf-8"))


def sha256_hex(data: bytes) -> str:
    try:  # CPython's own sha256 loads in microseconds; hashlib's OpenSSL one costs ~2 ms on every `sm run`
        from _sha256 import sha256  # type: ignore[import-not-found]
    except ImportError:  # Python 3.12 renamed it; hashlib is always there
        from hashlib import sha256
    return sha256(data).hexdigest()


def which(cmd: str) -> str | None:
    """shutil.which for plain command names, without importing shutil (and fnmatch) on the run path."""
    for folder in os.environ.get("PATH", os.defpath).split(os.pathsep):  # os.get_exec_path imports warnings
        path = os.path.join(folder, cmd)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


# ══════════════════════════════════════════════════════════════════════════════════════════════════
# Fast paths (standard library only)
# ══════════════════════════════════════════════════════════════════════════════════════════════════
# Everything `sm run NAME` needs before exec on a verified cache, and `sm list --json` before it prints, under
# the rule at the top of the file (tests/test_install.py checks it). Whatever these paths do not handle
# themselves goes on to the full CLI, which reports it properly.


def fast_run(argv: Sequence[str], *, launched: bool = False) -> None:
    """`sm run NAME key=value ...` on a verified cache, before click is even imported.

    Returns (falls back to the full CLI) on anything it does not handle itself: options, unknown
    names, a malformed entry, a cache miss, bad parameters. Those paths report errors; this one only execs.
    `launched`: an installed command's launcher is asking, and a direct exec is recorded for it (record_launch).
    """
    if len(argv) < 2 or argv[0] != "run":
        return
    try:
        before = file_stamp(mapping_file()) if launched else ""
        req = parse_run_tail(argv[1:])
        if req.options or req.name is None:
            return
        if found := read_run_record(req.name):
            entry, path = found
            if not verified_file(path, entry["sha256"]) or not lock_in_place(path, entry["lock_sha256"]):
                return
        else:
            if "/" in req.name:  # a catalog's script: recorded by run_catalog, once its pin is trusted here
                return
            stamp = file_stamp(mapping_file())  # before the read: a mapping written meanwhile leaves a stale record
            with open(mapping_file(), "rb") as f:  # only this name's entry is checked: the others cost nothing
                entry = json.loads(f.read())["scripts"].get(req.name)
            if entry_problem(req.name, entry) or not (path := verified_cache(entry)):
                return
            try:
                write_run_record(req.name, entry, path, stamp)
            except OSError:
                pass
        args = build_script_args(entry.get("params"), req.pairs, req.passthrough) + req.passthrough
        cmd = uv_command(path, args)
        direct = direct_command(entry, path, args, cmd[0]) if cmd else None
    except Exception:  # anything odd: the full CLI meets it again and reports it properly
        return
    if cmd is not None:  # the no-uv fallback is the full CLI's business
        try:  # should exec fail, the full CLI tries again and reports it in one line
            if direct is not None:
                # An installed command passes "$@" as is, and sm adds no words: its arguments are the script's own,
                # and from now on the script's own parser is the one that checks them (required ones included).
                if launched and args == req.passthrough:
                    try:
                        record_launch(req.name, entry, direct, before)
                    except Exception as e:  # noqa: BLE001 - the launcher keeps asking sm: slower, never wrong
                        log.debug("launch record not written: %s", e)
                exec_script(*direct)
            exec_script(cmd, uv_env(path))
        except SmError:
            pass


# What `sm run NAME` needs of NAME's entry, as lines in $SM_HOME/run/NAME, written by the first run after each
# change of the mapping: later runs need neither `json` nor `re` (~5 ms) nor the whole mapping. Derived, per machine.
RUN_RECORD_FORMAT = "sm-run 2"


def run_record_path(name: str) -> str | None:
    """$SM_HOME/run/NAME, for a NAME that can only be a file there (check_name's full rule needs `re`); a
    catalog's ALIAS/NAME is the file ALIAS%NAME (a name never holds a %)."""
    alias, slash, rest = name.partition("/")
    if slash and alias and rest:
        name = f"{alias}%{rest}"
    elif slash:
        return None
    if not name or "/" in name or "\0" in name or name.startswith(".") or name.count("%") > bool(slash):
        return None
    return os.path.join(home_dir(), "run", name)


def run_stamp(name: str) -> str:
    """What NAME's run record was made from: the mapping; for a catalog's ALIAS/NAME, the pins accepted here too."""
    stamp = file_stamp(mapping_file())
    if "/" in name:
        stamp += "|" + file_stamp(os.path.join(home_dir(), "trusted.json"))
    return stamp


def read_run_record(name: str) -> tuple[Entry, str] | None:
    """NAME's sha256, lock and parameters, and its cached path, if recorded from the mapping as it is now."""
    path = run_record_path(name)
    try:
        with open(path or "", encoding="utf-8") as f:
            lines = f.read().split("\n")
        if lines[:3] != [RUN_RECORD_FORMAT, run_stamp(name), name]:
            return None
        sha256, lock, cached, count = lines[3:7]
        rows = [line.split("\t") for line in lines[7 : 7 + int(count)]] if count != "-" else None
        params = (
            None
            if rows is None
            else [
                {
                    "name": n,
                    "required": r == "1",
                    "default": d or None,
                    "kind": k or None,
                    "multiple": m == "1",
                    "cli": c,
                }
                for n, r, d, k, m, c in rows
            ]
        )
    except (OSError, ValueError):
        return None
    return {"sha256": sha256, "lock_sha256": None if lock == "-" else lock, "params": params}, cached


def write_run_record(name: str, entry: Entry, cached: str, stamp: str) -> None:
    """Only what running needs: a parameter's default matters only as present or not (errors go to the full CLI)."""
    from pathlib import Path

    params = entry.get("params")
    lines = [RUN_RECORD_FORMAT, stamp, name, entry["sha256"], entry.get("lock_sha256") or "-", cached]
    lines.append("-" if params is None else str(len(params)))
    for p in params or []:
        required, default = "1" if p.get("required") else "0", "" if p.get("default") is None else "1"
        extra = f"{p.get('kind') or ''}\t{'1' if p.get('multiple') else '0'}\t{p.get('cli') or ''}"
        lines.append(f"{p['name']}\t{required}\t{default}\t{extra}")  # what build_script_args reads
    atomic_write(Path(run_record_path(name) or ""), "\n".join(lines))


# -- sm run NAME key=value ... ---------------------------------------------------------------------


class RunRequest:
    """What `sm run NAME ...` asked for, split from the raw words after `run`."""

    def __init__(self) -> None:
        self.name: str | None = None
        self.pairs: list[str] = []
        self.passthrough: list[str] = []
        self.options: dict[str, Any] = {}


# sm run's own options, anywhere before `--`: (spellings, key, value name or None for a flag, help). The one
# table for parse_run_tail and for `sm run --help`; everything else goes to the script.
RUN_OPTIONS = (
    (
        ("--latest",),
        "latest",
        None,
        "Run the gist's newest revision; a new one is shown as a diff and must be trusted.",
    ),
    (("--rev",), "rev", "SHA", "Run another revision once (see `sm history`), after the same trust check."),
    (
        ("-y", "--yes"),
        "yes",
        None,
        "Trust a new revision, a foreign gist, or a pin not yet reviewed on this machine, without asking.",
    ),
    (("-f", "--file"), "file", "FILE", "For a gist with several .py files: the one to run."),
    (("--save",), "save", "NAME", "Add a foreign gist to your mapping under NAME, pinned at this revision."),
    (("-h", "--help"), "help", None, "Show this message and exit; after NAME, the script's parameters too."),
)


def parse_run_tail(words: Sequence[str], *, named: bool = True) -> RunRequest:
    """sm run's one parser: NAME (the first plain word, when `named`), sm's own options, key=value pairs, and
    everything after `--`, which goes to the script as it is."""
    spelled = {spelling: (key, value) for spellings, key, value, _ in RUN_OPTIONS for spelling in spellings}
    req = RunRequest()
    it = iter(words)
    for word in it:
        if word == "--":
            req.passthrough.extend(it)
            break
        if (
            word[:1] == "-"
            and word[1:2] not in ("-", "")
            and len(word) > 2
            and "=" not in word[:3]
            and f"-{word[1]}" in spelled
        ):
            for at, letter in enumerate(word[1:], 2):  # short options together: -yf FILE, -fFILE
                key, takes_value = spelled.get(f"-{letter}", (None, None))
                if key is None:
                    raise UsageProblem(f"Unknown option -{letter} in {word!r} for sm run.")
                if takes_value:
                    value = word[at:] or next(it, None)
                    if value is None:
                        raise UsageProblem(f"Option -{letter} needs a value.")
                    req.options[key] = value
                    break
                req.options[key] = True
            continue
        opt, eq, inline = word.partition("=")
        key, takes_value = spelled.get(opt if eq else word, (None, None))
        if key and not takes_value and not eq:
            req.options[key] = True
        elif key and takes_value:
            value = inline if eq else next(it, None)
            if value is None:
                raise UsageProblem(f"Option {opt} needs a value.")
            req.options[key] = value
        elif word.startswith("-"):
            raise UsageProblem(
                f"Unknown option {word!r} for sm run: pass parameters as key=value, "
                "and arguments for the script after `--`."
            )
        elif named and req.name is None:
            req.name = word
        else:
            req.pairs.append(word)
    return req


def norm_key(key: str) -> str:
    return key.replace("_", "-").lower()


def split_pair(pair: str) -> tuple[str, str]:
    key, sep, value = pair.partition("=")
    if not sep or not key:
        raise UsageProblem(f"Expected key=value, got {pair!r}; put raw arguments for the script after `--`.")
    return key, value


TRUE_WORDS, FALSE_WORDS = {"true", "yes", "1", "on", ""}, {"false", "no", "0", "off"}


def build_script_args(
    params: Sequence[dict[str, Any]] | None, pairs: Sequence[str], raw: Sequence[str] = ()
) -> list[str]:
    """`key=value` pairs → the script's argv, checked against its parameters: an option as `--key=value` (a
    short one as `-kVALUE`), a flag (`flag`, `flag=true`) as its switch or left out (`flag=false`), and the
    positionals last, in the order the script declares them. A key given twice is passed twice.

    One word per option value, so a value that starts with a dash (`msg=-x`) reaches the script as a value;
    positionals that start with one come after `--`. params=None means the script declares none that sm
    knows of (a foreign gist): pairs are passed unchecked as `--key=value`.

    `raw` (the words after `--`) are the script's own; a required option given there as `--key` counts as
    given, so `sm run NAME -- --key x`, and an installed command, which passes everything that way, run.
    """
    if params is None:
        return [f"--{key}={value}" for key, value in map(split_pair, pairs)]
    if pairs and any(p.get("kind") == "free" for p in params):
        raise UsageProblem(
            f"This script reads its arguments itself, so {pairs[0]!r} cannot be passed as key=value: "
            "put its arguments after `--` (sm run NAME -- ARGS...)."
        )
    by_key = {norm_key(k): p for p in params for k in (p["name"], str(p.get("cli") or "").lstrip("-")) if k}
    words: list[str] = []
    placed: dict[str, list[str]] = {}
    seen: set[str] = set()
    for pair in pairs:
        param = by_key.get(norm_key(pair)) if "=" not in pair else None
        if param is None or param.get("kind") != "flag":
            try:
                key, value = split_pair(pair)
            except UsageProblem as e:
                raise UsageProblem(f"{e} {describe_params(params)}") from None
            param = by_key.get(norm_key(key))
        else:
            key, value = pair, ""
        if param is None:
            raise UsageProblem(f"Unknown parameter {key!r}. {describe_params(params)}")
        seen.add(param["name"])
        kind, cli = param.get("kind") or "option", param.get("cli") or f"--{param['name']}"
        if kind == "flag":
            if value.lower() not in TRUE_WORDS | FALSE_WORDS:
                raise UsageProblem(f"{key} is a flag: give {key}, {key}=true or {key}=false (not {value!r}).")
            words += [cli] if value.lower() in TRUE_WORDS else []
        elif kind == "positional":
            if placed.setdefault(param["name"], []) and not param.get("multiple"):
                raise UsageProblem(f"{key} takes one value; it was given twice. {describe_params(params)}")
            placed[param["name"]].append(value)
        else:
            words.append(f"{cli}{value}" if len(cli) == 2 else f"{cli}={value}")
    # Positionals the script checks itself: they may also come after `--`.
    missing = [
        p["name"]
        for p in params
        if not p.get("kind")
        and p.get("required")
        and p["name"] not in seen
        and norm_key(p["name"]) not in {norm_key(w[2:].partition("=")[0]) for w in raw if w[:2] == "--"}
        and p.get("default") is None
    ]
    if missing:
        raise UsageProblem(
            f"Missing required parameter{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}. {describe_params(params)}"
        )
    return words + positional_words(params, placed)


def positional_words(params: Sequence[dict[str, Any]], placed: dict[str, list[str]]) -> list[str]:
    """The positionals' values in declared order; one left out before one given cannot be placed."""
    order = [p["name"] for p in params if p.get("kind") == "positional"]
    given = [name for name in order if name in placed]
    if given and (gap := [n for n in order[: order.index(given[-1])] if n not in placed]):
        raise UsageProblem(f"Give {', '.join(gap)} too: it comes before {given[-1]} on the command line.")
    values = [v for name in given for v in placed[name]]
    return (["--"] if any(v.startswith("-") for v in values) else []) + values


def describe_params(params: Sequence[dict[str, Any]]) -> str:
    """One short line per parameter, so that an error listing them wraps cleanly on a narrow terminal."""
    if not params:
        return "This script takes no parameters."
    if any(p.get("kind") == "free" for p in params):
        return "This script reads its arguments itself: pass them after `--` (sm run NAME -- ARGS...)."
    lines = ["Parameters:"]
    for p in params:
        flag = (
            "required"
            if p.get("required") and p.get("default") is None
            else f"default {p.get('default')!r}"
            if p.get("default") is not None
            else "optional"
        )
        kind = {"flag": "a flag, ", "positional": "positional, "}.get(p.get("kind") or "", "")
        kind += "repeatable, " if p.get("multiple") else ""
        spelled = p["name"] if p.get("kind") == "flag" else f"{p['name']}=…"
        lines.append(f"  {spelled} ({kind}{flag}{': ' + p['help'] if p.get('help') else ''})")
    return "\n".join(visible(line, one_line=True) for line in lines)


# -- the pinned copy -------------------------------------------------------------------------------
# One stable path per gist, checked against the sha256 the user accepted before every run.


def entry_path(entry: Entry, *parts: str) -> str:
    """$SM_HOME/cache/<gist_id>/PARTS for a well-formed entry; a malformed one becomes no path at all."""
    # An adopted gist has no name until it is saved; everything else in its entry is checked all the same.
    if problem := entry_problem(entry.get("script_name") or "unsaved", entry):
        raise IntegrityError(
            f"Refusing to use the mapping entry {_clip(entry.get('script_name'))}: {problem}. Remove it with "
            "`sm rm NAME`, or fix it in your mapping gist and run `sm sync`."
        )
    return home_path("cache", entry["gist_id"], *parts)


def cached_file(entry: Entry) -> str:
    # One stable path per gist, so uv reuses the script's environment between runs.
    return entry_path(entry, entry["filename"])


def cached_path(entry: Entry) -> Path:
    from pathlib import Path

    return Path(cached_file(entry))


def verified_cache(entry: Entry) -> str | None:
    """The cached script's path if its sha256 is the recorded one, and its lock the recorded one (or, with none
    recorded, absent): a string, since this is on the run path.

    The copy is read through no symlink, and only if it is a regular file of this user that no other user
    can write; anything else is fetched again.
    """
    path = verified_file(cached_file(entry), entry["sha256"])
    return path if path and lock_in_place(path, entry.get("lock_sha256")) else None


# -- the lock beside it ----------------------------------------------------------------------------
# uv uses FILE.lock beside FILE by itself, and a plain `uv run` rewrites a lock that no longer fits. So beside a
# cached script sm keeps the verified lock of the pinned revision, or nothing; and when a lock is there, uv runs
# with --locked: an environment that drifts from the lock is an error, never a silent re-resolve.


def lock_path_of(script_path: str) -> str:
    """Where uv looks for a script's lock (and where `uv lock --script` writes it)."""
    return script_path + ".lock"


def lock_in_place(path: str, lock_sha256: str | None) -> bool:
    """Is the lock beside the script at `path` the recorded one? With none recorded, one left beside (by an
    older revision) is removed now, so uv cannot use it; False when it cannot be (the full CLI says why)."""
    if lock_sha256:
        return verified_file(lock_path_of(path), lock_sha256) is not None
    try:
        os.unlink(lock_path_of(path))
    except FileNotFoundError:
        pass
    except OSError:
        return False
    return True


# uv's resolution settings, which a lock records ([options]) and `--locked` compares. Set on one machine only,
# they would make the lock "need updating" everywhere else (or here); a script's own [tool.uv] travels with it.
LOCK_SETTINGS = ("UV_EXCLUDE_NEWER", "UV_EXCLUDE_NEWER_PACKAGE", "UV_PRERELEASE", "UV_RESOLUTION", "UV_FORK_STRATEGY")


def uv_env(path: Path | str | None = None) -> dict[str, str] | None:
    """The environment for uv to lock the script, or to run the one at `path` with the lock beside it: this one
    without LOCK_SETTINGS. None (this one as it is) when none of them is set, or there is no lock to run with."""
    if not any(key in os.environ for key in LOCK_SETTINGS):
        return None
    if path is not None and not os.path.isfile(lock_path_of(str(path))):
        return None
    return {k: v for k, v in os.environ.items() if k not in LOCK_SETTINGS}


def locked_flag(path: Path | str) -> list[str]:
    """["--locked"] when a lock is beside the script: sm leaves one there only once verified (lock_in_place)."""
    return ["--locked"] if os.path.isfile(lock_path_of(str(path))) else []


def verified_file(path: str, sha256: str) -> str | None:
    import stat

    try:
        with open(path, "rb", opener=lambda p, flags: os.open(p, flags | os.O_NOFOLLOW)) as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o022:
                return None
            data = f.read()
    except OSError:
        return None
    return path if sha256_hex(data) == sha256 else None


def store_cache(entry: Entry, content: str, lock: str | None = None) -> Path:
    """The pinned code in the cache, with the lock its entry records beside it (see place_lock)."""
    path = cached_path(entry)
    atomic_write(path, content)
    place_lock(path, entry, lock)
    return path


def place_lock(path: Path, entry: Entry, lock: str | None) -> None:
    """Beside the script at `path`: `lock` when the entry records one (its sha256 checked), else no lock at all."""
    from pathlib import Path

    target = Path(lock_path_of(str(path)))
    if expected := entry.get("lock_sha256"):
        if lock is None or sha256_text(lock) != expected:
            raise IntegrityError(
                f"Refusing to run {entry.get('script_name') or entry['filename']}: its lock does not match the "
                "sha256 recorded with the pin. Run `sm lock NAME` to lock it again."
            )
        atomic_write(target, lock)
        return
    try:
        target.unlink(missing_ok=True)
    except OSError as e:
        raise ConfigError(f"Cannot remove {target}, a lock no longer pinned ({e.strerror}): remove it by hand.") from e


UV_INSTALL_HINT = (
    "install it with `python3 -m pip install uv` (or see https://docs.astral.sh/uv/getting-started/installation/)"
)


def uv_command(path: Path | str, args: Sequence[str]) -> list[str] | None:
    """`uv run [--locked] --script PATH ARGS`, or None without uv (script_argv() then falls back to a venv and pip)."""
    uv = which("uv")
    return [uv, "run", *locked_flag(path), "--script", str(path), *args] if uv else None


def exec_script(argv: list[str], env: dict[str, str] | None = None) -> None:
    """Replace this process with uv (or, given `env`, the script's own interpreter): stdin, the tty, signals and
    the exit code become the script's."""
    log.debug("exec: %s", " ".join(argv))
    sys.stdout.flush()
    sys.stderr.flush()
    refresh_in_background()
    try:
        os.execv(argv[0], argv) if env is None else os.execve(argv[0], argv, env)
    except OSError as e:  # a uv for another machine, a half-written upgrade, an argument list too long
        raise ConfigError(f"Could not start {argv[0]} ({e.strerror or e}): reinstall it, or check PATH.") from e


# -- direct exec: uv's decision, recorded --------------------------------------------------------------
# `uv run --script` on a cached environment repeats a decision whose inputs have not changed: the script's
# bytes, its lock, uv itself, its UV_* settings. The first run of a pinned revision lets uv build the environment
# (`uv sync --script`) and records its interpreter in $SM_HOME/direct/ (one file per script path and content), a
# per-machine index that is never synced. Later runs check the sha256 as always, then exec that interpreter with the variables
# `uv run` sets; anything changed or gone goes through uv once more and is recorded again. SM_DIRECT=0: uv always.
# One difference remains, by design: a script killed by signal N ends with "killed by N" rather than uv's exit
# status 128+N (a shell shows 128+N either way), and a Ctrl-C reaches it once rather than twice.

DIRECT_FORMAT = "sm-direct 1"
DIRECT_ENV_LINE = 7  # a record's lines: direct_keys (6), then the real uv, the environment, its python, uv's stat


def direct_record_path(path: str, sha256: str) -> str:
    """One record per script path and content: uv keys environments by path, sm pins by content."""
    return os.path.join(home_dir(), "direct", sha256_text(f"{path}\n{sha256}"))


def uv_identity(path: str) -> str:
    """A binary's path and stat: a change of uv (an upgrade, another uv first on PATH) changes it."""
    st = os.stat(path)
    return f"{path} {st.st_ino} {st.st_size} {st.st_mtime_ns}"


def uv_settings() -> str:
    """The UV_* variables that steer uv's choice of interpreter and packages, as one short digest."""
    skip = ("UV", "UV_RUN_RECURSION_DEPTH")
    items = sorted((k, v) for k, v in os.environ.items() if k.startswith("UV_") and k not in skip)
    return sha256_text(repr(items))[:16]


def direct_keys(entry: Entry, path: str, uv: str) -> list[str]:
    """Everything uv's decision depends on that sm can check in microseconds, one line each."""
    return [DIRECT_FORMAT, path, entry["sha256"], entry.get("lock_sha256") or "-", uv_identity(uv), uv_settings()]


def direct_command(entry: Entry, path: str, args: Sequence[str], uv: str) -> tuple[list[str], dict[str, str]] | None:
    """The script's own interpreter and environment, as `uv run --script PATH ARGS` would start it, when uv's
    recorded decision still holds (recorded now if there is none); None means: let uv run it."""
    if os.environ.get("SM_DIRECT") == "0":
        return None
    keys = direct_keys(entry, path, uv)
    try:
        with open(direct_record_path(path, entry["sha256"]), encoding="utf-8") as f:
            lines = f.read().split("\n")
        real_uv, venv, python = lines[len(keys) : len(keys) + 3]
        if lines[: len(keys)] != keys or uv_identity(real_uv) != lines[len(keys) + 3]:
            raise ValueError("a key changed")
        if not (os.path.exists(python) and os.path.exists(os.path.join(venv, "pyvenv.cfg"))):
            raise ValueError("the environment is gone")
    except (OSError, ValueError):
        found = record_direct(keys, path, uv)
        if found is None:
            return None
        real_uv, venv, python = found
    env = dict(os.environ)
    env["VIRTUAL_ENV"] = venv
    env["PATH"] = os.pathsep.join(p for p in (os.path.join(venv, "bin"), os.environ.get("PATH")) if p)
    env["UV"] = real_uv
    try:
        depth = int(os.environ.get("UV_RUN_RECURSION_DEPTH") or 0)
    except ValueError:
        depth = 0
    env["UV_RUN_RECURSION_DEPTH"] = str(depth + 1)
    return [python, path, *args], env


def record_direct(keys: list[str], path: str, uv: str) -> tuple[str, str, str] | None:
    """Let uv build the script's environment and say where it is; record it. None when uv could not: then
    `uv run` reports why. The real uv binary (behind a pyenv shim, say) is what uv itself passes on as $UV."""
    import subprocess

    def ask(cmd: list[str]) -> str:
        return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=600, env=uv_env(path)).stdout

    uv_sync = [uv, "sync", "--quiet", *locked_flag(path), "--script", path, "--output-format", "json"]
    try:
        try:  # from uv's cache first: quick, and the only way when offline; a new dependency needs the index
            answer = ask([*uv_sync, "--offline"])
        except subprocess.CalledProcessError:
            answer = ask(uv_sync)
        synced = json.loads(answer)["sync"]
        venv, python = synced["environment"]["path"], synced["environment"]["python"]["path"]
        if not (python.startswith(venv + os.sep) and os.path.exists(os.path.join(venv, "pyvenv.cfg"))):
            return None
        real_uv = uv
        with open(uv, "rb") as f:
            if f.read(2) == b"#!":  # a wrapper script (a pyenv shim): ask the uv behind it
                probe = "import os; print(os.environ['UV'])"
                real_uv = ask([uv, "run", "-q", "--no-project", "--python", python, "--", python, "-I", "-c", probe])
                real_uv = real_uv.strip()
        record = "\n".join([*keys, real_uv, venv, python, uv_identity(real_uv)])
        from pathlib import Path

        atomic_write(Path(direct_record_path(path, keys[2])), record)
    except (OSError, ValueError, KeyError, TypeError, subprocess.SubprocessError) as e:
        log.debug("direct exec not recorded: %s", e)
        return None
    return real_uv, venv, python


# -- installed commands: a launcher that needs no Python of its own ------------------------------------
# An installed command (`sm install`) is an sh script. Once sm has run its script directly (above), sm writes
# $SM_HOME/launch/NAME: that exec, and what the launcher must find again to repeat it without starting sm (~8 ms
# of Python before the script's own): the same uv first on PATH and the same UV_* settings, the pinned sha256 of
# the script (and lock), the interpreter and environment still there, neither uv nor the mapping changed since,
# and the background refresh not yet due. Everything but the sha256 is a test the shell does itself, so a launch
# costs sh, one subshell and one `sha256sum`: ~2 ms. Anything else goes through sm, which records again.
#   The mapping: NAME%ino is a hard link to mapping.json as sm read it (any other file in its place, a restored
#   backup say, is not the same file), and NAME%map has its mtime (a write in place changes it, up or down: sm
#   records only a mapping older than two seconds, so no later write can share its clock tick). Every write of
#   the mapping by sm deletes the records too. NAME%due has the time the refresh is due; the shell's clock is
#   the mtime of its own /proc/PID (Linux; elsewhere the launcher always goes through sm). No script name holds a
#   %, so no record is another's companion; and the launcher reads a record's first line before it sources it.
# The sh that observes is kept in one place (LAUNCH_OBSERVE): the launcher runs it, and so does sm when it
# records, so the two never disagree on a format (sha256sum's, or the shell's quoting of variables).

LAUNCH_FORMAT = "sm-launch 5"
LAUNCH_HEADER = f"# {LAUNCH_FORMAT}: sh assignments, sourced by an sm launcher"  # read before anything is sourced
RACY_NS = 2 * 10**9  # a mapping younger than this may still change within its mtime's clock tick
LAUNCH_OBSERVE = r"""_sm_observe() {
  _sm_u=; _sm_p=$PATH:
  while [ -n "$_sm_p" ]; do
    _sm_d=${_sm_p%%:*}; _sm_p=${_sm_p#*:}
    if [ -f "${_sm_d:-.}/uv" ] && [ -x "${_sm_d:-.}/uv" ]; then _sm_u=${_sm_d:-.}/uv; break; fi
  done
  _sm_s=; IFS='
'; set -f
  for _sm_v in $(export -p); do
    case $_sm_v in 'export UV_RUN_RECURSION_DEPTH='*) ;; 'export UV_'*) _sm_s="$_sm_s$_sm_v;" ;; esac
  done
  unset IFS; set +f
  _sm_h=$(sha256sum - "$_sm_sc" ${_sm_lk:+"$_sm_lk"} <<_SM_END
$_sm_s
_SM_END
)
}"""
LAUNCH_FIELDS = "_sm_iv _sm_py _sm_ve _sm_ru _sm_sc _sm_lk _sm_m".split()


def launch_record_path(name: str) -> str | None:
    folder = run_record_path(name)  # the same rule for which names can be files
    return None if folder is None else os.path.join(home_dir(), "launch", name)


def record_launch(name: str, entry: Entry, direct: tuple[list[str], dict[str, str]], stamp: str) -> None:
    """After a launcher fell back to sm, and sm is about to exec the script directly: record that exec for the
    launcher, if what the launcher sees (LAUNCH_OBSERVE) agrees with what sm verified. `stamp` is the mapping as
    it was before sm read it: a mapping written since may have moved the pin, so then no record. The record is
    sh assignments that the launcher sources (a file in $SM_HOME, as trusted as the interpreter path it names)."""
    import shlex
    import subprocess
    from pathlib import Path

    argv, env = direct
    python, script = argv[0], argv[1]
    lock = lock_path_of(script) if entry.get("lock_sha256") else ""
    given, interval = os.environ.get("SM_REFRESH_SECONDS", ""), refresh_interval()  # the launcher compares `given`
    fields = [given, python, env["VIRTUAL_ENV"], env["UV"], script, lock, mapping_file()]
    values = dict(zip(LAUNCH_FIELDS, fields, strict=True))
    record = launch_record_path(name)
    read_at = int(stamp.split(":")[1])  # file_stamp: inode, mtime_ns, size
    if record is None or time.time_ns() - read_at < RACY_NS:
        return  # a write in the same clock tick could leave the mtime as it is: record on a later run (git's rule)
    assign = "".join(f"{var}={shlex.quote(value)}\n" for var, value in values.items())
    show = 'printf "%s\\n%s" "$_sm_u" "$_sm_h"'
    words = ["/bin/sh", "-c", f"{LAUNCH_OBSERVE}\n{assign}_sm_observe && {show}"]
    uv, _, hashes = subprocess.run(words, capture_output=True, text=True, timeout=30, check=True).stdout.partition("\n")
    expected = [entry["sha256"], *([entry["lock_sha256"]] if lock else [])]
    if not uv or [h.partition("  ")[0] for h in hashes.split("\n")[1:]] != expected:
        return  # no uv, or a sha256sum that prints otherwise: the launcher keeps asking sm
    try:
        refreshed = os.stat(refresh_stamp_path()).st_mtime_ns
    except OSError:
        refreshed = 0
    if interval >= 0 and time.time_ns() - refreshed >= interval * 1e9:
        refreshed = time.time_ns()  # due: exec_script starts the refresh in a moment, and that resets the clock
    with contextlib.suppress(FileNotFoundError):
        os.unlink(record)  # no record while its companions change
    for suffix, ns in (("%map", read_at), ("%due", refreshed + int(interval * 1e9) if interval >= 0 else 2**62)):
        atomic_write(Path(record + suffix), "")
        os.utime(record + suffix, ns=(ns, ns))
    # NAME%ino: a hard link to the mapping as sm read it, so that the shell can tell any other file in its place
    link = f"{record}%ino"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(link)
    os.link(mapping_file(), link, follow_symlinks=False)
    values |= {"_sm_u0": uv, "_sm_h0": hashes, "_sm_z": f"{LAUNCH_FORMAT}/{name}"}  # the end: read it all
    lines = [LAUNCH_HEADER, *(f"{var}={shlex.quote(value)}" for var, value in values.items())]
    atomic_write(Path(record), "\n".join(lines) + "\n")
    if file_stamp(mapping_file()) != stamp:  # written while sm read it (a sync): this record may be stale
        os.unlink(record)


def forget_launches() -> None:
    """The mapping changed: every launcher asks sm again (and sm records again) before it runs anything."""
    folder = os.path.join(home_dir(), "launch")
    with contextlib.suppress(OSError):
        for name in os.listdir(folder):
            if not name.endswith(("%map", "%due")):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(folder, name))


def refresh_interval() -> float:
    """SM_REFRESH_SECONDS: 300 unless set; 0 refreshes on every run, a negative number never."""
    try:
        return float(os.environ.get("SM_REFRESH_SECONDS") or 300)
    except ValueError:
        return 300.0


def refresh_stamp_path() -> str:
    """Touched when a background refresh starts: its mtime is when the last one was."""
    return os.path.join(home_dir(), "refresh.stamp")


def refresh_in_background() -> None:
    """Once every SM_REFRESH_SECONDS (default 300), sync the mapping in a detached process, so an edit made on
    another machine reaches this one without `sm sync`. It costs one fork, only when the interval has passed;
    the script never waits for it, and it writes nothing but sm.log. The next run uses what it brought."""
    interval = refresh_interval()
    if interval < 0 or os.environ.get("SM_BACKGROUND"):
        return
    stamp = refresh_stamp_path()
    try:
        last = os.stat(stamp).st_mtime
    except OSError:
        last = 0.0
    if time.time() - last < interval:
        return
    try:
        fd = os.open(stamp, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW, 0o600)
        try:
            os.utime(fd)  # the attempt, not the success: an offline machine forks once per interval, not per run
        finally:
            os.close(fd)
        pid = os.fork()
    except OSError:
        return
    if pid:
        return
    try:  # the child: its own session, no terminal, no share of the script's stdin or output
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.environ["SM_BACKGROUND"] = "1"
        background_sync()
    finally:
        os._exit(0)


def background_sync() -> None:
    """The body of the detached refresh: warnings and failures go to sm.log only."""
    try:
        setup_logging(verbose=False, console=False)
        try_sync("Background refresh of the mapping failed: %s")
    except Exception as e:  # noqa: BLE001 - nobody is there to see it: record it and go
        with contextlib.suppress(Exception):
            log.error("Background refresh crashed: %s", e)


# -- sm list --json, and reading the mapping -------------------------------------------------------


def fast_list_json(argv: Sequence[str]) -> bool:
    """`sm list --json` on a machine that has synced before: the standard library is enough."""
    if list(argv) != ["list", "--json"] or not read_sync_state().get("gist_id"):
        return False
    if not isatty(sys.stdout):  # piped: the compact rows written with the mapping, if they are its current ones
        try:
            with open(list_cache_path(), "rb") as cached:
                if cached.readline().decode().strip() == file_stamp(mapping_path()):
                    sys.stdout.flush()
                    sys.stdout.buffer.write(cached.read())
                    sys.stdout.flush()
                    return True
        except (OSError, ValueError):
            pass
    try:
        text = rows_json(script_rows(read_mapping()))
    except SmError:
        return False  # the full CLI reports it
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
    return True


def script_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The entries of a mapping, sorted by name: what `sm list --json` prints."""
    return [data["scripts"][n] for n in sorted(data["scripts"])]


def rows_json(rows: list[dict[str, Any]]) -> str:
    """Indented for people on a terminal; compact (and several times faster to write) for programs."""
    return json_text(rows, indent=2 if isatty(sys.stdout) else None)


def json_text(data: Any, indent: int | None = 2) -> str:
    """JSON for stdout. On a terminal, text that holds characters a terminal would act on is written with
    \\u escapes instead: the same data, nothing for the terminal to obey."""
    text = json.dumps(data, ensure_ascii=False, indent=indent)
    if isatty(sys.stdout) and visible(text) != text:
        text = json.dumps(data, indent=indent)
    return text


MAPPING_VERSION = 1
QUARANTINE = "_quarantined"  # in memory only: {"scripts": {name: raw}, "tombstones": {name: raw}}
UPGRADE_HINT = "upgrade sm (`uv tool upgrade sm-script-manager`, or a newer sm.py)"
_warned: set[tuple[str, str, str]] = set()


def empty_mapping() -> dict[str, Any]:
    return {"version": MAPPING_VERSION, "scripts": {}, "tombstones": {}}


def read_mapping(path: Path | str | None = None) -> dict[str, Any]:
    path = path or mapping_file()
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return empty_mapping()
    except OSError as e:
        raise MappingError(f"Cannot read {path}: {e.strerror}.") from e
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        backup = f"{path}.bak"
        source = f"{os.path.basename(backup)} and GitHub" if os.path.exists(backup) else "GitHub"
        raise MappingError(
            f"{path} is corrupt ({_short(e)}) and was left untouched: repair it, or run `sm sync --from-remote` "
            f"to set it aside and rebuild it from {source}."
        ) from e
    return check_mapping(data, str(path))


def check_mapping(data: Any, source: str, *, quiet: bool = False) -> dict[str, Any]:
    """A whole mapping, its entries and tombstones checked one by one: bad ones move to data[QUARANTINE]."""
    if not isinstance(data, dict):
        raise MappingError(
            f"{source} is not an sm mapping (expected an object with `scripts`). Move it away, then run "
            "`sm sync --from-remote` to restore it from GitHub."
        )
    data.pop(QUARANTINE, None)  # sm's own in-memory key: never taken from a file
    if type(data.get("version", MAPPING_VERSION)) is not int:
        _warn_once(source, "version", f"{source}: `version` is not a number ({_clip(data['version'])}); read as 1.")
        data["version"] = MAPPING_VERSION
    quarantined: dict[str, dict[str, Any]] = {}
    for section, problem_of, kind in (
        ("scripts", entry_problem, "entry"),
        ("tombstones", tombstone_problem, "tombstone"),
    ):
        items = data.get(section, {})
        if type(items) is not dict:
            _warn_once(source, section, f"{source}: `{section}` is not an object ({_clip(items)}); ignored.")
            data[section] = {}
            continue
        for name, value in items.items():
            if section == "scripts" and type(value) is dict and value.get("owner") == UNKNOWN_OWNER:
                value["owner"] = None  # what sm once stored for an anonymous gist: read as the null it means
            if problem := problem_of(name, value):
                quarantined.setdefault(section, {})[name] = value
                if not quiet:
                    _warn_once(
                        source,
                        f"{section}/{name}",
                        f"Ignoring the {kind} {name!r} in {source}: {problem}. "
                        "The other scripts work as usual; fix or remove that entry.",
                    )
        if section in quarantined:
            data[section] = {n: v for n, v in items.items() if n not in quarantined[section]}
    data.setdefault("version", MAPPING_VERSION)
    data.setdefault("scripts", {})
    data.setdefault("tombstones", {})
    if quarantined:
        data[QUARANTINE] = quarantined
    return data


UNKNOWN_OWNER = "an unknown owner"  # stored by earlier versions of sm for gists without an owner


def tombstone_problem(name: Any, stone: Any) -> str | None:
    if type(name) is not str or not re.fullmatch(NAME_PATTERN, name):
        return "the name is not a valid script name"
    if type(stone) is not dict:
        return f"the tombstone is a {type(stone).__name__}, not an object"
    if type(stone.get("deleted_at")) is not str:
        return f"deleted_at is missing or not a string ({_clip(stone.get('deleted_at'))})"
    gist_id = stone.get("gist_id")
    if gist_id is not None and (type(gist_id) is not str or not re.fullmatch(GIST_ID_PATTERN, gist_id)):
        return f"gist_id is malformed ({_clip(gist_id)})"
    if stone.get("clock") is not None and type(stone["clock"]) is not str:
        return f"clock is not a string ({_clip(stone['clock'])})"
    return None


def _warn_once(source: str, key: str, message: str) -> None:
    if (source, key, message) not in _warned:
        _warned.add((source, key, message))
        log.warning("%s", message)


def list_cache_path() -> Path:
    return sm_home() / "list.json"


def file_stamp(path: Path) -> str:
    """Changes whenever the file is replaced or rewritten (atomic writes make a new inode)."""
    st = os.stat(path)
    return f"{st.st_ino}:{st.st_mtime_ns}:{st.st_size}"


def sync_state_path() -> Path:
    return sm_home() / "sync.json"


def read_sync_state() -> dict[str, Any]:
    try:
        state = json.loads(sync_state_path().read_text())
        return state if isinstance(state, dict) else {}
    except (OSError, ValueError):
        return {}


# ══════════════════════════════════════════════════════════════════════════════════════════════════
# Script model
# ══════════════════════════════════════════════════════════════════════════════════════════════════
# A script describes itself in its PEP 723 block: requires-python, dependencies, and sm's [tool.sm] table
# (description, provenance, parameters). Pure functions: reading it, checking a candidate, stamping it.

# The reference regex from PEP 723.
BLOCK_PATTERN = r"(?m)^# /// (?P<type>[a-zA-Z0-9-]+)$\s(?P<content>(^#(| .*)$\s)+)^# ///$"


def script_blocks(code: str) -> list[re.Match[str]]:
    return [m for m in re.finditer(BLOCK_PATTERN, code) if m.group("type") == "script"]


def block_toml(match: re.Match[str]) -> str:
    return "".join(
        line[2:] if line.startswith("# ") else line[1:] for line in match.group("content").splitlines(keepends=True)
    )


class ScriptInfo:
    """A script as sm reads it: its PEP 723 metadata, [tool.sm] table and parameters, parsed once.

    Made by read_script(), which never raises: a block that cannot be used is recorded in `problem`, and
    metadata() raises it for callers that need a valid block. Shared between callers: treat it as read-only.
    """

    def __init__(self, code: str):
        import tomllib

        self.code = code
        # What uv reads: a UTF-8 BOM and CRLF line endings are fine, whichever way the code arrived (a local file,
        # gist content, the cache). Hashes and uploads use `code` as it is; parsing uses `text`.
        self.text = code.removeprefix("\ufeff").replace("\r\n", "\n")
        self.problem: str | None = None  # why uv would refuse the PEP 723 block, or None
        self.missing: str | None = None  # what a script sm generates must also have: both keys
        self.meta: dict[str, Any] = {}
        blocks = script_blocks(self.text)
        self.block = blocks[0] if len(blocks) == 1 else None  # a match in `text`
        try:
            if len(blocks) > 1:
                raise ValidationFailed(f"expected exactly one `# /// script` block (PEP 723), found {len(blocks)}")
            if not blocks:  # uv runs it with no dependencies; sm's own scripts always carry a block
                self.missing = "expected exactly one `# /// script` block (PEP 723), found 0"
                raise LookupError
            try:
                meta = tomllib.loads(block_toml(blocks[0]))
            except tomllib.TOMLDecodeError as e:
                raise ValidationFailed(f"the `# /// script` block is not valid TOML: {e}") from e
            deps = meta.get("dependencies", [])
            if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
                raise ValidationFailed("`dependencies` in the `# /// script` block must be a list of strings")
            if not isinstance(meta.get("requires-python", ""), str):
                raise ValidationFailed('`requires-python` in the `# /// script` block must be a string, e.g. ">=3.11"')
        except ValidationFailed as e:
            self.problem = str(e)
        except LookupError:
            pass
        else:
            self.meta = meta
            if "dependencies" not in meta:
                self.missing = "the `# /// script` block needs a `dependencies` list of strings (even if empty)"
            elif "requires-python" not in meta:
                self.missing = 'the `# /// script` block needs `requires-python`, e.g. ">=3.11"'
        tool = self.meta.get("tool")
        self.tool: dict[str, Any] = tool if isinstance(tool, dict) else {}
        table = self.tool.get("sm")
        self.table: dict[str, Any] | None = table if isinstance(table, dict) else None  # [tool.sm]

    def metadata(self, *, strict: bool = False) -> dict[str, Any]:
        """The PEP 723 metadata; raises ValidationFailed naming what is wrong with the block (`strict`: what a
        script sm generates must have as well)."""
        if problem := self.problem or (self.missing if strict else None):
            raise ValidationFailed(problem)
        return self.meta

    @property
    def requires_python(self) -> str | None:
        return self.meta.get("requires-python")

    @property
    def dependencies(self) -> list[str]:
        return list(self.meta.get("dependencies") or [])

    @property
    def declared(self) -> list[dict[str, Any]] | None:
        """The parameters in [tool.sm]; None when there is no such table to say what they are."""
        if self.table is None:
            return None
        return [param_dict(p) for p in self.table.get("params") or [] if isinstance(p, dict) and "name" in p]

    @cached_property
    def tree(self) -> ast.Module:
        """The code's syntax tree; raises SyntaxError."""
        import ast

        return ast.parse(self.text)

    @cached_property
    def options(self) -> list[dict[str, Any]]:
        """The `--name` options the code declares (argparse's add_argument, click's option), read without running
        it; raises SyntaxError."""
        return option_params(self.tree)

    @property
    def params(self) -> list[dict[str, Any]] | None:
        """What `key=value` can feed: [tool.sm] when the script has the table, else its --options; None when
        neither can be read (no valid block, or code that does not parse)."""
        if self.problem:
            return None
        try:
            return self.options if self.declared is None else self.declared
        except SyntaxError:
            return None

    @property
    def description(self) -> str:
        """[tool.sm] description, else the first line of the module docstring."""
        import ast

        if isinstance(text := (self.table or {}).get("description"), str):
            return text
        with contextlib.suppress(SyntaxError):
            return ((ast.get_docstring(self.tree) or "").strip().splitlines() or [""])[0]
        return ""

    def ready_params(self, label: str) -> list[dict[str, Any]]:
        """For a script sm did not write (`sm add`): the checks `create` makes, then its parameters. Raises
        ValidationFailed naming every problem."""
        compiled, problem = syntax_elsewhere(self, label)
        problems = [problem] if problem else script_problems(self.code, [], [], strict=False, compiled=compiled)
        params: list[dict[str, Any]] = []
        if not problems:
            # Code only a newer Python can parse hides its inputs from this one: they go after `--`.
            params = self.params if self.params is not None else [param_dict(FREE_ARGS)] if compiled else []
            # Options found in the code are accepted by construction; a [tool.sm] table must match the code.
            if self.table is not None:
                problems = script_problems(self.code, params, [], strict=False, compiled=compiled)
        if problems:
            raise ValidationFailed(f"{label} is not ready for sm: {'; '.join(problems)}.")
        return params


@memo(16)
def read_script(code: str) -> ScriptInfo:
    """The one reader of a script: one call path asks about the same code several times, and parses it once."""
    return ScriptInfo(code)


# A PEP 508 requirement: NAME[extras], then version specifiers or `@ URL`, then an optional `; marker`.
# Checked before a dependency reaches pip's command line (uv checks them itself).
_REQ_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_REQ_SPEC = r"(?:~=|===|==|!=|<=|>=|<|>)[ \t]*[A-Za-z0-9_.*+!-]+"
REQUIREMENT_PATTERN = (
    rf"[ \t]*{_REQ_NAME}[ \t]*(?:\[[ \t]*(?:{_REQ_NAME}(?:[ \t]*,[ \t]*{_REQ_NAME})*)?[ \t]*\])?[ \t]*"
    rf"(?:@[ \t]*[^\s;]+[ \t]*|\(?[ \t]*{_REQ_SPEC}(?:[ \t]*,[ \t]*{_REQ_SPEC})*[ \t]*\)?[ \t]*)?"
    r"(?:;[^\x00-\x1f]*)?"
)


def python_satisfies(spec: str, version: Sequence[int]) -> bool:
    """Does a Python (major, minor, micro) meet `requires-python`, e.g. ">=3.11,<4" or "~=3.12"?"""
    have = tuple(version[:3])
    for clause in filter(None, (c.strip() for c in spec.split(","))):
        m = re.fullmatch(r"(~=|===|==|!=|<=|>=|<|>)\s*(\d+(?:\.\d+)*)(\.\*)?", clause)
        if not m or (m.group(3) and m.group(1) not in ("==", "!=")) or (m.group(1) == "~=" and "." not in m.group(2)):
            raise ValidationFailed(f"cannot read requires-python {spec!r}: {clause!r} is not a version specifier")
        op, text, star = m.groups()
        want = tuple(int(x) for x in text.split("."))
        if star:
            ok = (have[: len(want)] == want) == (op == "==")
        else:
            width = max(len(want), len(have))
            h, w = have + (0,) * (width - len(have)), want + (0,) * (width - len(want))
            ok = {
                "==": h == w,
                "===": h == w,
                "!=": h != w,
                "<=": h <= w,
                ">=": h >= w,
                "<": h < w,
                ">": h > w,
                "~=": h >= w and have[: len(want) - 1] == want[:-1],
            }[op]
        if not ok:
            return False
    return True


SYNTAX_CHECK = (
    "import sys\ntry: compile(sys.stdin.read(), 'script.py', 'exec')\n"
    "except SyntaxError as e: print(f'{e.msg} (line {e.lineno})'); sys.exit(1)"
)


def syntax_elsewhere(script: ScriptInfo, label: str) -> tuple[bool, str | None]:
    """A script you bring may need a newer Python than sm's own: its syntax is then checked by an interpreter
    that satisfies its requires-python, as uv finds one, or not at all (with a note). Returns (checked here
    instead of by sm's own Python, the problem found)."""
    import subprocess

    spec = script.requires_python
    if not spec or python_satisfies(spec, sys.version_info):
        return False, None
    python = ""
    if uv := which("uv"):
        found = subprocess.run([uv, "python", "find", spec], capture_output=True, text=True, timeout=60)
        python = found.stdout.strip() if found.returncode == 0 else ""
    if not python:
        log.warning(
            "The syntax of %s was not checked: no Python for its requires-python %s was found "
            "(`uv python install '%s'` gets one).",
            label,
            spec,
            spec,
        )
        return True, None
    checked = subprocess.run([python, "-c", SYNTAX_CHECK], input=script.text, capture_output=True, text=True)
    if checked.returncode != 0:
        return True, f"the code does not compile with Python {spec}: {checked.stdout.strip() or checked.stderr[-200:]}"
    return True, None


PARAM_KINDS = ("option", "positional", "flag", "free")  # how a value reaches the script; a missing kind: option


def param_dict(p: Any) -> dict[str, Any]:
    """A parameter as stored: name, help, required, and only where they say more than a plain --option does,
    default, kind, multiple (repeatable) and cli (its spelling on the command line, when not --NAME)."""
    d = p if isinstance(p, dict) else p.model_dump()
    out = {
        "name": d["name"],
        "help": d["help"] if isinstance(d.get("help"), str) else "",
        "required": bool(d.get("required")),
    }
    if d.get("default") is not None:
        out["default"] = str(d["default"])
    if d.get("kind") in PARAM_KINDS[1:]:
        out["kind"] = d["kind"]
    if d.get("multiple") is True:
        out["multiple"] = True
    if isinstance(d.get("cli"), str) and d["cli"] != f"--{d['name']}":
        out["cli"] = d["cli"]
    return out


def kind_of(param: dict[str, Any]) -> str:
    return param.get("kind") or "option"


# A script that reads its arguments itself (sys.argv, subcommands): no key=value can describe them.
FREE_ARGS = {"name": "ARGS", "help": "read by the script itself: pass them after `--`", "kind": "free"}

# argparse actions that take no value: flags (help and version are sm's -h and no input at all).
FLAG_ACTIONS = {"store_true", "store_false", "store_const", "append_const", "count", "BooleanOptionalAction"}
CLI_PATTERN = r"-[A-Za-z0-9]|--[A-Za-z0-9][A-Za-z0-9_-]*"


def option_params(tree: ast.Module) -> list[dict[str, Any]]:
    """Every input the code declares, read without running it (see ScriptInfo.options): argparse's
    add_argument, click's option and argument, typer's command parameters; [FREE_ARGS] for a script that
    reads sys.argv by hand or has subcommands. Never invents one: what is not understood is left out."""
    import ast

    calls = sorted((n for n in ast.walk(tree) if isinstance(n, ast.Call)), key=lambda n: (n.lineno, n.col_offset))
    names = {_func_name(c) for c in calls}
    run = {
        c.args[0].id for c in calls if _func_name(c) == "run" and _is_typer(c) and c.args and hasattr(c.args[0], "id")
    }
    commands = [f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and (_is_command(f) or f.name in run)]
    if "add_subparsers" in names or "group" in names or len(commands) > 1:
        return [param_dict(FREE_ARGS)]
    found: dict[str, dict[str, Any]] = {}
    for call in calls:
        func = _func_name(call)
        if func == "add_argument" or (func in ("option", "argument") and not _is_typer(call)):
            param = _call_param(call, func)
            if param and param["name"] not in found:
                found[param["name"]] = param
    if not found and commands and "typer" in _identifiers(tree):
        found = {p["name"]: p for p in map(_typer_param, _arguments(commands[0])) if p}
    if not found and _reads_argv(tree):
        return [param_dict(FREE_ARGS)]
    return [param_dict(p) for p in found.values()]


def _func_name(call: ast.Call) -> str:
    return call.func.attr if hasattr(call.func, "attr") else getattr(call.func, "id", "")


def _is_typer(call: ast.Call) -> bool:
    return getattr(call.func, "value", None) is not None and getattr(call.func.value, "id", "") == "typer"


def _is_command(func: ast.FunctionDef) -> bool:
    """A typer command: `@app.command()` (click's `@click.command()` is read from its option decorators)."""
    return any(
        _func_name(d) == "command" and getattr(getattr(d.func, "value", None), "id", "") != "click"
        for d in func.decorator_list
        if hasattr(d, "func")
    )


def _arguments(func: ast.FunctionDef) -> list[tuple[ast.arg, ast.expr | None]]:
    args = func.args.args
    defaults = [None] * (len(args) - len(func.args.defaults)) + list(func.args.defaults)
    return list(zip(args, defaults, strict=True))


def _reads_argv(tree: ast.Module) -> bool:
    import ast

    return any(
        (isinstance(n, ast.Attribute) and n.attr == "argv" and getattr(n.value, "id", "") == "sys")
        or (isinstance(n, ast.ImportFrom) and n.module == "sys" and any(a.name == "argv" for a in n.names))
        for n in ast.walk(tree)
    )


def _const(node: ast.AST | None) -> Any:
    """A literal's value (negative numbers included); anything else is Ellipsis, 'not known here'."""
    import ast

    with contextlib.suppress(ValueError, TypeError, SyntaxError):
        return ast.literal_eval(node) if node is not None else None
    return ...


def _call_param(call: ast.Call, func: str) -> dict[str, Any] | None:
    """add_argument(...), click.option(...) or click.argument(...) as a parameter, or None."""
    decls = [a.value for a in call.args if isinstance(getattr(a, "value", None), str)]
    kw = {k.arg: k.value for k in call.keywords if k.arg}
    const = {k: _const(v) for k, v in kw.items()}
    action = const.get("action")
    if action is ... and hasattr(kw.get("action"), "attr"):
        action = kw["action"].attr  # argparse.BooleanOptionalAction
    if action in ("help", "version"):
        return None
    nargs = const.get("nargs")
    switches = [d for d in decls if d.startswith("-")]
    help_text = const["help"] if isinstance(const.get("help"), str) else ""
    default = const.get("default")
    default = None if default is ... or isinstance(default, (list, tuple)) else default
    if not switches:  # a positional: argparse's dest, click's argument name
        if func == "option" or len(decls) != 1 or not re.fullmatch(PARAM_NAME_PATTERN, decls[0]):
            return None
        optional = nargs in ("?", "*", -1) or (
            func == "argument" and ("default" in kw or const.get("required") is False)
        )
        return {
            "name": decls[0],
            "kind": "positional",
            "multiple": nargs in ("*", "+", -1) or (isinstance(nargs, int) and nargs > 1),
            "required": not optional,
            "default": default if optional else None,
            "help": help_text,
        }
    on = switches[0].split("/")[0]
    long = next((s.split("/")[0] for s in switches if s.startswith("--")), None)
    cli = long or on
    if not re.fullmatch(CLI_PATTERN, cli):
        return None
    flag = (
        action in FLAG_ACTIONS
        or const.get("is_flag") is True
        or const.get("count") is True
        or "flag_value" in kw
        or any("/" in s for s in switches)
    )
    return {
        "name": cli.lstrip("-"),
        "kind": "flag" if flag else "option",
        "multiple": action == "append" or const.get("multiple") is True or nargs in ("*", "+", -1),
        "required": const.get("required") is True and not flag,
        "default": None if flag else default,
        "help": help_text,
        "cli": cli,
    }


def _typer_param(item: tuple[ast.arg, ast.expr | None]) -> dict[str, Any] | None:
    """A typer command's parameter: Annotated[T, typer.Option/Argument(...)], `x: T = typer.Option(...)`, or
    plain (no default: an argument; a default: an --option; bool: a flag; list[...]: repeatable)."""
    import ast

    arg, default_node = item
    annotation, marker = arg.annotation, None
    if isinstance(annotation, ast.Subscript) and getattr(annotation.value, "id", "") == "Annotated":
        parts = annotation.slice.elts if isinstance(annotation.slice, ast.Tuple) else [annotation.slice]
        annotation = parts[0]
        marker = next(
            (p for p in parts[1:] if isinstance(p, ast.Call) and _func_name(p) in ("Option", "Argument")), None
        )
    if isinstance(default_node, ast.Call) and _func_name(default_node) in ("Option", "Argument"):
        marker, default_node = default_node, (default_node.args[0] if default_node.args else None)
    kind = "positional" if marker is None and default_node is None else "option"
    decls: list[str] = []
    help_text = ""
    if marker is not None:
        kind = "positional" if _func_name(marker) == "Argument" else "option"
        decls = [a.value for a in marker.args if isinstance(getattr(a, "value", None), str) and a.value.startswith("-")]
        help_text = next((_const(k.value) for k in marker.keywords if k.arg == "help"), "")
        help_text = help_text if isinstance(help_text, str) else ""
    type_text = ast.unparse(annotation) if annotation is not None else ""
    if kind == "option" and re.fullmatch(r"(Optional\[)?bool\]?( \| None)?", type_text):
        kind = "flag"
    default = _const(default_node)
    required = default_node is None or default is ...
    cli = None if kind == "positional" else (decls[0].split("/")[0] if decls else "--" + arg.arg.replace("_", "-"))
    if cli is not None and not re.fullmatch(CLI_PATTERN, cli):
        return None
    return {
        "name": arg.arg,
        "kind": kind,
        "multiple": bool(re.match(r"(typing\.)?(list|List|tuple|Tuple|Sequence)\[", type_text)),
        "required": required and kind != "flag",
        "default": None if kind == "flag" or default is ... else default,
        "help": help_text,
        "cli": cli,
    }


def _option_strings(tree: ast.AST) -> set[str]:
    import ast

    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def _identifiers(tree: ast.AST) -> set[str]:
    import ast

    names: set[str] = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Attribute):
            names.add(n.attr)
        elif isinstance(n, ast.Name):
            names.add(n.id)
        elif isinstance(n, ast.arg):
            names.add(n.arg)
        elif isinstance(n, ast.Constant) and isinstance(n.value, str):
            names.add(n.value)  # getattr(args, "name") / vars(args)["name"]
    return names


def script_problems(
    code: str, params: Sequence[Any], required: Sequence[str], *, strict: bool = True, compiled: bool = False
) -> list[str]:
    """Everything wrong with a candidate script, as sentences the model (or a user) can act on. `strict` for
    scripts sm generates (both PEP 723 keys); `compiled` when the syntax was already checked elsewhere."""
    script = read_script(code)
    try:
        tree = script.tree
        compile(tree, "script.py", "exec")
    except SyntaxError as e:
        if not compiled:
            return [f"the code does not compile: {e.msg} (line {e.lineno})"]
        tree = None
    problems = [p] if (p := script.problem or (script.missing if strict else None)) else []
    if tree is None:  # valid for another Python (syntax_elsewhere), unreadable to this one
        return problems
    declared = {d["name"] for d in map(param_dict, params) if kind_of(d) == "option"}
    strings, idents = _option_strings(tree), _identifiers(tree)
    for name in required:
        if name not in declared:
            problems.append(f"placeholder {{{{{name}}}}} must be declared as parameter {name!r}")
    for name in sorted(declared | set(required)):
        if f"--{name}" not in strings:
            problems.append(f"parameter {name!r} must be accepted as the command-line option --{name}")
        elif name.replace("-", "_") not in idents:
            problems.append(f"parameter {name!r} is declared but the code never reads its value")
    return problems


def stamp_script(
    code: str,
    *,
    params: Sequence[Any],
    description: str,
    prompt: str,
    model: str,
    created_at: str,
    exclude_newer: bool = True,
    changes: Sequence[dict[str, str]] = (),
) -> str:
    """Record parameters and provenance under [tool.sm] (never [tool.uv]) so a gist describes itself; the rest
    of the block keeps its comments and key order.

    exclude-newer pins dependency resolution to the creation time, so the script resolves the same
    way next year.
    """
    read_script(code).metadata(strict=True)  # a block that cannot be read is refused, never rewritten
    table: dict[str, Any] = {"description": description, "prompt": prompt, "model": model, "created_at": created_at}
    if changes:
        table["changes"] = list(changes)
    if params:
        table["params"] = [param_dict(p) for p in params]

    def stamp(doc: Any) -> None:
        tool = subtable(doc, "tool")
        tool["sm"] = toml_item(table)
        if exclude_newer and "exclude-newer" not in (uv := subtable(tool, "uv")):
            uv["exclude-newer"] = created_at.split(".")[0] + "Z"

    code = edit_metadata(code, stamp)
    return code if code.endswith("\n") else code + "\n"


def pin_resolution(code: str, when: str) -> str:
    """Move [tool.uv] exclude-newer to `when` (an edit may add a package newer than the first version)."""
    read_script(code).metadata(strict=True)

    def pin(doc: Any) -> None:
        subtable(subtable(doc, "tool"), "uv")["exclude-newer"] = when.split(".")[0].removesuffix("Z") + "Z"

    return edit_metadata(code, pin)


def edit_metadata(code: str, change: Callable[[Any], None]) -> str:
    """Apply `change` to the single `script` block, parsed with tomlkit, which writes back what it did not
    change as it was (comments, key order, layout); the rest of the code is untouched. Only the commands that
    write a script (create, edit, add, self publish) import tomlkit."""
    import tomlkit

    (block,) = script_blocks(code)
    doc = tomlkit.parse(block_toml(block))
    try:
        change(doc)
    except (ValueError, TypeError) as e:  # a layout tomlkit cannot extend: one line, never a traceback
        raise ValidationFailed(
            f"sm could not add its own settings to this PEP 723 block ({e}); use [tool] tables."
        ) from e
    body = tomlkit.dumps(doc).rstrip("\n").split("\n")
    new_block = "\n".join(["# /// script", *(f"# {line}" if line else "#" for line in body), "# ///"])
    return code[: block.start()] + new_block + code[block.end() :]


def subtable(parent: Any, key: str) -> Any:
    """parent[key], made when missing: `tool` without a [tool] header of its own, as PEP 723 blocks write it."""
    import tomlkit

    if key not in parent:
        parent[key] = tomlkit.table(is_super_table=key == "tool")
    elif isinstance(parent[key], tomlkit.items.InlineTable):  # `tool = { uv = {...} }` is valid PEP 723 too
        table = tomlkit.table(is_super_table=key == "tool")
        table.update(parent[key].unwrap())
        parent[key] = table
    return parent[key]


def toml_item(value: Any) -> Any:
    """A tomlkit item for `value`: lists of tables as [[arrays of tables]], and strings escaped so that no line
    of the block breaks where str.splitlines() would (U+2028 and its kind are valid raw in TOML strings)."""
    import tomlkit

    if isinstance(value, dict):
        table = tomlkit.table()
        for k, v in value.items():
            table[k] = toml_item(v)
        return table
    if isinstance(value, list):
        items = tomlkit.aot() if value and all(isinstance(v, dict) for v in value) else tomlkit.array()
        for v in value:
            items.append(toml_item(v))
        return items
    if isinstance(value, str):
        text = tomlkit.string(value).as_string()[1:-1]
        for c in "\x85\u2028\u2029":
            text = text.replace(c, f"\\u{ord(c):04X}")
        return tomlkit.string(text, escape=False)
    return value


# ══════════════════════════════════════════════════════════════════════════════════════════════════
# GitHub client
# ══════════════════════════════════════════════════════════════════════════════════════════════════
# Retries cover what GitHub asks clients to retry: dropped connections, 5xx, and rate limits
# (honouring Retry-After / x-ratelimit-reset). Mutations are spaced at least 1 s apart, as GitHub's
# best-practice page asks; the token goes to the API host only, never to raw or redirect hosts.

RETRY_STATUSES = {500, 502, 503, 504}
# How many tries one request gets. A refused connection usually means offline: give up soon (and quietly).
# Other failures, and answers GitHub asks to retry, get more; all of them within the budget (SM_RETRY_BUDGET).
MAX_TRIES = {"refused": 3, "failed": 6, "answered": 8}


def backoff(tries: int, jitter: float) -> float:
    """Exponential backoff, 0.5 s doubling up to 30 s, times a jitter of 0.5-1 so that clients spread out."""
    return min(30.0, 0.5 * 2 ** (tries - 1)) * jitter


def retry_wait(
    method: str,
    tries: int,
    *,
    failure: str | None = None,
    status: int = 0,
    headers: Mapping[str, str] | None = None,
    message: str = "",
    now: float = 0.0,
    jitter: float = 1.0,
) -> float | None:
    """GitHub's rules for trying a request again: the seconds to wait first, or None to stop. Pure: the request
    loop gives the failure ("refused", "failed") or the answer (status, headers, message), the wall time `now`
    (for x-ratelimit-reset) and the jitter."""
    if failure is not None:
        if method == "POST" and failure != "refused":
            return None  # GitHub may have created the gist before the connection dropped: create_gist looks first
        return backoff(tries, jitter) if tries < MAX_TRIES[failure] else None
    if tries >= MAX_TRIES["answered"]:
        return None
    if status in RETRY_STATUSES:
        # A POST that failed with a 5xx may still have created its gist: retrying could make two.
        return None if method == "POST" else backoff(tries, jitter)
    headers = headers or {}
    if status in (403, 429) and rate_limited(status, headers, message):
        if retry_after := headers.get("retry-after"):
            with contextlib.suppress(ValueError):
                return max(0.0, float(retry_after))
        if headers.get("x-ratelimit-remaining") == "0" and (reset := headers.get("x-ratelimit-reset")):
            with contextlib.suppress(ValueError):
                return max(0.0, float(reset) - now) + 1.0
        return max(60.0, backoff(tries, jitter))  # a secondary limit without hints: GitHub says wait ≥ 1 min
    return None


def rate_limited(status: int, headers: Mapping[str, str], message: str) -> bool:
    return status == 429 or headers.get("x-ratelimit-remaining") == "0" or "rate limit" in message.lower()


class GitHub:
    _last_mutation = 0.0  # process-wide: every client in this process shares GitHub's 1 s spacing
    # How time passes for retries and spacing; tests swap in a clock that moves only when sm waits.
    clock = staticmethod(time.monotonic)
    sleep = staticmethod(time.sleep)

    def __init__(
        self,
        token: str | None,
        base_url: str | None = None,
        client: httpx2.Client | None = None,
        *,
        retry_budget: float | None = None,
    ):
        import httpx2

        self.base_url = (base_url or api_url()).rstrip("/")
        self.host = httpx2.URL(self.base_url).host
        self._token = token
        self._client = client or httpx2.Client(timeout=httpx2.Timeout(30.0, connect=10.0), verify=tls_context())
        self.retry_budget = float(os.environ.get("SM_RETRY_BUDGET", "60")) if retry_budget is None else retry_budget
        self.login: str | None = None  # set by check_token()

    @property
    def has_token(self) -> bool:
        return bool(self._token)

    @staticmethod
    def gist_path(gist_id: str, *rest: str) -> str:
        """/gists/ID[/REST...]: an id from a mapping, a gist or the environment reaches no URL unless it looks
        like GitHub's (`ID?x=/../..` would otherwise become a query string)."""
        for part, pattern in ((gist_id, GIST_ID_PATTERN), *((r, r"[A-Za-z0-9_-]+") for r in rest)):
            if type(part) is not str or not re.fullmatch(pattern, part):
                raise IntegrityError(
                    f"Refusing the gist id or revision {_clip(part)}: GitHub's gist ids are 20-32 hex characters "
                    "(or digits, for old gists). Check the mapping entry or SM_MAPPING_GIST it came from."
                )
        return "/".join(("/gists", gist_id, *rest))

    def close(self) -> None:
        self._client.close()

    # -- transport --------------------------------------------------------------------------------

    def request(
        self, method: str, url: str, *, json_body: Any = None, headers: dict[str, str] | None = None
    ) -> httpx2.Response:
        """One request, tried again as retry_wait() says within the retry budget; GitHub's answer, whatever it is."""
        import itertools
        import random

        import httpx2

        full = url if url.startswith(("http://", "https://")) else f"{self.base_url}{url}"
        hdrs = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": f"sm/{__version__}",
            **(headers or {}),
        }
        if self._token and _origin(httpx2.URL(full)) == _origin(httpx2.URL(self.base_url)):  # scheme, host, port
            hdrs["Authorization"] = f"Bearer {self._token}"
        deadline = self.clock() + self.retry_budget
        for tries in itertools.count(1):
            jitter = random.uniform(0.5, 1.0)
            try:
                resp = self._send(method, full, json_body, hdrs)
            except (httpx2.TransportError, OSError) as e:
                wait, why = self._no_answer(e, method, full, tries, jitter, deadline)
            else:
                message = _message(resp) if resp.status_code in (403, 429) else ""  # only a rate limit needs it
                wait = retry_wait(
                    method,
                    tries,
                    status=resp.status_code,
                    headers=resp.headers,
                    message=message,
                    now=time.time(),
                    jitter=jitter,
                )
                if wait is None or self.clock() + wait > deadline:
                    return resp  # done, or out of patience: the caller turns an error status into a clear error
                log.warning("GitHub answered %s; waiting %.1f s before retrying", resp.status_code, wait)
                why = resp.status_code
            status_wait(wait, why)
            self.sleep(wait)
        raise AssertionError("unreachable")

    def _send(self, method: str, url: str, json_body: Any, headers: dict[str, str]) -> httpx2.Response:
        write = method in ("POST", "PATCH", "PUT", "DELETE")
        if write:  # GitHub asks for >= 1 s between writes; GHES may not limit them (SM_WRITE_INTERVAL)
            gap = float(os.environ.get("SM_WRITE_INTERVAL", "1")) - (self.clock() - GitHub._last_mutation)
            if GitHub._last_mutation and gap > 0:
                self.sleep(gap)
        started = self.clock()
        try:
            resp = self._client.request(method, url, json=json_body, headers=headers)
        finally:
            if write:
                GitHub._last_mutation = self.clock()
        log.debug("%s %s → %s (%.0f ms)", method, url, resp.status_code, (self.clock() - started) * 1000)
        return resp

    def _no_answer(
        self, e: Exception, method: str, url: str, tries: int, jitter: float, deadline: float
    ) -> tuple[float, str]:
        """The request got no answer: (how long to wait, what happened) before trying again, or raise."""
        import httpx2

        refused = isinstance(e, httpx2.ConnectError)  # nothing reached GitHub
        wait = retry_wait(method, tries, failure="refused" if refused else "failed", jitter=jitter)
        if wait is None and method == "POST" and not refused:
            raise AnswerLost(
                f"The connection to {_host(url)} dropped before GitHub answered ({_short(e)}); the change "
                "may or may not have been made.",
                reason=f"the connection dropped: {_short(e)}",
            ) from e
        if wait is None or self.clock() + wait >= deadline:
            raise OfflineError(
                f"Cannot reach {_host(url)}: {_short(e)}. Check your network"
                + (" or SM_GITHUB_API_URL." if _host(url) == self.host else ".")
            ) from e
        what = "could not connect" if refused else "timed out" if isinstance(e, httpx2.TimeoutException) else "failed"
        # Offline is common, and said once when sm gives up; other failures are worth a warning now.
        (log.debug if refused else log.warning)(
            "Request to %s %s (%s); retrying in %.1f s", _host(url), what, _short(e), wait
        )
        return wait, what

    def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        what: str = "",
        headers: dict[str, str] | None = None,
        ok: tuple[int, ...] = (200, 201, 204),
    ) -> httpx2.Response:
        resp = self.request(method, path, json_body=json_body, headers=headers)
        if resp.status_code in ok:
            return resp
        raise self._error(resp, what or f"{method} {path}")

    def _error(self, resp: httpx2.Response, what: str) -> GitHubError:
        status = resp.status_code
        try:
            body = resp.json()
        except ValueError:
            body = {}
        message = body.get("message", "") if isinstance(body, dict) else ""
        if status == 401:
            text = "GitHub rejected the token (401 Bad credentials): check GITHUB_PAT, or create a new token with the gist scope."
        elif status == 404:
            text = (
                f"{what}: not found (404). The gist may not exist, or the token lacks the `gist` scope "
                "(classic tokens need it; fine-grained tokens need the Gists permission)."
            )
        elif status == 422:
            errors = body.get("errors") if isinstance(body, dict) else None
            detail = "; ".join(
                e.get("message") or " ".join(str(e.get(k)) for k in ("resource", "field", "code") if e.get(k))
                for e in errors or []
                if isinstance(e, dict)
            )
            text = f"{what}: GitHub refused the request (422 {message or 'Validation Failed'}{': ' + detail if detail else ''})."
        elif status in (403, 429) and rate_limited(status, resp.headers, _message(resp)):
            reset = resp.headers.get("x-ratelimit-reset")
            when = time.strftime("%H:%M:%S", time.localtime(float(reset))) if reset and reset.isdigit() else "later"
            text = f"GitHub rate limit reached ({status}); try again at {when}."
        elif status == 403:
            text = f"{what}: forbidden (403 {message}). Check the token's permissions."
        else:
            text = f"{what}: GitHub answered {status}{' ' + message if message else ''}. Try again later."
        return GitHubError(text, status)

    # -- gists ------------------------------------------------------------------------------------

    def check_token(self) -> list[str] | None:
        """Fail early on a bad token or one without the gist scope; returns the classic scopes, if any."""
        resp = self.call("GET", "/user", what="Checking the token")
        self.login = resp.json().get("login")
        header = resp.headers.get("x-oauth-scopes")
        if header is None:
            return None  # fine-grained token: permissions are not listed
        scopes = [s.strip() for s in header.split(",") if s.strip()]
        if "gist" not in scopes:
            raise GitHubError(
                f"The GitHub token lacks the `gist` scope (it has: {', '.join(scopes) or 'none'}). "
                "Create a token with the gist scope and set GITHUB_PAT."
            )
        return scopes

    def create_gist(self, files: dict[str, str], description: str, public: bool = False) -> dict[str, Any]:
        """One call, exactly one gist. When the answer is lost (5xx, timeout, dropped connection) GitHub may have
        created it anyway: look for it among the newest gists (description, file names, sha256 of every file)
        and adopt it, or try again with backoff when it is not there."""
        body = {"description": description, "public": public, "files": {n: {"content": c} for n, c in files.items()}}
        import random

        deadline = self.clock() + self.retry_budget
        for attempt in range(1, 5):
            try:
                resp = self.request("POST", "/gists", json_body=body)
            except AnswerLost as e:
                lost = e.reason
            else:
                if resp.status_code == 201:
                    return resp.json()
                if resp.status_code not in RETRY_STATUSES:
                    raise self._error(resp, "Creating the gist")
                lost = f"GitHub answered {resp.status_code}"
            try:
                if found := self.find_created(files, description):
                    log.debug("the lost create made gist %s: adopting it", found["id"])
                    return found
            except GitHubError as e:
                raise GitHubError(
                    f"GitHub did not confirm the new gist ({lost}), and checking whether it exists failed ({e}). "
                    "Look at your gists before trying again."
                ) from e
            wait = backoff(attempt, random.uniform(0.5, 1.0))
            if self.clock() + wait > deadline:
                break
            log.warning("GitHub did not confirm the new gist (%s) and none was made; retrying in %.1f s", lost, wait)
            self.sleep(wait)
        raise GitHubError(f"GitHub did not create the gist ({lost}); nothing was uploaded. Try again later.")

    def find_created(self, files: dict[str, str], description: str) -> dict[str, Any] | None:
        """The newest of the user's gists holding exactly `files` under `description`, if there is one."""
        want = {name: sha256_text(content) for name, content in files.items()}
        listed = self.call("GET", "/gists?per_page=30", what="Looking for the new gist").json()
        for gist in listed:
            if (gist.get("description") or "") != description or set(gist.get("files") or {}) != set(want):
                continue
            full, _ = self.get_gist(gist["id"])
            if full and all(sha256_text(self.file_content(full["files"][n])) == h for n, h in want.items()):
                return full
        return None

    def get_gist(self, gist_id: str, etag: str | None = None) -> tuple[dict[str, Any] | None, str | None]:
        """The gist, or (None, etag) when it has not changed since `etag`."""
        headers = {"If-None-Match": etag} if etag else None
        resp = self.call("GET", self.gist_path(gist_id), what=f"Gist {gist_id}", headers=headers, ok=(200, 304))
        if resp.status_code == 304:
            return None, etag
        return resp.json(), resp.headers.get("etag")

    def get_revision(self, gist_id: str, sha: str) -> dict[str, Any]:
        path = self.gist_path(gist_id, sha)
        return self.call("GET", path, what=f"Gist {gist_id} at revision {sha[:8]}").json()

    def update_gist(
        self, gist_id: str, files: dict[str, str | None] | None = None, description: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if files is not None:
            body["files"] = {n: (None if c is None else {"content": c}) for n, c in files.items()}
        if description is not None:
            body["description"] = description
        return self.call("PATCH", self.gist_path(gist_id), json_body=body, what=f"Updating gist {gist_id}").json()

    def delete_gist(self, gist_id: str) -> None:
        self.call("DELETE", self.gist_path(gist_id), what=f"Deleting gist {gist_id}")

    def paginate(self, path: str, what: str) -> Iterator[dict[str, Any]]:
        url: str | None = path
        while url:
            resp = self.call("GET", url, what=what)
            yield from resp.json()
            url = resp.links.get("next", {}).get("url")

    def file_content(self, file: dict[str, Any]) -> str:
        """A file's full content; GitHub truncates inline content past 1 MB, so use raw_url then."""
        if not file.get("truncated") and file.get("content") is not None:
            return file["content"]
        if problem := url_problem(str(file.get("raw_url")), "A gist file's raw_url"):
            raise GitHubError(problem)
        resp = self.call("GET", file["raw_url"], what=f"Raw file {file.get('filename')}")
        return resp.text


def _message(resp: httpx2.Response) -> str:
    """The `message` of GitHub's answer, or ""."""
    with contextlib.suppress(ValueError, AttributeError):
        return str(resp.json().get("message", ""))
    return ""


@memo()
def tls_context() -> Any:
    """One TLS context for every client in the process: loading the CA certificates takes ~20 ms each time."""
    import httpx2

    return httpx2.create_ssl_context()


def _origin(url: httpx2.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).netloc or url


def gist_file(gist: dict[str, Any], filename: str | None = None) -> dict[str, Any]:
    files = gist.get("files") or {}
    if filename:
        if filename not in files:
            raise GitHubError(f"Gist {gist.get('id')} has no file {filename!r} (files: {', '.join(files) or 'none'}).")
        return files[filename]
    py = [f for n, f in files.items() if n.endswith(".py")]
    if len(py) != 1:
        raise GitHubError(
            f"Gist {gist.get('id')} holds {len(py)} Python files ({', '.join(n for n in files if n.endswith('.py')) or 'none'}); "
            "choose one with --file."
        )
    return py[0]


def github() -> GitHub:
    token, source = find_token()
    log.debug("GitHub token from %s; API %s", source, api_url())
    return GitHub(token)


def github_optional() -> GitHub:
    """A client for reading public or secret gists: with the token when there is one."""
    try:
        return github()
    except ConfigError:
        return GitHub(None)


def latest_revision(gh: GitHub, gist: dict[str, Any]) -> str:
    history = gist.get("history") or []
    if history:
        return history[0]["version"]
    commits = gh.call("GET", gh.gist_path(gist["id"], "commits") + "?per_page=1", what="Gist history").json()
    return commits[0]["version"]


def gist_owner(gist: dict[str, Any]) -> str | None:
    """The login of a gist's owner: `owner`, or `user` on old gists; anonymous gists have neither."""
    for field in ("owner", "user"):
        who = gist.get(field)
        if isinstance(who, dict) and isinstance(who.get("login"), str):
            return who["login"]
    return None


def my_login(gh: GitHub) -> str | None:
    """The token user's login: asked of GitHub (GET /user) once, then remembered in sync.json."""
    if gh.login:
        return gh.login
    if isinstance(login := read_sync_state().get("login"), str):
        gh.login = login
        return login
    if not gh.has_token:
        return None
    gh.check_token()
    if gh.login:
        # Not under mapping_lock, which may already be held by a caller (flock does not nest): at worst a
        # sync running at this very moment keeps its own copy of the state, and the login is asked again.
        write_sync_state({**read_sync_state(), "login": gh.login})
    return gh.login


class GistRef:
    """What a gist ID or link names. `host` is None for a bare ID (the configured GitHub), "github.com" for
    gist.github.com links, or a GitHub Enterprise host; `file_anchor` is the NAME of a `#file-NAME` anchor."""

    __slots__ = ("gist_id", "revision", "filename", "file_anchor", "user", "host")

    def __init__(
        self,
        gist_id: str,
        revision: str | None = None,
        filename: str | None = None,
        file_anchor: str | None = None,
        user: str | None = None,
        host: str | None = None,
    ):
        self.gist_id, self.revision, self.filename = gist_id, revision, filename
        self.file_anchor, self.user, self.host = file_anchor, user, host

    def __repr__(self) -> str:
        return "GistRef(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__) + ")"


# A gist link: SITE/[USER/]ID[.git][/REV | /revisions | /raw/[REV/]FILE], where SITE is gist.github.com or
# gist.githubusercontent.com (scheme optional), git@gist.github.com:, or GitHub Enterprise's https://HOST/gist.
GIST_LINK_PATTERN = (
    r"(?:git\+)?(?:(?:https?://)?(?P<site>gist\.github(?:usercontent)?\.com)/|git@(?P<ssh>gist\.github\.com):"
    r"|https?://(?P<ghes>[A-Za-z0-9.-]+(?::[0-9]+)?)/gist/)(?P<path>[^?#\s]*)(?:\?[^#\s]*)?(?:#(?P<anchor>\S*))?"
)
LOGIN_PATTERN = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})"


def gist_ref(text: str) -> GistRef | None:
    """The gist a bare ID or a link people copy names (see GIST_LINK_PATTERN), else None. Pure: where the
    link's host may be reached is parse_gist_ref's question."""
    from urllib.parse import unquote

    text = text.strip()
    if re.fullmatch(GIST_ID_PATTERN, text.lower()):
        return GistRef(text.lower())
    if not (m := re.fullmatch(GIST_LINK_PATTERN, text, re.IGNORECASE)):
        return None
    host = m.group("ghes").lower() if m.group("ghes") else "github.com"
    parts = m.group("path").rstrip("/").split("/")
    user = None
    if len(parts) > 1 and re.fullmatch(GIST_ID_PATTERN, parts[1].lower().removesuffix(".git")):
        user, *parts = parts
        if not re.fullmatch(LOGIN_PATTERN, user):
            return None
    gist_id, *rest = parts
    if rest and gist_id.lower().endswith(".git"):
        return None
    gist_id = gist_id.lower().removesuffix(".git")
    if not re.fullmatch(GIST_ID_PATTERN, gist_id):
        return None
    revision = filename = None
    if rest[:1] == ["raw"] and len(rest) in (2, 3):
        filename = unquote(rest[-1])
        revision = rest[1].lower() if len(rest) == 3 else None
        if filename_problem(filename):
            return None
    elif len(rest) == 1 and re.fullmatch(REVISION_PATTERN, rest[0].lower()):
        revision = rest[0].lower()
    elif rest not in ([], ["revisions"], ["forks"], ["stargazers"]):
        return None
    if revision is not None and not re.fullmatch(REVISION_PATTERN, revision):
        return None
    anchor = m.group("anchor") or ""
    file_anchor = anchor.removeprefix("file-") if anchor.startswith("file-") and len(anchor) > 5 else None
    return GistRef(gist_id, revision, filename, file_anchor, user, host)


def parse_gist_ref(text: str) -> GistRef:
    """gist_ref() for what the user typed: a clear error for anything else, and for a link to a GitHub that
    is not the configured one (sm sends the token only to SM_GITHUB_API_URL's host, never to a link's)."""
    from urllib.parse import urlsplit

    if (ref := gist_ref(text)) is None:
        raise UsageProblem(
            f"Not a gist ID or URL: {text!r}. Expected a gist ID or https://gist.github.com/[USER/]ID[/REVISION]."
        )
    if ref.host not in (None, "github.com"):
        api = urlsplit(api_url())
        if ref.host not in (api.netloc.lower(), (api.hostname or "").lower()):
            raise UsageProblem(
                f"{_clip(text)} is a gist on {ref.host}, but sm talks to {api.netloc} and sends your token only "
                f"there. For GitHub Enterprise, set SM_GITHUB_API_URL=https://{ref.host}/api/v3."
            )
    return ref


def file_anchor(filename: str) -> str:
    """The NAME of GitHub's #file-NAME anchor for a file: lower case, runs of anything but a-z, 0-9, _ and -
    turned into one -, no leading -. Lossy, so a link's anchor is matched against each file's."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9_-]", "-", filename.lower())).lstrip("-")


# ══════════════════════════════════════════════════════════════════════════════════════════════════
# Mapping & sync
# ══════════════════════════════════════════════════════════════════════════════════════════════════
# mapping.json: {"version": 1, "scripts": {name: entry}, "tombstones": {name: {...}}, ...}
# Unknown fields (from newer sm versions) are kept as they are. Each entry and tombstone is checked on
# its own: a malformed one (hand-edited, or written by another tool) is named in one warning, left out
# of everything sm does, and written back untouched, so one bad value never stops the others.
# (Reading it is on the fast path: read_mapping and its checks live in that section.)

if TYPE_CHECKING:
    from typing import NotRequired, TypedDict

    class Entry(TypedDict):
        """One script in the mapping (see make_entry); fields from newer sm versions are kept as they are."""

        script_name: str | None  # None while an adopted gist is not saved under a name
        gist_id: str
        filename: str
        created_at: str
        updated_at: str
        revision: str  # the pinned revision: what `sm run` runs
        sha256: str  # of the code at that revision, checked before every run
        description: str
        params: list[dict[str, Any]] | None  # None: the script declares none that sm knows of
        clock: NotRequired[str]  # set when stored (put_entry): orders changes made on two machines
        public: NotRequired[bool]
        html_url: NotRequired[str]
        owner: NotRequired[str | None]  # an adopted gist's owner login; None: an anonymous gist
        lock_sha256: NotRequired[str | None]  # of NAME.py.lock at that revision, placed beside it to run; absent: none
        installed_as: NotRequired[str]  # the command `sm install` made for it, recreated by `sm install --all`


# The fields every stored entry has.
ENTRY_FIELDS = (
    "script_name",
    "gist_id",
    "filename",
    "created_at",
    "updated_at",
    "revision",
    "sha256",
    "description",
    "params",
    "clock",
)


def make_entry(base: Entry | None = None, *, code: str | None = None, lock: str | None = None, **fields: Any) -> Entry:
    """The one constructor of a mapping entry: `base` (an entry it changes: its other fields are kept, unknown
    ones included) updated now with `fields`; with `code`, pinned at fields["revision"] with its sha256, and
    its lock's when that revision has one (a lock belongs to one revision: new code without one has none)."""
    now = now_iso()
    entry = {"created_at": now, **(base or {}), "updated_at": now, **fields}
    if code is not None:
        entry["sha256"] = sha256_text(code)
        entry.pop("lock_sha256", None)
        if lock is not None:
            entry["lock_sha256"] = sha256_text(lock)
    # A new entry has every field (clock comes when it is stored); an entry read from a mapping keeps its shape.
    if base is None and (missing := [f for f in ENTRY_FIELDS if f not in entry and f != "clock"]):
        raise TypeError(f"make_entry() needs {', '.join(missing)}")
    return entry  # type: ignore[return-value]


# -- writing, under a lock -------------------------------------------------------------------------


def with_quarantined(data: dict[str, Any]) -> dict[str, Any]:
    """What to write: the good entries, and the quarantined ones as they were (unless the name is in use again)."""
    out = _plain(data)
    for section, items in (data.get(QUARANTINE) or {}).items():
        merged = {**{n: v for n, v in items.items() if n not in out[section]}, **out[section]}
        out[section] = dict(sorted(merged.items()))
    return out


def _plain(data: dict[str, Any]) -> dict[str, Any]:
    """A mapping without sm's in-memory record of malformed entries."""
    return {k: v for k, v in data.items() if k != QUARANTINE}


def write_mapping(data: dict[str, Any], path: Path | None = None) -> None:
    """Atomic write; the previous file is kept as mapping.json.bak. A newer sm's mapping is never written over."""
    path = path or mapping_path()
    if data.get("version", MAPPING_VERSION) > MAPPING_VERSION:
        raise MappingError(f"{path} was written by a newer sm (mapping version {data['version']}): {UPGRADE_HINT}.")
    with contextlib.suppress(OSError):
        with open(path, "rb") as previous:  # the bytes, not a copy through whatever the path points at
            atomic_write(path.with_name(path.name + ".bak"), previous.read())
    out = with_quarantined(data)
    # Compact: `sm run` and `sm list` parse this file on every start, and whitespace is a third of it.
    atomic_write(path, json.dumps(out, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n")
    if path == mapping_path():
        forget_launches()
        # What `sm list --json` prints, stamped with the file it came from: with 10,000 scripts, parsing and
        # re-encoding the mapping costs more than the whole command may take (see fast_list_json).
        rows = json.dumps(script_rows(data), ensure_ascii=False)
        with contextlib.suppress(OSError):
            atomic_write(list_cache_path(), f"{file_stamp(path)}\n{rows}\n")


@contextmanager
def mapping_lock() -> Iterator[None]:
    """An exclusive lock for every read-modify-write of mapping.json (never nested: flock is per open file)."""
    import fcntl

    home = sm_home()
    private_dir(home)
    with open(home / "mapping.lock", "a+", opener=private_opener) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def locked_mapping() -> Iterator[dict[str, Any]]:
    """Read-modify-write under the lock, so parallel sm processes never lose each other's entries."""
    with mapping_lock():
        data = read_mapping()
        before = json.dumps(data, sort_keys=True)
        yield data
        if json.dumps(data, sort_keys=True) != before:
            write_mapping(data)


@contextmanager
def claim_name(name: str, *, replace: bool = False, gh: GitHub | None = None) -> Iterator[Entry | None]:
    """Hold NAME while a script is made for it: parallel sm processes on this machine stop at once, and a
    name already taken here or on GitHub (one conditional request) is refused before the model is paid.
    A name held by a malformed entry counts as taken. Yields the entry being replaced (replace=True), or None."""
    with hold_name(name):
        local = read_mapping()
        existing = local["scripts"].get(name)
        taken = name_taken(local, name)
        if not taken and gh is not None:
            remote = remote_mapping(gh)
            existing = remote["scripts"].get(name)
            taken = name_taken(remote, name)
        if taken and not replace:
            raise UsageProblem(
                f"A script named {name!r} already exists: use --force to replace it, `sm edit {name}` to change "
                "it, or choose another name."
            )
        yield existing


@contextmanager
def hold_name(name: str) -> Iterator[None]:
    """This process alone may give NAME a new entry until the block ends (create, add, rename, run --save)."""
    import fcntl

    folder = sm_home() / "claims"
    private_dir(folder)
    with open(folder / f"{name}.lock", "a+", opener=private_opener) as claim:
        try:
            fcntl.flock(claim, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageProblem(
                f"Another sm is creating {name!r} right now: wait for it to finish, or choose another name."
            ) from None
        yield


def name_taken(data: dict[str, Any], name: str) -> bool:
    """NAME has an entry, or a malformed one still holds it: sm will not give it to another script behind its back."""
    return name in data["scripts"] or _held(data, name)


def _held(data: dict[str, Any], name: str) -> bool:
    return name in (data.get(QUARANTINE) or {}).get("scripts", {})


def remote_mapping(gh: GitHub) -> dict[str, Any]:
    """GitHub's mapping as it is now, for a check (one conditional request; a read never creates the gist).
    Empty when there is none yet or GitHub cannot be asked: the next sync then keeps both sides of a clash."""
    state = read_sync_state()
    try:
        chosen = chosen_mapping_gist()
        if chosen and chosen != state.get("gist_id"):
            state = {"gist_id": chosen}
        elif not state.get("gist_id"):
            state = {"gist_id": find_mapping_gist(gh)}  # never synced here: the user's gists say where it is
            if not state["gist_id"]:
                return empty_mapping()
        return decode_remote(pull_remote(gh, dict(state)), REMOTE_FILE, quiet=True)
    except SmError as e:
        log.debug("could not check GitHub's mapping: %s", e)
        return empty_mapping()


def put_entry(entry: Entry) -> None:
    """Store `entry` (stamped with its clock, in place) and sync."""
    with locked_mapping() as data:
        entry["clock"] = tick(data)
        data["scripts"][entry["script_name"]] = entry
        data["tombstones"].pop(entry["script_name"], None)
    after_change()


def tombstone(entry: Entry, clock: str) -> dict[str, Any]:
    """What a removed name leaves behind, so the removal syncs instead of the name coming back."""
    return {"deleted_at": now_iso(), "gist_id": entry["gist_id"], "clock": clock}


def delete_entry(name: str) -> Entry:
    """Remove a name, leaving a tombstone so the deletion syncs instead of coming back."""
    with locked_mapping() as data:
        entry = data["scripts"].pop(name, None)
        if entry is None:
            raise UsageProblem(f"Unknown script {name!r}. See `sm list`.")
        data["tombstones"][name] = tombstone(entry, tick(data))
    after_change()
    return entry


def delete_held(name: str) -> bool:
    """Remove NAME when only a malformed entry holds it (the warning says to fix or remove it): the entry goes,
    a tombstone syncs the removal. Nothing else is touched, since nothing in that entry can be trusted."""
    remote: dict[str, Any] = {}
    if not _held(read_mapping(), name):  # maybe only GitHub's copy holds it: sync never copies malformed entries
        with contextlib.suppress(ConfigError):
            remote = remote_mapping(github())
        if not _held(remote, name):
            return False
    with locked_mapping() as data:
        held = (data.get(QUARANTINE) or {}).get("scripts", {})
        raw = held.pop(name, None) or (remote.get(QUARANTINE) or {}).get("scripts", {}).get(name)
        stone: dict[str, Any] = {"deleted_at": now_iso(), "clock": tick(data)}
        if (
            isinstance(raw, dict)
            and isinstance(raw.get("gist_id"), str)
            and re.fullmatch(GIST_ID_PATTERN, raw["gist_id"])
        ):
            stone["gist_id"] = raw["gist_id"]
        data["tombstones"][name] = stone
    after_change()
    return True


def rename_entry(old: str, new: str) -> Entry:
    """Move an entry to a new name in one locked write; the old name leaves a tombstone, as in delete_entry."""
    with hold_name(new), locked_mapping() as data:  # not while a create or add is making a script called `new`
        scripts = data["scripts"]
        if old not in scripts:
            raise UsageProblem(f"Unknown script {old!r}. See `sm list`.")
        if name_taken(data, new):
            raise UsageProblem(f"A script named {new!r} already exists: choose another name, or `sm rm {new}` first.")
        clock = tick(data)
        entry = make_entry(scripts.pop(old), script_name=new, clock=clock)
        scripts[new] = entry
        data["tombstones"][old] = tombstone(entry, clock)
        data["tombstones"].pop(new, None)
    after_change()
    return entry


def after_change() -> None:
    """Every local change to the mapping ends here: pull, merge and push, or queue it if offline."""
    mark_pending()
    try_sync("Saved locally; the mapping will sync to GitHub later (%s)")


def try_sync(warning: str | None) -> bool:
    """Sync when there is a token. The caller's work is already saved, so a failure is only a warning."""
    try:
        gh = github()
    except ConfigError:
        log.debug("no token: the mapping stays local until the next sync")
        return False
    try:
        sync(gh)
    except SmError as e:
        if warning:
            log.warning(warning, e)
        return False
    return True


def lookup(name: str, pull: bool = True) -> Entry:
    """The entry for `name`; an unknown name is looked up once more after pulling from GitHub."""
    import difflib

    scripts = read_mapping()["scripts"]
    if name not in scripts and pull and re.fullmatch(NAME_PATTERN, name):
        if try_sync(None):
            scripts = read_mapping()["scripts"]
    if name in scripts:
        return scripts[name]
    close = difflib.get_close_matches(name, list(scripts), n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(close)}?" if close else " See `sm list`."
    if "/" in name:  # ALIAS/NAME of a catalog this machine does not subscribe to
        hint = f" No catalog is called {name.partition('/')[0]!r}: `sm catalog list` shows yours."
    raise UsageProblem(f"Unknown script {name!r}.{hint}")


# -- trust per machine ------------------------------------------------------------------------------
# Anyone who can write your mapping gist can write your own gists too, so a pin at a gist you own is
# yours wherever it was set. A pin at someone else's gist is trusted only where it was reviewed:
# $SM_HOME/trusted.json records the (gist, revision, sha256) this machine's user accepted, and is
# never synced, so a pin swapped in the mapping gist is reviewed before it first runs here.


def trust_record_path() -> Path:
    from pathlib import Path

    return Path(home_path("trusted.json"))


def trust_record(key: str) -> dict[str, Any]:
    """A part of the trust record: "accepted" (see accepted_pins) or "catalog_pins" (see run_catalog)."""
    try:
        data = json.loads(trust_record_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    part = data.get(key) if isinstance(data, dict) else None
    return part if isinstance(part, dict) else {}


def write_trust_record(key: str, part: dict[str, Any]) -> None:
    data = {k: trust_record(k) for k in ("accepted", "catalog_pins")}
    atomic_write(trust_record_path(), json.dumps({"version": 1, **data, key: part}, indent=1) + "\n")


def accepted_pins() -> dict[str, str]:
    """Keys GIST_ID/REVISION/SHA256, each mapped to when it was accepted on this machine."""
    return trust_record("accepted")


def pin_key(entry: Entry) -> str:
    return f"{entry['gist_id']}/{entry['revision']}/{entry['sha256']}"


def is_accepted(entry: Entry) -> bool:
    return pin_key(entry) in accepted_pins()


def record_accepted(entry: Entry) -> None:
    """Remember, on this machine only, that its user accepted the code the entry pins."""
    accepted = accepted_pins()
    if pin_key(entry) not in accepted:
        accepted[pin_key(entry)] = now_iso()
        write_trust_record("accepted", accepted)


# -- clocks ------------------------------------------------------------------------------------------
# Wall clocks cannot order changes made on two machines: one may be hours behind. Each change carries a
# hybrid logical clock, "WALLTIME/COUNTER": the later of the wall time and every clock already in the
# mapping, so a change made after seeing another always sorts after it, whatever the machine's clock says.
# Clocks only break ties between changes that neither machine had seen (see merge3).


def clock_of(item: dict[str, Any]) -> tuple[str, int]:
    clock = item.get("clock")
    if type(clock) is str:
        wall, sep, counter = clock.rpartition("/")
        if sep and counter.isdigit():
            return wall, int(counter)
    return str(item.get("updated_at") or item.get("deleted_at") or ""), 0  # written before clocks existed


def tick(data: dict[str, Any]) -> str:
    """The clock for a change made now: after the wall time and after every clock this machine has seen."""
    seen = max(
        (clock_of(item) for section in ("scripts", "tombstones") for item in data[section].values()),
        default=("", 0),
    )
    now = now_iso()
    return f"{now}/0" if now > seen[0] else f"{seen[0]}/{seen[1] + 1}"


# -- merge (pure) ----------------------------------------------------------------------------------
# Tombstones are kept forever: they are ~100 bytes each, and dropping them would let a machine that
# was offline for longer than any expiry bring a deleted script back.


MERGE_RULES = """\
| base        | this machine   | GitHub         | result                                                   |
|-------------|----------------|----------------|----------------------------------------------------------|
| X           | X              | X              | X                                                        |
| X           | changed to L   | X              | L: only this machine changed it, whatever the clocks say |
| X           | X              | changed to R   | R: only GitHub's side changed it                         |
| X           | L              | L              | L: both made the same change                             |
| X or absent | absent         | R              | R: a missing name is not a deletion (those are tombstones) |
| X           | L              | R, same gist   | the later clock wins; the other revision stays in the gist's history |
| X or absent | L              | R, other gist  | both kept: the later clock's entry is renamed NAME-2      |
| X           | removed        | changed        | the changed entry is kept (nothing is lost); `sm rm` again |
| X           | removed        | removed        | the later tombstone                                       |
"""


def _state(side: dict[str, Any], name: str) -> tuple[str, dict[str, Any]] | None:
    entry, stone = side["scripts"].get(name), side["tombstones"].get(name)
    if entry is not None and stone is not None:  # both (old data): whichever happened later
        return ("entry", entry) if clock_of(entry) > clock_of(stone) else ("stone", stone)
    if entry is not None:
        return "entry", entry
    return ("stone", stone) if stone is not None else None


_ABSENT = object()  # a field one side does not have


def merge3(base: dict[str, Any], local: dict[str, Any], remote: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Three-way merge of this machine's mapping and GitHub's against the last one both agreed on (base).

    A side that changed a name since the base wins over a side that did not; clocks only decide between
    two different changes to one name. Returns the merged mapping and notes for the user. See MERGE_RULES.
    """
    merged: dict[str, Any] = {}
    # Top-level fields sm does not know (a newer sm's): three ways too, a side that changed one since the base
    # winning (a removal is a change); both changed it: this machine's. Nothing is stripped.
    known = {"scripts", "tombstones", "version", "catalogs", QUARANTINE}
    for key in sorted((base.keys() | local.keys() | remote.keys()) - known):
        b, mine, theirs = (side.get(key, _ABSENT) for side in (base, local, remote))
        value = theirs if mine == b else mine
        if value is not _ABSENT:
            merged[key] = value
    if any("catalogs" in side for side in (base, local, remote)):
        merged["catalogs"] = merge_catalogs(base, local, remote)
    merged["version"] = max(MAPPING_VERSION, local.get("version", 1), remote.get("version", 1))
    names = set()
    for side in (base, local, remote):
        names |= side["scripts"].keys() | side["tombstones"].keys()
    held = {n for side in (local, remote) for items in (side.get(QUARANTINE) or {}).values() for n in items}
    scripts: dict[str, Any] = {}
    stones: dict[str, Any] = {}
    renames: list[dict[str, Any]] = []
    notes: list[str] = []
    for name in sorted(names):
        b = _state(base, name)
        mine = _state(local, name) or b
        theirs = _state(remote, name) or b
        if mine == theirs or theirs == b:
            pick = mine
        elif mine == b:
            pick = theirs
        else:
            pick, loser, note = _resolve(name, mine, theirs)  # type: ignore[arg-type]
            if note:
                notes.append(note)
            if loser is not None:
                renames.append(loser)
        if pick is not None:
            (scripts if pick[0] == "entry" else stones)[name] = pick[1]
    for entry in renames:  # both kept: the later one moves to the first free NAME-2, NAME-3, ...
        old = entry["script_name"]
        new = next(
            f"{old[:60]}-{i}" for i in range(2, 10_000) if f"{old[:60]}-{i}" not in names | held | scripts.keys()
        )
        scripts[new] = {**entry, "script_name": new}
        names.add(new)
        notes.append(
            f"Two machines each created a script named {old!r} (gists {scripts[old]['gist_id']} and "
            f"{entry['gist_id']}); both are kept: the later one is now {new!r}. Rename it with `sm rename {new} NEW`."
        )
    merged["scripts"] = dict(sorted(scripts.items()))
    merged["tombstones"] = dict(sorted(stones.items()))
    return merged, notes


def merge_catalogs(base: dict[str, Any], local: dict[str, Any], remote: dict[str, Any]) -> dict[str, Any]:
    """The subscriptions ({ALIAS: GIST_ID}), alias by alias: a side that changed one since the base wins over a
    side that did not; when both changed it, this machine's change."""
    b, mine, theirs = (side["catalogs"] if type(side.get("catalogs")) is dict else {} for side in (base, local, remote))
    merged = {}
    for alias in sorted(b.keys() | mine.keys() | theirs.keys()):
        pick = theirs.get(alias) if mine.get(alias) == b.get(alias) else mine.get(alias)
        if pick is not None:
            merged[alias] = pick
    return merged


def _resolve(
    name: str, mine: tuple[str, dict[str, Any]], theirs: tuple[str, dict[str, Any]]
) -> tuple[tuple[str, dict[str, Any]], dict[str, Any] | None, str]:
    """Both sides changed `name` differently: (the state to keep, an entry to keep under another name, a note)."""
    first, later = sorted((mine, theirs), key=lambda s: (clock_of(s[1]), json.dumps(s[1], sort_keys=True)))
    if mine[0] == theirs[0] == "entry":
        if mine[1]["gist_id"] == theirs[1]["gist_id"]:
            return (
                later,
                None,
                (
                    f"{name} was changed on two machines at once: kept revision {later[1]['revision'][:8]}, the later "
                    f"change; revision {first[1]['revision'][:8]} stays in the gist's history (`sm history {name}`)."
                ),
            )
        return first, {**later[1], "script_name": name}, ""
    if mine[0] == theirs[0] == "stone":
        return later, None, f"{name} was removed on two machines."
    kept = mine if mine[0] == "entry" else theirs
    return (
        kept,
        None,
        (
            f"{name} was removed on one machine and changed on another: it is kept, so nothing is lost. "
            f"Remove it again with `sm rm {name}`."
        ),
    )


def mapping_changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[str]]:
    """Names added, updated and removed going from `before` to `after`."""
    old, new = before.get("scripts") or {}, after.get("scripts") or {}
    return {
        "added": sorted(set(new) - set(old)),
        "updated": sorted(n for n in set(new) & set(old) if new[n] != old[n]),
        "removed": sorted(set(old) - set(new)),
    }


def history_rows(commits: Sequence[dict[str, Any]], mappings: Sequence[dict[str, Any] | str]) -> list[dict[str, Any]]:
    """`sm mapping history`: each revision (newest first) with what changed since the one before it. A revision
    that could not be read (its message instead of a mapping) is listed with that problem and skipped over."""
    rows: list[dict[str, Any]] = []
    older: dict[str, Any] = empty_mapping()
    for commit, mapping in reversed(list(zip(commits, mappings, strict=True))):
        row = {"version": commit["version"], "committed_at": commit.get("committed_at")}
        if isinstance(mapping, str):
            row.update(added=[], updated=[], removed=[], problem=mapping)
        else:
            row.update(mapping_changes(older, mapping))
            older = mapping
        rows.append(row)
    return rows[::-1]


def restore_plan(current: dict[str, Any], old: dict[str, Any], *, exact: bool) -> dict[str, list[str]]:
    """What making `old` current again does: names that come back, names changed back to their old entry, names
    added since that are removed (only with exact) or kept."""
    now, then = current["scripts"], old["scripts"]
    unreadable = {n for side in (current, old) for n in (side.get(QUARANTINE) or {}).get("scripts", {})}
    added_since = sorted(set(now) - set(then) - unreadable)  # a name sm could not read then was not absent
    return {
        "back": sorted(set(then) - set(now)),
        "changed_back": sorted(n for n in set(then) & set(now) if _plain_entry(then[n]) != _plain_entry(now[n])),
        "removed": added_since if exact else [],
        "kept": [] if exact else added_since,
    }


def restore_lines(plan: dict[str, list[str]]) -> list[str]:
    labels = (
        ("back", "Comes back"),
        ("changed_back", "Changed back to its entry then"),
        ("removed", "Removed (added since, --exact)"),
        ("kept", "Kept (added since; --exact removes it)"),
    )
    return [f"{label}: {', '.join(plan[key])}" for key, label in labels if plan[key]]


def _plain_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry without the fields that change on every write: two entries equal here pin the same thing."""
    return {k: v for k, v in entry.items() if k not in ("clock", "updated_at")}


# -- remote mapping gist -----------------------------------------------------------------------------
# The mapping lives in one secret gist, file sm-mapping.json. GitHub has no compare-and-swap for
# PATCH (If-Match gives 400), so after each push sm reads the gist's commits: any version that landed
# between the one it merged from and its own is merged in and pushed again, a bounded number of times.
# sync-base.json is the mapping as of the last completed sync, the base of the next three-way merge: it
# is written only once this machine's mapping holds everything in it. remote-mapping.json is GitHub's text
# at that point, reused when GitHub answers 304 Not Modified.

REMOTE_FILE = "sm-mapping.json"
REMOTE_DESCRIPTION = "sm script mapping"
MAX_SYNC_ROUNDS = 6


def write_sync_state(state: dict[str, Any]) -> None:
    atomic_write(sync_state_path(), json.dumps(state, indent=2, sort_keys=True) + "\n")


def mark_pending() -> None:
    state = read_sync_state()
    if not state.get("pending"):
        write_sync_state({**state, "pending": True})


def remote_snapshot_path() -> Path:
    return sm_home() / "remote-mapping.json"


def encode_mapping(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def decode_remote(text: str, where: str, *, quiet: bool = False) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise MappingError(
            f"{where} is not valid JSON ({_short(e)}); fix or delete that gist file, then run `sm sync`."
        ) from e
    if not isinstance(data, dict):
        raise MappingError(
            f"{where} is not an sm mapping (expected an object); fix that gist file, then run `sm sync`."
        )
    return check_mapping(data, where, quiet=quiet)


def base_path() -> Path:
    return sm_home() / "sync-base.json"


def read_base(gist_id: str) -> dict[str, Any]:
    """The mapping both sides agreed on at the last completed sync with mapping gist `gist_id`: the common
    ancestor for merge3. A base from another mapping gist (SM_MAPPING_GIST changed, the gist was recreated)
    is no ancestor at all: then every difference is a conflict, and conflicts keep both sides."""
    with contextlib.suppress(OSError, ValueError, RecursionError, MappingError):
        saved = json.loads(base_path().read_text(encoding="utf-8"))
        if type(saved) is dict and saved.get("gist_id") == gist_id:
            return check_mapping(saved.get("mapping"), "the last synced mapping", quiet=True)
        return empty_mapping()
    # Before sync-base.json existed, the snapshot of GitHub's copy played its part.
    if read_sync_state().get("gist_id") == gist_id:
        with contextlib.suppress(OSError, MappingError):
            return decode_remote(
                remote_snapshot_path().read_text(encoding="utf-8"), "the last synced mapping", quiet=True
            )
    return empty_mapping()


def chosen_mapping_gist() -> str | None:
    """SM_MAPPING_GIST as a gist id: the variable may hold an id or any gist URL people copy."""
    if not (text := os.environ.get("SM_MAPPING_GIST", "").strip()):
        return None
    if re.fullmatch(GIST_ID_PATTERN, text):
        return text
    if not text.startswith(("https://", "http://")) or (ref := gist_ref(text)) is None:
        raise ConfigError(f"SM_MAPPING_GIST is not a gist ID or URL ({_clip(text)}): fix or unset it.")
    return ref.gist_id


def find_mapping_gist(gh: GitHub) -> str | None:
    """SM_MAPPING_GIST, else the oldest of the user's gists holding sm-mapping.json."""
    if chosen := chosen_mapping_gist():
        return chosen
    found = mapping_gists(gh)
    return found[0] if found else None


def mapping_gists(gh: GitHub) -> list[str]:
    """Ids of the user's gists holding sm-mapping.json, oldest first: every machine picks the same one."""
    found = [
        (gist.get("created_at") or "", gist["id"])
        for gist in gh.paginate("/gists?per_page=100", what="Listing your gists")
        if REMOTE_FILE in (gist.get("files") or {})
    ]
    return [gist_id for _, gist_id in sorted(found)]


SETTLE_SECONDS = 60  # after making the mapping gist, syncs check this long that no other machine's is older


def create_mapping_gist(gh: GitHub, data: dict[str, Any]) -> str:
    """Create the mapping gist holding `data`. Two machines may do this at once: both then settle on the
    oldest, and the one that lost deletes its own (its entries are still in its local mapping, and merge in)."""
    gist = gh.create_gist({REMOTE_FILE: encode_mapping(_plain(data))}, REMOTE_DESCRIPTION, public=False)
    oldest = (mapping_gists(gh) or [gist["id"]])[0]
    if oldest != gist["id"]:
        log.debug("another machine created the mapping gist first: using %s", oldest)
        gh.delete_gist(gist["id"])
    return oldest


def pull_remote(gh: GitHub, state: dict[str, Any]) -> str:
    """The text of GitHub's mapping; its etag and version go into `state`. A 304 reuses the last snapshot."""
    snapshot = remote_snapshot_path()
    gist, etag = gh.get_gist(state["gist_id"], state.get("etag") if snapshot.exists() else None)
    if gist is None:
        log.debug("mapping gist unchanged (304)")
        return snapshot.read_text(encoding="utf-8")
    file = (gist.get("files") or {}).get(REMOTE_FILE)
    if file is None:
        raise GitHubError(f"Gist {state['gist_id']} has no {REMOTE_FILE}; check SM_MAPPING_GIST.")
    text = gh.file_content(file)
    state.update(etag=etag, base_version=latest_revision(gh, gist))
    return text


def versions_since(gh: GitHub, gist_id: str, base: str) -> list[str]:
    """Versions newer than `base`, newest first (the first page is plenty between two pushes)."""
    newer = []
    for commit in gh.call("GET", f"/gists/{gist_id}/commits?per_page=100", what="Mapping history").json():
        if commit["version"] == base:
            break
        newer.append(commit["version"])
    return newer


@contextmanager
def sync_lock() -> Iterator[bool]:
    """One sync at a time on this machine, held across the network; the mapping's own lock is not, so a local
    change never waits for GitHub. A background refresh does not wait for another sync: it yields False."""
    import fcntl

    home = sm_home()
    private_dir(home)
    with open(home / "sync.lock", "a+", opener=private_opener) as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if os.environ.get("SM_BACKGROUND"):
                yield False  # the sync under way brings the news
                return
            with status_line("Waiting for another sm to finish syncing…"):
                fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield True
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def sync(gh: GitHub, *, from_remote: bool = False) -> dict[str, Any]:
    """Pull, merge three ways, push, and confirm nobody else's push was overwritten. Returns what changed.
    The mapping is read, and at the end written, under its lock; a change made here while GitHub was asked is
    merged into what GitHub gave, and pushed by the next sync."""
    with sync_lock() as ours:
        with mapping_lock():
            local = recover_local() if from_remote else read_mapping()
        if not ours:
            return {"local": mapping_changes(local, local), "remote": mapping_changes(local, local), "notes": []}
        return _sync(gh, local, from_remote=from_remote)


def _sync(gh: GitHub, local: dict[str, Any], *, from_remote: bool) -> dict[str, Any]:
    """sync() once the locks are taken: `local` is the mapping as it was read."""
    state = read_sync_state()
    chosen = chosen_mapping_gist()
    if chosen and chosen != state.get("gist_id"):
        state = {"login": state.get("login"), "gist_id": chosen}  # pointed elsewhere: forget the old ETag and base
    if not state.get("gist_id"):
        found = find_mapping_gist(gh)
        if found is None and not (local["scripts"] or local["tombstones"] or local.get("catalogs")):
            return {"local": mapping_changes(local, local), "remote": mapping_changes(local, local), "notes": []}
        state = {**state, "gist_id": found or create_mapping_gist(gh, local), "etag": None}
        if found is None:
            state["settle_until"] = time.time() + SETTLE_SECONDS
    abandoned = None
    if not chosen and state.get("settle_until", 0) > time.time():
        # This machine made the mapping gist moments ago. Another machine that made one in the same second may
        # have listed before ours existed, and kept its own: all settle on the oldest, as new machines find it.
        oldest = (mapping_gists(gh) or [state["gist_id"]])[0]
        if oldest != state["gist_id"]:
            log.debug("another machine's mapping gist %s is the oldest: moving to it", oldest)
            abandoned = state["gist_id"]
            state = {"login": state.get("login"), "gist_id": oldest, "settle_until": state["settle_until"]}
    try:
        text = pull_remote(gh, state)
    except GitHubError as e:
        if e.status != 404 or chosen:
            raise
        state = replace_lost_mapping_gist(gh, state, local)
        text = pull_remote(gh, state)
    remote = decode_remote(text, f"{REMOTE_FILE} in gist {state['gist_id']}")
    if local["version"] > MAPPING_VERSION:
        raise MappingError(
            f"{mapping_path()} was written by a newer sm (mapping version {local['version']}): {UPGRADE_HINT}."
        )
    if remote["version"] > MAPPING_VERSION:
        raise MappingError(
            f"The mapping gist {state['gist_id']} was written by a newer sm (mapping version "
            f"{remote['version']}): {UPGRADE_HINT}. Your changes are saved on this machine."
        )
    # --from-remote: the recovered copy counts as this machine's last synced state, so GitHub wins wherever
    # it has something; what only the backup knows is kept (a missing name, field or catalog is not a removal).
    if from_remote:
        base = {k: v for k, v in local.items() if k in remote or k in ("scripts", "tombstones", "version")}
        if isinstance(base.get("catalogs"), dict) and isinstance(remote.get("catalogs"), dict):
            base["catalogs"] = {a: v for a, v in base["catalogs"].items() if a in remote["catalogs"]}
    else:
        base = read_base(state["gist_id"])
    final, notes = merge3(base, local, remote)
    notes += [
        f"{name} now runs gist {entry['gist_id']}, not {local['scripts'][name]['gist_id']}: changed on another "
        "machine (see `sm sync` there)."
        for name, entry in final["scripts"].items()
        if name in local["scripts"] and local["scripts"][name]["gist_id"] != entry["gist_id"]
    ]
    if os.environ.get("SM_BACKGROUND"):  # nobody sees a background sync: keep its notes for the next one
        state["unseen_notes"] = (state.get("unseen_notes") or []) + notes
    else:
        unseen = state.pop("unseen_notes", None)
        notes = (unseen or []) + notes
        for note in notes:
            log.warning("%s", note)
        if unseen:  # shown now: should GitHub fail this sync, the next one does not show them again
            write_sync_state({k: v for k, v in read_sync_state().items() if k != "unseen_notes"})
    on_github = text
    if _plain(for_github(final, base, remote)) != _plain(remote):
        final, on_github = push_until_settled(gh, state, remote, final, base)
        state["etag"] = None  # our push changed the gist: the next pull fetches GitHub's copy
    with mapping_lock():
        now = read_mapping()
        mine = final
        if _plain(now) != _plain(local):  # changed here meanwhile: kept, on top of what GitHub gave
            mine, more = merge3(local, now, final)
            for note in more:
                log.warning("%s", note)
        if _plain(mine) != _plain(now):
            write_mapping({**mine, QUARANTINE: now.get(QUARANTINE) or {}})
        # After the local write, so the base never runs ahead of this machine's mapping.
        atomic_write(base_path(), json.dumps({"gist_id": state["gist_id"], "mapping": _plain(final)}) + "\n")
        atomic_write(remote_snapshot_path(), on_github)
        pending = _plain(mine) != _plain(final)
        write_sync_state({**state, "pending": pending, "last_sync": now_iso()})
    if abandoned:  # everything it held is merged into the oldest now; a machine still on it heals through the 404
        with contextlib.suppress(GitHubError):
            gh.delete_gist(abandoned)
    return {"local": mapping_changes(local, mine), "remote": mapping_changes(remote, final), "notes": notes}


def for_github(merged: dict[str, Any], base: dict[str, Any], remote: dict[str, Any]) -> dict[str, Any]:
    """What to push: `merged`, except that a malformed remote entry this machine did not change stays on GitHub
    as it is (kept in merged[QUARANTINE]), so sm never silently rewrites data it could not read."""
    out = {**merged, "scripts": dict(merged["scripts"]), "tombstones": dict(merged["tombstones"])}
    kept: dict[str, dict[str, Any]] = {}
    for section, items in (remote.get(QUARANTINE) or {}).items():
        for name, raw in items.items():
            if _state(merged, name) == _state(base, name):  # this machine has no change of its own to make there
                out[section].pop(name, None)
                kept.setdefault(section, {})[name] = raw
    out[QUARANTINE] = kept
    return out


def replace_lost_mapping_gist(gh: GitHub, state: dict[str, Any], local: dict[str, Any]) -> dict[str, Any]:
    """The mapping gist answered 404. If it is really gone (not in the user's gist list), recreate it from this
    machine's mapping, or use the one another machine already recreated: sync never stays stuck."""
    lost = state["gist_id"]
    found = mapping_gists(gh)
    if lost in found:
        raise GitHubError(f"The mapping gist {lost} is listed but cannot be read (404): check the token's gist scope.")
    by = "this machine's mapping"
    if found:
        log.warning(
            "The mapping gist %s is gone from GitHub; using %s, which another machine recreated.", lost, found[0]
        )
        new, by = found[0], "another machine's mapping"
    else:
        new = create_mapping_gist(gh, local)
        log.warning(
            "The mapping gist %s was deleted on GitHub; recreated it as %s from this machine's mapping "
            "(%d scripts). Other machines find it on their next sync.",
            lost,
            new,
            len(local["scripts"]),
        )
    return {"login": state.get("login"), "gist_id": new, "replaced": {"gist_id": lost, "at": now_iso(), "from": by}}


def push_until_settled(
    gh: GitHub, state: dict[str, Any], pulled: dict[str, Any], merged: dict[str, Any], base: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    """Push `merged`; while the gist's head is not a superset of everything pushed, merge and push again.
    Returns the final mapping and the text that is now on GitHub. Malformed remote entries ride along."""
    since = state["base_version"]
    for _ in range(MAX_SYNC_ROUNDS):
        text = encode_mapping(with_quarantined(for_github(merged, base, pulled)))
        ours = push_remote(gh, state, text)
        newer = versions_since(gh, state["gist_id"], since)  # newest first, ours among them
        pushed = merged
        theirs = {v: fetch_remote_version(gh, state["gist_id"], v) for v in newer if v != ours}
        for content in theirs.values():  # someone pushed after our pull: fold their version in
            merged, notes = merge3(pulled, merged, content)
            for note in notes:
                log.warning("%s", note)
        head = newer[0] if newer else ours
        state["base_version"] = head
        if head == ours and _plain(merged) == _plain(pushed):
            return merged, text
        if head != ours and _plain(for_github(merged, base, theirs[head])) == _plain(theirs[head]):
            return merged, encode_mapping(with_quarantined(theirs[head]))
        since = head
    raise GitHubError(
        f"The mapping gist kept changing during {MAX_SYNC_ROUNDS} sync rounds; your changes are saved "
        "locally. Run `sm sync` again."
    )


def push_remote(gh: GitHub, state: dict[str, Any], text: str) -> str:
    gist = gh.update_gist(state["gist_id"], {REMOTE_FILE: text})
    return latest_revision(gh, gist)


def fetch_remote_version(gh: GitHub, gist_id: str, version: str) -> dict[str, Any]:
    file = gist_file(gh.get_revision(gist_id, version), REMOTE_FILE)
    return decode_remote(gh.file_content(file), f"{REMOTE_FILE}@{version[:8]}", quiet=True)


def recover_local() -> dict[str, Any]:
    """For `sm sync --from-remote`: set a corrupt mapping aside (never delete it), start from the backup."""
    path = mapping_path()
    try:
        return read_mapping()
    except MappingError:
        aside = path.with_name(f"mapping.json.corrupt-{int(time.time())}")
        os.replace(path, aside)
        log.warning("Moved the unreadable mapping to %s", aside)
    recovered = empty_mapping()
    with contextlib.suppress(MappingError):
        recovered = read_mapping(path.with_name(path.name + ".bak"))
    # Written now, before any network: if GitHub is out of reach, the backup's entries are still here.
    write_mapping(recovered)  # the corrupt file was moved away, so the backup is not overwritten
    return recovered


# ══════════════════════════════════════════════════════════════════════════════════════════════════
# Generation
# ══════════════════════════════════════════════════════════════════════════════════════════════════
# PydanticAI, imported on first use. The model answers with a Script (description, params, code), checked
# by script_problems(); a rejected answer goes back to the model with the problems, a bounded number of times.


@memo()
def models() -> Any:
    """The shapes the model answers in, made on first use: importing pydantic costs more than `sm run` may
    spend in total."""
    from pydantic import BaseModel, Field

    class Param(BaseModel):
        """A runtime parameter: `sm run NAME key=value` passes it as `--key=value`."""

        name: str = Field(
            pattern=r"^[A-Za-z][A-Za-z0-9_-]*$",
            description="Option name without dashes; the script accepts it as --NAME.",
        )
        help: str = Field(description="One-line help text, as given to argparse/click.")
        required: bool = Field(description="True if the script cannot run without it.")
        default: str | None = Field(description="Default value as a string, or null.")

    class Script(BaseModel):
        """A complete Python script with its PEP 723 block. `code` comes last so it streams last."""

        description: str = Field(description="One line (under 100 characters) saying what the script does.")
        params: list[Param] = Field(description="Every --option the script accepts.")
        code: str = Field(description="The whole script, starting with its `# /// script` block.")

    return type("Models", (), {"Param": Param, "Script": Script})


PLACEHOLDER_PATTERN = r"\{\{\s*([A-Za-z][A-Za-z0-9_-]*)\s*\}\}"


def placeholders(prompt: str) -> list[str]:
    """`{{word}}` names in order of first appearance; a `{{...}}` that is not a valid name is refused."""
    found = dict.fromkeys(re.findall(r"\{\{.*?\}\}", prompt, re.S))
    if bad := [m for m in found if not re.fullmatch(PLACEHOLDER_PATTERN, m)]:
        verb = "is not a valid parameter name" if len(bad) == 1 else "are not valid parameter names"
        raise UsageProblem(
            f"{' and '.join(bad)} {verb}: write a parameter as {{{{name}}}}, with letters, digits, _ and -, "
            "starting with a letter."
        )
    return list(dict.fromkeys(re.findall(PLACEHOLDER_PATTERN, prompt)))


# The one system prompt: everything the model is told about sm's rules lives here.
SYSTEM_PROMPT = """\
You write complete, runnable Python command-line scripts for the `uv run` tool.

Rules for every script:
1. Start with a PEP 723 block, exactly:
   # /// script
   # requires-python = ">=3.11"
   # dependencies = [...]      (list third-party packages; write `dependencies = []` when none)
   # ///
   Put nothing else in that block (a script you are given may carry [tool.sm] and [tool.uv]
   tables there: keep those as they are).
2. Declare every runtime parameter as a `--name` option with help text, using argparse or click,
   and read its value in the code. Report the same parameters in `params`.
3. Print useful output to stdout, errors to stderr, and exit non-zero on failure. When calling a
   web API, follow its pagination and report HTTP errors with their status and message.
4. Never hard-code secrets: read tokens from the environment (for example GITHUB_PAT for GitHub,
   OPENAI_API_KEY for OpenAI) and explain a missing one in a clear error message.
5. Prefer the standard library where it serves; keep dependencies few and well known, and import
   nothing that is neither in the standard library nor in `dependencies`.
6. Keep `description` to one line.
7. When asked to change a script, answer with the whole revised script and its complete `params`,
   and keep everything the request does not touch.
"""


def user_prompt(prompt: str) -> str:
    names = placeholders(prompt)
    if not names:
        return prompt
    opts = ", ".join(f"--{n}" for n in names)
    return (
        f"{prompt}\n\nThe {{{{...}}}} words are runtime parameters: the script must accept them as the "
        f"command-line options {opts} (required unless a sensible default exists)."
    )


def revision_prompt(request: str, current: str | None) -> str:
    """The message for a change; `current` is code the model has not seen (a stored script, a hand edit)."""
    if current is None:
        return user_prompt(request)
    return (
        f"This is the current version of the script:\n\n```python\n{current.rstrip()}\n```\n\n"
        f"Change it as follows, and answer with the whole revised script:\n{user_prompt(request)}"
    )


def make_agent(
    model: Any, required: Sequence[str], retries: int = 3, finish: Callable[[str], str] = lambda code: code
) -> Any:
    """The model, asked for a Script; each answer is checked, and its dependencies resolved as `finish` (what
    the code becomes before upload: [tool.uv] exclude-newer) would leave them, so that lock serves the upload."""
    from pydantic_ai import Agent, ModelRetry

    Script = models().Script
    agent = Agent(model, output_type=Script, instructions=SYSTEM_PROMPT, retries={"output": retries, "tools": retries})

    @agent.output_validator
    def _validate(ctx: Any, out: Any) -> Any:
        if getattr(ctx, "partial_output", False):
            return out
        problems = script_problems(out.code, out.params, required)
        if not problems and (unresolved := dependency_problem(finished(finish, out.code))):
            problems = [unresolved]
        if problems:
            retry = ModelRetry("Fix these problems and answer again: " + "; ".join(problems))
            retry.problems = problems  # for the user, should the model give up (see model_errors)
            raise retry
        return out

    return agent


def finished(finish: Callable[[str], str], code: str) -> str:
    """finish(code), or the code as it is when it cannot be stamped (script_problems names why)."""
    try:
        return finish(code)
    except ValidationFailed:
        return code


def dependency_problem(code: str) -> str | None:
    """Why the script's dependencies do not resolve (a package that does not exist, or none for its
    requires-python), in uv's words; None when they do, or when that could not be checked (see resolve_lock)."""
    return resolve_lock(code)[1]


# One resolution per script's dependencies: the check while the model's answer is validated makes the lock that
# is uploaded with it. Keyed by what uv reads (the PEP 723 metadata but [tool.sm], and the UV_* settings).
_resolved: dict[str, tuple[str | None, str | None, str | None]] = {}


def resolve_lock(code: str) -> tuple[str | None, str | None, str | None]:
    """uv's lock for the script (`uv lock --script`, made in a temporary folder), as (lock, problem, trouble):
    a lock when the dependencies resolve; a problem, in uv's words, when they do not (the script's fault);
    trouble when it could not be made for another reason (no uv, no network: logged, and the script goes
    through without a lock). All None: no `# /// script` block, nothing to lock. Wheels only (`--no-build`): no
    package's code runs here, and the script itself, not yet reviewed, never does."""
    script = read_script(code)
    if script.problem or script.block is None:
        return None, None, None
    uv = which("uv")
    meta = {**script.meta, "tool": {k: v for k, v in script.tool.items() if k != "sm"}}
    key = sha256_text(json.dumps([meta, uv, uv_settings()], sort_keys=True, default=str))
    if key not in _resolved:
        _resolved[key] = _uv_lock(uv, code) if uv else (None, None, "uv is not installed")
    return _resolved[key]


def _uv_lock(uv: str, code: str) -> tuple[str | None, str | None, str | None]:
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="sm-resolve-") as folder:
        path = os.path.join(folder, "script.py")
        with open(path, "w", encoding="utf-8") as f:
            f.write(code)
        cmd = [uv, "lock", "--quiet", "--no-build", "--script", path]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=uv_env())
            if proc.returncode == 0:
                with open(lock_path_of(path), encoding="utf-8", newline="") as f:
                    return f.read(), None, None
        except (OSError, subprocess.SubprocessError) as e:
            log.warning("Could not check the script's dependencies (%s).", _short(e))
            return None, None, _short(e)
    error = proc.stderr[proc.stderr.find("error:") :].strip() if "error:" in proc.stderr else proc.stderr.strip()
    if "No solution found" not in error and "no usable wheels" not in error:
        trouble = redact(" ".join(error.split()))[:300]
        log.warning("Could not check the script's dependencies: %s", trouble)
        return None, None, trouble
    problem = "its dependencies do not resolve (choose packages that exist on PyPI and ship wheels): "
    return None, problem + error.replace(path, "the script"), None


def generate(
    prompt: str,
    model: Any,
    *,
    required: Sequence[str] | None = None,
    history: Any = None,
    retries: int = 3,
    current: str | None = None,
    on_partial: Callable[[Any, int], None] | None = None,
    finish: Callable[[str], str] = lambda code: code,
) -> tuple[Any, Any]:
    """Ask the model for a script; returns (Script, message history). Raises GenerationError.

    With `on_partial`, the answer streams: on_partial(partial Script, attempt) is called as it grows. `finish`:
    see make_agent.
    """
    os.environ.setdefault("PYDANTIC_AI_NO_BANNER", "1")
    required = placeholders(prompt) if required is None else list(required)
    message = revision_prompt(prompt, current)
    with model_errors(model):
        agent = make_agent(model, required, retries, finish)
        if on_partial is None:
            result = agent.run_sync(message, message_history=history)
        else:
            import asyncio

            result = asyncio.run(_stream_run(agent, message, history, on_partial))
    out = result.output
    out.description = " ".join(out.description.split())
    return out, result.all_messages()


async def _stream_run(agent: Any, message: str, history: Any, on_partial: Callable[[Any, int], None]) -> Any:
    # run_stream() gives up on the first ModelRetry (pydantic-ai#3393). Walking the run's graph and
    # streaming each model request keeps the repair loop: a rejected answer is followed by a new request.
    from pydantic_ai import Agent

    attempt = 0
    async with agent.iter(message, message_history=history) as run:
        async for node in run:
            if not Agent.is_model_request_node(node):
                continue
            attempt += 1
            async with node.stream(run.ctx) as stream:
                async for response in stream.stream_response(debounce_by=None):
                    try:
                        partial = await stream.validate_response_output(response, allow_partial=True)
                    except Exception:  # not parseable yet (no tool call, `code` not started): wait for more
                        continue
                    on_partial(partial, attempt)
    return run.result


class Candidate:
    """One version of a script under review: stamped code, and the description and params sm records."""

    def __init__(self, code: str, description: str, params: list[dict[str, Any]]):
        self.code, self.description, self.params = code, description, params


class Draft:
    """A script being written or changed: one conversation with the model, and the provenance to stamp.

    `origin` is the [tool.sm] provenance (prompt, model, created_at) every version keeps; change
    requests and hand edits made in this session join `changes` when the result is accepted.
    """

    def __init__(
        self,
        model: Any,
        *,
        model_name: str,
        filename: str,
        origin: dict[str, str],
        required: Sequence[str] = (),
        description: str | None = None,
        exclude_newer: bool = True,
        repin: str | None = None,
        changes: Sequence[dict[str, Any]] = (),
        screen: Callable[[str], None] = lambda request: None,
    ):
        self.model, self.model_name, self.filename = model, model_name, filename
        self.screen = screen  # raises for a change request that must not go to the model (check_prompt)
        self.origin = origin
        self.required = list(required)
        self.description = description  # the user's --description wins over the model's
        self.exclude_newer, self.repin = exclude_newer, repin
        self.earlier_changes = list(changes)
        self.changes: list[dict[str, Any]] = []
        self.history: Any = None
        self.last_written: str | None = None  # the model's latest version, to spot code it has not seen

    def write(self, request: str, *, current: str | None = None, on_partial: Any = None) -> Candidate:
        """Ask the model, continuing the conversation; the state changes only when it succeeds."""
        required = self.required + [n for n in placeholders(request) if n not in self.required]
        script, history = generate(
            request,
            self.model,
            required=required,
            history=self.history,
            current=current,
            on_partial=on_partial,
            finish=lambda code: self.stamp(code, [], "").code,  # what uv reads of it is what will be uploaded
        )
        self.required, self.history = required, history
        candidate = self.stamp(script.code, script.params, self.description or script.description)
        self.last_written = candidate.code
        return candidate

    def revise(self, request: str, current: Candidate, *, on_partial: Any = None) -> Candidate:
        """A change request about `current`; the code goes along when the model has not seen it."""
        unseen = None if current.code == self.last_written else current.code
        candidate = self.write(request, current=unseen, on_partial=on_partial)
        self.changes.append({"prompt": request, "model": self.model_name, "at": now_iso()})
        return candidate

    def take_edit(self, code: str, current: Candidate) -> Candidate:
        """Code edited by hand: validated like the model's, parameters re-read from [tool.sm]."""
        script = read_script(code)
        params = script.declared or []  # with no valid block, script_problems says what is wrong with it
        if problems := script_problems(code, params, self.required):
            raise ValidationFailed("; ".join(problems))
        candidate = self.stamp(code, params, str((script.table or {}).get("description") or current.description))
        self.changes.append({"edit": "by hand", "at": now_iso()})
        return candidate

    def stamp(self, code: str, params: Sequence[Any], description: str, changes: Sequence[Any] = ()) -> Candidate:
        desc = " ".join(description.split())
        code = stamp_script(
            code,
            params=params,
            description=desc,
            prompt=self.origin["prompt"],
            model=self.origin["model"],
            created_at=self.origin["created_at"],
            exclude_newer=self.exclude_newer,
            changes=[*self.earlier_changes, *changes],
        )
        if self.repin:
            code = pin_resolution(code, self.repin)
        return Candidate(code, desc, read_script(code).declared or [])

    def final(self, candidate: Candidate) -> Candidate:
        """The accepted version, with this session's changes recorded in its provenance."""
        return self.stamp(candidate.code, candidate.params, candidate.description, self.changes)


@contextmanager
def model_errors(model: Any) -> Iterator[None]:
    """Turn PydanticAI's exceptions into one actionable line, in sm's words rather than the library's."""
    from pydantic_ai import exceptions as x

    label = model if isinstance(model, str) else getattr(model, "model_name", "the model")
    try:
        yield
    except x.UserError as e:
        raise ConfigError(_setup_message(label, str(e))) from e
    except ImportError as e:  # a provider whose package sm does not ship (mistral:, cohere:, bedrock:...)
        if "pip install" not in str(e):
            raise
        raise ConfigError(
            f"Model {label} needs a provider package sm does not include: choose an openai, anthropic, google, "
            "groq or ollama model, or an OpenAI-compatible server (SM_MODEL=openai-chat:NAME with OPENAI_BASE_URL)."
        ) from e
    except x.ModelAPIError as e:
        raise GenerationError(_api_error_message(label, e)) from e
    except x.UnexpectedModelBehavior as e:
        problems = _answer_problems(e.__cause__)
        what = f". The last answer: {'; '.join(problems)}." if problems else f" ({_for_people(str(e))})."
        raise GenerationError(
            f"Model {label} did not produce a valid script{what} Nothing was uploaded: try again, "
            "rephrase the prompt, or choose another model with --model."
        ) from e
    except x.AgentRunError as e:
        raise GenerationError(f"Model {label} stopped: {_for_people(str(e))}. Nothing was uploaded.") from e


def _setup_message(label: str, text: str) -> str:
    """A model that cannot start (no key, unknown name), said without the library's advice to programmers."""
    if problem := model_setup_problem(label):
        return f"Model {label} cannot be used: {problem[0]}. {problem[1]}"
    if var := re.search(r"Set the `([A-Z][A-Z0-9_]*)` environment variable", text):  # providers sm has no table for
        return (
            f"Model {label} cannot be used: {var[1]} is not set. Set {var[1]}, or choose another model with SM_MODEL."
        )
    if text.startswith("Unknown model"):
        return (
            f"Unknown model {label!r}: write it as PROVIDER:NAME, for example openai:gpt-5.1, "
            "anthropic:claude-sonnet-4-5, or openai-chat:NAME for an OpenAI-compatible server."
        )
    return f"Model {label} cannot be used: {_for_people(text)}. Check SM_MODEL or --model."


def _for_people(text: str) -> str:
    """The library's first line without its sentences for programmers (code, links to its docs) or final stop."""
    sentences = re.split(r"(?<=\.)\s+", (text.splitlines() or [""])[0])
    return " ".join(s for s in sentences if not re.search(r"\w\(|https?://", s)).rstrip(". ") or "no details"


def _api_error_message(label: str, e: Any) -> str:
    """A failed model request; "try again later" only for what passes on its own (rate limits, outages)."""
    from pydantic_ai import exceptions as x

    prefix, status = label.partition(":")[0], getattr(e, "status_code", None)
    what = f"HTTP {status}: {_api_message(e)}" if status else _api_message(e)
    if isinstance(e, x.ModelAuthenticationError) or status in (401, 403):
        key = MODEL_SETTINGS.get(prefix, (("the provider's API key variable",), ""))[0][0]
        return f"Model {label} rejected the API key ({what}): check {key}."
    if isinstance(e, x.ModelNotFoundError) or status == 404:
        if prefix in ("openai", "openai-responses"):  # the Responses API, which compatible servers rarely offer
            return (
                f"Model {label} was not found ({what}). For an OpenAI-compatible server, "
                "set SM_MODEL=openai-chat:NAME with a model it serves."
            )
        return f"Model {label} was not found ({what}): set SM_MODEL={prefix}:NAME with a model it serves."
    if isinstance(e, x.ModelQuotaExceededError):
        return f"Model {label} has no quota left ({what}): check the account's plan or billing."
    if isinstance(e, x.ModelContextWindowExceededError):
        return (
            f"The request is too long for model {label} ({what}): shorten it, or choose a model with a larger context."
        )
    if isinstance(e, x.ModelRateLimitError) or status == 429:
        return f"Model {label} is rate limited ({what}). Try again later."
    if isinstance(e, (x.ModelConnectionError, x.ModelRequestTimeout)) and not status:
        return f"Model {label} could not be reached ({what}): check the network or the base URL, then try again."
    if (
        isinstance(e, (x.ModelUnavailableError, x.ModelServerError))
        or status in (408, 409, 425)
        or (status or 0) >= 500
    ):
        return f"Model {label} failed ({what}). Try again later."
    return f"Model {label} refused the request ({what}): check SM_MODEL and the provider's settings."


def _answer_problems(cause: Any) -> list[str]:
    """What was wrong with the model's last answer, in words a user can read (never the text sent to the model)."""
    if problems := getattr(cause, "problems", None):  # set by make_agent's validator
        return list(problems)
    if callable(errors := getattr(cause, "errors", None)):  # pydantic's ValidationError: the answer's shape
        with contextlib.suppress(Exception):
            return [f"{'.'.join(map(str, e['loc'])) or 'the answer'}: {e['msg'].lower()}" for e in errors()]
    return ["it was not a script in the expected form"] if cause is not None else []


def _api_message(e: Any) -> str:
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        if isinstance(inner.get("message"), str):
            return _short(Exception(inner["message"]))
    return _short(e)


# ══════════════════════════════════════════════════════════════════════════════════════════════════
# Review UI
# ══════════════════════════════════════════════════════════════════════════════════════════════════
# A terminal shows what sm prints; it never obeys it. Text from outside (code, diffs, descriptions,
# file names, owners, parameters, GitHub's messages) passes through visible() on every path, and long
# lines are wrapped behind a marker, never cut at the screen's edge: what a person is asked to trust
# is all of what runs. Waits show one status line on stderr. None of it is drawn off a terminal.
#
# `create --preview` and `edit --preview`: watch the script being written, then review it until it
# is right. Everything is drawn on stderr (stdout stays for data); when stderr is not a terminal
# the same review is printed plainly, and when stdin is not a terminal the answers are read from it
# line by line, so `printf 'change\n\n' | sm create x "..." -p` works and nothing waits on a tty.

WRAP_MARK = "↪"  # starts the screen rows that continue a line too long for the screen


# -- terminal output -------------------------------------------------------------------------------


def fit(text: str, width: int) -> str:
    """Text wrapped between words to the screen's width (a terminal would break it mid-word)."""
    import textwrap

    return "\n".join(
        textwrap.fill(
            line,
            max(20, width - 1),
            break_long_words=False,
            break_on_hyphens=False,
            subsequent_indent=" " * (len(line) - len(line.lstrip()) + 2),
        )
        for line in text.splitlines()
    )


def terminal_width(stream: Any) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return 80


def control_warning(text: str, what: str) -> list[str]:
    """One line for a trust summary when `text` holds characters a terminal would act on."""
    if not (n := control_count(text)):
        return []
    return [
        f"Warning: {what} contains {n} control character{'s' if n > 1 else ''}, shown as ^X, M-^X or <U+XXXX>: "
        "a terminal would act on them instead of showing them."
    ]


def colour(console: Any) -> bool:
    return console.is_terminal and console.color_system is not None and not console.no_color


def use_color(stream: Any) -> bool:
    return isatty(stream) and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


@memo()
def syntax_theme(name: str) -> Any:
    """SM_THEME names any Pygments style; the default uses the terminal's own colours, and its own
    foreground for plain text, so it reads on light and dark backgrounds alike."""
    from pygments.token import Comment, Error, Generic, Keyword, Name, Number, Operator, String, Token
    from rich.style import Style
    from rich.syntax import ANSISyntaxTheme, PygmentsSyntaxTheme, SyntaxTheme

    if name:
        from pygments.styles import get_style_by_name
        from pygments.util import ClassNotFound

        try:
            pygments = PygmentsSyntaxTheme(get_style_by_name(name))
        except ClassNotFound:
            log.warning("SM_THEME=%s is not a Pygments style (see `pygmentize -L styles`); using sm's colours.", name)
        else:

            class Foreground(SyntaxTheme):  # the terminal's background stays: lines are not padded to the edge
                def get_style_for_token(self, token_type: Any) -> Any:
                    s = pygments.get_style_for_token(token_type)
                    return Style(color=s.color, bold=s.bold, dim=s.dim, italic=s.italic, underline=s.underline)

                def get_background_style(self) -> Any:
                    return Style.null()

            return Foreground()
    return ANSISyntaxTheme(
        {
            Token: Style(),
            Comment: Style(dim=True),
            Keyword: Style(color="magenta"),
            Operator.Word: Style(color="magenta"),
            Name.Builtin: Style(color="cyan"),
            Name.Exception: Style(color="cyan"),
            Name.Function: Style(color="blue"),
            Name.Class: Style(color="blue", bold=True),
            Name.Decorator: Style(color="magenta"),
            String: Style(color="green"),
            Number: Style(color="cyan"),
            Generic.Deleted: Style(color="red"),
            Generic.Inserted: Style(color="green"),
            Generic.Heading: Style(bold=True),
            Generic.Subheading: Style(color="cyan"),
            Error: Style(),
        }
    )


def code_rows(
    text: str,
    lexer: str,
    width: int,
    *,
    color: bool,
    numbers: bool = False,
    start: int = 1,
    folds: Sequence[tuple[int, int, str]] = (),
) -> list[Any]:
    """Code or a diff as screen rows no wider than `width`: made visible, highlighted when `color`, and
    each line too long for the screen continued on the next rows behind ↪, so no part of it is hidden.
    With `numbers`, lines are numbered from `start`. `folds` are (first, end, label) ranges of lines,
    0-based, each shown as one dim row."""
    from rich.syntax import Syntax
    from rich.text import Text

    shown = visible(text).expandtabs(4)
    if color:
        theme = syntax_theme(os.environ.get("SM_THEME", "").strip())
        lines = Syntax(shown, lexer, theme=theme).highlight(shown).split("\n")
    else:
        lines = Text(shown).split("\n")
    digits = len(str(start + len(lines) - 1)) if numbers else 0
    gutter = digits + 1 if numbers else 0
    room = max(2, width - gutter)
    folded = {first: (end, label) for first, end, label in folds}
    rows: list[Any] = []
    i = 0
    while i < len(lines):
        line, end = lines[i], i + 1
        if i in folded:
            end, label = folded[i]
            line = Text(label, style="dim")
        for n, piece in enumerate(_cut(line, room, room - 1)):
            lead = f"{start + i:>{digits}} " if numbers and not n else " " * gutter
            rows.append(Text.assemble((lead + (WRAP_MARK if n else ""), "dim"), piece))
        i = end
    return rows


def _cut(line: Any, first: int, rest: int) -> list[Any]:
    """`line` (a rich Text) in pieces of at most `first` cells, then `rest` cells each."""
    from rich.cells import get_character_cell_size

    offsets: list[int] = []
    used, room = 0, first
    for i, char in enumerate(line.plain):
        size = get_character_cell_size(char)
        if used and used + size > room:
            offsets.append(i)
            used, room = 0, rest
        used += size
    return list(line.divide(offsets)) if offsets else [line]


def print_rows(console: Any, rows: Sequence[Any], *, page: bool = False) -> None:
    """Rows from code_rows() on the console; with `page`, through the pager when they are taller than
    the screen and a person is there to scroll (less -R, as git does: it quits at once if they fit)."""
    from rich.text import Text

    if page and len(rows) > console.size.height - 2 and interactive():
        with console.capture() as captured:
            console.print(Text("\n").join(rows), soft_wrap=True)
        if run_pager(captured.get(), console.file):
            return
    console.print(Text("\n").join(rows), soft_wrap=True)


def run_pager(text: str, out: Any) -> bool:
    """Show text through $PAGER, or less; False when there is none that starts."""
    import shlex
    import subprocess

    command = shlex.split(os.environ.get("PAGER", "")) or (["less", "-R"] if which("less") else [])
    if not command:
        return False
    env = {**os.environ, "LESS": os.environ.get("LESS", "FRX")}  # git's default: colours, and no screen wipe
    try:
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=out, env=env, text=True, encoding="utf-8")
    except (OSError, ValueError):
        return False
    wait_ignoring_ctrl_c(proc, text)
    return True


def print_code(code: str, *, err: bool = False) -> None:
    """On a terminal: control characters made visible, highlighted when colour is on, long lines wrapped
    behind ↪, and through the pager when taller than the screen. Otherwise the exact bytes."""
    stream = sys.stderr if err else sys.stdout
    if isatty(stream):
        from rich.console import Console

        console = Console(stderr=err)
        print_rows(console, code_rows(code.rstrip("\n"), "python", console.width, color=colour(console)), page=not err)
    else:
        stream.flush()
        stream.buffer.write(code.encode("utf-8"))
        stream.flush()


def print_table(rows: list[dict[str, Any]], *, wide: bool = False) -> None:
    """`sm list` on a terminal: one line per script, as `gh gist list` does, the description (then the
    parameters) cut with … to fit; names are never cut. `wide`: every column in full, wrapped."""
    from rich.cells import cell_len
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    header = ("name", "description", "parameters", "updated")
    cells = [
        tuple(
            visible(cell, one_line=True)
            for cell in (
                r["script_name"] + (f" → {r['installed_as']}" if r.get("installed_as") else ""),
                r.get("description") or "",
                ", ".join(p["name"] + ("" if p.get("required") else "?") for p in r.get("params") or []),
                (r.get("updated_at") or "")[:16].replace("T", " "),
            )
        )
        for r in rows
    ]
    console = Console()
    if wide:
        table = Table(box=None, header_style="bold")
        for col in header:
            table.add_column(col)
        for row in cells:
            table.add_row(*(Text(c) for c in row))
        console.print(table)
        return
    natural = [max(cell_len(row[i]) for row in [header, *cells]) for i in range(4)]
    widths = [natural[0], 0, min(natural[2], 24), natural[3]]
    for drop in (None, 3, 2):  # too narrow: drop the date, then the parameters, before the description goes
        if drop:
            widths[drop] = 0
        widths[1] = console.width - sum(widths) - 2 * sum(1 for w in widths if w)
        if widths[1] >= 12:
            break
    widths[1] = min(max(widths[1], 0), natural[1])
    for n, row in enumerate([header, *cells]):
        line = Text(style="bold" if n == 0 else "")
        for cell, width in zip(row, widths, strict=True):
            if width:
                piece = Text(cell)
                piece.truncate(width, overflow="ellipsis", pad=True)
                line.append_text(piece + Text("  "))
        line.rstrip()
        line.truncate(console.width, overflow="ellipsis")
        console.print(line, soft_wrap=True)


def unified_diff(old: str, new: str, old_label: str, new_label: str) -> str:
    import difflib

    return "".join(
        difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True), old_label, new_label)
    )


def change_text(
    old: str, new: str, old_label: str, new_label: str, locks: tuple[str | None, str | None] = (None, None)
) -> str:
    """A unified diff of the dependencies, of the versions the locks pin (`locks`: old and new, when either
    revision has one: a revision that changes only its lock changes what is installed), then of the code."""
    deps = unified_diff(
        "\n".join(read_script(old).dependencies) + "\n",
        "\n".join(read_script(new).dependencies) + "\n",
        f"{old_label} dependencies",
        f"{new_label} dependencies",
    )
    text = (deps or "dependencies: unchanged\n") + "\n"
    if locks != (None, None):
        old_lock, new_lock = ("\n".join(locked_packages(lock)) + "\n" for lock in locks)
        pinned = unified_diff(old_lock, new_lock, f"{old_label} locked versions", f"{new_label} locked versions")
        text += (pinned or "locked versions: unchanged\n") + "\n"
    code = unified_diff(old, new, old_label, new_label)
    warning = "".join(line + "\n" for line in control_warning(new, f"the code of {new_label}"))
    return text + (code or "code: unchanged\n") + warning


def lock_packages(lock: str) -> list[dict[str, Any]] | None:
    """The [[package]] tables of a uv lock; None when it is not TOML at all."""
    import tomllib

    try:
        packages = tomllib.loads(lock).get("package")
    except tomllib.TOMLDecodeError:
        return None
    return [p for p in packages if isinstance(p, dict)] if isinstance(packages, list) else []


def locked_packages(lock: str | None) -> list[str]:
    """For a review: each package a uv lock pins, where from, and a digest of all it says of it (files, hashes):
    two locks that pin the same versions from other places, or other files, never read as the same."""
    if lock is None:
        return []
    if (packages := lock_packages(lock)) is None:
        return [f"(a lock that uv cannot read, sha256 {sha256_text(lock)[:12]})"]
    lines = []
    for p in packages:
        source = p.get("source")
        where = next(iter(source.values()), "") if isinstance(source, dict) and source else ""
        digest = sha256_text(json.dumps(p, sort_keys=True, default=str))[:12]
        lines.append(f"{p.get('name')}=={p.get('version')} from {where} #{digest}")
    return sorted(lines)


def locked_versions(lock: str | None) -> list[str]:
    """NAME==VERSION of each package a uv lock pins: what a locked run installs, whatever the script asks."""
    if lock is None:
        return []
    if (packages := lock_packages(lock)) is None:
        return ["(a lock that uv cannot read)"]
    return sorted(f"{p.get('name')}=={p.get('version')}" for p in packages if "version" in p)


# -- the status line -------------------------------------------------------------------------------


class StatusLine:
    """sm's one status line on stderr: a spinner and the step it is waiting on, or GitHub's wait."""

    def __init__(self) -> None:
        self.steps: list[str] = []
        self.live: Any = None
        self.wait_until, self.why = 0.0, ""
        self.spinner: Any = None  # made on first use: rich is not imported before something is drawn

    def __rich__(self) -> Any:
        from rich.spinner import Spinner

        text = self.steps[-1] if self.steps else ""
        if (left := self.wait_until - time.monotonic()) > 0:
            text = f"Waiting {int(left) + 1} s for GitHub ({self.why})… Ctrl-C stops"
        if self.spinner is None:
            self.spinner = Spinner("dots")
        self.spinner.update(text=text)
        return self.spinner


STATUS = StatusLine()


@contextmanager
def status_line(step: str) -> Iterator[None]:
    """Show `step` ("Uploading greet.py…") on the status line while the block waits; a block inside
    another one shows its own step, then gives the line back. Nothing at all when stderr is no terminal."""
    if not isatty(sys.stderr):
        yield
        return
    STATUS.steps.append(step)
    live = None
    if STATUS.live is None:
        from rich.live import Live

        # stdout stays where it is; warnings written to stderr appear above the line
        live = STATUS.live = Live(STATUS, console=stderr_console(), transient=True, redirect_stdout=False)
        live.start()
    try:
        yield
    finally:
        STATUS.steps.pop()
        if live is not None:
            live.stop()
            STATUS.live = None
            STATUS.wait_until = 0.0


def status_step(step: str) -> None:
    """The block under way has moved on to `step` (until it ends)."""
    if STATUS.steps:
        STATUS.steps[-1] = step


def status_wait(seconds: float, why: int | str) -> None:
    """GitHub asked sm to wait (a status code, or what failed): the status line counts it down."""
    STATUS.why = "rate limit" if why in (403, 429) else f"it answered {why}" if isinstance(why, int) else why
    STATUS.wait_until = time.monotonic() + seconds


# -- questions -------------------------------------------------------------------------------------


def confirm(question: str, show: str = "", *, yes: bool, declined: str) -> None:
    """The one question sm asks before it runs, changes or deletes something: `show` (code, a diff) is shown on
    stderr first, all of it: made visible, long lines wrapped, never paged or cut. --yes says yes. A no, Ctrl-C,
    end of input, or no terminal to ask on raises Cancelled(declined): nothing was done."""
    import click

    console = stderr_console()
    question = visible(question, one_line=True)
    if show and console.is_terminal:
        lexer = "diff" if "\n@@ " in show else "python"
        print_rows(console, code_rows(show.rstrip("\n"), lexer, console.width, color=colour(console)))
    elif show:
        click.echo(visible(show), err=True)
    if yes:
        return
    if not interactive():
        click.echo(f"{question} [not a terminal: rerun with --yes to say yes]", err=True)
        raise Cancelled(declined)
    try:
        shown = fit(question, console.width - len(" [y/N]: n")) if console.is_terminal else question
        agreed = click.confirm(shown, default=False, err=True)
    except click.Abort:  # Ctrl-C or end of input is a no, said on a line of its own
        click.echo("", err=True)
        agreed = False
    if not agreed:
        raise Cancelled(declined)


def choose_file(names: list[str]) -> str:
    import click

    shown = ", ".join(visible(n, one_line=True) for n in names)
    if not interactive():
        raise UsageProblem(f"The gist holds several Python files ({shown}): choose one with --file.")
    return click.prompt(f"Which file? ({shown})", type=click.Choice(names), show_choices=False, err=True)


# -- the review ------------------------------------------------------------------------------------


QUESTION = "Do you have any changes? "
REVIEW_HELP = """\
Enter, n or no accepts and uploads. Any other text asks the model for that change.
  :edit              edit the code in $VISUAL or $EDITOR
  :run key=value ... run this version locally with uv (arguments after -- go to the script as they are)
  :diff              show what the last change did
  :code              show the whole script, through the pager when it is taller than the screen
  :meta              show sm's own [tool.sm] and [tool.uv] metadata, folded into one line elsewhere
  :quit              leave without uploading (Ctrl-C and end of input do too)"""
ANSWER_COMMANDS = {
    "edit": "edit",
    "e": "edit",
    "run": "run",
    "r": "run",
    "diff": "diff",
    "d": "diff",
    "code": "code",
    "c": "code",
    "meta": "meta",
    "m": "meta",
    "quit": "quit",
    "q": "quit",
    "exit": "quit",
    "help": "help",
    "h": "help",
    "?": "help",
}


def parse_answer(text: str) -> tuple[str, str]:
    """An answer to "Do you have any changes?" → (action, argument)."""
    text = text.strip()
    if text.lower() in ("", "n", "no"):
        return "accept", ""
    if text.lower() in ("y", "yes"):
        return "yes", ""  # "yes, I have changes": the change itself is still to come
    if text.startswith(":"):
        word, _, rest = text[1:].partition(" ")
        action = ANSWER_COMMANDS.get(word.lower())
        return (action, rest.strip()) if action else ("unknown", word)
    return "change", text


def review(
    draft: Draft,
    first: Callable[[Any], Candidate],
    *,
    console: Any,
    ask: Callable[[str], str],
    before: Candidate | None = None,
    edit_code: Callable[[str, str], str] | None = None,
    run_code: Callable[..., int] | None = None,
) -> Candidate:
    """Stream the first version, review it with the user, return the accepted version, stamped.

    `first(on_partial)` produces the first version; `before` is the stored version it changes (edit).
    """
    try:
        verb = "Revising" if before else "Writing"
        with streaming(console, f"{verb} {draft.filename} with {draft.model_name}") as on_partial:
            candidate = first(on_partial)
        accepted = review_loop(
            draft,
            candidate,
            console=console,
            ask=ask,
            before=before,
            edit_code=edit_code or edit_in_editor,
            run_code=run_code or run_candidate,
        )
    except KeyboardInterrupt:
        raise Cancelled("Interrupted: nothing was uploaded.", exit_code=130) from None
    except EOFError:
        raise Cancelled("End of input: nothing was uploaded.") from None
    return draft.final(accepted)


def review_loop(
    draft: Draft,
    candidate: Candidate,
    *,
    console: Any,
    ask: Callable[[str], str],
    before: Candidate | None,
    edit_code: Callable[[str, str], str],
    run_code: Callable[..., int],
) -> Candidate:
    """Ask "Do you have any changes?" until the answer accepts; returns the accepted version."""
    name = draft.filename
    previous = before
    rejected_edit: str | None = None  # an edit that failed validation, reopened by the next :edit
    if previous:
        show_change(console, previous, candidate, name)
    else:
        show_script(console, candidate, name)
    say(console, "Enter accepts, text asks for a change; :edit :run :diff :code :quit, :help for more.")
    while True:
        action, arg = parse_answer(ask(QUESTION))
        try:
            if action == "accept":
                return candidate
            if action == "quit":
                raise Cancelled("Quit: nothing was uploaded.")
            if action == "change":
                draft.screen(arg)
                with streaming(console, f"Revising {name} with {draft.model_name}") as on_partial:
                    revised = draft.revise(arg, candidate, on_partial=on_partial)
                previous, candidate, rejected_edit = candidate, revised, None
                show_change(console, previous, candidate, name)
            elif action == "edit":
                edited = edit_code(rejected_edit or candidate.code, name)
                if edited == candidate.code:
                    say(console, "No changes made.")
                    rejected_edit = None
                    continue
                try:
                    revised = draft.take_edit(edited, candidate)
                except ValidationFailed as e:
                    rejected_edit = edited
                    say(console, f"The edited code was not taken: {e}. The next :edit reopens your edit.")
                    continue
                previous, candidate, rejected_edit = candidate, revised, None
                show_change(console, previous, candidate, name)
            elif action == "run":
                try_candidate(console, candidate, name, arg, run_code)
            elif action == "diff":
                if previous is None:
                    say(console, "There is no earlier version yet: ask for a change first.")
                else:
                    show_diff(console, previous, candidate, name)
            elif action == "code":
                show_code(console, candidate.code, name)
            elif action == "meta":
                show_code(console, candidate.code, name, only_meta=True)
            elif action == "help":
                say(console, REVIEW_HELP)
            elif action == "yes":
                say(console, "Type the change you want, or press Enter to accept.")
            else:
                say(console, f"Unknown command :{arg}.\n{REVIEW_HELP}")
        except Cancelled:
            raise
        except SmError as e:  # a failed change, a bad :run argument, no editor: the review goes on
            kept = " The previous version is kept." if action in ("change", "edit") else ""
            say(console, f"Error: {e}{kept}")


def try_candidate(console: Any, candidate: Candidate, filename: str, arg: str, run_code: Callable[..., int]) -> None:
    """`:run key=value ...`: the candidate, run by uv from a temporary file, output and exit code shown."""
    import shlex

    try:
        words = shlex.split(arg)
    except ValueError as e:
        raise UsageProblem(f":run could not split its arguments: {e}.") from e
    req = parse_run_tail(words, named=False)
    if req.options:
        raise UsageProblem(":run takes key=value pairs, and arguments for the script after --.")
    args = build_script_args(candidate.params, req.pairs, req.passthrough) + req.passthrough
    say(console, f"$ {shlex.join(['uv', 'run', '--script', filename, *args])}")
    code = run_code(candidate.code, filename, args, lambda line: console.out(visible(line), highlight=False))
    say(console, f"exit code {code}" + (" (stopped)" if code == 130 else ""))


def run_candidate(code: str, filename: str, args: Sequence[str], emit: Callable[[str], None]) -> int:
    """Run code with `uv run --script` from a temporary file, passing each output line to `emit`."""
    import subprocess
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="sm-run-") as tmp:
        path = Path(tmp) / filename
        path.write_text(code, encoding="utf-8")
        # No stdin: piped answers belong to sm, and a script waiting for input must not hang the review.
        proc = subprocess.Popen(
            script_argv(path, args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                emit(line.rstrip("\n"))
            return proc.wait()
        except KeyboardInterrupt:  # Ctrl-C stops the script (it got the signal too), not the review
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            return 130


def edit_in_editor(code: str, filename: str) -> str:
    """Open code in $VISUAL/$EDITOR (split like a shell would, run without one); returns the saved text."""
    import shlex
    import subprocess
    import tempfile
    from pathlib import Path

    # An editor without a terminal waits for keys nobody can type (vim with piped output hangs for good).
    if not (isatty(sys.stdin) and isatty(sys.stdout)):
        piped = "input" if not isatty(sys.stdin) else "output"
        raise ConfigError(f":edit needs a terminal, and this review's {piped} is piped: describe the change instead.")
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if not editor:
        editor = next((e for e in ("sensible-editor", "nano", "vim", "vi") if which(e)), None)
    if not editor:
        raise ConfigError("No editor found: set EDITOR (for example EDITOR=nano), or describe the change instead.")
    with tempfile.TemporaryDirectory(prefix="sm-edit-") as tmp:
        path = Path(tmp) / filename
        path.write_text(code, encoding="utf-8")
        try:
            proc = subprocess.Popen([*shlex.split(editor), str(path)])
        except (OSError, ValueError) as e:
            raise ConfigError(f"Cannot start the editor {editor!r} ({_short(e)}): check VISUAL and EDITOR.") from e
        status = wait_ignoring_ctrl_c(proc)
        if status != 0:
            raise ConfigError(f"The editor {editor!r} exited with status {status}; the code was left as it was.")
        return path.read_text(encoding="utf-8")


def wait_ignoring_ctrl_c(proc: Any, text: str | None = None) -> int:
    """Like git: while the editor or the pager runs, Ctrl-C is its to handle, not a reason to end the review.
    `text` goes to the process's stdin."""
    import signal
    import threading

    def finish() -> int:
        if text is None:
            return proc.wait()
        proc.communicate(text)  # a pager that quits early is fine: communicate() ignores the broken pipe
        return proc.returncode

    if threading.current_thread() is not threading.main_thread():
        return finish()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # set after the fork: the child keeps its own
    try:
        return finish()
    finally:
        signal.signal(signal.SIGINT, previous)


def answer_reader(console: Any) -> Callable[[str], str]:
    """ask(question) → answer. On a terminal the question is the prompt of a readline line, so editing it
    (Ctrl-U, arrows, the history of this review's answers) never erases the question; otherwise one line of
    stdin (EOFError at its end). A message after Ctrl-C or Ctrl-D starts on a line of its own."""
    if interactive() and isatty(sys.stdout):  # input() uses readline only when both are the terminal
        try:
            import readline
        except ImportError:
            readline = None
        else:
            readline.clear_history()  # Up recalls earlier answers of this review, nothing else
        bold = readline is not None and colour(console)

        def ask_line(question: str) -> str:
            # \001 and \002 tell readline that the escapes between them take no room on the screen
            with ended_line(console):
                return input(f"\001\033[1m\002{question}\001\033[0m\002" if bold else question)

        return ask_line

    def ask(question: str) -> str:
        console.out(question, end="", highlight=False)
        with ended_line(console):
            line = sys.stdin.readline()
            if not line:
                raise EOFError
        answer = line.rstrip("\r\n")
        if not interactive():
            say(console, answer)  # echoed, so a log of the review reads like a conversation
        return answer

    return ask


@contextmanager
def ended_line(console: Any) -> Iterator[None]:
    """Ctrl-C or end of input at a question: end its line, so what is said next starts on a new one."""
    try:
        yield
    except (KeyboardInterrupt, EOFError):
        console.out("", highlight=False)
        raise


def say(console: Any, text: str) -> None:
    """A message in the review; on a terminal, wrapped between words."""
    console.out(fit(visible(text), console.width) if console.is_terminal else visible(text), highlight=False)


def show_script(console: Any, candidate: Candidate, filename: str) -> None:
    """The code, with sm's own metadata folded into one line, then its parameters, dependencies and description."""
    show_code(console, candidate.code, filename, fold=True)
    show_facts(console, candidate)


def show_change(console: Any, old: Candidate, new: Candidate, filename: str) -> None:
    """After a change: what changed first, then the facts; :code shows the whole script."""
    show_diff(console, old, new, filename)
    show_facts(console, new)


def show_code(console: Any, code: str, filename: str, *, fold: bool = False, only_meta: bool = False) -> None:
    """The code under review, numbered: whole, with sm's metadata folded (fold), or only that metadata (only_meta).
    On a terminal, long lines wrap behind ↪ and code taller than the screen goes through the pager."""
    spans = metadata_folds(code)
    first, text, folds = 1, code.rstrip("\n"), spans if fold else []
    if only_meta:
        if not spans:
            say(console, f"{filename} has no [tool.sm] or [tool.uv] metadata.")
            return
        start, end = spans[0][0], spans[-1][1]
        first, text, folds = start + 1, "\n".join(code.splitlines()[start:end]), []
    if not console.is_terminal:
        rows = code_rows(text, "python", sys.maxsize, color=False, folds=folds)
        say(console, f"--- {filename} ---\n" + "\n".join(r.plain for r in rows) + f"\n--- end of {filename} ---")
        return
    from rich.text import Text

    console.rule(Text(visible(filename, one_line=True), style="bold"), align="left", style="dim")
    rows = code_rows(text, "python", console.width, color=colour(console), numbers=True, start=first, folds=folds)
    print_rows(console, rows, page=True)


def metadata_folds(code: str) -> list[tuple[int, int, str]]:
    """sm's own tables in the PEP 723 block, as (first line, end line, label) for code_rows: [tool.sm], and
    [tool.uv] when it holds only the exclude-newer sm sets. Other settings (an index URL, say) change what
    runs, so they are never folded away."""
    script = read_script(code)
    if script.problem or (block := script.block) is None:
        return []
    uv = script.tool.get("uv") or {}
    ours = {"tool.sm"} | ({"tool.uv"} if set(uv) <= {"exclude-newer"} else set())
    top = script.text.count("\n", 0, block.start()) + 1  # the line after `# /// script`
    spans: list[tuple[int, int, list[str]]] = []
    inside = False
    for i, line in enumerate(block.group("content").splitlines(), start=top):
        if header := re.fullmatch(r"#\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*", line):
            table = ".".join(header.group(1).replace('"', "").replace(" ", "").split(".")[:2])
            inside = table in ours
            if inside and not (spans and spans[-1][1] == i):
                spans.append((i, i, []))
            if inside and f"[{table}]" not in spans[-1][2]:
                spans[-1][2].append(f"[{table}]")
        if inside:
            spans[-1] = (spans[-1][0], i + 1, spans[-1][2])
    return [(a, b, f"# {' '.join(names)} … {b - a} lines, :meta shows them") for a, b, names in spans]


def show_facts(console: Any, candidate: Candidate) -> None:
    """Parameters, dependencies and description: a table on a terminal, lines otherwise."""
    deps = read_script(candidate.code).dependencies
    dep_text = ", ".join(deps) if deps else "none (standard library only)"
    if not console.is_terminal:
        for p in candidate.params:
            flags = "required" if p.get("required") else f"default {p['default']!r}" if "default" in p else "optional"
            say(console, f"Parameter --{p['name']} ({flags}): {p.get('help', '')}")
        say(console, f"Dependencies: {dep_text}\nDescription: {candidate.description}")
        return
    from rich.table import Table
    from rich.text import Text

    if candidate.params:
        table = Table(title="Parameters", title_justify="left", header_style="bold")
        for col in ("name", "required", "default", "help"):
            table.add_column(col)
        for p in candidate.params:
            cells = (f"--{p['name']}", "yes" if p.get("required") else "no", p.get("default") or "", p.get("help", ""))
            table.add_row(*(Text(visible(c, one_line=True)) for c in cells))
        console.print(table)
    else:
        console.print(Text.assemble(("Parameters: ", "bold"), "none"))
    console.print(Text.assemble(("Dependencies: ", "bold"), visible(dep_text, one_line=True)))
    console.print(Text.assemble(("Description: ", "bold"), visible(candidate.description, one_line=True)))


def show_diff(console: Any, old: Candidate, new: Candidate, filename: str) -> None:
    diff = unified_diff(old.code, new.code, f"{filename} (before)", f"{filename} (after)").rstrip("\n")
    if not diff:
        say(console, "No differences.")
    elif console.is_terminal:
        print_rows(console, code_rows(diff, "diff", console.width, color=colour(console)), page=True)
    else:
        say(console, diff)


@contextmanager
def streaming(console: Any, what: str) -> Iterator[Callable[[Any, int], None]]:
    """Yields on_partial for generate(): a live view of the code as it arrives, or one plain line."""
    started = time.monotonic()
    if not console.is_terminal:
        say(console, f"{what}…")
        yield lambda partial, attempt: None
        say(console, f"Done in {time.monotonic() - started:.1f} s.")
        return
    from rich.live import Live

    view = GrowingCode(what, started)
    with Live(view, console=console, transient=True, refresh_per_second=10):
        yield view.update


class GrowingCode:
    """The live view: a spinner until the first token, then the highlighted code's tail, elapsed time below."""

    def __init__(self, what: str, started: float):
        from rich.spinner import Spinner

        self.what, self.started = what, started
        self.code, self.attempt = "", 1
        self.spinner = Spinner("dots")

    def update(self, partial: Any, attempt: int) -> None:
        self.code, self.attempt = getattr(partial, "code", "") or "", attempt

    def __rich_console__(self, console: Any, options: Any) -> Iterator[Any]:
        from rich.text import Text

        status = f"{self.what}… {time.monotonic() - self.started:.1f} s"
        if self.code:
            status += f", {len(self.code.splitlines())} lines"
        if self.attempt > 1:
            status += f" (attempt {self.attempt}: fixing what the last one got wrong)"
        self.spinner.update(text=status)
        if self.code:
            room = max(3, console.size.height - 2)  # a live region taller than the screen cannot be redrawn
            lines = self.code.splitlines()
            first = max(0, len(lines) - room)  # highlighting only what can show keeps up with a long script
            rows = code_rows(
                "\n".join(lines[first:]),
                "python",
                options.max_width,
                color=colour(console),
                numbers=True,
                start=first + 1,
            )
            tail = Text("\n").join(rows[-room:])
            tail.no_wrap = True
            yield tail
        yield self.spinner


# ══════════════════════════════════════════════════════════════════════════════════════════════════
# Operations
# ══════════════════════════════════════════════════════════════════════════════════════════════════
# The whole work of each command, as plain functions without click: the CLI wiring below only parses
# arguments and prints results. Questions go through confirm(), so tests answer them with --yes or stdin.

# -- create and edit -------------------------------------------------------------------------------


def read_prompt(prompt: str) -> str:
    if prompt == "-" and interactive():  # a terminal waiting in silence looks like a hang
        sys.stderr.write("Type the prompt, end with Ctrl-D\n")
        sys.stderr.flush()
    text = sys.stdin.read() if prompt == "-" else prompt
    if not text.strip():
        raise UsageProblem("The prompt is empty: describe the script you want.")
    placeholders(text)  # a malformed {{...}} is refused here, before GitHub or the model is asked anything
    return text.strip()


def check_answers_source(prompt: str, preview: bool) -> None:
    if preview and prompt == "-" and not interactive():
        raise UsageProblem(
            "PROMPT - reads stdin, but --preview reads its answers from stdin: pass the prompt as an argument."
        )


def create_script(
    name: str,
    prompt: str,
    *,
    public: bool = False,
    description: str | None = None,
    model: str | None = None,
    force: bool = False,
    exclude_newer: bool = True,
    preview: bool = False,
    yes: bool = False,
    locked: bool = True,
) -> Entry:
    """`sm create`: the model writes the script (reviewed first with `preview`), it goes to a new gist with its
    lock (unless not `locked`), and NAME is mapped to it. Everything that can fail without the model is checked
    before the model is paid."""
    check_name(name)
    check_answers_source(prompt, preview)
    prompt = read_prompt(prompt)
    check_home()
    check_prompt(prompt, yes=yes)
    if read_mapping()["scripts"].get(name) and not force:  # the cheap check first; claim_name checks GitHub too
        raise UsageProblem(f"A script named {name!r} already exists: use --force to replace it, or `sm edit {name}`.")
    gh = github()
    with status_line("Checking the GitHub token…"):
        gh.check_token()  # a bad token or an unreachable GitHub should fail before model tokens are spent
    with claim_name(name, replace=force, gh=gh) as existing:
        model_name = resolve_model(model)
        created = now_iso()
        draft = Draft(
            model_name,
            model_name=model_name,
            filename=f"{name}.py",
            origin={"prompt": prompt, "model": model_name, "created_at": created},
            required=placeholders(prompt),
            description=description,
            exclude_newer=exclude_newer,
            screen=functools.partial(check_prompt, yes=yes),
        )
        final = write_and_review(draft, lambda on_partial: draft.write(prompt, on_partial=on_partial), preview=preview)
        with kept_if_refused(name, final.code, new=True), status_line(f"Uploading {name}.py…"):
            return upload_new(
                gh,
                name,
                final.code,
                final.description,
                public=public,
                created=created,
                replaced=existing,
                locked=locked,
            )


def edit_script(
    name: str,
    prompt: str,
    *,
    model: str | None = None,
    preview: bool = False,
    yes: bool = False,
    locked: bool = True,
) -> Entry:
    """`sm edit`: the model changes the stored script; the result becomes a new revision of the same gist, with
    its lock (unless not `locked`: then a lock in the gist is deleted in that revision)."""
    check_answers_source(prompt, preview)
    prompt = read_prompt(prompt)
    check_prompt(prompt, yes=yes)
    entry = lookup(name)
    check_home()
    gh = github()
    with status_line(f"Fetching {name}…"):
        gh.check_token()
        check_owner(gh, entry)
        head = check_gist_exists(gh, entry)
    code = pinned_code(entry, lambda: gh)
    model_name = resolve_model(model)
    script = read_script(code)  # a script broken by hand: the model is asked to fix the block with the change
    origin = script.table or {}
    draft = Draft(
        model_name,
        model_name=model_name,
        filename=entry["filename"],
        origin={
            "prompt": str(origin.get("prompt") or ""),
            "model": str(origin.get("model") or ""),
            "created_at": str(origin.get("created_at") or entry.get("created_at") or now_iso()),
        },
        changes=[c for c in origin.get("changes") or [] if isinstance(c, dict)],
        exclude_newer=False,
        # uv resolves as of the pinned time: move it to now, or a newly added package may not exist yet
        repin=now_iso() if "exclude-newer" in (script.tool.get("uv") or {}) else None,
        screen=functools.partial(check_prompt, yes=yes),
    )
    current = Candidate(code, entry.get("description") or "", list(entry.get("params") or []))
    final = write_and_review(
        draft, lambda on_partial: draft.revise(prompt, current, on_partial=on_partial), preview=preview, before=current
    )
    with kept_if_refused(name, final.code, new=False), status_line(f"Uploading {entry['filename']}…"):
        return upload_revision(gh, entry, final, head=head, locked=locked)


def write_and_review(
    draft: Draft, first: Callable[[Any], Candidate], *, preview: bool, before: Candidate | None = None
) -> Candidate:
    """The accepted version: `first(on_partial)` writes it; with `preview` the user watches and reviews it."""
    if preview:
        console = stderr_console()
        return review(draft, first, console=console, ask=answer_reader(console), before=before)
    verb = "Revising" if before else "Writing"
    with status_line(f"{verb} {draft.filename} with {draft.model_name}…"):
        return draft.final(first(None))


@contextmanager
def kept_if_refused(name: str, code: str, *, new: bool) -> Iterator[None]:
    """The upload failed (GitHub, or the secret scan, refused it): keep the accepted code, so no model tokens or
    review work are lost, and say where it is."""
    from pathlib import Path

    try:
        yield
    except (GitHubError, ValidationFailed) as e:
        draft = Path(home_path("drafts", f"{name}.py"))
        atomic_write(draft, code)
        then = f"publish it with `sm add {name} {draft}`" if new else f"it is at {draft}"
        e.args = (f"{str(e).rstrip('.')}. The script was kept: {then}.",)
        raise


def upload_new(
    gh: GitHub,
    name: str,
    code: str,
    description: str,
    *,
    public: bool,
    created: str,
    replaced: Entry | None = None,
    params: Sequence[dict[str, Any]] | None = None,
    locked: bool = True,
) -> Entry:
    """A new gist holding the script and, when `locked`, its lock; NAME mapped to it and cached."""
    filename = f"{name}.py"
    lock = script_lock(name, code) if locked else None
    files = script_files(filename, code, lock)
    check_upload(files, description, public=public)
    gist = gh.create_gist(files, description, public=public)
    entry = make_entry(
        code=code,
        lock=lock,
        script_name=name,
        gist_id=gist["id"],
        filename=filename,
        created_at=created,
        revision=latest_revision(gh, gist),
        description=description,
        params=(read_script(code).declared or []) if params is None else list(params),
        public=public,
        html_url=gist.get("html_url", ""),
    )
    record_accepted(entry)
    store_cache(entry, code, lock)
    status_step("Syncing mapping…")
    put_entry(entry)
    if replaced:
        log.warning("The previous gist for %s (%s) was kept on GitHub.", name, replaced["gist_id"])
    return entry


def check_owner(gh: GitHub, entry: Entry) -> None:
    """Only the owner can add revisions to a gist; say so before any work is done (needs check_token)."""
    owner = entry.get("owner")
    if "owner" in entry and owner in (None, UNKNOWN_OWNER):
        raise UsageProblem(f"{entry['script_name']} is an anonymous gist: nobody can change it.")
    if owner and gh.login and owner != gh.login:
        raise UsageProblem(
            f"{entry['script_name']} is {owner}'s gist: only they can change it. "
            f"`sm run {entry['script_name']} --latest` follows their changes."
        )


def check_gist_exists(gh: GitHub, entry: Entry) -> dict[str, Any]:
    """One request before the model is paid: a gist deleted on GitHub cannot take a new revision. Its head."""
    try:
        return gh.get_gist(entry["gist_id"])[0]
    except GitHubError as e:
        if e.status != 404:
            raise
        name, file = entry["script_name"], entry["filename"]
        keep = f"save the code with `sm show {name} > {file}`, store it again with `sm add {name} {file} --force`, or "
        raise GitHubError(
            f"The gist of {name} ({entry['gist_id']}) no longer exists on GitHub, or this token cannot see it; "
            f"nothing was changed: {keep if verified_cache(entry) else ''}forget it with `sm rm {name}`.",
            404,
        ) from e


def upload_revision(gh: GitHub, entry: Entry, final: Candidate, *, head: dict[str, Any], locked: bool = True) -> Entry:
    """PATCH the same gist file and its lock (see script_files), then pin the new revision in the mapping and the
    cache. `head` is the gist as it was before the model was asked (check_gist_exists)."""
    check_owner(gh, entry)
    lock = script_lock(entry["script_name"], final.code) if locked else None
    if lock is None:  # a lock committed meanwhile (`sm lock` on another machine) must not stay beside this code
        head = gh.get_gist(entry["gist_id"])[0] or head
    files = script_files(entry["filename"], final.code, lock, head)
    check_upload(files, final.description, public=bool(entry.get("public")))
    gist = gh.update_gist(entry["gist_id"], files, description=final.description)
    updated = repin(entry, latest_revision(gh, gist), final.code, lock, description=final.description)
    history = [h.get("version") for h in gist.get("history") or []]
    if entry["revision"] not in history[:2]:  # someone committed to the gist after the revision sm pinned
        log.warning(
            "The gist of %s had changed on GitHub since revision %s; this edit was made from that revision, "
            "and the other changes stay in the gist's history.",
            entry["script_name"],
            entry["revision"][:8],
        )
    return updated


def script_lock(name: str, code: str) -> str | None:
    """The lock to upload with NAME's code (see resolve_lock); None, with a warning, when uv could not make one
    for a reason that is not the script's. Dependencies that do not resolve refuse the upload."""
    lock, problem, trouble = resolve_lock(code)
    if problem:
        raise ValidationFailed(
            f"{name} was not uploaded: {' '.join(problem.split())}. Fix its dependencies, or pass --no-lock."
        )
    if trouble:
        log.warning("%s is uploaded without a lock: %s.", name, trouble.rstrip("."))
    return lock


def script_files(filename: str, code: str, lock: str | None, head: dict[str, Any] | None = None) -> dict[str, Any]:
    """The files of one gist revision: the code and its lock, FILENAME.lock; without a lock, one the gist's
    `head` holds is deleted in the same revision (a lock left behind would be the previous code's)."""
    files: dict[str, str | None] = {filename: code}
    if lock is not None:
        files[lock_path_of(filename)] = lock
    elif lock_path_of(filename) in ((head or {}).get("files") or {}):
        files[lock_path_of(filename)] = None
    return files


# -- run -------------------------------------------------------------------------------------------
# Code that is not the pinned revision runs only after the user has seen it.


def run_script(req: RunRequest, choose: Callable[[list[str]], str] | None = None) -> None:
    """`sm run`: NAME at its pinned revision (or --latest, or --rev), or a gist URL or id, checked and trusted,
    then exec'ed with uv. The key=value pairs become arguments once, as soon as the parameters are known."""
    if req.name is None:
        raise UsageProblem("Missing NAME: `sm run NAME key=value ...` (`sm list` shows your scripts).")
    yes = bool(req.options.get("yes"))
    # A name first; else a gist ID or link (a bare number too: the IDs of old gists), never looked up as a name.
    ref = None if req.name in read_mapping()["scripts"] else gist_ref(req.name)
    if ref is None and (split := catalog_name(req.name)):
        path, args = run_catalog(*split, req, yes=yes)
    elif ref is None:
        path, args = run_mapped(req, yes=yes)
    else:
        path, args = run_foreign(parse_gist_ref(req.name), req, yes=yes, choose=choose)
    argv = script_argv(path, args + req.passthrough)
    exec_script(argv, uv_env(path) if argv[1:2] == ["run"] else None)


def run_mapped(req: RunRequest, *, yes: bool) -> tuple[Path, list[str]]:
    """A name in the mapping: the script's path, and the arguments its parameters make of the pairs."""
    opts = req.options
    if opts.get("save") or opts.get("file"):
        raise UsageProblem("--save and --file are for running a gist URL or id that is not in your mapping.")
    entry = lookup(str(req.name))
    if opts.get("rev"):
        path, code = run_revision(github(), entry, opts["rev"], yes=yes)
        declared = read_script(code).declared  # that revision's own parameters, if it says
        return path, build_script_args(
            entry.get("params") if declared is None else declared, req.pairs, req.passthrough
        )
    if opts.get("latest"):
        entry, path = latest_or_pinned(entry, yes=yes)
        return path, build_script_args(entry.get("params"), req.pairs, req.passthrough)
    # bad parameters fail before any network request
    args = build_script_args(entry.get("params"), req.pairs, req.passthrough)
    return ensure_cached(entry, github, yes=yes), args


def run_foreign(
    ref: GistRef, req: RunRequest, *, yes: bool, choose: Callable[[list[str]], str] | None
) -> tuple[Path, list[str]]:
    """A gist that is not in the mapping: shown and trusted first; with --save, added to the mapping."""
    if save := req.options.get("save"):
        check_name(save)
        if name_taken(read_mapping(), save):
            raise UsageProblem(f"A script named {save!r} already exists: choose another --save name.")
    entry, code, lock = adopt_gist(
        github_optional(),
        ref.gist_id,
        yes=yes,
        revision=ref.revision,
        filename=req.options.get("file") or ref.filename,
        anchor=ref.file_anchor,
        choose=choose,
    )
    args = build_script_args(entry["params"], req.pairs, req.passthrough)  # before anything is saved
    if save:
        entry = make_entry(entry, script_name=save)
        with hold_name(save):
            if name_taken(read_mapping(), save):  # taken while the gist was being reviewed
                raise UsageProblem(f"A script named {save!r} already exists: choose another --save name.")
            path = store_cache(entry, code, lock)
            with status_line("Syncing mapping…"):
                put_entry(entry)
        log.warning("Saved as %s, pinned at revision %s.", save, entry["revision"][:8])
    else:  # beside, not over, the pinned copy of a name that may use the same gist
        path = revision_path(entry, entry["revision"])
        atomic_write(path, code)
        place_lock(path, entry, lock)
    return path, args


def run_help(name: str) -> str:
    """`sm run NAME -h`, after sm's own help: what NAME takes."""
    entry = read_mapping()["scripts"].get(name) or known_catalog_scripts().get(name)
    params = entry.get("params") if entry else None
    return describe_params(params) if params is not None else f"{name} declares no parameters sm knows of."


def fetch_pinned(
    gh: GitHub, entry: Entry, vouched: str = "recorded when you accepted it", name: str | None = None
) -> tuple[dict[str, Any], str, str | None]:
    """The pinned revision (its gist JSON names the owner), its code and its lock (when the entry records one),
    refused unless each sha256 is the one the user accepted (or, for a catalog's script, the one its catalog
    lists: see `vouched`)."""
    gist = gh.get_revision(entry["gist_id"], entry["revision"])
    content = gh.file_content(gist_file(gist, entry["filename"]))
    lock = gist_lock(gh, gist, entry["filename"]) if entry.get("lock_sha256") else None
    for what, text, expected in (("", content, entry["sha256"]), ("the lock of ", lock, entry.get("lock_sha256"))):
        if expected and (text is None or sha256_text(text) != expected):
            raise IntegrityError(
                f"Refusing to run {name or entry['script_name']}: {what}revision {entry['revision'][:8]} on GitHub "
                f"does not match the sha256 {vouched}. The gist was altered; inspect it with `sm show`."
            )
    return gist, content, lock


def gist_lock(gh: GitHub, gist: dict[str, Any], filename: str) -> str | None:
    """The lock a gist revision holds for its script FILENAME (uv's FILENAME.lock), or None."""
    file = (gist.get("files") or {}).get(lock_path_of(filename))
    return gh.file_content(file) if isinstance(file, dict) else None


def load_pinned(
    entry: Entry, gh_factory: Callable[[], GitHub], *, run: bool, yes: bool = False
) -> tuple[Path | None, str]:
    """The pinned code and its cached path: from the verified cache, or fetched from GitHub on a miss.

    Only code this machine may run is cached (and so reaches `sm run`'s fast path): a gist of yours, or a pin
    recorded as accepted here. Someone else's gist at any other pin arrived through sync: to `run` it, it is
    reviewed first; otherwise (show, the base of a diff) its code is returned but not cached (path None).
    """
    from pathlib import Path

    if path := verified_cache(entry):
        log.debug("cache hit: %s", path)
        return Path(path), Path(path).read_bytes().decode("utf-8")  # as cached: CRLF kept, like the sha256
    if cached_path(entry).exists():
        what = "lock beside the cached copy" if verified_file(cached_file(entry), entry["sha256"]) else "cached copy"
        log.warning(
            "The %s of %s does not match its recorded sha256; fetching it again.", what, entry.get("script_name")
        )
    gh = gh_factory()
    gist, code, lock = fetch_pinned(gh, entry)
    if not known_pin(gh, entry, gist):
        if not run:
            return None, code
        review_pin(gh, entry, gist, code, lock, yes=yes)
    return store_cache(entry, code, lock), code


def ensure_cached(entry: Entry, gh_factory: Callable[[], GitHub], *, yes: bool) -> Path:
    """The path of the pinned code, ready to run (see load_pinned)."""
    path, _ = load_pinned(entry, gh_factory, run=True, yes=yes)
    assert path is not None  # to run, the code is cached or refused
    return path


def pinned_code(entry: Entry, gh_factory: Callable[[], GitHub]) -> str:
    """The pinned code, to read: shown or diffed, never run from here."""
    return load_pinned(entry, gh_factory, run=False)[1]


def head_meta_path(entry: Entry) -> Path:
    from pathlib import Path

    return Path(entry_path(entry, ".head.json"))


def follow_latest(gh: GitHub, entry: Entry, *, yes: bool) -> tuple[Entry, Path]:
    """`sm run NAME --latest`: one conditional request; a new head runs only once trusted, then is pinned."""
    name, pinned = entry["script_name"], entry["revision"][:8]
    with status_line(f"Asking GitHub for the newest revision of {name}…"):
        try:
            meta = json.loads(head_meta_path(entry).read_text())
        except (OSError, ValueError):
            meta = {}
        etag = meta.get("etag") if meta.get("version") == entry["revision"] else None
        gist, new_etag = gh.get_gist(entry["gist_id"], etag)
        head = new_code = new_lock = None
        if gist is not None:
            head = latest_revision(gh, gist)
            atomic_write(head_meta_path(entry), json.dumps({"etag": new_etag, "version": head}))
            if head != entry["revision"]:
                new_code = gh.file_content(gist_file(gist, entry["filename"]))
                new_lock = gist_lock(gh, gist, entry["filename"])
    if gist is None or head is None or new_code is None:  # unchanged (304), or the head is the pin
        log.debug("gist head is the pinned revision: running it")
        return entry, ensure_cached(entry, lambda: gh, yes=yes)  # outside the status line: it may ask
    question = f"{name}: the gist's newest revision {head[:8]} is not the pinned {pinned}. Trust and run this revision?"
    text = change_or_code(gh, entry, gist, new_code, new_lock, head, f"latest {head[:8]}")
    declined = (
        f"Nothing ran: revision {head[:8]} was not trusted. `sm run {name}` still runs the pinned revision {pinned}."
    )
    confirm(question, text, yes=yes, declined=declined)
    with status_line(f"Pinning {name} at revision {head[:8]}…"):
        new_entry = repin(entry, head, new_code, new_lock)
    log.warning("%s is now pinned at revision %s.", name, head[:8])
    return new_entry, cached_path(new_entry)


def change_or_code(
    gh: GitHub, entry: Entry, gist: dict[str, Any], code: str, lock: str | None, rev: str, label: str
) -> str:
    """What to review before `code` and its `lock` (revision `rev` of the entry's gist) run: the diff from the
    pinned revision, or, when the pin itself was never accepted on this machine, the whole code with the gist's
    summary."""
    if not known_pin(gh, entry, gist):
        summary = trust_summary(
            gist, entry["filename"], code, rev, read_script(code).declared, me=my_login(gh), lock=lock
        )
        return "\n".join(summary) + "\n\n" + code
    pinned = pinned_code(entry, lambda: gh)
    locks = (pinned_lock(entry, gh), lock)
    return change_text(pinned, code, f"pinned {entry['revision'][:8]}", label, locks)


def pinned_lock(entry: Entry, gh: GitHub) -> str | None:
    """The pinned revision's lock, to read: from beside the cached copy when it is the recorded one."""
    if not entry.get("lock_sha256"):
        return None
    path = lock_path_of(cached_file(entry))
    if verified_file(path, entry["lock_sha256"]):
        with open(path, encoding="utf-8", newline="") as f:
            return f.read()
    return fetch_pinned(gh, entry)[2]


def latest_or_pinned(entry: Entry, *, yes: bool) -> tuple[Entry, Path]:
    """follow_latest(); when GitHub does not answer, the pinned revision instead, if the user agrees (or -y)."""
    name, pinned = entry["script_name"], entry["revision"][:8]
    try:
        return follow_latest(github(), entry, yes=yes)
    except KeyboardInterrupt:  # the status line says Ctrl-C stops the retries
        raise Cancelled(f"Stopped: nothing ran. `sm run {name}` runs the pinned revision {pinned}.", 130) from None
    except GitHubError as e:
        if not github_down(e):
            raise
        question = f"{e} Run the pinned revision {pinned} of {name} instead?"
        confirm(question, yes=yes, declined=f"{e} `sm run {name}` runs the pinned revision {pinned}.")
    log.warning("GitHub did not answer: running the pinned revision %s of %s, not a newer one.", pinned, name)
    return entry, ensure_cached(entry, github, yes=yes)


def github_down(e: GitHubError) -> bool:
    """GitHub could not answer (offline, failing, rate-limited), as opposed to answering no."""
    return isinstance(e, OfflineError) or (e.status or 0) >= 500 or e.status == 429 or "rate limit" in str(e)


def repin(entry: Entry, revision: str, code: str, lock: str | None, **changes: Any) -> Entry:
    """Pin `entry` to a revision the user accepted, with that revision's lock (and apply `changes`), cache it,
    and sync the mapping."""
    params = read_script(code).declared
    if params is None:
        params = entry.get("params")
    new_entry = make_entry(entry, code=code, lock=lock, revision=revision, params=params, **changes)
    record_accepted(new_entry)
    store_cache(new_entry, code, lock)
    status_step("Syncing mapping…")
    put_entry(new_entry)
    return new_entry


def resolve_revision(gh: GitHub, gist_id: str, rev: str, history: str = "sm history") -> str:
    """A full revision SHA from a full one or a unique prefix of at least 4 characters."""
    rev = rev.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{4,40}", rev):
        raise UsageProblem(f"{rev!r} is not a revision: give a commit SHA from `{history}`.")
    if len(rev) == 40:
        return rev
    found = [
        c["version"]
        for c in gh.paginate(gh.gist_path(gist_id, "commits") + "?per_page=100", what="Gist history")
        if c["version"].startswith(rev)
    ]
    if len(found) != 1:
        raise UsageProblem(f"Revision {rev!r} {'is ambiguous' if found else 'is not in the history'}: see `{history}`.")
    return found[0]


def revision_code(gh: GitHub, entry: Entry, sha: str) -> str:
    return gh.file_content(gist_file(gh.get_revision(entry["gist_id"], sha), entry["filename"]))


def run_revision(gh: GitHub, entry: Entry, rev: str, *, yes: bool) -> tuple[Path, str]:
    """`sm run NAME --rev SHA`: a one-off run of another revision, after the same trust check."""
    name, rev_pinned = entry["script_name"], entry["revision"][:8]
    with status_line(f"Fetching revision {rev} of {name}…"):
        sha = resolve_revision(gh, entry["gist_id"], rev)
        if sha != entry["revision"]:
            gist = gh.get_revision(entry["gist_id"], sha)
            code = gh.file_content(gist_file(gist, entry["filename"]))
            lock = gist_lock(gh, gist, entry["filename"])
    if sha == entry["revision"]:
        path = ensure_cached(entry, lambda: gh, yes=yes)
        return path, path.read_text(encoding="utf-8")
    question = f"{name}: run revision {sha[:8]} instead of the pinned {rev_pinned}?"
    confirm(
        question,
        change_or_code(gh, entry, gist, code, lock, sha, f"revision {sha[:8]}"),
        yes=yes,
        declined=f"Nothing ran: revision {sha[:8]} was not trusted. "
        f"`sm run {name}` still runs the pinned revision {rev_pinned}.",
    )
    accepted = make_entry(entry, code=code, lock=lock, revision=sha)
    record_accepted(accepted)
    path = revision_path(entry, sha)
    atomic_write(path, code)
    place_lock(path, accepted, lock)
    return path, code


def revision_path(entry: Entry, sha: str) -> Path:
    """Where a revision other than the pinned one is kept for a one-off run."""
    from pathlib import Path

    if not re.fullmatch(REVISION_PATTERN, sha):
        raise IntegrityError(f"Refusing the revision {_clip(sha)}: GitHub's are 40 hex characters.")
    return Path(entry_path(entry, f"rev-{sha}", entry["filename"]))


def known_pin(gh: GitHub, entry: Entry, gist: dict[str, Any]) -> bool:
    """May the entry's pinned code run here without a review? Yes for a gist you own, and for a pin that
    was accepted on this machine; `gist` is the pinned gist's JSON, as GitHub answered it."""
    if is_accepted(entry):
        return True
    owner = gist_owner(gist)
    return owner is not None and owner == my_login(gh)


def review_pin(gh: GitHub, entry: Entry, gist: dict[str, Any], code: str, lock: str | None, *, yes: bool) -> None:
    """Someone else's gist at a pin not accepted here (it came through sync): shown in full, and asked about,
    like a gist run by its URL; recorded once trusted."""
    name, owner = entry["script_name"], gist_owner(gist) or "an unknown owner"
    summary = trust_summary(
        gist, entry["filename"], code, entry["revision"], read_script(code).declared, me=my_login(gh), lock=lock
    )
    question = (
        f"{name} is pinned to {owner}'s gist at revision {entry['revision'][:8]}, which has not been reviewed "
        "on this machine. Trust and run it?"
    )
    declined = (
        f"Not running {name}: it is pinned to {owner}'s gist {entry['gist_id']} at revision "
        f"{entry['revision'][:8]}, which has not been reviewed on this machine (the pin came through sync). "
        "Review it, then rerun with --yes."
    )
    confirm(question, "\n".join(summary) + "\n\n" + code, yes=yes, declined=declined)
    record_accepted(entry)


def gist_entry(
    gh: GitHub,
    gist_id: str,
    *,
    revision: str | None = None,
    filename: str | None = None,
    anchor: str | None = None,
    choose: Callable[[list[str]], str] | None = None,
    ready: bool = False,
) -> tuple[Entry, str, dict[str, Any], str | None]:
    """A gist that is not in the mapping, fetched and checked: an unsaved entry pinned at `revision` (a link's
    revision, checked against the history) or the newest, its code, the gist's JSON at that revision, and the
    lock that revision holds for the file, if any.

    The file is `filename`, else the one whose #file- anchor is `anchor`, else the only .py file (or `choose`'s).
    With `ready` (sm add), code that fails the checks `create` makes is refused (ValidationFailed).
    """
    with status_line(f"Fetching gist {gist_id}…"):
        gist, _ = gh.get_gist(gist_id)
        assert gist is not None  # no ETag was sent, so GitHub cannot answer 304
        if revision is not None:
            history = gh.paginate(gh.gist_path(gist_id, "commits") + "?per_page=100", what="Gist history")
            if revision not in (c.get("version") for c in history):
                raise UsageProblem(
                    f"{revision[:8]} in the link is not a revision of gist {gist_id} (the API's raw_url names a "
                    "file's blob, not a revision): use the gist's own link, or one from its Revisions tab."
                )
            gist = gh.get_revision(gist_id, revision)
    names = [n for n in gist.get("files") or {} if not filename_problem(n)]
    if not filename and anchor:
        if len(found := [n for n in names if file_anchor(n) == anchor.lower()]) != 1:
            raise UsageProblem(
                f"Gist {gist_id} has no single file for #file-{visible(anchor[:80], one_line=True)}: choose one with --file."
            )
        filename = found[0]
    if not filename and choose is not None:
        python = [n for n in names if n.endswith(".py")]
        filename = choose(python) if len(python) > 1 else None
    file = gist_file(gist, filename)
    fname = file.get("filename")
    if problem := filename_problem(fname):
        raise IntegrityError(f"Gist {gist_id}: {problem}, so sm will not store or run it.")
    if not fname.endswith(".py"):
        raise UsageProblem(f"{fname} in gist {gist_id} is not a .py file; choose one with --file.")
    with status_line(f"Fetching {fname}…"):
        code = gh.file_content(file)
        lock = gist_lock(gh, gist, fname)
        script = read_script(code)
        params = script.ready_params(f"{fname} in gist {gist_id}") if ready else script.params
        revision = revision or latest_revision(gh, gist)
    entry = make_entry(
        code=code,
        lock=lock,
        script_name=None,
        gist_id=gist_id,
        filename=fname,
        revision=revision,
        description=" ".join(str(gist.get("description") or "").split()),
        params=params,
        public=bool(gist.get("public")),
        html_url=str(gist.get("html_url") or ""),
        owner=gist_owner(gist),  # a login, or None for an anonymous gist: never a sentence
    )
    if problem := entry_problem("unsaved", entry):
        raise IntegrityError(f"Gist {gist_id} cannot be used: {problem}.")
    return entry, code, gist, lock


def adopt_gist(
    gh: GitHub,
    gist_id: str,
    *,
    yes: bool,
    verb: str = "Run",
    declined: str = "Nothing ran",
    **which: Any,
) -> tuple[Entry, str, str | None]:
    """gist_entry(gh, gist_id, **which), shown and trusted: the accepted revision is recorded as trusted on
    this machine. The entry, the code, and the revision's lock."""
    entry, code, gist, lock = gist_entry(gh, gist_id, **which)
    fname, revision, owner = entry["filename"], entry["revision"], entry["owner"] or "an unknown owner"
    summary = "\n".join(trust_summary(gist, fname, code, revision, entry["params"], me=my_login(gh), lock=lock))
    confirm(
        f"{verb} {fname} from {owner}'s gist at revision {revision[:8]}?",
        f"{summary}\n\n{code}",
        yes=yes,
        declined=f"{declined}: {fname} from {owner}'s gist {gist_id} was not trusted.",
    )
    record_accepted(entry)
    return entry, code, lock


def trust_summary(
    gist: dict[str, Any],
    filename: str,
    code: str,
    revision: str,
    params: Sequence[dict[str, Any]] | None,
    *,
    me: str | None,
    lock: str | None,
) -> list[str]:
    """What someone should know before trusting a gist: who owns it, what it pulls in (and the versions its
    `lock`, as fetched in full, pins), what it takes."""
    owner = gist_owner(gist) or "an unknown owner"
    script = read_script(code)
    python = script.requires_python or "not stated (no valid PEP 723 block)"
    deps = script.dependencies
    when = next((h.get("committed_at") for h in gist.get("history") or [] if h.get("version") == revision), None)
    lines = [
        f"Gist {gist['id']} by {owner} ({'public' if gist.get('public') else 'secret'}): "
        f"{gist.get('description') or 'no description'}",
        f"File {filename}, revision {revision[:8]}{f' of {when}' if when else ''}, {len(code.splitlines())} lines",
        f"Dependencies: {', '.join(deps) or 'none'}; requires-python {python}",
        f"Locked versions: {', '.join(locked_versions(lock)) or 'none'}"
        if lock is not None
        else "Locked versions: no lock in this revision (uv chooses on the first run)",
        f"Parameters: {', '.join(p['name'] for p in params or []) or 'none declared'}",
        *control_warning(code, "the code"),
    ]
    if owner != me:
        lines.append(
            f"Not your gist: {owner} can change it, but sm runs only revision {revision[:8]} "
            "and checks its sha256 before every run."
        )
    return lines


# -- without uv ------------------------------------------------------------------------------------
# A venv per script under $SM_HOME/venvs, its dependencies installed by pip.


def script_argv(path: Path, args: Sequence[str]) -> list[str]:
    """How to run a script: with uv, or without it from a venv of its own."""
    return uv_command(path, args) or fallback_command(path, args)


def fallback_command(path: Path, args: Sequence[str]) -> list[str]:
    """Without uv: run with a venv of this script's own under $SM_HOME/venvs, dependencies installed by pip."""
    meta = read_script(path.read_text(encoding="utf-8")).metadata()
    if not python_satisfies(meta["requires-python"], sys.version_info):
        raise ConfigError(
            f"{path.name} needs Python {meta['requires-python']} but this is Python {platform_python()}, "
            f"and uv, which would fetch a matching one, is not installed: {UV_INSTALL_HINT}."
        )
    log.warning("uv is not installed: running %s with the slower venv + pip fallback; %s.", path.name, UV_INSTALL_HINT)
    pins = lock_pins(path)
    return [str(ensure_venv(venv_path(path), meta["dependencies"], pins)), str(path), *args]


def lock_pins(path: Path) -> list[str]:
    """The versions the lock beside the script pins (sm placed it there, checked), as pip constraints: pip then
    installs what uv would have, of whatever this platform needs. Anything that is not plainly NAME==VERSION
    (a constraints file may carry options) drops the lock, with a warning."""
    try:
        with open(lock_path_of(str(path)), encoding="utf-8") as f:
            pins = locked_versions(f.read())
    except OSError:
        return []
    if all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9][A-Za-z0-9.+!_-]*", pin) for pin in pins):
        return pins
    log.warning("The lock of %s is not used by pip: it pins something that is not NAME==VERSION.", path.name)
    return []


def venv_path(script: Path) -> Path:
    """One venv per script: cache/<gist_id>/<file>, and its other revisions (cache/<gist_id>/rev-<sha>/<file>),
    share one; a candidate under review (a temporary file) shares one per file name."""
    from pathlib import Path

    folder = script.parent
    if folder.name.startswith("rev-") and folder.parent.parent == cache_dir():
        folder = folder.parent
    key = folder.name if folder.parent == cache_dir() else "draft"
    return Path(home_path("venvs", f"{key}-{script.stem}"))


def platform_python() -> str:
    return ".".join(map(str, sys.version_info[:3]))


def ensure_venv(venv_dir: Path, deps: list[str], pins: Sequence[str] = ()) -> Path:
    """The venv's python, built with the stdlib venv module and pip (held to `pins`, NAME==VERSION constraints);
    reused while deps, pins and Python stay the same."""
    import fcntl
    import subprocess
    import venv

    python = venv_dir / "bin" / "python"
    constraints = venv_dir / "sm-constraints.txt"
    install = pip_install_command(python, deps, constraints if pins else None)  # refused before anything is made
    stamp = venv_dir / "sm-deps.json"
    want = {"python": sys.version, "base": getattr(sys, "_base_executable", sys.executable), "dependencies": deps}
    if pins:
        want["pins"] = list(pins)
    private_dir(venv_dir.parent)
    with open(venv_dir.parent / f"{venv_dir.name}.lock", "a+", opener=private_opener) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two runs of one script must not build its venv at the same time
        with contextlib.suppress(OSError, ValueError):
            if json.loads(stamp.read_text(encoding="utf-8")) == want and python.exists():
                log.debug("reusing venv %s", venv_dir)
                return python
        log.debug("creating venv %s for %s", venv_dir, deps or "no dependencies")
        try:
            venv.EnvBuilder(clear=True, with_pip=bool(deps), symlinks=True).create(venv_dir)
        except (OSError, subprocess.CalledProcessError) as e:
            raise ConfigError(
                f"Could not create a venv in {venv_dir} ({_short(e)}): install uv, or your system's python3-venv package."
            ) from e
        if deps:
            if pins:
                atomic_write(constraints, "\n".join(pins) + "\n")
            log.debug("pip: %s", " ".join(install))
            proc = subprocess.run(install, capture_output=True, text=True)
            if proc.returncode:
                last = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
                raise ConfigError(
                    f"pip could not install {', '.join(deps)}: {last}. With uv installed, sm uses uv instead."
                )
        # Written last: a venv whose install failed or was interrupted has no stamp and is rebuilt next time.
        atomic_write(stamp, json.dumps(want))
    return python


def pip_install_command(python: Path, deps: Sequence[str], constraints: Path | None = None) -> list[str]:
    """pip's command line for a script's dependencies: each must be a PEP 508 requirement, and they all come
    after `--`, so that none is taken for an option such as `--index-url=...`; `constraints`: a file of pins."""
    for dep in deps:
        if not re.fullmatch(REQUIREMENT_PATTERN, dep):
            raise ValidationFailed(
                f"Refusing the dependency {_clip(dep, 60)}: it is not a PEP 508 requirement (NAME[extras] "
                "[version specifiers or @ URL] [; marker]), so pip is not given it."
            )
    held = ["--constraint", str(constraints)] if constraints else []
    return [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *held, "--", *deps]


# -- history, rollback, show, sync, list -----------------------------------------------------------


def script_history(name: str) -> list[dict[str, Any]]:
    """`sm history`: the gist's revisions, newest first, the pinned one marked (ALIAS/NAME: see catalog_entry)."""
    gh = github()
    entry = catalog_entry(gh, *split) if (split := catalog_name(name)) else lookup(name)
    with status_line(f"Fetching the history of {name}…"):
        return [
            {
                "version": c["version"],
                "committed_at": c.get("committed_at"),
                "additions": (c.get("change_status") or {}).get("additions", 0),
                "deletions": (c.get("change_status") or {}).get("deletions", 0),
                "pinned": c["version"] == entry["revision"],
            }
            for c in gh.paginate(gh.gist_path(entry["gist_id"], "commits") + "?per_page=100", what=f"History of {name}")
        ]


def rollback_script(name: str, rev: str, *, yes: bool = False, locked: bool = True) -> Entry:
    """Make an old revision's code the gist's newest revision, locked again (unless not `locked`), and pin it,
    once the diff is trusted."""
    entry = lookup(name)
    gh = github()
    with status_line(f"Fetching revision {rev} of {name}…"):
        gh.check_token()
        check_owner(gh, entry)
        sha = resolve_revision(gh, entry["gist_id"], rev)
        code = revision_code(gh, entry, sha)
    pinned = pinned_code(entry, lambda: gh)
    lock = script_lock(name, code) if locked else None  # locked again now: the versions it pins are shown
    question = f"{name}: make revision {sha[:8]} the newest and pin it?"
    confirm(
        question,
        change_text(
            pinned, code, f"pinned {entry['revision'][:8]}", f"revision {sha[:8]}", (pinned_lock(entry, gh), lock)
        ),
        yes=yes,
        declined=f"{name} was not rolled back: it stays pinned at revision {entry['revision'][:8]}.",
    )
    with status_line(f"Uploading {entry['filename']}…"):
        files = script_files(entry["filename"], code, lock, check_gist_exists(gh, entry))
        check_upload(files, None, public=bool(entry.get("public")))
        gist = gh.update_gist(entry["gist_id"], files)
        return repin(entry, latest_revision(gh, gist), code, lock)


def lock_script(name: str) -> tuple[Entry, bool]:
    """`sm lock`: lock the pinned code again (`uv lock --script`), and when the lock is new or changed, upload it
    with that code as a new revision and pin it. Returns the entry and whether anything changed."""
    entry = lookup(name)
    gh = github()
    with status_line(f"Fetching {name}…"):
        gh.check_token()
        check_owner(gh, entry)
        head = latest_revision(gh, check_gist_exists(gh, entry))
    if head != entry["revision"]:  # the lock would go up with the pinned code, undoing the newer revision
        raise UsageProblem(
            f"The gist of {name} has a newer revision ({head[:8]}) than the pinned {entry['revision'][:8]}: "
            f"review it with `sm run {name} --latest` first, then `sm lock {name}`. Nothing changed."
        )
    code = pinned_code(entry, lambda: gh)
    with status_line(f"Locking {entry['filename']}…"):
        lock, problem, trouble = resolve_lock(code)
    if problem or trouble or lock is None:
        why = (
            " ".join(problem.split())
            if problem
            else trouble or f"{entry['filename']} has no `# /// script` block, so uv has nothing to lock"
        )
        raise ValidationFailed(f"{name} was not locked: {why.rstrip('.')}. Nothing changed.")
    if sha256_text(lock) == entry.get("lock_sha256"):  # the pinned revision holds this very lock
        return entry, False
    with status_line(f"Uploading {entry['filename']} with its lock…"):
        files = script_files(entry["filename"], code, lock)
        check_upload(files, None, public=bool(entry.get("public")))
        gist = gh.update_gist(entry["gist_id"], files)
        return repin(entry, latest_revision(gh, gist), code, lock), True


def read_code(name: str, rev: str | None = None) -> tuple[Entry, str]:
    """`sm show`: the entry, and the code at its pinned revision (or at `rev`), to read, never to run. A gist ID
    or link that is not a name shows that gist (at the link's revision, or `rev`) without saving anything."""
    if split := catalog_name(name):
        if rev:
            raise UsageProblem(f"--rev is not for a catalog's script ({name}): it shows the pinned revision.")
        return catalog_code(*split)
    if name not in read_mapping()["scripts"] and gist_ref(name):
        ref = parse_gist_ref(name)
        gh = github_optional()
        revision = resolve_revision(gh, ref.gist_id, rev) if rev else ref.revision
        entry, code, _, _ = gist_entry(
            gh, ref.gist_id, revision=revision, filename=ref.filename, anchor=ref.file_anchor
        )
        return entry, code
    entry = lookup(name)
    if not rev:
        return entry, pinned_code(entry, github)
    with status_line(f"Fetching {name}…"):
        gh = github()
        return entry, revision_code(gh, entry, resolve_revision(gh, entry["gist_id"], rev))


def sync_mapping(from_remote: bool = False) -> dict[str, Any]:
    """`sm sync`: what changed on each side (see sync())."""
    gh = github()
    with status_line("Syncing mapping…"):
        return sync(gh, from_remote=from_remote)


def synced_mapping_gist(gh: GitHub) -> str:
    """Sync, so the mapping gist holds this machine's changes too; then its id."""
    sync(gh)
    if not (gist_id := read_sync_state().get("gist_id")):
        raise UsageProblem("There is no mapping on GitHub yet: it is made when you create or add your first script.")
    return gist_id


def mapping_history() -> list[dict[str, Any]]:
    """`sm mapping history`: the mapping gist's revisions, newest first, with the names each added, updated and
    removed. A revision sm cannot read is listed with its problem, never fatal: it is the one you may want to undo."""
    gh = github()
    with status_line("Fetching the mapping's history…"):
        gist_id = synced_mapping_gist(gh)
        commits = list(gh.paginate(gh.gist_path(gist_id, "commits") + "?per_page=100", what="Mapping history"))
        mappings: list[dict[str, Any] | str] = []
        for commit in commits:
            try:
                mappings.append(fetch_remote_version(gh, gist_id, commit["version"]))
            except MappingError as e:
                mappings.append(str(e))
        return history_rows(commits, mappings)


def restore_mapping(rev: str, *, yes: bool = False, exact: bool = False) -> dict[str, Any]:
    """`sm mapping restore`: the mapping at REV made current again, as a new local change that syncs like any
    other. The restored entries get fresh clocks, so a machine that changed them since does not win them back."""
    gh = github()
    with status_line(f"Fetching the mapping at {rev}…"):
        gist_id = synced_mapping_gist(gh)
        sha = resolve_revision(gh, gist_id, rev, "sm mapping history")
        old = fetch_remote_version(gh, gist_id, sha)
    plan = restore_plan(read_mapping(), old, exact=exact)
    result = {"version": sha, **plan}
    if not (plan["back"] or plan["changed_back"] or plan["removed"]):
        return result
    confirm(
        f"Make the mapping of {sha[:8]} current again?",
        "\n".join(restore_lines(plan)),
        yes=yes,
        declined="The mapping was not restored: nothing changed.",
    )
    with locked_mapping() as data:
        for name in plan["back"] + plan["changed_back"]:
            data["scripts"][name] = make_entry(old["scripts"][name], clock=tick(data))
            data["tombstones"].pop(name, None)
        for name in plan["removed"]:
            if (entry := data["scripts"].pop(name, None)) is not None:
                data["tombstones"][name] = tombstone(entry, tick(data))
    after_change()
    return result


def list_scripts(everything: bool = False) -> list[Entry]:
    """`sm list`: every entry, by name; a machine that never synced brings GitHub's first. `everything`: the
    subscribed catalogs' scripts too, as ALIAS/NAME."""
    if not read_sync_state().get("gist_id"):
        with status_line("Fetching your scripts from GitHub…"):
            try_sync("Could not fetch your scripts from GitHub: %s")  # a new machine: bring everything first
    if everything:
        with status_line("Reading your catalogs…"):
            return script_rows(read_mapping()) + catalog_rows()
    return script_rows(read_mapping())


# -- add, rm, rename -------------------------------------------------------------------------------


def add_script(
    name: str,
    source: str,
    *,
    public: bool = False,
    description: str | None = None,
    force: bool = False,
    filename: str | None = None,
    yes: bool = False,
    locked: bool = True,
) -> Entry:
    """Register a local .py file (uploaded to a new gist with its lock, unless not `locked`) or an existing gist
    (adopted at its current revision, with the lock that revision holds, if any)."""
    from pathlib import Path

    check_name(name)
    check_home()
    if read_mapping()["scripts"].get(name) and not force:  # the cheap check first; claim_name checks GitHub too
        raise UsageProblem(
            f"A script named {name!r} already exists: use --force to replace it, or choose another name."
        )
    pin = catalog_entry(github_optional(), *split) if (split := catalog_name(source)) else None
    path = Path(source).expanduser()
    if pin is None and (path.is_file() or (source.endswith(".py") and gist_ref(source) is None)):
        try:
            code = path.read_bytes().decode("utf-8")  # byte for byte: CRLF and a BOM kept, as uv reads them
        except (OSError, UnicodeDecodeError) as e:
            raise UsageProblem(f"Cannot read {source}: {getattr(e, 'strerror', None) or e}.") from e
        script = read_script(code)
        params = script.ready_params(source)
        desc = " ".join((description or script.description).split())
        gh = github()
        with status_line("Checking the GitHub token…"):
            gh.check_token()
        with claim_name(name, replace=force, gh=gh) as existing, status_line(f"Uploading {source}…"):
            return upload_new(
                gh, name, code, desc, public=public, created=now_iso(), replaced=existing, params=params, locked=locked
            )
    try:  # a typo fails here, before any network; ALIAS/NAME: the gist its catalog pins, still the teammate's
        ref = GistRef(pin["gist_id"], pin["revision"], pin["filename"]) if pin else parse_gist_ref(source)
    except UsageProblem as e:
        if gist_ref(source):
            raise
        raise UsageProblem(f"No such file, and not a gist ID or URL either: {source!r}.") from e
    if public:
        raise UsageProblem("--public applies to local files: an adopted gist keeps its own visibility.")
    gh = github()
    gh.check_token()
    with claim_name(name, replace=force, gh=gh) as existing:
        entry, code, lock = adopt_gist(
            gh,
            ref.gist_id,
            yes=yes,
            revision=ref.revision,
            filename=filename or ref.filename,
            anchor=ref.file_anchor,
            ready=True,
            verb=f"Adopt as {name}:",
            declined="Nothing was added",
        )
        if pin and (
            entry["sha256"] != pin["sha256"]
            or (pin.get("lock_sha256") and (lock is None or sha256_text(lock) != pin["lock_sha256"]))
        ):
            raise IntegrityError(
                f"Nothing was added: revision {pin['revision'][:8]} of {source} does not match the sha256 its "
                "catalog lists (of its code, or of its lock). The gist was altered; ask its owner."
            )
        desc = " ".join((description or entry["description"] or read_script(code).description).split())
        lock = lock if locked else None  # --no-lock: the gist's lock, if it has one, is not used here
        entry = make_entry(entry, code=code, lock=lock, script_name=name, description=desc)
        check_upload({}, entry["description"], public=False)  # the description goes to the (secret) mapping gist
        store_cache(entry, code, lock)
        with status_line("Syncing mapping…"):
            put_entry(entry)
    if existing:
        log.warning("The previous gist for %s (%s) was kept on GitHub.", name, existing["gist_id"])
    return entry


def remove_script(name: str, *, purge: bool = False, yes: bool = False) -> Entry | None:
    """`sm rm`: forget NAME (a tombstone syncs the removal); with `purge`, delete its gist too. None: NAME was
    held by a malformed entry, which is gone now (never purged: its gist id cannot be trusted)."""
    try:
        entry = lookup(name)
    except UsageProblem:
        if not purge and re.fullmatch(NAME_PATTERN, name) and delete_held(name):
            return None
        raise
    if purge:
        others = sorted(
            n for n, e in read_mapping()["scripts"].items() if e["gist_id"] == entry["gist_id"] and n != name
        )
        if others:
            raise UsageProblem(
                f"Gist {entry['gist_id']} is also registered as {', '.join(others)}: "
                "remove those names first, or drop --purge."
            )
        GitHub.gist_path(entry["gist_id"])  # a malformed id is refused before anyone is asked
        confirm(
            f"Delete gist {entry['gist_id']} ({entry['filename']}) from GitHub? This cannot be undone.",
            yes=yes,
            declined=f"Nothing was removed: {name} and its gist are as they were.",
        )
        with status_line(f"Deleting gist {entry['gist_id']}…"):
            purge_gist(github(), entry)
    with status_line("Syncing mapping…"):
        delete_entry(name)
    drop_local_copies(entry)
    if command := entry.get("installed_as"):
        remove_launcher(command, name)
    return entry


def purge_gist(gh: GitHub, entry: Entry) -> None:
    gh.check_token()
    gist_id = entry["gist_id"]
    try:
        gh.delete_gist(gist_id)
    except GitHubError as e:
        if e.status != 404:
            raise
        # GitHub says 404 both for a gist that is gone and for someone else's: tell them apart.
        try:
            gist, _ = gh.get_gist(gist_id)
        except GitHubError as again:
            if again.status != 404:
                raise
            log.warning("Gist %s was already deleted on GitHub.", gist_id)
            return
        owner = ((gist or {}).get("owner") or {}).get("login") or "someone else"
        raise GitHubError(
            f"Gist {gist_id} belongs to {owner}, so only they can delete it. "
            f"`sm rm {entry['script_name']}` without --purge forgets it.",
            403,
        ) from e


def drop_local_copies(entry: Entry) -> None:
    """Remove the cached code and fallback venv of a gist no remaining name uses."""
    import shutil

    if any(e["gist_id"] == entry["gist_id"] for e in read_mapping()["scripts"].values()):
        return
    try:
        folder, venv = entry_path(entry), venv_path(cached_path(entry))
    except IntegrityError as e:  # a malformed entry: sm never stored anything for it, so nothing is removed
        log.debug("no local copies to remove: %s", e)
        return
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(venv, ignore_errors=True)
    venv.with_name(venv.name + ".lock").unlink(missing_ok=True)


def rename_script(old: str, new: str) -> Entry:
    """`sm rename`: the entry moves to NEW; OLD leaves a tombstone, so the rename syncs."""
    check_name(new)
    lookup(old)  # for the did-you-mean
    with status_line("Syncing mapping…"):
        entry = rename_entry(old, new)
    if (command := entry.get("installed_as")) and launcher_of(launcher_path(command)) == old:
        write_launcher(new, command, force=True)  # the same command now runs the script under its new name
    return entry


# -- installed commands -----------------------------------------------------------------------------
# A launcher is an sh script in SM_BIN_DIR. Once sm has recorded a direct exec for it (record_launch, in the fast
# paths), it checks the pin's sha256 and execs the script's interpreter itself; otherwise, and whenever anything
# it checks has changed, it execs `sm run NAME -- ARGS...`, which runs only the pinned revision whose sha256
# matches, exactly as `sm run` does. sh rather than a Python stub: Python would start twice.

LAUNCHER_MARK = "# sm launcher for "


def launcher_path(command: str) -> Path:
    from pathlib import Path

    if not re.fullmatch(COMMAND_PATTERN, command):
        raise UsageProblem(
            f"Invalid command name {command!r}: use letters, digits, '.', '_', '+' or '-', starting with a letter "
            "or digit."
        )
    return Path(bin_dir()) / command


def launcher_text(name: str) -> str:
    """The launcher for script NAME. With a launch record that still holds (record_launch), it execs the script's
    interpreter as `sm run` would; otherwise this sm (the interpreter running it, and this file) runs NAME, with
    "$@" as is. sm is imported, not run as a file: an imported module's bytecode is cached, a script's is compiled
    on every start (tens of ms for sm.py). -I keeps the current folder and PYTHON* variables out of it."""
    import shlex

    folder = os.path.dirname(os.path.abspath(__file__))
    boot = f"import sys; sys.path.insert(0, {folder!r}); import sm; sm.main(launched=True)"
    command = shlex.join([sys.executable, "-I", "-c", boot, "run", name, "--"])
    return f"""#!/bin/sh
{LAUNCHER_MARK}{name}: its pinned, sha256-verified revision (sm install)
# What `sm run` would check, checked here; then the script's own interpreter. Anything unsure goes through sm.
{LAUNCH_OBSERVE}
_sm_r=${{SM_HOME:-$HOME/.sm}}/launch/{shlex.quote(name)} _sm_z=
if [ "${{SM_DIRECT-}}" != 0 ] && [ -z "${{SM_BACKGROUND-}}" ] && case $_sm_r in /*) true ;; *) false ;; esac &&
  [ -f "$_sm_r" ] && [ -O "$_sm_r" ] && IFS= read -r _sm_z <"$_sm_r" && [ "$_sm_z" = {shlex.quote(LAUNCH_HEADER)} ] &&
  _sm_z= && command . "$_sm_r" 2>/dev/null &&
  [ "$_sm_z" = {shlex.quote(f"{LAUNCH_FORMAT}/{name}")} ] && [ "${{SM_REFRESH_SECONDS-}}" = "$_sm_iv" ] &&
  [ -d /proc/$$ ] && [ "$_sm_r%due" -nt /proc/$$ ] && [ "$_sm_m" -ef "$_sm_r%ino" ] &&
  ! [ "$_sm_m" -nt "$_sm_r%map" ] && ! [ "$_sm_m" -ot "$_sm_r%map" ] &&
  [ -x "$_sm_py" ] && [ -f "$_sm_ve/pyvenv.cfg" ] && [ -f "$_sm_sc" ] && ! [ -L "$_sm_sc" ] && [ -x "$_sm_ru" ] &&
  _sm_observe && [ "$_sm_u" = "$_sm_u0" ] && ! [ "$_sm_u" -nt "$_sm_r" ] && ! [ "$_sm_ru" -nt "$_sm_r" ] &&
  [ "$_sm_h" = "$_sm_h0" ]; then
  _sm_d=${{UV_RUN_RECURSION_DEPTH:-0}}
  case $_sm_d in
    0 | [1-9] | [1-9][0-9])
      export VIRTUAL_ENV="$_sm_ve" PATH="$_sm_ve/bin${{PATH:+:$PATH}}" UV="$_sm_ru" UV_RUN_RECURSION_DEPTH=$((_sm_d + 1))
      exec "$_sm_py" "$_sm_sc" "$@" ;;
  esac
fi
exec {command} "$@"
"""


def launcher_of(path: Path | str) -> str | None:
    """The script an sm launcher at `path` runs, or None: no file, or not one of sm's (then never touched)."""
    with contextlib.suppress(OSError, UnicodeDecodeError), open(path, "rb") as f:
        lines = f.read(4096).decode("utf-8").splitlines()
        if len(lines) >= 2 and lines[1].startswith(LAUNCHER_MARK):
            return lines[1][len(LAUNCHER_MARK) :].partition(":")[0]
    return None


def write_launcher(name: str, command: str, *, force: bool = False) -> Path:
    """Write the launcher COMMAND for script NAME; refused without `force` when it would take another command's
    place: a program of that name on PATH, a file in SM_BIN_DIR that is not sm's, or the launcher of another script."""
    path = launcher_path(command)
    owner = launcher_of(path)
    other = None if os.path.lexists(path) else which(command)
    if other and launcher_of(other) is not None:  # sm's own launcher in another folder on PATH hides nothing
        other = None
    if owner is None and (os.path.lexists(path) or other) and not force:
        found = path if os.path.lexists(path) else other
        raise UsageProblem(
            f"{command} would shadow {found}: choose another name with --as CMD, or use --force to install anyway."
        )
    if owner not in (None, name) and not force:
        raise UsageProblem(f"{command} already runs the script {owner}: choose another name with --as CMD, or --force.")
    os.makedirs(path.parent, exist_ok=True)
    atomic_write(path, launcher_text(name), mode=0o755)
    folders = [os.path.realpath(p) for p in os.get_exec_path()]
    if os.path.realpath(path.parent) not in folders:
        _warn_once("PATH", str(path.parent), f"{path.parent} is not on PATH: add it to run {command} by name.")
    return path


def remove_launcher(command: str, name: str) -> bool:
    """Delete the launcher COMMAND if it is sm's launcher for NAME; any other file is left alone."""
    path = launcher_path(command)
    if launcher_of(path) != name:
        return False
    path.unlink(missing_ok=True)
    return True


def install_script(name: str, command: str | None = None, force: bool = False) -> Path:
    """`sm install NAME`: a launcher in SM_BIN_DIR, recorded in the mapping so `sm install --all` makes it elsewhere."""
    entry = lookup(name)
    command = command or name
    path = write_launcher(name, command, force=force)
    if (old := entry.get("installed_as")) and old != command:
        remove_launcher(old, name)
    if old != command:
        entry = make_entry(entry, installed_as=command)
        with status_line("Syncing mapping…"):
            put_entry(entry)
    return path


def install_all(*, yes: bool = False, force: bool = False) -> list[Path]:
    """`sm install --all`: after a sync, every command the mapping records that this machine lacks (or has stale)."""
    with status_line("Syncing mapping…"):
        try_sync("Could not sync the mapping (%s): installing the commands it had here.")
    scripts = read_mapping()["scripts"]
    wanted = [(e["installed_as"], n) for n, e in sorted(scripts.items()) if e.get("installed_as")]
    todo = [(command, name) for command, name in wanted if launcher_state(command, name) != "ok"]
    if not todo:
        return []
    confirm(
        f"Create {len(todo)} command{'s' if len(todo) > 1 else ''} in {bin_dir()}?",
        "\n".join(f"{command}  runs {name}" for command, name in todo),
        yes=yes,
        declined="No commands were created.",
    )
    made = []
    for command, name in todo:
        try:
            made.append(write_launcher(name, command, force=force))
        except UsageProblem as e:  # one command in the way stops none of the others
            log.warning("%s", e)
    return made


def uninstall_script(name: str) -> tuple[Entry, str]:
    """`sm uninstall NAME`: the launcher goes, and so does the record (on every machine's next `install --all`)."""
    entry = lookup(name)
    if not (command := entry.get("installed_as")):
        raise UsageProblem(f"{name} is not installed as a command: see `sm list`.")
    remove_launcher(command, name)
    entry = make_entry({k: v for k, v in entry.items() if k != "installed_as"})  # type: ignore[arg-type]
    with status_line("Syncing mapping…"):
        put_entry(entry)
    return entry, command


def launcher_state(command: str, name: str) -> str:
    """ok, missing, or stale (another script's, or made by an sm or Python that has moved since)."""
    try:
        with open(launcher_path(command), encoding="utf-8") as f:
            return "ok" if f.read() == launcher_text(name) else "stale"
    except (OSError, UnicodeDecodeError):
        return "missing"


def launcher_report() -> tuple[int, list[str]]:
    """For `sm doctor`: how many commands the mapping records, and the problems: recorded commands missing (or
    stale) here, and sm launchers of scripts that are gone or no longer installed under that name."""
    scripts = read_mapping()["scripts"]
    problems = [
        f"{e['installed_as']} (for {n}) is {state}"
        for n, e in sorted(scripts.items())
        if e.get("installed_as") and (state := launcher_state(e["installed_as"], n)) != "ok"
    ]
    with contextlib.suppress(OSError):
        for file in sorted(os.listdir(bin_dir())):
            if not re.fullmatch(COMMAND_PATTERN, file) or (name := launcher_of(launcher_path(file))) is None:
                continue
            if name not in scripts:
                problems.append(f"{file} runs {name}, which is no longer in your mapping")
            elif scripts[name].get("installed_as") != file:
                problems.append(f"{file} runs {name}, which is not installed under that name")
    return sum(1 for e in scripts.values() if e.get("installed_as")), problems


# -- gc ---------------------------------------------------------------------------------------------
# What no live entry uses: never a uv environment that sm did not record, never anything outside $SM_HOME else.

DRAFT_DAYS = 30


def gc_plan() -> list[dict[str, Any]]:
    """What `sm gc` would remove: [{kind, path, bytes}], bytes being what removing it frees on disk."""
    scripts = read_mapping()["scripts"]
    gists = {e["gist_id"] for e in scripts.values()}
    live_paths = set()
    for entry in scripts.values():
        with contextlib.suppress(IntegrityError):
            live_paths.add(cached_file(entry))
    plan: list[dict[str, Any]] = []

    def add(kind: str, path: str) -> None:
        if all(p["path"] != path for p in plan):  # two stale records of one script name one environment
            plan.append({"kind": kind, "path": path, "bytes": freed_bytes(path)})

    for name in home_children("cache"):
        if name not in gists:
            add("cached script", home_path("cache", name))
    for name in home_children("venvs"):
        key = name.rsplit("-", 1)[0] if not name.endswith(".lock") else None
        if key is not None and key != "draft" and key not in gists:
            add("fallback venv", home_path("venvs", name))
    old = time.time() - DRAFT_DAYS * 86400
    for name in home_children("drafts"):
        path = home_path("drafts", name)
        if os.stat(path).st_mtime < old:
            add("old draft", path)
    catalogs = subscriptions()
    for name in home_children("run"):
        if name not in scripts and name.partition("%")[0] not in catalogs:
            add("run record", home_path("run", name))
    for name in home_children("launch"):
        if name.partition("%")[0] not in scripts:
            add("launch record", home_path("launch", name))
    records = {}
    for name in home_children("direct"):
        with contextlib.suppress(OSError, UnicodeDecodeError):
            with open(home_path("direct", name), encoding="utf-8") as f:
                records[home_path("direct", name)] = f.read().split("\n")
    # uv keys environments by script path: one recorded for a live script's path serves its current pin too
    live_envs = {recorded_env(lines) for lines in records.values() if lines[1:2] and lines[1] in live_paths}
    for path, lines in records.items():
        if lines[1:2] and lines[1] in live_paths:
            continue
        if (venv := recorded_env(lines)) is not None and venv not in live_envs:
            add("uv environment", venv)
        add("direct record", path)
    return plan


def home_children(folder: str) -> list[str]:
    """The names in $SM_HOME/FOLDER that are not symlinks leading elsewhere (those are left alone)."""
    try:
        names = sorted(os.listdir(home_path(folder)))
    except OSError:
        return []
    return [n for n in names if not os.path.islink(os.path.join(home_path(folder), n))]


def recorded_env(lines: list[str]) -> str | None:
    """The uv environment a direct record names, if it is still one: a folder of uv's environments-v2 with a
    pyvenv.cfg, reached through no symlink."""
    venv = lines[DIRECT_ENV_LINE] if len(lines) > DIRECT_ENV_LINE else ""
    parent = os.path.dirname(venv)
    if (
        os.path.isabs(venv)
        and os.path.basename(parent) == "environments-v2"
        and not os.path.islink(venv)
        and os.path.isfile(os.path.join(venv, "pyvenv.cfg"))
        and os.path.realpath(venv) == os.path.normpath(venv)
    ):
        return venv
    return None


def freed_bytes(path: str) -> int:
    """Bytes freed by removing `path`: files linked nowhere else (uv hardlinks environments into its cache)."""
    total = 0
    for folder, dirs, files in os.walk(path) if os.path.isdir(path) else [("", [], [path])]:
        for name in [*dirs, *files]:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(folder, name))
                total += st.st_size if st.st_nlink == 1 or name in dirs else 0
    return total


def collect_garbage(*, dry_run: bool, yes: bool) -> list[dict[str, Any]]:
    """`sm gc`: remove what gc_plan found, after asking (unless --yes); a uv environment only when no uv process
    holds its lock. Returns what was (or, with dry_run, would be) removed."""
    import fcntl
    import shutil

    plan = gc_plan()
    if dry_run or not plan:
        return plan
    confirm(
        f"Remove {len(plan)} items, freeing {human_size(sum(p['bytes'] for p in plan))}?",
        "" if yes else "\n".join(f"{p['kind']}: {p['path']}" for p in plan),  # with --yes, stdout lists them
        yes=yes,
        declined="Nothing was removed.",
    )
    done = []
    for item in plan:
        path = item["path"]
        try:
            if item["kind"] == "uv environment":
                with open(os.path.join(path, ".lock"), "a+") as lock:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # uv is syncing it: leave it for next time
                    shutil.rmtree(path)
            elif os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
                if item["kind"] == "fallback venv":
                    with contextlib.suppress(OSError):
                        os.unlink(path + ".lock")
        except OSError as e:
            log.warning("Could not remove %s (%s); the next `sm gc` tries again.", path, _short(e))
            continue
        done.append(item)
    return done


# -- doctor -----------------------------------------------------------------------------------------

TOKEN_FIX = (
    "Create a token with the gist scope (https://github.com/settings/tokens/new?scopes=gist) and set GITHUB_PAT, "
    "or run `gh auth login`."
)


def check_setup() -> tuple[bool, list[dict[str, Any]]]:
    """`sm doctor`: every check, and whether none of them failed."""
    with status_line("Checking…"):
        checks = doctor_checks()
    return all(c["status"] != "fail" for c in checks), checks


def doctor_checks() -> list[dict[str, Any]]:
    """One entry per check: {check, status: ok|warn|fail|skip, detail, fix}. Never raises SmError."""
    checks: list[dict[str, Any]] = []

    def add(check: str, status: str, detail: str, fix: str | None = None) -> None:
        checks.append({"check": check, "status": status, "detail": redact(detail), "fix": fix})

    if uv := which("uv"):
        add("uv", "ok", f"{uv_version(uv)} at {uv}")
    else:
        add(
            "uv",
            "warn",
            "not on PATH: sm run falls back to a slower venv + pip runner",
            f"Install uv: {UV_INSTALL_HINT}.",
        )

    try:  # https only: the token must not travel in clear text
        url = api_url()
    except ConfigError as e:
        url = None
        add("API", "fail", str(e), "Use https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise.")
    else:
        if url.startswith("https://"):
            add("API", "ok", f"{url} (https)")
        elif (allowed := http_allowance(url)) == "a loopback host":
            add("API", "ok", f"{url}: plain http, allowed for {allowed}")
        else:
            add(
                "API",
                "warn",
                f"{url}: plain http, allowed by {allowed}: the token travels in clear text",
                "Use https://.",
            )

    gh, token = None, None
    try:
        token, source = find_token()
    except ConfigError:
        add("token", "fail", f"none in {', '.join(TOKEN_VARS)}, and no `gh auth token`", TOKEN_FIX)
    else:
        add("token", "ok", f"from {source}")
    if token is None:
        add("token scope", "skip", "needs a token")
    elif url is None:
        add("token scope", "skip", "needs an https SM_GITHUB_API_URL")
    else:
        gh = GitHub(token, retry_budget=5)
        try:
            scopes = gh.check_token()
        except OfflineError as e:
            add("token scope", "fail", str(e), "Check your network, or SM_GITHUB_API_URL.")
            gh = None
        except GitHubError as e:
            add("token scope", "fail", str(e), TOKEN_FIX)
            gh = None
        else:
            kind = (
                f"classic token, scopes: {', '.join(scopes)}"
                if scopes is not None
                else "fine-grained token (GitHub lists no scopes for these: it needs the Gists permission, read and write)"
            )
            add("token scope", "ok", f"valid for {gh.login}; {kind}")

    data = None
    try:
        data = read_mapping()
        add("mapping", "ok", f"{len(data['scripts'])} scripts in {mapping_path()}")
    except MappingError as e:
        add("mapping", "fail", str(e), f"Repair {mapping_path()} or move it away.")
    # Where sync keeps the mapping; until the first sync there is nothing to reach.
    state = read_sync_state()
    try:
        gist_id = chosen_mapping_gist() or state.get("gist_id")
    except ConfigError as e:
        add("mapping gist", "fail", str(e))
        gist_id = None
    pending = "; local changes are waiting to sync" if state.get("pending") else ""
    if gist_id is None and os.environ.get("SM_MAPPING_GIST"):
        pass
    elif not gist_id:
        add("mapping gist", "skip", "not set up yet: the first change or `sm sync` finds or creates it")
    elif gh is None:
        add("mapping gist", "skip", f"{gist_id}: needs a working token{pending}")
    else:
        try:
            gist, _ = gh.get_gist(gist_id)
            if REMOTE_FILE in ((gist or {}).get("files") or {}):
                add(
                    "mapping gist",
                    "warn" if pending else "ok",
                    f"{gist_id} is reachable{pending}",
                    "Run `sm sync`." if pending else None,
                )
            else:
                add(
                    "mapping gist",
                    "fail",
                    f"{gist_id} holds no {REMOTE_FILE}",
                    "Unset SM_MAPPING_GIST, or point it at the right gist.",
                )
        except SmError as e:
            if isinstance(e, GitHubError) and e.status == 404 and not os.environ.get("SM_MAPPING_GIST"):
                add(
                    "mapping gist",
                    "warn",
                    f"{gist_id} is gone from GitHub",
                    "`sm sync` recreates it from this machine.",
                )
            else:
                add("mapping gist", "fail", str(e), "Check that the gist exists and belongs to the token's user.")
    if replaced := state.get("replaced"):
        add(
            "mapping history",
            "ok",
            f"the previous mapping gist {replaced.get('gist_id')} was deleted on GitHub; sync moved to {gist_id} "
            f"on {str(replaced.get('at'))[:10]}, recreated from {replaced.get('from') or 'this machine'}. "
            "Other machines find the new gist on their next sync",
        )

    try:
        model = resolve_model(None)
    except ConfigError:
        keys = ", ".join(dict.fromkeys(var for var, _ in DEFAULT_MODELS))
        add(
            "model",
            "fail",
            f"neither SM_MODEL nor a provider key ({keys}) is set",
            "Set SM_MODEL, e.g. openai:gpt-5.1, or a provider key such as OPENAI_API_KEY.",
        )
    else:
        source = "SM_MODEL" if os.environ.get("SM_MODEL", "").strip() else (default_model() or ("", ""))[1]
        if problem := model_setup_problem(model):
            add("model", "fail", f"{model} (from {source}), but {problem[0]}", problem[1])
        else:
            add("model", "ok", f"{model} (from {source})")

    import tempfile

    home = sm_home()
    try:
        private_dir(home)
        with tempfile.NamedTemporaryFile(dir=home, prefix=".doctor-"):
            pass
        add("SM_HOME", "ok", f"{home} is writable")
    except OSError as e:
        add(
            "SM_HOME",
            "fail",
            f"{home} is not writable ({e.strerror})",
            "Fix its permissions, or set SM_HOME to a writable folder.",
        )

    size, count = folder_size(cache_dir())
    venv_size, _ = folder_size(home / "venvs")
    extra = f"; fallback venvs {human_size(venv_size)}" if venv_size else ""
    with contextlib.suppress(SmError, OSError):
        if plan := gc_plan():
            extra += f"; `sm gc` would free {human_size(sum(p['bytes'] for p in plan))} in {len(plan)} items"
    add("cache", "ok", f"{human_size(size)} in {count} files under {cache_dir()}{extra}")

    with contextlib.suppress(SmError):  # said only to those who use `sm install`
        installed, problems = launcher_report()
        if problems:
            add("commands", "warn", "; ".join(problems), "Run `sm install --all`, or remove the stray files.")
        elif installed:
            add("commands", "ok", f"{installed} installed in {bin_dir()}")
    return checks


def uv_version(uv: str) -> str:
    import subprocess

    try:
        return subprocess.run([uv, "--version"], capture_output=True, text=True, timeout=10).stdout.strip() or "uv"
    except (OSError, subprocess.SubprocessError):
        return "uv (version unknown)"


def folder_size(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()] if folder.is_dir() else []
    return sum(p.stat().st_size for p in files), len(files)


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


# -- self publish -----------------------------------------------------------------------------------


DIST_NAME = "sm-script-manager"


def self_files() -> dict[str, str]:
    """sm.py and a pyproject.toml: all that `uv tool install git+URL` needs."""
    from pathlib import Path

    here = Path(__file__).resolve()
    code = here.read_text(encoding="utf-8")
    beside = here.with_name("pyproject.toml")
    import tomllib

    with contextlib.suppress(OSError, tomllib.TOMLDecodeError):
        if tomllib.loads(text := beside.read_text(encoding="utf-8")).get("project", {}).get("name") == DIST_NAME:
            return {"sm.py": code, "pyproject.toml": text}
    return {"sm.py": code, "pyproject.toml": pyproject_for(code)}  # installed copy: rebuild it from the header


def pyproject_for(code: str) -> str:
    meta = read_script(code).metadata()
    project = {
        "name": DIST_NAME,
        "dynamic": ["version", "description"],
        "requires-python": meta["requires-python"],
        "dependencies": meta["dependencies"],
        "scripts": {"sm": "sm:main"},
    }
    build = {"requires": ["flit_core>=3.9,<4"], "build-backend": "flit_core.buildapi"}
    import tomlkit

    return tomlkit.dumps({"project": project, "build-system": build, "tool": {"flit": {"module": {"name": "sm"}}}})


def self_record_path() -> Path:
    return sm_home() / "self.json"


def republish(
    gh: GitHub, record: Path, files: dict[str, str], description: str, *, public: bool, what: str
) -> dict[str, Any]:
    """Update the gist whose id `record` (a JSON file) holds with `files`, or create one when there is none yet
    or it is gone; the caller records the new id."""
    gist_id = None
    with contextlib.suppress(OSError, ValueError, AttributeError):
        gist_id = json.loads(record.read_text(encoding="utf-8")).get("gist_id")
    if type(gist_id) is str and re.fullmatch(GIST_ID_PATTERN, gist_id):
        try:
            return gh.update_gist(gist_id, dict(files), description)
        except GitHubError as e:
            if e.status != 404:
                raise
            log.warning("%s before (%s) is gone; publishing to a new one.", what, gist_id)
    return gh.create_gist(files, description, public=public)


def self_publish() -> dict[str, Any]:
    """`sm self publish`: sm.py and a pyproject.toml to a secret gist (the same one each time); the install line."""
    files = self_files()
    description = f"sm {__version__}: LLM-written Python scripts in GitHub Gists (uv tool install git+THIS_GIST.git)"
    check_upload(files, description, public=False)
    gh = github()
    with status_line("Publishing sm…"):
        gh.check_token()
        gist = republish(gh, self_record_path(), files, description, public=False, what="The gist sm was published to")
        git_url = gist.get("git_pull_url") or f"https://gist.github.com/{gist['id']}.git"
        result = {
            "gist_id": gist["id"],
            "html_url": gist.get("html_url", ""),
            "revision": latest_revision(gh, gist),
            "version": __version__,
            "install": f"uv tool install git+{git_url}",
        }
        atomic_write(self_record_path(), json.dumps({**result, "published_at": now_iso()}, indent=2) + "\n")
        return result


# -- catalogs ----------------------------------------------------------------------------------------
# A catalog is a gist holding sm-catalog.json: {"version": 1, "scripts": {NAME: {gist_id, filename, revision,
# sha256, params, description}}}, the pins its publisher vouches for. Subscriptions live in the mapping, as
# {"catalogs": {ALIAS: GIST_ID}}, so every machine has them after a sync; your own catalog's gist id is
# recorded in $SM_HOME/catalog.json. A catalog's scripts are named ALIAS/NAME and never written to.

CATALOG_FILE = "sm-catalog.json"
CATALOG_FIELDS = ("gist_id", "filename", "revision", "sha256", "lock_sha256", "params", "description")


def catalog_record_path() -> Path:
    return sm_home() / "catalog.json"


def subscriptions(data: dict[str, Any] | None = None) -> dict[str, str]:
    """The mapping's catalogs, ALIAS -> gist id; malformed ones (hand-edited, another tool) are left out."""
    catalogs = (read_mapping() if data is None else data).get("catalogs")
    if catalogs is None:
        return {}
    if type(catalogs) is not dict:
        _warn_once("mapping", "catalogs", f"The mapping's `catalogs` is not an object ({_clip(catalogs)}); ignored.")
        return {}
    good = {
        alias: gist_id
        for alias, gist_id in catalogs.items()
        if type(alias) is str
        and re.fullmatch(NAME_PATTERN, alias)
        and type(gist_id) is str
        and re.fullmatch(GIST_ID_PATTERN, gist_id)
    }
    for alias in catalogs.keys() - good.keys():
        _warn_once(
            "mapping",
            f"catalogs/{alias}",
            f"Ignoring the catalog {_clip(alias)} in your mapping: its alias or gist id is malformed. "
            "Remove it with `sm catalog rm ALIAS`, or fix it in your mapping gist and run `sm sync`.",
        )
    return good


def publish_catalog(names: Sequence[str] = (), *, public: bool = False) -> dict[str, Any]:
    """`sm catalog publish`: the chosen scripts (all when none) to one catalog gist, the same one each time."""
    entries = [lookup(name) for name in names] if names else list_scripts()
    if not entries:
        raise UsageProblem("No scripts to publish: create or add one first (`sm list` shows your scripts).")
    scripts = {e["script_name"]: {f: e.get(f) for f in CATALOG_FIELDS} for e in entries}
    files = {CATALOG_FILE: json_text({"version": 1, "scripts": scripts}) + "\n"}
    description = (
        f"sm catalog: {len(scripts)} script{'s' if len(scripts) != 1 else ''} (sm catalog add ALIAS THIS_GIST)"
    )
    check_upload(files, description, public=public)
    gh = github()
    with status_line("Publishing the catalog…"):
        gist = republish(gh, catalog_record_path(), files, description, public=public, what="Your catalog gist")
        if public and not gist.get("public"):
            log.warning(
                "Your catalog gist %s stays secret: GitHub cannot make a secret gist public. To publish a public "
                "catalog, delete %s and publish again.",
                gist["id"],
                catalog_record_path(),
            )
        result = {"gist_id": gist["id"], "html_url": gist.get("html_url", ""), "scripts": sorted(scripts)}
        atomic_write(catalog_record_path(), json.dumps({**result, "published_at": now_iso()}, indent=2) + "\n")
        return result


def add_catalog(alias: str, ref: str) -> str:
    """`sm catalog add`: subscribe to a catalog under ALIAS, once it reads as one; returns its gist id."""
    check_name(alias)
    gist_id = parse_gist_ref(ref).gist_id
    with status_line("Reading the catalog…"):
        read_catalog(github(), gist_id)  # a gist that is not a catalog is refused now, not at the first run
    with locked_mapping() as data:
        if alias in subscriptions(data) and data["catalogs"][alias] != gist_id:
            raise UsageProblem(
                f"The catalog alias {alias!r} is taken: `sm catalog rm {alias}` first, or choose another."
            )
        if type(data.get("catalogs")) is not dict:
            data["catalogs"] = {}
        data["catalogs"][alias] = gist_id
    after_change()
    return gist_id


def remove_catalog(alias: str) -> str:
    """`sm catalog rm`: unsubscribe; returns the catalog's gist id."""
    with locked_mapping() as data:
        catalogs = data.get("catalogs")
        if type(catalogs) is not dict or alias not in catalogs:  # a malformed one can go too: it is named this way
            raise UsageProblem(f"No catalog named {alias!r}: `sm catalog list` shows your catalogs.")
        gist_id = catalogs.pop(alias)
    after_change()
    return str(gist_id)


def read_catalog(gh: GitHub, gist_id: str) -> dict[str, Entry]:
    """A catalog's scripts, NAME -> entry, each checked like a mapping entry: one malformed entry refuses all."""
    gist, _ = gh.get_gist(gist_id)
    assert gist is not None  # no etag sent: GitHub answers in full
    try:
        data = json.loads(gh.file_content(gist_file(gist, CATALOG_FILE)))
    except GitHubError as e:
        raise GitHubError(f"Gist {gist_id} is not an sm catalog: it has no {CATALOG_FILE}.") from e
    except ValueError as e:
        raise IntegrityError(
            f"The catalog {gist_id} is not valid JSON ({_short(e)}); ask its owner to publish it again."
        ) from e
    scripts = data.get("scripts") if type(data) is dict else None
    if type(scripts) is not dict:
        raise IntegrityError(f"The catalog {gist_id} lists no scripts; ask its owner to publish it again.")
    entries: dict[str, Entry] = {}
    for name, item in scripts.items():
        entry = {**item, "script_name": name} if type(item) is dict else item
        if problem := entry_problem(name, entry):
            raise IntegrityError(
                f"Refusing the catalog {gist_id}: its entry {_clip(name)} is malformed ({problem}). Ask its owner "
                "to publish it again."
            )
        entries[name] = entry
    atomic_write(catalog_copy_path(gist_id), json_text(entries) + "\n")  # for completion and help: no network
    return entries


def catalog_copy_path(gist_id: str) -> Path:
    """The catalog as last read, checked: $SM_HOME/cache/GIST_ID/sm-catalog.json."""
    from pathlib import Path

    return Path(home_path("cache", gist_id, CATALOG_FILE))


def known_catalog_scripts() -> dict[str, Entry]:
    """ALIAS/NAME -> entry for every script of the subscribed catalogs as last read here, at the pin accepted
    here if any: what completion and `sm run ALIAS/NAME -h` know without asking GitHub."""
    known: dict[str, Entry] = {}
    for alias, catalog_id in subscriptions().items():
        try:
            catalog = json.loads(catalog_copy_path(catalog_id).read_text(encoding="utf-8"))
        except (OSError, ValueError, SmError):
            catalog = {}
        for name, entry in catalog.items() if isinstance(catalog, dict) else ():
            entry = accepted_catalog_pin(alias, name, catalog_id) or entry
            if not entry_problem(name, entry):
                known[f"{alias}/{name}"] = entry
    return known


# -- running a catalog's script ----------------------------------------------------------------------
# The first run of ALIAS/NAME reviews the pin the catalog lists; the accepted pin is recorded on this machine
# only, in the trust record (trusted.json: "catalog_pins": {ALIAS/NAME: entry}), and later runs stay on it,
# whatever the catalog lists since, until `--latest` reviews the catalog's newer pin.


def accepted_catalog_pin(alias: str, name: str, catalog_id: str) -> Entry | None:
    """The pin of ALIAS/NAME accepted on this machine, while ALIAS is still that catalog; else None."""
    pin = trust_record("catalog_pins").get(f"{alias}/{name}")
    if type(pin) is not dict or pin.get("catalog") != catalog_id or entry_problem(name, pin) or not is_accepted(pin):
        return None
    return pin


def pin_catalog_script(alias: str, entry: Entry, catalog_id: str, code: str, lock: str | None) -> Path:
    """Record that this machine's user accepted the entry's pin for ALIAS/NAME; cache its code."""
    record_accepted(entry)
    pins = trust_record("catalog_pins")
    pins[f"{alias}/{entry['script_name']}"] = {**entry, "catalog": catalog_id}
    write_trust_record("catalog_pins", pins)
    return store_cache(entry, code, lock)


def catalog_script(gh: GitHub, alias: str, name: str) -> Entry:
    """The entry the catalog ALIAS lists for NAME now."""
    with status_line(f"Reading the catalog {alias}…"):
        catalog = read_catalog(gh, subscriptions()[alias])
    if name not in catalog:
        listed = ", ".join(f"{alias}/{n}" for n in sorted(catalog)) or "nothing"
        raise UsageProblem(f"The catalog {alias} has no script {name!r}; it lists {listed}.")
    return catalog[name]


def catalog_name(name: str) -> tuple[str, str] | None:
    """(ALIAS, NAME) when `name` is ALIAS/NAME of a subscribed catalog, else None."""
    alias, slash, rest = name.partition("/")
    return (alias, rest) if slash and alias in subscriptions() else None


def catalog_entry(gh: GitHub, alias: str, name: str) -> Entry:
    """ALIAS/NAME's pin accepted here, else the one its catalog lists now."""
    return accepted_catalog_pin(alias, name, subscriptions()[alias]) or catalog_script(gh, alias, name)


def catalog_code(alias: str, name: str) -> tuple[Entry, str]:
    """`sm show ALIAS/NAME`: its entry (see catalog_entry) with its code, sha256-checked."""
    gh = github_optional()
    entry = catalog_entry(gh, alias, name)
    return entry, fetch_pinned(gh, entry, "its catalog or you accepted", f"{alias}/{name}")[1]


def catalog_rows() -> list[dict[str, Any]]:
    """`sm list --all`: every subscribed catalog's scripts as ALIAS/NAME, at the pin accepted here if any.
    A catalog that cannot be read is named in a warning and left out."""
    gh, rows = github_optional(), []
    for alias, catalog_id in sorted(subscriptions().items()):
        try:
            catalog = read_catalog(gh, catalog_id)
        except SmError as e:
            log.warning("Could not read the catalog %s: %s.", alias, _short(e))
            continue
        for name, entry in sorted(catalog.items()):
            pin = accepted_catalog_pin(alias, name, catalog_id)
            rows.append({**(pin or entry), "script_name": f"{alias}/{name}", "catalog": alias})
    return rows


def run_catalog(alias: str, name: str, req: RunRequest, *, yes: bool) -> tuple[Path, list[str]]:
    """`sm run ALIAS/NAME`: the pin accepted here; the first time (or with --latest) the catalog's, reviewed."""
    from pathlib import Path

    label, stamp = f"{alias}/{name}", None
    with contextlib.suppress(OSError):
        stamp = run_stamp(label)  # before the mapping and the pins are read: the run record is of these
    catalog_id = subscriptions()[alias]
    if req.options.get("rev") or req.options.get("save") or req.options.get("file"):
        raise UsageProblem(f"--rev, --save and --file are not for a catalog's script ({label}).")
    pinned = accepted_catalog_pin(alias, name, catalog_id)
    if pinned and not req.options.get("latest"):
        args = build_script_args(pinned.get("params"), req.pairs, req.passthrough)
        if path := verified_cache(pinned):
            with contextlib.suppress(OSError):  # the next run of it needs no sm beyond the fast path
                if stamp is not None:
                    write_run_record(label, pinned, path, stamp)
            return Path(path), args
        _, code, lock = fetch_pinned(github_optional(), pinned, "accepted when you first ran it", label)
        return store_cache(pinned, code, lock), args
    gh = github_optional()
    entry = catalog_script(gh, alias, name)
    args = build_script_args(entry.get("params"), req.pairs, req.passthrough)
    gist, code, lock = fetch_pinned(gh, entry, f"the catalog {alias} lists", label)
    if pinned and pin_key(pinned) == pin_key(entry):
        log.debug("the catalog lists the pinned revision: running it")
    elif pinned:
        _, old, old_lock = fetch_pinned(gh, pinned, "accepted when you first ran it", label)
        text = change_text(
            old, code, f"pinned {pinned['revision'][:8]}", f"catalog {entry['revision'][:8]}", (old_lock, lock)
        )
        confirm(
            f"{label}: the catalog lists revision {entry['revision'][:8]}, not the pinned {pinned['revision'][:8]}. "
            "Trust and run this revision?",
            text,
            yes=yes,
            declined=f"Nothing ran: `sm run {label}` still runs the pinned revision {pinned['revision'][:8]}.",
        )
        log.warning("%s is now pinned at revision %s.", label, entry["revision"][:8])
    elif not known_pin(gh, entry, gist):
        summary = trust_summary(
            gist, entry["filename"], code, entry["revision"], entry.get("params"), me=my_login(gh), lock=lock
        )
        owner = gist_owner(gist) or "an unknown owner"
        confirm(
            f"{label} is {owner}'s gist at revision {entry['revision'][:8]}, from the catalog {alias}. Trust and run it?",
            "\n".join(summary) + "\n\n" + code,
            yes=yes,
            declined=f"Not running {label}: it was not trusted. Review it above, then rerun with --yes.",
        )
    return pin_catalog_script(alias, entry, catalog_id, code, lock), args


# ══════════════════════════════════════════════════════════════════════════════════════════════════
# CLI wiring
# ══════════════════════════════════════════════════════════════════════════════════════════════════
# Thin click commands, each forwarding to an operation; built on first use, since click is never imported
# on the fast paths. Errors become one line on stderr here, and only here.


def build_cli() -> click.Group:
    """sm's commands, each a few lines that forward to an operation and print its result."""
    import click

    class SmGroup(click.Group):
        """Turns SmError into one line on stderr; unexpected errors too, unless -v or SM_RAISE_ERRORS."""

        def invoke(self, ctx: click.Context) -> Any:
            try:
                return super().invoke(ctx)
            except UsageProblem as e:
                raise click.UsageError(shown(e)) from e
            except Cancelled as e:  # declining or leaving a review is not an error: no "Error:", its own status
                click.echo(shown(e), err=True)
                ctx.exit(e.exit_code)
            except SmError as e:
                errors_log.error("%s", e)
                raise click.ClickException(shown(e)) from e
            except KeyboardInterrupt:
                click.echo("Interrupted.", err=True)
                ctx.exit(130)
            except BrokenPipeError:
                ctx.exit(closed_stdout())
            except (click.ClickException, click.exceptions.Exit, click.Abort):
                raise
            except Exception as e:
                errors_log.error("unexpected error: %r", e)
                if os.environ.get("SM_RAISE_ERRORS") or log.isEnabledFor(10):  # logging.DEBUG
                    raise
                raise click.ClickException(redact(f"unexpected error: {_short(e)} (run with -v for details)")) from e

    class RunCommand(click.Command):
        """`sm run` leaves its arguments to parse_run_tail; its help lists the options that parser knows."""

        def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
            rows = [(", ".join(s) + (f" {v}" if v else ""), text) for s, _, v, text in RUN_OPTIONS]
            with formatter.section("Options"):
                formatter.write_dl(rows)

    def shown(e: Exception) -> str:
        """An error's message: secrets masked, made visible, wrapped between words on a terminal."""
        text = visible(redact(str(e)))
        return fit(text, terminal_width(sys.stderr) - len("Error: ")) if isatty(sys.stderr) else text

    settings = {"help_option_names": ["-h", "--help"]}
    register_completions()

    @click.group(cls=SmGroup, context_settings=settings)
    @click.version_option(__version__, "-V", "--version", prog_name="sm")
    @click.option("-v", "--verbose", is_flag=True, help="Debug logs on stderr (requests, cache hits, the uv command).")
    def cli(verbose: bool) -> None:
        """sm: LLM-written Python scripts, stored in GitHub Gists, run anywhere with uv.

        \b
        sm create hello "Print a greeting for {{name}}"
        sm run hello name=World
        sm list
        """
        setup_logging(verbose)

    @cli.command(name="create", context_settings=settings)
    @click.argument("name")
    @click.argument("prompt")
    @upload_options("the model's")
    @click.option("--no-exclude-newer", is_flag=True, help="Do not pin dependency resolution to the creation time.")
    @model_options("Watch the script being written, then review it (changes, :edit, :run, :diff) before uploading.")
    @no_lock_option()
    @json_option("the mapping entry")
    def create_command(name: str, prompt: str, no_exclude_newer: bool, as_json: bool, **options: Any) -> None:
        """Ask the model for a script and store it in a new secret gist.

        Each {{word}} in PROMPT becomes a runtime parameter --word. PROMPT may be - to read stdin.
        With --preview, answer "Do you have any changes?": Enter accepts, text asks for a change,
        :edit, :run key=value, :diff, :quit. Piped stdin supplies the answers line by line.

        \b
        sm create gists "List my gists whose description starts with {{prefix}}"
        sm create gists "List my gists whose description starts with {{prefix}}" --preview
        printf 'also print the count\\n\\n' | sm create gists "List gists starting with {{prefix}}" -p
        echo "Print the weather for {{city}}" | sm create weather -
        """
        entry = create_script(name, prompt, exclude_newer=not no_exclude_newer, **options)
        echo_entry(entry, as_json, f"Created {name}: {entry.get('html_url') or entry['gist_id']}")

    @cli.command(name="edit", context_settings=settings)
    @click.argument("name")
    @click.argument("prompt")
    @model_options("Watch the change being written, then review it as with `create --preview` before uploading.")
    @no_lock_option(" (a lock in the gist is deleted in the same revision)")
    @json_option("the mapping entry")
    def edit_command(name: str, prompt: str, as_json: bool, **options: Any) -> None:
        """Change a script in plain words and store the result as a new revision of its gist.

        The model gets the current code and PROMPT (- reads stdin); the result is checked like
        `create`'s, and the change request is recorded in the script's [tool.sm] table.

        \b
        sm edit gists "Also print each gist's URL"
        sm edit gists "Sort by creation date, newest first" --preview
        """
        entry = edit_script(name, prompt, **options)
        url = entry.get("html_url") or entry["gist_id"]
        echo_entry(entry, as_json, f"Updated {name} to revision {entry['revision'][:8]}: {url}")

    @cli.command(
        name="run",
        cls=RunCommand,
        context_settings={**settings, "ignore_unknown_options": True, "allow_interspersed_args": False},
    )
    @click.argument("name", shell_complete=complete_script_names)
    @click.argument("args", nargs=-1, type=click.UNPROCESSED, shell_complete=complete_run_args)
    def run_command(name: str, args: tuple[str, ...]) -> None:
        """Run a script with uv, pinned to the revision you accepted.

        key=value becomes --key=value (one word, so values may start with -); everything after -- goes to the
        script as it is. sm's options may come before or after NAME. NAME may also be a gist URL or id that is
        not yours: it is shown and must be trusted.

        \b
        sm run gists prefix=demo
        sm run gists prefix=demo -- --verbose
        sm run gists --latest
        sm run https://gist.github.com/someone/0123456789abcdef0123 --yes --save theirs
        """
        req = parse_run_tail([name, *args])
        if req.options.get("help"):  # `sm run NAME -h`: sm's help, then what this script takes
            click.echo(click.get_current_context().get_help())
            if req.name is not None:
                with contextlib.suppress(SmError):
                    click.echo("\n" + run_help(req.name))
            return
        run_script(req, choose_file)

    @cli.command(name="history", context_settings=settings)
    @click.argument("name")
    @json_option("the revisions")
    def history_command(name: str, as_json: bool) -> None:
        """List a script's revisions, newest first; * marks the pinned one.

        \b
        sm history gists
        sm show gists --rev 3f2a9c1e
        """
        rows = script_history(name)
        echo_lines([json_text(rows)] if as_json else map(history_line, rows))

    @cli.command(name="rollback", context_settings=settings)
    @click.argument("name")
    @click.argument("rev", metavar="SHA")
    @yes_option("Roll back without asking (the diff is still shown).")
    @no_lock_option()
    @json_option("the mapping entry")
    def rollback_command(name: str, rev: str, as_json: bool, **options: Any) -> None:
        """Make an old revision's code the gist's newest revision, and pin it (after showing the diff).

        \b
        sm history gists
        sm rollback gists 3f2a9c1e
        """
        entry = rollback_script(name, rev, **options)
        echo_entry(entry, as_json, f"{name} is now at revision {entry['revision'][:12]} (the code of {rev[:12]}).")

    @cli.command(name="lock", context_settings=settings)
    @click.argument("name", shell_complete=complete_script_names)
    @json_option("the mapping entry")
    def lock_command(name: str, as_json: bool) -> None:
        """Lock a script's dependencies (uv lock), or refresh its lock, as a new revision of its gist.

        `sm run` then installs exactly the locked versions, on every machine. Nothing changes when the
        lock is already the one the pinned revision holds.

        \b
        sm lock gists
        sm show gists --json | jq -r .lock_sha256
        """
        entry, changed = lock_script(name)
        if changed:
            echo_entry(entry, as_json, f"Locked {name}: revision {entry['revision'][:8]} holds its lock.")
        else:
            echo_entry(
                entry, as_json, f"{name} is already locked at revision {entry['revision'][:8]}: nothing changed."
            )

    @cli.command(name="list", context_settings=settings)
    @json_option("the mapping entries")
    @click.option("-w", "--wide", is_flag=True, help="On a terminal, show every column in full, wrapped.")
    @click.option("-a", "--all", "everything", is_flag=True, help="Also list your catalogs' scripts, as ALIAS/NAME.")
    def list_command(as_json: bool, wide: bool, everything: bool) -> None:
        """List your scripts: on a terminal one line each, the description cut to fit (--wide: all of it).

        \b
        sm list
        sm list --wide
        sm list --json | jq -r '.[].script_name'
        sm list --all
        """
        rows = list_scripts(everything)
        if as_json or not isatty(sys.stdout):
            echo_lines([rows_json(rows)] if as_json else map(list_line, rows))
        else:
            print_table(rows, wide=wide)

    @cli.command(name="sync", context_settings=settings)
    @click.option(
        "--from-remote", is_flag=True, help="Rebuild a corrupt local mapping from GitHub (keeps the bad file aside)."
    )
    @json_option("what changed")
    def sync_command(from_remote: bool, as_json: bool) -> None:
        """Pull, merge and push the mapping of names to gists, and say what changed on each side.

        \b
        sm sync
        sm sync --from-remote     # after "mapping.json is corrupt"
        """
        changes = sync_mapping(from_remote)
        echo_lines([json_text(changes)] if as_json else describe_changes(changes))

    @cli.command(name="show", context_settings=settings)
    @click.argument("name", shell_complete=complete_script_names)
    @click.option("--rev", metavar="SHA", help="Show another revision (see `sm history`).")
    @json_option("the mapping entry with the code")
    def show_command(name: str, rev: str | None, as_json: bool) -> None:
        """Print a script's code: highlighted on a terminal, byte-exact when piped.

        \b
        sm show gists
        sm show gists > gists.py
        sm show gists --rev 3f2a9c1e
        sm show gists --json | jq -r .revision
        """
        entry, code = read_code(name, rev)
        if as_json:
            click.echo(json_text({**entry, "code": code}))
        else:
            print_code(code)

    @cli.command(name="add", context_settings=settings)
    @click.argument("name")
    @click.argument("source", type=click.Path(dir_okay=False))
    @upload_options("[tool.sm], the docstring, or the gist's")
    @click.option("-f", "--file", "filename", help="The .py file to adopt when the gist holds several.")
    @yes_option("Adopt a gist without asking.")
    @no_lock_option(" (an adopted gist's lock is not used)")
    @json_option("the new mapping entry")
    def add_command(name: str, source: str, as_json: bool, **options: Any) -> None:
        """Register an existing script: a local .py file or a gist.

        A local file gets the checks `create` makes and goes to a new secret gist; its parameters come from
        its [tool.sm] table, or else from its argparse/click --options. A gist is adopted in place and pinned
        at its current revision, after sm shows who owns it and what it pulls in.

        \b
        sm add weather ./weather.py
        sm add gists https://gist.github.com/alice/0123456789abcdef0123
        """
        entry = add_script(name, source, **options)
        echo_entry(entry, as_json, f"Added {name}: {entry.get('html_url') or entry['gist_id']}")

    @cli.command(name="rm", context_settings=settings)
    @click.argument("name", shell_complete=complete_script_names)
    @click.option("--purge", is_flag=True, help="Also delete the gist on GitHub (asks first).")
    @yes_option("Do not ask before --purge deletes the gist.")
    def rm_command(name: str, purge: bool, yes: bool) -> None:
        """Forget a script; --purge deletes its gist too.

        Without --purge the gist stays on GitHub. --purge asks first, unless --yes.

        \b
        sm rm weather
        sm rm weather --purge --yes
        """
        entry = remove_script(name, purge=purge, yes=yes)
        if entry is None:
            click.echo(f"Removed the malformed entry {name}; nothing else was touched.", err=True)
            return
        kept = "deleted its gist" if purge else f"its gist {entry['gist_id']} stays on GitHub"
        click.echo(f"Removed {name}; {kept}.", err=True)

    @cli.command(name="gc", context_settings=settings)
    @click.option("-n", "--dry-run", is_flag=True, help="Only list what would be removed.")
    @yes_option("Remove without asking.")
    @json_option("what was removed")
    def gc_command(dry_run: bool, yes: bool, as_json: bool) -> None:
        """Remove what no script in the mapping uses, and say how much it freed.

        Cached copies and fallback venvs of removed scripts, drafts older than 30 days, and the uv environments
        sm recorded for scripts or revisions no longer pinned. uv's other environments are never touched.

        \b
        sm gc --dry-run
        sm gc --yes --json
        """
        echo_removed(collect_garbage(dry_run=dry_run, yes=yes), dry_run=dry_run, as_json=as_json)

    @cli.command(name="rename", context_settings=settings)
    @click.argument("old", shell_complete=complete_script_names)
    @click.argument("new")
    @json_option("the mapping entry")
    def rename_command(old: str, new: str, as_json: bool) -> None:
        """Give a script a new name (its gist stays as it is).

        \b
        sm rename weather forecast
        """
        entry = rename_script(old, new)
        echo_entry(entry, as_json, f"Renamed {old} to {new}.")

    @cli.command(name="doctor", context_settings=settings)
    @json_option("the checks")
    def doctor_command(as_json: bool) -> None:
        """Check the setup: uv, token, mapping, model, $SM_HOME.

        Each failure comes with a fix. Exits 1 when a check fails.

        \b
        sm doctor
        sm doctor --json | jq '.checks[] | select(.status == "fail")'
        """
        ok, checks = check_setup()
        if as_json:
            click.echo(json.dumps({"ok": ok, "checks": checks}, indent=2, ensure_ascii=False))
        else:
            click.echo(doctor_report(checks, color=use_color(sys.stdout)))
        if not ok:
            click.get_current_context().exit(1)

    @cli.command(name="install", context_settings=settings)
    @click.argument("name", required=False, shell_complete=complete_script_names)
    @click.option("--as", "command", metavar="CMD", help="The command's name (default: NAME).")
    @click.option("--all", "everything", is_flag=True, help="Create every command the mapping records (after a sync).")
    @click.option("--force", is_flag=True, help="Install even where CMD would shadow another command.")
    @yes_option("With --all, create the commands without asking.")
    def install_command(name: str | None, command: str | None, everything: bool, force: bool, yes: bool) -> None:
        """Make a script a command: `CMD ARGS...` runs its pinned revision with ARGS passed as they are.

        The launcher goes into SM_BIN_DIR (default ~/.local/bin) and is recorded in the mapping.

        \b
        sm install weather
        weather --city "New York"
        sm install weather --as wx
        sm install --all --yes        # on another machine, after sm sync
        """
        if everything == bool(name) or (everything and command):
            raise click.UsageError("Give NAME (and optionally --as CMD), or --all.")
        paths = install_all(yes=yes, force=force) if everything else [install_script(str(name), command, force)]
        for path in paths:
            click.echo(visible(f"Installed {path}: `{path.name} ARGS...` runs {launcher_of(path)}."), err=True)

    @cli.command(name="uninstall", context_settings=settings)
    @click.argument("name", shell_complete=complete_script_names)
    def uninstall_command(name: str) -> None:
        """Remove the command `sm install` made for a script (the script stays).

        \b
        sm uninstall weather
        """
        _, command = uninstall_script(name)
        click.echo(visible(f"Uninstalled {command}; {name} stays in your mapping."), err=True)

    @cli.group(name="mapping", context_settings=settings)
    def mapping_group() -> None:
        """The mapping's own history: see what each sync changed, and undo it.

        \b
        sm mapping history
        sm mapping restore 3f2a9c1e
        """

    @mapping_group.command(name="history", context_settings=settings)
    @json_option("the revisions")
    def mapping_history_command(as_json: bool) -> None:
        """List the mapping gist's revisions, newest first, with the names each added, updated and removed.

        \b
        sm mapping history
        sm mapping history --json | jq '.[0]'
        """
        rows = mapping_history()
        echo_lines([json_text(rows)] if as_json else map(mapping_history_line, rows))

    @mapping_group.command(name="restore", context_settings=settings)
    @click.argument("rev", metavar="SHA")
    @click.option("--exact", is_flag=True, help="Also remove the names added since SHA (default: keep them).")
    @yes_option("Restore without asking (the changes are still shown).")
    @json_option("what changed")
    def mapping_restore_command(rev: str, as_json: bool, **options: Any) -> None:
        """Make the mapping at SHA current again, as a new change that syncs (and can itself be undone).

        Names removed since SHA come back; names added since are kept unless --exact.

        \b
        sm mapping history
        sm mapping restore 3f2a9c1e
        sm mapping restore 3f2a9c1e --exact --yes
        """
        result = restore_mapping(rev, **options)
        done = result["back"] or result["changed_back"] or result["removed"]
        status = f"Restored the mapping of {result['version'][:8]}." if done else "Nothing to restore: no changes."
        echo_lines([json_text(result)] if as_json else [])
        click.echo(visible(status), err=True)

    @cli.group(name="catalog", context_settings=settings)
    def catalog_group() -> None:
        """Share scripts with a team: publish a catalog of yours, subscribe to a teammate's.

        \b
        sm catalog publish
        sm catalog add team https://gist.github.com/bob/ID
        sm run team/weather city=Paris
        """

    @catalog_group.command(name="publish", context_settings=settings)
    @click.argument("names", nargs=-1, metavar="[NAME]...", shell_complete=complete_script_names)
    @click.option("--public", is_flag=True, help="Make the catalog gist public (default: secret).")
    @json_option("the catalog's gist ID, URL and scripts")
    def catalog_publish_command(names: tuple[str, ...], public: bool, as_json: bool) -> None:
        """Publish the pins of NAMEs (default: all your scripts) to your catalog gist; print its URL.

        Publishing again updates the same gist. Teammates subscribe with `sm catalog add ALIAS URL`.

        \b
        sm catalog publish
        sm catalog publish weather greet --json
        """
        result = publish_catalog(names, public=public)
        click.echo(json_text(result) if as_json else visible(result["html_url"] or result["gist_id"]))
        click.echo(visible(f"Published a catalog of {len(result['scripts'])} script(s)."), err=True)

    @catalog_group.command(name="add", context_settings=settings)
    @click.argument("alias")
    @click.argument("gist", metavar="GIST_URL_OR_ID")
    def catalog_add_command(alias: str, gist: str) -> None:
        """Subscribe to a catalog: its scripts run as ALIAS/NAME, read-only, pinned once you trust them.

        \b
        sm catalog add team https://gist.github.com/bob/ID
        sm list --all
        """
        gist_id = add_catalog(alias, gist)
        click.echo(visible(f"Subscribed to the catalog {gist_id} as {alias}."), err=True)

    @catalog_group.command(name="list", context_settings=settings)
    @json_option("the catalogs")
    def catalog_list_command(as_json: bool) -> None:
        """List the catalogs you subscribe to: ALIAS and gist ID.

        \b
        sm catalog list
        """
        catalogs = subscriptions()
        echo_lines([json_text(catalogs)] if as_json else (f"{a}\t{g}" for a, g in sorted(catalogs.items())))

    @catalog_group.command(name="rm", context_settings=settings)
    @click.argument("alias")
    def catalog_rm_command(alias: str) -> None:
        """Unsubscribe from a catalog; its scripts no longer run as ALIAS/NAME.

        \b
        sm catalog rm team
        """
        gist_id = remove_catalog(alias)
        click.echo(visible(f"Unsubscribed from the catalog {gist_id} ({alias})."), err=True)

    @cli.command(name="completion", context_settings=settings)
    @click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
    def completion_command(shell: str) -> None:
        """Print the shell completion script for bash, zsh or fish.

        It completes commands, script names, and key= for each parameter.

        \b
        eval "$(sm completion bash)"                              # add to ~/.bashrc
        eval "$(sm completion zsh)"                               # add to ~/.zshrc, after compinit
        sm completion fish > ~/.config/fish/completions/sm.fish
        """
        click.echo(completion_source(cli, shell))

    @cli.group(name="self", context_settings=settings)
    def self_group() -> None:
        """Manage sm itself.

        \b
        sm self publish
        """

    @self_group.command(name="publish", context_settings=settings)
    @json_option("the gist ID, URL and install line")
    def publish_command(as_json: bool) -> None:
        """Publish sm to a secret gist; print its install line.

        Uploads sm.py and pyproject.toml; publishing again updates the same gist.

        \b
        sm self publish
        uv tool install git+https://gist.github.com/ID.git      # on the other machine
        """
        result = self_publish()
        if as_json:
            click.echo(json.dumps(result, indent=2))
        else:
            click.echo(visible(f"Published sm {__version__} to {result['html_url'] or result['gist_id']}"), err=True)
            click.echo(result["install"])

    return cli


# -- shared options -----------------------------------------------------------------------------------
# Options several commands take, bundled as decorators (as sqlite-utils' output_options): one spelling each.


def stacked(*decorators: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def apply(f: Any) -> Any:
        for decorator in reversed(decorators):
            f = decorator(f)
        return f

    return apply


def json_option(what: str) -> Callable[[Any], Any]:
    import click

    return click.option("--json", "as_json", is_flag=True, help=f"Print {what} as JSON on stdout.")


def no_lock_option(more: str = "") -> Callable[[Any], Any]:
    """--no-lock, for the commands that upload a script (create, edit, add, rollback)."""
    import click

    return click.option(
        "--no-lock",
        "locked",
        is_flag=True,
        flag_value=False,
        default=True,
        help=f"Upload no lock beside the script{more}: uv then resolves its dependencies on each new machine.",
    )


def yes_option(what: str) -> Callable[[Any], Any]:
    import click

    return click.option("-y", "--yes", is_flag=True, help=what)


def model_options(preview: str) -> Callable[[Any], Any]:
    """What the commands that ask the model take (create, edit)."""
    import click

    return stacked(
        click.option("-m", "--model", envvar="SM_MODEL", help="PydanticAI model string [env: SM_MODEL]."),
        click.option("-p", "--preview", is_flag=True, help=preview),
        yes_option("Send a prompt that looks like it holds a secret without asking."),
    )


def upload_options(default_description: str) -> Callable[[Any], Any]:
    """What the commands that upload a new script take (create, add)."""
    import click

    return stacked(
        click.option("--public", is_flag=True, help="Upload to a public gist (default: secret)."),
        click.option("-d", "--description", help=f"One-line description (default: {default_description})."),
        click.option("--force", is_flag=True, help="Replace an existing script of the same name."),
    )


# -- output -------------------------------------------------------------------------------------------
# stdout carries data (JSON, the run line, code); what is said to people goes to stderr.


def echo_removed(items: list[dict[str, Any]], *, dry_run: bool, as_json: bool) -> None:
    """What `sm gc` removed (or would): one line each on stdout, and the total on stderr."""
    import click

    total = sum(i["bytes"] for i in items)
    if as_json:
        click.echo(json_text({"dry_run": dry_run, "removed": items, "bytes": total}))
        return
    for item in items:
        click.echo(f"{human_size(item['bytes']):>9}  {item['kind']}: {visible(item['path'], one_line=True)}")
    click.echo(f"{'Would free' if dry_run else 'Freed'} {human_size(total)} in {len(items)} items.", err=True)


def echo_entry(entry: Entry, as_json: bool, status: str) -> None:
    """Status for people on stderr; on stdout, the entry as JSON or the exact `sm run` line."""
    import click

    if as_json:
        click.echo(json_text(entry))
        return
    click.echo(visible(status), err=True)
    click.echo(run_line(str(entry["script_name"]), entry.get("params") or []))


def echo_lines(lines: Iterable[str]) -> None:
    import click

    for line in lines:
        click.echo(line)


def run_line(name: str, params: Sequence[dict[str, Any]]) -> str:
    """The exact `sm run` line for a script: a placeholder for each required parameter, positionals included
    (repeatable ones as VALUE...), or `-- ARGS...` for a script that reads its arguments itself."""
    if any(p.get("kind") == "free" for p in params):
        return f"sm run {name} -- ARGS..."
    words = [f"{p['name']}=VALUE{'...' if p.get('multiple') else ''}" for p in params if p.get("required")]
    return " ".join(["sm run", name, *words])


def history_line(r: dict[str, Any]) -> str:
    when = (r["committed_at"] or "")[:19].replace("T", " ")
    mark = "*" if r["pinned"] else " "
    return visible(f"{mark} {r['version'][:12]}  {when}  +{r['additions']} -{r['deletions']}", one_line=True)


def mapping_history_line(r: dict[str, Any]) -> str:
    when = (r["committed_at"] or "")[:19].replace("T", " ")
    parts = [
        f"{sign}{', '.join(r[kind])}" for sign, kind in (("+", "added"), ("~", "updated"), ("-", "removed")) if r[kind]
    ]
    what = r.get("problem") or "  ".join(parts) or "no changes"
    return visible(f"{r['version'][:12]}  {when}  {what}", one_line=True)


def list_line(r: Entry) -> str:
    """`sm list` piped: one tab-separated line per script."""
    params = " ".join(p["name"] for p in r.get("params") or [])
    cells = (r["script_name"], r.get("description", ""), params, r.get("updated_at", ""))
    return "\t".join(visible(str(cell), one_line=True) for cell in cells)


def describe_changes(changes: dict[str, Any]) -> list[str]:
    lines = []
    for side, label in (("local", "Local"), ("remote", "GitHub")):
        parts = [f"{kind} {', '.join(names)}" for kind, names in changes[side].items() if names]
        lines.append(visible(f"{label}: {'; '.join(parts) if parts else 'no changes'}", one_line=True))
    return lines


DOCTOR_MARKS = {"ok": ("✓", "green"), "warn": ("!", "yellow"), "fail": ("✗", "red"), "skip": ("-", None)}


def doctor_report(checks: list[dict[str, Any]], color: bool) -> str:
    import click

    width = max(len(c["check"]) for c in checks)
    lines = []
    for c in checks:
        mark, colour = DOCTOR_MARKS[c["status"]]
        mark = click.style(mark, fg=colour) if color and colour else mark
        lines.append(f"{mark} {c['check']:<{width}}  {visible(str(c['detail']), one_line=True)}")
        if c["fix"] and c["status"] in ("fail", "warn"):
            lines.append(f"  {'':<{width}}  fix: {visible(str(c['fix']), one_line=True)}")
    return "\n".join(lines)


# -- shell completion -------------------------------------------------------------------------------
# These run on every <TAB>: the mapping only, no network, nothing heavier than click.


def complete_script_names(ctx: Any, param: Any, incomplete: str) -> list[Any]:
    try:
        scripts = read_mapping()["scripts"]
        command = getattr(getattr(ctx, "command", None), "name", "run")
        if command in ("run", "show", "history"):  # the commands that take a catalog's ALIAS/NAME too
            scripts = {**scripts, **known_catalog_scripts()}
    except SmError:
        return []
    return [completion_item(n, scripts[n].get("description")) for n in sorted(scripts) if n.startswith(incomplete)]


def complete_run_args(ctx: Any, param: Any, incomplete: str) -> list[Any]:
    """`key=` for each parameter of the script being run that is not given yet (sm's options may come first)."""
    words = [ctx.params.get("name") or "", *(ctx.params.get("args") or ())]
    if "--" in words or "=" in incomplete or incomplete.startswith("-"):
        return []
    try:
        req = parse_run_tail(words)
        if req.name is None:  # only sm's options so far: the word being completed is NAME
            return complete_script_names(ctx, param, incomplete)
        entry = read_mapping()["scripts"].get(req.name) or known_catalog_scripts().get(req.name)
    except SmError:
        return []
    done = {norm_key(w.partition("=")[0]) for w in req.pairs}
    return [
        completion_item(f"{p['name']}=", p.get("help"))
        for p in (entry or {}).get("params") or []
        if norm_key(p["name"]).startswith(norm_key(incomplete)) and norm_key(p["name"]) not in done
    ]


def completion_item(value: str, help_text: Any) -> Any:
    """Names and parameters may have come through sync: bash inserts completions into the command line as
    they are, so each value is shell-quoted (sm's own names need no quotes), and its help is one plain line."""
    import shlex

    from click.shell_completion import CompletionItem

    text = "".join(c if c.isprintable() else " " for c in help_text) if isinstance(help_text, str) else ""
    return CompletionItem(shlex.quote(value), help=" ".join(text.split()) or None)


def register_completions() -> None:
    """click's bash and zsh scripts put a space after every completion; `prefix=` wants its value right after."""
    from click.shell_completion import BashComplete, ZshComplete, add_completion_class

    class Bash(BashComplete):
        source_template = BashComplete.source_template.replace(
            "COMPREPLY+=($value)", "COMPREPLY+=($value)\n            [[ $value == *= ]] && compopt -o nospace"
        )

    class Zsh(ZshComplete):
        source_template = (
            ZshComplete.source_template.replace(
                "local -a completions\n", "local -a completions\n    local -a completions_nospace\n"
            )
            .replace(
                'if [[ "$type" == "plain" ]]; then',
                'if [[ "$type" == "plain" && "$key" == *= ]]; then\n'
                '            completions_nospace+=("$key")\n'
                '        elif [[ "$type" == "plain" ]]; then',
            )
            .replace(
                'if [ -n "$completions" ]; then',
                'if [ -n "$completions_nospace" ]; then\n'
                "        compadd -U -V unsorted -S '' -a completions_nospace\n"
                "    fi\n\n"
                '    if [ -n "$completions" ]; then',
            )
        )

    add_completion_class(Bash, "bash")
    add_completion_class(Zsh, "zsh")


def completion_source(cli: Any, shell: str) -> str:
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None  # click.Choice limits `shell` to the registered ones
    return cls(cli, {}, "sm", "_SM_COMPLETE").source()


def closed_stdout() -> int:
    """The reader of stdout went away (`sm list | head -1`): a normal end, as for git. Stop without a word,
    and with the status of a process ended by SIGPIPE (128 + 13), so that `set -o pipefail` sees it as git's."""
    with contextlib.suppress(OSError, ValueError):  # what is still buffered goes nowhere, not into an error at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return 141


# ══════════════════════════════════════════════════════════════════════════════════════════════════
# main
# ══════════════════════════════════════════════════════════════════════════════════════════════════


def main(argv: Sequence[str] | None = None, *, launched: bool = False) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        fast_run(argv, launched=launched)
        if fast_list_json(argv):
            return
        build_cli().main(args=argv, prog_name="sm")
    except BrokenPipeError:
        sys.exit(closed_stdout())


if __name__ == "__main__":
    main()
