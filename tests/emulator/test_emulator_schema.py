"""Property-based check (schemathesis) that the emulator answers as syncd/openapi.yaml says."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from syncd.emulator.app import OPENAPI_PATH, EmulatorConfig, RunningEmulator, run_emulator

pytestmark = pytest.mark.timeout(120)

# Loaded at import: schemathesis.pytest.from_fixture does not work under pytest 9 (it reads a
# private node attribute), so the emulator's address is given per call instead.
schema = schemathesis.openapi.from_path(Path(OPENAPI_PATH))

# Requests that are well-formed by the document yet refused by the contract, because the
# document cannot say "an id that exists", "a downloadable file", "a cursor this server issued"
# or "this parameter only in that version". Only a 400 with exactly these messages is excused
# from schemathesis' "valid data must be accepted" check.
_ANY_OPERATION = ("anthropic-beta: header is required", "anthropic-beta: must include")
_CONTRACT_REFUSALS = {
    "GET /files": ("after_id: no file with id", "before_id: no file with id",
                   "after_id and before_id cannot be given together",
                   "after_id: not supported by anthropic-version 2026-10-21",
                   "before_id: not supported by anthropic-version 2026-10-21",
                   "page: not a page cursor", "ids: cannot be combined with page or limit"),
    "GET /files/{file_id}/content": ("File is not downloadable",),
}
# Parameters 2023-06-01 ignores: out-of-range values of them are accepted in that version.
_GA_ONLY = {"POST /files": "expires_in_seconds"}


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    data = tmp_path_factory.mktemp("schema-emulator")
    with run_emulator(EmulatorConfig(data_dir=data, max_file_bytes=100_000)) as running:
        running.seed_foreign("seeded.txt", b"downloadable", downloadable=True)
        yield running


def _transport(emulator: RunningEmulator) -> dict[str, Any]:
    return {"base_url": f"{emulator.base_url}/v1", "headers": {"x-api-key": emulator.api_key}}


def _same_on_the_wire(body: object) -> bool:
    """A form field given as a list of at most one item is a "type violation" to schemathesis,
    but multipart sends it as no part or as one part: the server sees a valid request."""
    if not isinstance(body, dict):
        return False
    value = body.get("expires_in_seconds")
    return isinstance(value, list) and len(value) <= 1


def _validate(case: schemathesis.Case, response: schemathesis.Response,
              transport: dict[str, Any], **kwargs: Any) -> None:
    excluded = []
    label = case.operation.label
    if response.status_code == 400:
        message = response.json()["error"]["message"]
        if message.startswith(_CONTRACT_REFUSALS.get(label, ()) + _ANY_OPERATION):
            excluded.append(positive_data_acceptance)
    headers = {k.lower(): v for k, v in (case.headers or {}).items()}
    if (response.status_code == 200 and headers.get("anthropic-version") == "2023-06-01"
            and isinstance(case.body, dict) and _GA_ONLY.get(label) in case.body):
        excluded.append(negative_data_rejection)
    if response.status_code == 200 and _same_on_the_wire(case.body):
        excluded.append(negative_data_rejection)
    case.validate_response(response, excluded_checks=excluded, transport_kwargs=transport,
                           **kwargs)


@schema.parametrize()
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_emulator_conforms_to_openapi(case: schemathesis.Case,
                                      emulator: RunningEmulator) -> None:
    """Every generated request, valid or not, gets an answer the document allows, never a 500."""
    transport = _transport(emulator)
    _validate(case, case.call(**transport), transport)


def test_emulator_conforms_in_stateful_sequences(emulator: RunningEmulator) -> None:
    """Upload -> get / download / delete chains (via the document's links) stay conformant."""
    transport = _transport(emulator)

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return transport

        def before_call(self, case: schemathesis.Case) -> None:
            # A generated workspace id is only ever a 403, and a 2023-06-01 request without the
            # files beta a 400 (the one-shot test covers both); the right values keep the
            # upload -> get -> delete chains alive.
            headers = case.headers if case.headers is not None else {}
            if "anthropic-workspace-id" in headers:
                headers["anthropic-workspace-id"] = emulator.workspace_id
            if headers.get("anthropic-version") == "2023-06-01":
                headers["anthropic-beta"] = "files-api-2025-04-14"

        def validate_response(self, response: schemathesis.Response, case: schemathesis.Case,
                              additional_checks: Any = None, **kwargs: Any) -> None:
            _validate(case, response, transport, additional_checks=additional_checks,
                      recorder=self.recorder)

    emulator.reset_stats()
    Workflow.run(settings=settings(max_examples=25, stateful_step_count=5, deadline=None,
                                   suppress_health_check=list(HealthCheck)))
    stats = emulator.stats()
    assert all(stats[f"status:{op}:200"] > 0 for op in ("upload", "get", "delete")), stats
