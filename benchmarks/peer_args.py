"""The command line every pipeline script of the benchmark takes.

argparse only: a pipeline's memory is measured, so this imports nothing else.
"""

from __future__ import annotations

import argparse


def pipeline_parser(doc: str, *, calls_target: bool = True) -> argparse.ArgumentParser:
    """``--amqp-url``, ``--queue``, ``--prefetch`` and ``--target-url`` (required when
    the pipeline calls the target; the ceiling takes it and ignores it)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--queue", required=True, help="Step events queue (already declared).")
    parser.add_argument("--prefetch", type=int, default=256)
    if calls_target:
        parser.add_argument(
            "--target-url", required=True, help="Where to POST each event's params."
        )
    else:
        parser.add_argument("--target-url", default=None, help="Ignored: no HTTP here.")
    return parser
