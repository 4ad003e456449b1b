"""Small builders shared by the unit tests."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError

from actionrelay.core.action import ActionDefinition
from actionrelay.core.payload import OutboundRequest

ACTION = "testAction"
BASE_URL = "https://api.example.com/v1"


def define(**fields: Any) -> ActionDefinition:
    """An action named ``testAction`` on ``BASE_URL``, with ``fields`` on top."""
    return ActionDefinition.model_validate({"name": ACTION, "url": BASE_URL, **fields})


def rejection(**fields: Any) -> str:
    """Why ``define(**fields)`` is refused, one ``field: problem`` line per error."""
    try:
        define(**fields)
    except ValidationError as exc:
        return "\n".join(
            f"{'.'.join(map(str, error['loc'])) or '(action)'}: {error['msg']}"
            for error in exc.errors()
        )
    raise AssertionError(f"definition was accepted: {fields}")


def sent_json(request: OutboundRequest) -> Any:
    assert request.body is not None
    return orjson.loads(request.body)


class RecordedAcks:
    """Stands in for the channel: records the ack frames a batcher would send."""

    is_closed = False

    def __init__(self) -> None:
        self.frames: list[tuple[int, bool]] = []

    async def basic_ack(self, delivery_tag: int, multiple: bool = False, **_: Any) -> None:
        self.frames.append((delivery_tag, multiple))
