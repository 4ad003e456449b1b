"""The contract and the pure core: step events and results, errors, action definitions,
templates, payload building, retry decisions, the delay ladder's arithmetic, dead-letter
reading and triage, secret masking.

No I/O: imports nothing outside ``actionrelay.core`` (no broker, HTTP or Redis client).
"""
