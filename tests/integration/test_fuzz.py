"""A peer's fuzzer: schemathesis drives the running sidecar from its own /api/openapi.json
(examples, coverage, fuzzing and stateful phases along the document's links) and fails on any
5xx, any status the document does not list, any response that does not match it, and any
request the document says is invalid that the sidecar accepts (a `null` or a number where the
document says text: the server and the contract must agree both ways).

Bounded: FUZZ_EXAMPLES per operation (default 100, about a minute here); the seed is fixed so
CI is reproducible, FUZZ_SEED explores others.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from testkit.helpers import sidecar_process

TOKEN = "fuzz-token"
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
    ]
)


def fuzz_command(base_url: str, token: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{base_url}/api/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        CHECKS,
        "--max-examples",
        os.environ.get("FUZZ_EXAMPLES", "100"),
        "--seed",
        os.environ.get("FUZZ_SEED", "20261125"),
        # a long-poll may wait up to 30 s (wait_ms), less with the short claims below
        "--request-timeout",
        "40",
        "--continue-on-failure",
    ]


def test_the_fuzzer_finds_no_server_error_and_no_response_outside_the_contract(
    sidecar_environ: dict[str, str], tmp_path: Path
) -> None:
    environ = {
        **sidecar_environ,
        "IMAGE_SIDECAR_API_TOKEN": TOKEN,
        # pending lookups take an abandoned claim over after 1 s instead of 120 s
        "IMAGE_CACHE_CLAIM_SECONDS": "1",
    }
    with sidecar_process("serve", environ, tmp_path) as (_, base_url):
        result = subprocess.run(
            fuzz_command(base_url, TOKEN),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=900,
        )
    assert result.returncode == 0, result.stdout[-30_000:] + result.stderr[-5_000:]
    assert "generated" in result.stdout  # it ran test cases, not only loaded the document
