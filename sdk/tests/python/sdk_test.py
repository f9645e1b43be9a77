"""Exercises the generated Python client against a live hex-core-service.

List models, validate (every violation with its JSON path), create with an Idempotency-Key and
replay it, conflicts and refusals as typed exceptions, get and query. Written against what a
client calls and sees, so a contract change that breaks the client fails here (an import, a
pydantic validation of the answer, or an assertion). Run by `scripts/sdk run python`; the same
steps exist in ../typescript and ../go.
"""

import json
import os
import sys
import uuid

import hex_core_client
from hex_core_client.exceptions import ApiException
from hex_core_client.models import CreateRequest, QueryRequest, ValidateRequest


def env(name, default=None):
    value = os.environ.get(name, default)
    if not value:
        raise SystemExit(f"python sdk: {name} is not set (scripts/sdk run sets it; see scripts/sdk)")
    return value


BASE_URL = env("HEX_SDK_URL").rstrip("/")
TOKEN = env("HEX_SDK_TOKEN")
EXAMPLES = env("HEX_SDK_EXAMPLES")
SUMMARY = env("HEX_SDK_SUMMARY")
MODEL = env("HEX_SDK_MODEL", "demo-passport")
VERSION = env("HEX_SDK_VERSION", "0.1.0")
RUN_ID = env("HEX_SDK_RUN_ID", f"py-{uuid.uuid4()}")


def check(condition, message):
    if not condition:
        raise AssertionError(f"check failed: {message}")


def step(message):
    print(f"python sdk: {message}", file=sys.stderr)


def payload_of(name):
    with open(os.path.join(EXAMPLES, name), encoding="utf-8") as f:
        body = json.load(f)
    return body.get("payload", body)


def refusal(call):
    """The status and error envelope of a refused call; a failure when it succeeded."""
    try:
        call()
    except ApiException as error:
        envelope = json.loads(error.body)
        return error.status, envelope["code"], envelope.get("details")
    raise AssertionError("check failed: the call succeeded but should have been refused")


def header(response, name):
    """A response header, whatever case the server and the HTTP library give its name."""
    return {k.lower(): v for k, v in (response.headers or {}).items()}.get(name.lower())


def client(token):
    return hex_core_client.ApiClient(hex_core_client.Configuration(host=BASE_URL, access_token=token))


def main():
    api_client = client(TOKEN)
    discovery = hex_core_client.DiscoveryApi(api_client)
    models = hex_core_client.ModelsApi(api_client)

    # Authentication is real: the same call without a token is refused.
    status, _, _ = refusal(lambda: hex_core_client.DiscoveryApi(client(None)).list_models())
    check(status == 401, f"no token: expected 401, got {status}")

    listed = discovery.list_models()
    pairs = [[m.id, m.version] for m in listed.models]
    check([MODEL, VERSION] in pairs, f"{MODEL} {VERSION} is listed: {pairs}")
    step(f"list_models: {pairs}")

    valid = payload_of("passport-valid.json")
    passed = models.validate_model_payload(MODEL, VERSION, ValidateRequest(payload=valid))
    check(passed.passed is True, f"the valid example passes: {passed}")

    report = models.validate_model_payload(MODEL, VERSION, ValidateRequest(payload=payload_of("passport-invalid.json")))
    violations = [{"path": r.path, "message": r.message, "severity": r.severity} for r in report.results]
    check(report.passed is False, "the invalid example does not pass")
    check(violations, "violations are reported")
    for v in violations:
        check(isinstance(v["path"], str) and v["path"].startswith("$"), f"a JSON path: {v}")
        check(isinstance(v["message"], str) and v["message"], f"a message: {v}")
        check(v["severity"] in ("error", "warning", "info"), f"a severity: {v}")
    check(any(v["path"] == "$.record_scope" for v in violations), "the record_scope violation is seen")
    step(f"validate_model_payload: {len(violations)} violations at {', '.join(v['path'] for v in violations)}")

    first = dict(valid, id=f"{RUN_ID}-a")
    key = f"{RUN_ID}-key-a"
    created = models.create_record_with_http_info(MODEL, VERSION, key, CreateRequest(payload=first))
    record = created.data
    check(created.status_code == 200, f"create answers 200, got {created.status_code}")
    check(header(created, "Idempotency-Replayed") != "true", "a first create is not a replay")
    check(record.id == first["id"] and record.model == MODEL and record.version == VERSION, f"the record: {record}")
    check(record.payload["materials"] == first["materials"], "the payload round-trips")

    replay = models.create_record_with_http_info(MODEL, VERSION, key, CreateRequest(payload=first))
    replay_header = header(replay, "Idempotency-Replayed")
    check(replay_header == "true", f"a replay says Idempotency-Replayed: true, got {replay_header}")
    check(replay.data.id == record.id, "a replay answers the first record")
    check(replay.data.created_at == record.created_at, "a replay writes nothing new")
    step(f"create_record {record.id}, replayed with Idempotency-Replayed: {replay_header}")

    conflict = refusal(
        lambda: models.create_record(MODEL, VERSION, key, CreateRequest(payload=dict(first, mass_kg=9)))
    )
    check(conflict[:2] == (409, "IDEMPOTENCY_CONFLICT"), f"same key, other payload: {conflict}")
    invalid = refusal(
        lambda: models.create_record(
            MODEL, VERSION, f"{RUN_ID}-key-invalid", CreateRequest(payload=payload_of("passport-invalid.json"))
        )
    )
    check(invalid[:2] == (422, "VALIDATION_FAILED"), f"an invalid create: {invalid}")
    check("$.record_scope" in json.dumps(invalid[2]), "the refusal carries the report")

    second = dict(valid, id=f"{RUN_ID}-b", mass_kg=2.5)
    models.create_record(MODEL, VERSION, f"{RUN_ID}-key-b", CreateRequest(payload=second))
    got = models.get_record(MODEL, VERSION, first["id"])
    check(got.id == first["id"] and got.payload["product_name"] == first["product_name"], "get_record reads it back")

    ours = {"field": "id", "op": "in", "value": [first["id"], second["id"]]}
    heavy = models.query_records(
        MODEL,
        VERSION,
        QueryRequest.from_dict({"filter": {"where": [ours, {"field": "payload.mass_kg", "op": "gt", "value": 2}]}}),
    )
    heavy_ids = [r.id for r in heavy.records]
    check(heavy_ids == [second["id"]], f"query mass_kg > 2: {heavy_ids}")
    newest_first = models.query_records(
        MODEL,
        VERSION,
        QueryRequest.from_dict(
            {
                "filter": {
                    "where": [ours, {"field": "payload.record_scope", "op": "eq", "value": "product"}],
                    "sort": [{"field": "created_at", "direction": "desc"}],
                    "limit": 10,
                }
            }
        ),
    )
    query_ids = [r.id for r in newest_first.records]
    check(query_ids == [second["id"], first["id"]], f"query newest first: {query_ids}")
    check((newest_first.limit, newest_first.offset) == (10, 0), f"limit and offset applied: {newest_first}")
    bad_query = refusal(
        lambda: models.query_records(
            MODEL,
            VERSION,
            QueryRequest.from_dict({"filter": {"where": [{"field": "colour", "op": "eq", "value": "red"}]}}),
        )
    )
    check(bad_query[:2] == (400, "INVALID_QUERY"), f"an unknown field: {bad_query}")
    step(f"query_records: {query_ids}")

    summary = {
        "language": "python",
        "models": pairs,
        "violations": violations,
        "record": {"id": record.id},
        "replayed_header": replay_header,
        "query_ids": query_ids,
    }
    with open(SUMMARY, "w", encoding="utf-8") as f:
        json.dump(summary, f)
    step("all checks passed")


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # noqa: BLE001 - report any failure, with its traceback, and exit 1
        import traceback

        traceback.print_exc()
        print(f"python sdk: FAILED: {error}", file=sys.stderr)
        sys.exit(1)
