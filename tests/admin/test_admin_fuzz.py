"""Schemathesis against the running admin API, driven by the document the API itself serves.

Every operation gets schema-valid and schema-breaking requests, with random path parameters
and with ones naming real rows (so status changes, stock moves and retries reach their real
work). Nothing may answer 5xx, and every answer must be as documented: status code, content
type, headers, body schema; schema-breaking input must be refused with a 4xx. Hypothesis is
derandomized and keeps no example database, so a run is repeatable.

For a longer exploration against a running server, the CLI reads the same document:
``st run http://127.0.0.1:8080/admin/api/openapi.json -H "Authorization: Bearer $TOKEN"
--checks all --exclude-checks positive_data_acceptance``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from store import cards
from store.db import Database
from tests.admin.test_admin_api import API, AUTH, TOKEN, place_direct
from tests.gateway.test_ussd import MSISDN

schemathesis = pytest.importorskip(
    "schemathesis", reason="schemathesis is not installed (pip install -e '.[dev]')"
)
hypothesis = pytest.importorskip("hypothesis")

Make = Callable[..., Awaitable[TestClient[Any, Any]]]
EXAMPLES = 40  # per operation, generation mode and kind of path parameters


def fuzz(document: dict[str, Any], base_url: str, rows: dict[str, Any]) -> list[str]:
    """Run every operation; the failures found, one report each (blocking: run in a thread)."""
    import requests
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis import checks as st_checks

    checks = [
        st_checks.not_a_server_error,
        st_checks.status_code_conformance,
        st_checks.content_type_conformance,
        st_checks.response_headers_conformance,
        st_checks.response_schema_conformance,
        st_checks.negative_data_rejection,
    ]
    schema = schemathesis.openapi.from_dict(document)
    # Configured, not passed per call: negative cases then never "drop" the auth header only
    # to have it added back, which would read as schema-breaking input being accepted.
    schema.config.update(base_url=base_url, headers=AUTH)
    failures: list[str] = []
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            params = {p.name for p in operation.path_parameters}
            known = {name: rows[name] for name in params}
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                for fixed in [None, known] if known else [None]:
                    strategy = operation.as_strategy(generation_mode=mode, path_parameters=fixed)

                    @settings(
                        max_examples=EXAMPLES,
                        derandomize=True,
                        database=None,
                        deadline=None,
                        suppress_health_check=list(HealthCheck),
                        print_blob=False,
                    )
                    @given(case=strategy)
                    def run(case: Any) -> None:
                        response = case.call(session=session)
                        case.validate_response(response, checks=checks)

                    try:
                        run()
                    except Unsatisfiable:
                        assert mode is GenerationMode.NEGATIVE  # nothing there to break
                    # Schemathesis raises its findings as a BaseExceptionGroup: collect them all.
                    except (Exception, BaseExceptionGroup) as failure:
                        where = "known rows" if fixed else "random path"
                        failures.append(f"{operation.label} ({mode.value}, {where}):\n{failure}")
    return failures


async def test_admin_fuzz_finds_no_server_errors_and_answers_as_documented(
    make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway(admin_token=TOKEN)
    code = await place_direct(seeded_db, "fuzz-1", MSISDN)
    await place_direct(seeded_db, "fuzz-2", MSISDN)
    response = await client.get(API + "/openapi.json", headers=AUTH)
    document = await response.json()
    card = await cards.issue_card(seeded_db, MSISDN, "4821")
    rows = {"sku": "FD-RAMYON", "slug": "food", "code": code, "id": 1, "number": card.number}
    base_url = str(client.make_url("")).rstrip("/")
    failures = await asyncio.to_thread(fuzz, document, base_url, rows)
    assert not failures, "\n\n".join(failures)
