"""What an operator watches: Prometheus metrics, /healthz and /readyz, traces and logs.

May import ``core`` only.
"""
