"""The contract and the pure core: step events and results, errors, action definitions,
auth specs (the JWT modes' claims and key checks), templates, payload building with its
JSON, form and multipart bodies, request signing, retry decisions, the delay ladder's
arithmetic, dead-letter reading and triage, secret masking.

No I/O: imports nothing outside ``actionrelay.core`` (no broker, HTTP or Redis client).
"""
