"""``actionrelay demo`` shows the pipeline working with one command."""

from __future__ import annotations

import asyncio
import sys

from actionrelay.settings import Settings


async def test_demo_prints_one_result_per_example_event(settings: Settings) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "actionrelay",
        "demo",
        "--amqp-url",
        settings.amqp_url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=40)
    assert process.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    statuses = {line.split()[0]: line.split()[2] for line in lines}
    assert statuses == {
        "demo-sms": "success",
        "demo-loyalty": "success",
        "demo-contact": "success",
        "demo-404": "error",
        "demo-invalid": "invalid",
        "demo-unknown": "invalid",
    }
    assert '"messageId"' in out.decode()
