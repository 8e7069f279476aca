"""Property tests of every public endpoint in every dialect: whatever arrives, no 5xx.

Hypothesis builds requests from each endpoint's own fields: the right values, text with
control bytes, lone surrogates and other scripts' digits, over-long values, numbers where text
belongs and the reverse, missing fields, bodies of random bytes and JSON nested past reason.
Requests continue real sessions too, so the engine sees every kind of input. Every answer must
be below 500, carry no traceback, and no hop may end on the generic error screen.

Seeded (``derandomize``), bounded (``EXAMPLES`` per endpoint) and without an example database,
so a run is repeatable. The requests go from a thread (blocking, like schemathesis in
``tests/admin``) to the real app served on the test's event loop.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from menus.text import texts

hypothesis = pytest.importorskip("hypothesis")
requests = pytest.importorskip("requests")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

Make = Callable[..., Awaitable[TestClient[Any, Any]]]
EXAMPLES = 150
MSISDN = "8501912345678"
NESTED = b"[" * 200_000
GENERIC_ERROR = (texts("en")("error.unavailable"), texts("ko")("error.unavailable"))


@dataclass(frozen=True)
class Endpoint:
    """One public endpoint: how it is called and the fields a well-formed call carries."""

    name: str
    method: str
    path: str
    encoding: str  # "form", "json" or "query"
    fields: Mapping[str, object]
    typed: str | None = None  # the field that carries what a subscriber typed
    hop: bool = False  # answers with a screen


AT = {"sessionId": "fz", "serviceCode": "*123#", "phoneNumber": MSISDN, "text": ""}
ENDPOINTS = [
    Endpoint("africastalking", "POST", "/ussd/africastalking", "form", AT, "text", True),
    Endpoint(
        "hubtel",
        "POST",
        "/ussd/hubtel",
        "json",
        {
            "SessionId": "fz",
            "ServiceCode": "123",
            "Type": "Response",
            "Message": "1",
            "Mobile": MSISDN,
            "Sequence": 2,
            "Operator": "mtn",
        },
        "Message",
        True,
    ),
    Endpoint(
        "arkesel",
        "POST",
        "/ussd/arkesel",
        "json",
        {"sessionID": "fz", "userID": "OK", "newSession": False, "msisdn": MSISDN, "userData": "1"},
        "userData",
        True,
    ),
    Endpoint(
        "nalo",
        "POST",
        "/ussd/nalo",
        "json",
        {"USERID": "N", "MSISDN": MSISDN, "USERDATA": "1", "MSGTYPE": False, "SESSIONID": "fz"},
        "USERDATA",
        True,
    ),
    Endpoint(
        "hollatags",
        "GET",
        "/ussd/hollatags",
        "query",
        {
            "session_id": "fz",
            "session_operation": "continue",
            "session_msg": "1",
            "session_msisdn": MSISDN,
            "session_from": "*123#",
        },
        "session_msg",
        True,
    ),
    Endpoint(
        "africastalking events",
        "POST",
        "/ussd/africastalking/events",
        "form",
        {**AT, "status": "Incomplete", "hopsCount": "3", "durationInMillis": "4000"},
    ),
    Endpoint(
        "inbound sms",
        "POST",
        "/sms/africastalking",
        "form",
        {"from": MSISDN, "to": "1234", "text": "STATUS", "id": "ATX1"},
        "text",
    ),
    Endpoint(
        "delivery report",
        "POST",
        "/sms/africastalking/dlr",
        "form",
        {"id": "ATXid_1", "status": "Success", "phoneNumber": MSISDN},
    ),
]

# Text of every kind: control bytes, lone surrogates, other scripts' digits, emoji.
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
INPUTS = st.one_of(
    st.sampled_from(["", "0", "00", "98", "1", "2", "3", "9", "²", "٣", "１", "-1", "1e3"]),
    ANY_TEXT,
)
VALUES = st.one_of(
    ANY_TEXT,
    INPUTS,
    st.text(max_size=5).map(lambda s: s * 3000),  # over-long
    st.integers(min_value=-(10**30), max_value=10**30),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),
)


def change(endpoint: Endpoint) -> st.SearchStrategy[dict[str, object]]:
    """The endpoint's fields, some of them replaced by anything, some dropped."""
    return st.dictionaries(
        st.sampled_from([*endpoint.fields, "extra"]), VALUES, max_size=len(endpoint.fields)
    ).map(
        lambda changes: {
            name: value
            for name, value in {**endpoint.fields, **changes}.items()
            if value is not None
        }
    )


def encode(endpoint: Endpoint, fields: Mapping[str, object]) -> tuple[str, bytes, dict[str, str]]:
    """(path with query, body, headers) for ``fields``, encoded as the endpoint's dialect.

    Form and query values are percent-encoded from UTF-8 with surrogates passed through, as
    a broken client would send them.
    """

    def pct(value: object) -> str:
        raw = value if isinstance(value, str) else json.dumps(value)
        return urllib.parse.quote(raw.encode("utf-8", "surrogatepass"), safe="")

    if endpoint.encoding == "json":
        body = json.dumps(fields).encode()  # ensure_ascii: surrogates travel as \ud800
        return endpoint.path, body, {"Content-Type": "application/json"}
    encoded = "&".join(f"{pct(k)}={pct(v)}" for k, v in fields.items())
    if endpoint.encoding == "query":
        return f"{endpoint.path}?{encoded}", b"", {}
    return endpoint.path, encoded.encode(), {"Content-Type": "application/x-www-form-urlencoded"}


def hop_sequence(endpoint: Endpoint) -> st.SearchStrategy[list[dict[str, object]]]:
    """A dial then a few typed inputs, on one fresh session: the engine's own paths."""
    assert endpoint.typed is not None

    def build(ref: int, inputs: list[str]) -> list[dict[str, object]]:
        session = {name: f"fz-{ref}" for name in endpoint.fields if name.lower() in SESSION}
        calls: list[dict[str, object]] = [opening(endpoint, session)]
        path: list[str] = []
        for number, typed in enumerate(inputs, start=2):
            path.append(typed)
            text = "*".join(path) if endpoint.name == "africastalking" else typed
            calls.append({**endpoint.fields, **session, endpoint.typed: text, **numbered(number)})
        return calls

    def numbered(number: int) -> dict[str, object]:
        return {"Sequence": number} if endpoint.name == "hubtel" else {}

    return st.builds(
        build, st.integers(0, 10**9), st.lists(INPUTS.filter(lambda s: "*" not in s), max_size=6)
    )


SESSION = {"sessionid", "session_id"}


def opening(endpoint: Endpoint, session: Mapping[str, object]) -> dict[str, object]:
    first: dict[str, dict[str, object]] = {
        "africastalking": {"text": ""},
        "hubtel": {"Type": "Initiation", "Message": "*123#", "Sequence": 1},
        "arkesel": {"newSession": True, "userData": "*123#"},
        "nalo": {"MSGTYPE": True, "USERDATA": "*123#"},
        "hollatags": {"session_operation": "begin", "session_msg": "*123#"},
    }
    return {**endpoint.fields, **session, **first[endpoint.name]}


def check(endpoint: Endpoint, fields: Mapping[str, object], status: int, body: str) -> None:
    where = f"{endpoint.name} {fields!r}"
    assert status < 500, f"{status} from {where}: {body[:300]}"
    assert "Traceback" not in body and 'File "' not in body, f"traceback from {where}"
    if endpoint.hop and status == 200:
        assert not any(error in body for error in GENERIC_ERROR), f"error screen from {where}"


COMMON = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


def fuzz(base_url: str, endpoint: Endpoint) -> None:
    """One endpoint, bounded and seeded (blocking: run in a thread)."""
    with requests.Session() as session:

        def send(fields: Mapping[str, object]) -> None:
            path, body, headers = encode(endpoint, fields)
            response = session.request(
                endpoint.method, base_url + path, data=body or None, headers=headers, timeout=10
            )
            check(endpoint, fields, response.status_code, response.text)

        @COMMON
        @given(fields=change(endpoint))
        def fields_of_any_kind(fields: dict[str, object]) -> None:
            send(fields)

        @COMMON
        @given(body=st.one_of(st.binary(max_size=300), st.none()))
        def bodies_of_any_kind(body: bytes | None) -> None:
            body = NESTED if body is None else body  # drawn as None: a 200 kB repr costs
            response = session.request(
                endpoint.method,
                base_url + endpoint.path,
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=10,
            )
            check(endpoint, {"body": body[:40]}, response.status_code, response.text)

        @COMMON
        @given(calls=hop_sequence(endpoint) if endpoint.hop else st.just([]))
        def sessions_typed_into(calls: list[dict[str, object]]) -> None:
            for fields in calls:
                send(fields)

        fields_of_any_kind()
        bodies_of_any_kind()
        if endpoint.hop:
            sessions_typed_into()


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda endpoint: endpoint.name)
async def test_fuzz_public_endpoint_answers_below_500(
    make_gateway: Make, endpoint: Endpoint
) -> None:
    client = await make_gateway()
    await asyncio.to_thread(fuzz, str(client.make_url("")).rstrip("/"), endpoint)
