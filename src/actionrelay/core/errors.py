"""The exception tree of actionrelay.

Every failure is classified once, where it is raised, and its class decides the
fate of the step event. Classes defined beside the code that raises them are
named with their module::

    ActionRelayError
    ├── ConfigError                 startup only: bad settings or action files
    │   └── CatalogError            one or more action files are invalid
    ├── BrokerUnavailable (broker)  RabbitMQ unreachable or the connection was lost
    ├── Refused (broker)            RabbitMQ returned or nacked a message
    ├── QueueNotFound (holding)     dlq tools: the queue or the replay target is missing
    ├── NotDelivered (step_publisher), NoResultYet (step_publisher)   ``actionrelay publish``
    └── StepFailure                 one step event could not be delivered
        ├── InternalError (attempt)     a bug; dead-lettered so that it is not lost
        ├── ResultUnpublishable (attempt)   RabbitMQ would not take the result; dead-lettered
        ├── AuthFailure (auth)          credentials not obtained; ``retryable`` per instance
        ├── PermanentFailure        retrying cannot help; result + dead letter
        │   ├── InvalidEvent        the message is not a usable step event
        │   │   ├── UnknownAction   the event names no action in the catalog
        │   │   ├── PayloadError    the event's params do not fit the action
        │   │   └── ForbiddenDestination (egress)   the egress policy refuses the call
        │   ├── DeadlineExpired     the step can no longer be useful
        │   ├── TooManyRedirects (delivery)
        │   └── Capped (gate)       over an endpoint's cap: result "capped", no dead letter
        ├── HttpStatusError         non-2xx; retry.is_retryable() decides by status
        └── TransientFailure        the same call may succeed later
            ├── CallTimeout         no complete answer within the timeout
            └── ConnectFailure      refused, reset, DNS, TLS handshake …

Third-party exceptions (aiohttp, aio-pika) are translated in the module that
talks to them (``raise X from exc``) and nowhere else.
"""

from __future__ import annotations

from typing import ClassVar


class ActionRelayError(Exception):
    """Root of every error actionrelay raises on purpose."""


class ConfigError(ActionRelayError):
    """Settings or definitions that stop the worker from starting."""


class CatalogError(ConfigError):
    """Action files that do not load; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid action catalog:\n  " + "\n  ".join(problems))


class StepFailure(ActionRelayError):
    """A step event that did not end in a 2xx call.

    ``error_type`` is the stable machine name carried in result events and
    dead-letter headers; ``status``/``status_code`` are what the journey
    branches on.
    """

    error_type: ClassVar[str] = "internal"
    status: ClassVar[str] = "error"
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status

    @property
    def status_code(self) -> str:
        return "internalError"


class PermanentFailure(StepFailure):
    retryable = False


class InvalidEvent(PermanentFailure):
    error_type = "invalid_event"
    status = "invalid"

    @property
    def status_code(self) -> str:
        return "invalid"


class UnknownAction(InvalidEvent):
    error_type = "unknown_action"


class PayloadError(InvalidEvent):
    error_type = "validation"


class DeadlineExpired(PermanentFailure):
    error_type = "deadline_expired"
    status = "timedout"

    @property
    def status_code(self) -> str:
        return "timedout"


class HttpStatusError(StepFailure):
    """A non-2xx answer. ``body_excerpt`` is a short, printable start of the body."""

    error_type = "http_error"

    def __init__(
        self,
        message: str,
        *,
        http_status: int,
        body_excerpt: str = "",
        retry_after: str | None = None,
        abort: bool = False,
    ) -> None:
        super().__init__(message, http_status=http_status)
        self.body_excerpt = body_excerpt
        self.retry_after = retry_after
        self.abort = abort

    @property
    def status_code(self) -> str:
        return f"http_{self.http_status}"


class TransientFailure(StepFailure):
    retryable = True


class CallTimeout(TransientFailure):
    error_type = "timeout"
    status = "timedout"

    @property
    def status_code(self) -> str:
        return "timedout"


class ConnectFailure(TransientFailure):
    error_type = "connection"
