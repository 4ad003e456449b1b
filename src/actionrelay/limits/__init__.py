"""Endpoint limits: their configuration (endpoints.yaml), the rate limiter (in memory or
Redis), the gate every call passes, and the circuit breaker.

May import ``core`` and ``observability``.
"""
