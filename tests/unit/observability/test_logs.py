"""Log lines never carry secrets, tracebacks included."""

from __future__ import annotations

import pytest
import structlog

from actionrelay.core.secret import Redactor
from actionrelay.observability.logs import configure_logging

SECRET = "s3cr3t-token-value"


def test_secrets_are_masked_in_fields_and_in_tracebacks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("info", "json", Redactor([SECRET]))
    log = structlog.get_logger("test")
    log.info("call", note=f"sent {SECRET}", authorization=f"Bearer {SECRET}")
    try:
        raise RuntimeError(f"the API echoed {SECRET}")
    except RuntimeError:
        log.exception("worker.internal_error")
    out = capsys.readouterr().err
    assert "RuntimeError" in out  # the traceback is there …
    assert SECRET not in out  # … without the secret
    structlog.reset_defaults()
