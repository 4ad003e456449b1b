"""The RabbitMQ side: the connection, the topology it declares, consuming step events,
publishing results and copies, batched acks, settling an event's fate, and the
dead-letter tools' scans.

May import ``core``, ``limits`` (endpoint configuration), ``observability`` and ``settings``.
"""
