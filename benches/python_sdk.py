#!/usr/bin/env python3
"""The yardstick of issue 13: the official OpenAI Python SDK paging the same audit-log history
and posting it to the same receiver, run by `benches/pipeline.rs` in the daemon's place:

    python3 -m venv /tmp/sdk && /tmp/sdk/bin/pip install openai==3.60.0
    PATH=/tmp/sdk/bin:$PATH BENCH_BINARY=benches/python_sdk.py target/release/deps/pipeline-<hash>

(the harness keeps PATH, so `env python3` below is the virtual environment's).

It does what a script would do with the SDK and nothing more: both passes (normal and
`tenant_only`) over the 30-day lookback, 100 records a page (the daemon's defaults), each
record shipped as it arrived, as gzipped NDJSON (level 1, the daemon's default) in batches of at
most 500 events or 1 MiB with an `Idempotency-Key`. No normalizing, no guardrails, no
checkpoints: whatever it costs is the floor of a Python pipeline.

It reads the settings the bench gives the daemon: OPENAI_ADMIN_KEY, OAI_INGEST__OPENAI__BASE_URL,
OAI_INGEST__OPENAI__ORGANIZATION_ID, OAI_INGEST__SINK__URL. Arguments (`once --deadline 60m`)
are accepted and ignored.
"""

import gzip
import hashlib
import json
import os
import time

import httpx2  # the SDK's own HTTP library (openai 3.x)
import openai

MAX_EVENTS = 500
MAX_BYTES = 1024 * 1024
LOOKBACK_S = 30 * 24 * 3600


def main() -> None:
    client = openai.OpenAI(
        api_key=os.environ["OPENAI_ADMIN_KEY"],
        admin_api_key=os.environ["OPENAI_ADMIN_KEY"],
        organization=os.environ.get("OAI_INGEST__OPENAI__ORGANIZATION_ID"),
        base_url=os.environ["OAI_INGEST__OPENAI__BASE_URL"],
        max_retries=5,
    )
    sink = httpx2.Client(timeout=30.0)
    sink_url = os.environ["OAI_INGEST__SINK__URL"]
    since = int(time.time()) - LOOKBACK_S
    batch: list[tuple[str, bytes]] = []
    size = 0

    def flush() -> None:
        nonlocal batch, size
        if not batch:
            return
        body = b"".join(line + b"\n" for _, line in batch)
        key = hashlib.sha256("\n".join(i for i, _ in batch).encode()).hexdigest()
        response = sink.post(
            sink_url,
            content=gzip.compress(body, compresslevel=1),
            headers={
                "Content-Type": "application/x-ndjson",
                "Content-Encoding": "gzip",
                "Idempotency-Key": key,
            },
        )
        response.raise_for_status()
        batch, size = [], 0

    for tenant_only in (False, True):
        pages = client.admin.organization.audit_logs.list(
            effective_at={"gte": since}, limit=100, tenant_only=tenant_only
        )
        for record in pages:
            line = record.to_json(indent=None).encode()
            if len(batch) == MAX_EVENTS or size + len(line) > MAX_BYTES:
                flush()
            batch.append((record.id, line))
            size += len(line) + 1
    flush()


if __name__ == "__main__":
    main()
