"""The JSON log lines: the access line's fields, extras and exceptions, and the lean set-up."""

from __future__ import annotations

import io
import logging

import orjson
import pytest

from api.logs import JsonFormatter, access_logger, configure_logging, request_id_var


@pytest.fixture
def lines(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """configure_logging as the server runs it, writing to a buffer; global state restored."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    for name in ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing"):
        monkeypatch.setattr(logging, name, getattr(logging, name))
    configure_logging("info", "json")
    buffer = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    monkeypatch.setattr(handler, "stream", buffer)
    return buffer


def test_an_access_line_is_one_json_object_with_the_request_id_and_extras(
    lines: io.StringIO,
) -> None:
    token = request_id_var.set("req-1")
    try:
        access_logger.info(
            "%s %s %s", "POST", "/v1/chat/completions", 200, extra={"status": 200, "ms": 1.5}
        )
    finally:
        request_id_var.reset(token)
    entry = orjson.loads(lines.getvalue())
    assert entry["level"] == "info" and entry["logger"] == "api.access"
    assert entry["message"] == "POST /v1/chat/completions 200"
    assert entry["request_id"] == "req-1"
    assert entry["status"] == 200 and entry["ms"] == 1.5
    assert entry["ts"].endswith("+00:00")
    # The lean set-up: no caller, thread or process is looked up, and none is logged.
    assert not {"funcName", "lineno", "thread", "process"} & entry.keys()


def test_the_lean_setup_skips_the_caller_lookup_but_keeps_exceptions(lines: io.StringIO) -> None:
    seen: list[logging.LogRecord] = []
    handler = logging.getLogger().handlers[0]
    handler.addFilter(lambda record: seen.append(record) or True)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("api.test").exception("failed")
    finally:
        handler.filters.clear()
    entry = orjson.loads(lines.getvalue())
    assert "ValueError: boom" in entry["exception"] and entry["message"] == "failed"
    assert seen[0].funcName == "(unknown function)" and seen[0].thread is None


def test_the_formatter_alone_renders_any_record() -> None:
    record = logging.makeLogRecord({"msg": "x %s", "args": (1,), "levelname": "WARNING"})
    assert orjson.loads(JsonFormatter().format(record))["message"] == "x 1"
