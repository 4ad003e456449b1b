"""actionrelay: delivers journey custom actions from RabbitMQ to third-party REST APIs."""

__version__ = "0.1.0"
