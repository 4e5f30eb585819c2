# sm: developer tasks. `just test -m "not slow"` is the quick loop.

test *ARGS:
    uv run pytest {{ARGS}}

lint:
    uv run ruff check sm.py tests
    uv run ruff format --check sm.py tests

fmt:
    uv run ruff format sm.py tests
    uv run ruff check --fix sm.py tests

bench:
    uv run python tests/bench/bench.py
