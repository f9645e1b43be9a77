// Exercises the generated TypeScript (typescript-fetch) client against a live hex-core-service:
// list models, validate (every violation with its JSON path), create with an Idempotency-Key and
// replay it, conflicts and refusals as typed errors, get and query. Written against what a client
// calls and sees, so a contract change that breaks the client fails here (tsc or an assertion).
// Run by `scripts/sdk run typescript`; the same steps exist in ../python and ../go.

import * as fs from "node:fs";
import * as path from "node:path";
import { randomUUID } from "node:crypto";
import {
  Configuration,
  DiscoveryApi,
  ModelsApi,
  ModelRecord,
  ResponseError,
  ValidationReport,
} from "../../generated/typescript/src/index";

function env(name: string, fallback?: string): string {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === "") {
    throw new Error(`${name} is not set (scripts/sdk run sets it; see scripts/sdk)`);
  }
  return value;
}

const baseUrl = env("HEX_SDK_URL").replace(/\/$/, "");
const token = env("HEX_SDK_TOKEN");
const examples = env("HEX_SDK_EXAMPLES");
const summaryFile = env("HEX_SDK_SUMMARY");
const model = env("HEX_SDK_MODEL", "demo-passport");
const version = env("HEX_SDK_VERSION", "0.1.0");
const runId = env("HEX_SDK_RUN_ID", `ts-${randomUUID()}`);

function check(condition: boolean, message: string): asserts condition {
  if (!condition) {
    throw new Error(`check failed: ${message}`);
  }
}

function step(message: string): void {
  process.stderr.write(`typescript sdk: ${message}\n`);
}

type Payload = { [key: string]: any };

function payloadOf(file: string): Payload {
  const body = JSON.parse(fs.readFileSync(path.join(examples, file), "utf8"));
  return body.payload ?? body;
}

/** The status and error envelope of a refused call, or a failure when the call succeeded. */
async function refusal(call: Promise<unknown>): Promise<{ status: number; code: string; details: any }> {
  try {
    await call;
  } catch (error) {
    check(error instanceof ResponseError, `expected a ResponseError, got ${error}`);
    const envelope = await error.response.json();
    return { status: error.response.status, code: envelope.code, details: envelope.details };
  }
  throw new Error("check failed: the call succeeded but should have been refused");
}

function violationsOf(report: ValidationReport): { path: string; message: string; severity: string }[] {
  return report.results.map((r) => ({ path: r.path, message: r.message, severity: r.severity }));
}

async function main(): Promise<void> {
  const config = new Configuration({ basePath: baseUrl, accessToken: token });
  const discovery = new DiscoveryApi(config);
  const models = new ModelsApi(config);

  // Authentication is real: the same call without a token is refused.
  const anonymous = await refusal(new DiscoveryApi(new Configuration({ basePath: baseUrl })).listModels());
  check(anonymous.status === 401, `no token: expected 401, got ${anonymous.status}`);

  const listed = await discovery.listModels();
  const pairs = listed.models.map((m) => [m.id, m.version]);
  check(pairs.some(([id, v]) => id === model && v === version), `${model} ${version} is listed: ${JSON.stringify(pairs)}`);
  step(`listModels: ${JSON.stringify(pairs)}`);

  const valid = payloadOf("passport-valid.json");
  const passed = await models.validateModelPayload({ model, version, validateRequest: { payload: valid } });
  check(passed.passed === true, `the valid example passes: ${JSON.stringify(passed)}`);

  const report = await models.validateModelPayload({
    model,
    version,
    validateRequest: { payload: payloadOf("passport-invalid.json") },
  });
  const violations = violationsOf(report);
  check(report.passed === false, "the invalid example does not pass");
  check(violations.length > 0, "violations are reported");
  for (const v of violations) {
    check(typeof v.path === "string" && v.path.startsWith("$"), `a JSON path: ${JSON.stringify(v)}`);
    check(typeof v.message === "string" && v.message.length > 0, `a message: ${JSON.stringify(v)}`);
    check(["error", "warning", "info"].includes(v.severity), `a severity: ${JSON.stringify(v)}`);
  }
  check(violations.some((v) => v.path === "$.record_scope"), "the record_scope violation is seen");
  step(`validateModelPayload: ${violations.length} violations at ${violations.map((v) => v.path).join(", ")}`);

  const first: Payload = { ...valid, id: `${runId}-a` };
  const key = `${runId}-key-a`;
  const created = await models.createRecordRaw({ model, version, idempotencyKey: key, createRequest: { payload: first } });
  const record: ModelRecord = await created.value();
  check(created.raw.status === 200, `create answers 200, got ${created.raw.status}`);
  check(created.raw.headers.get("Idempotency-Replayed") !== "true", "a first create is not a replay");
  check(record.id === first.id && record.model === model && record.version === version, `the record: ${JSON.stringify(record)}`);
  check(JSON.stringify(record.payload["materials"]) === JSON.stringify(first["materials"]), "the payload round-trips");

  const replay = await models.createRecordRaw({ model, version, idempotencyKey: key, createRequest: { payload: first } });
  const replayed: ModelRecord = await replay.value();
  const replayHeader = replay.raw.headers.get("Idempotency-Replayed");
  check(replayHeader === "true", `a replay says Idempotency-Replayed: true, got ${replayHeader}`);
  check(replayed.id === record.id, "a replay answers the first record");
  check(replayed.createdAt?.getTime() === record.createdAt?.getTime(), "a replay writes nothing new");
  step(`createRecord ${record.id}, replayed with Idempotency-Replayed: ${replayHeader}`);

  const conflict = await refusal(
    models.createRecord({ model, version, idempotencyKey: key, createRequest: { payload: { ...first, mass_kg: 9 } } }),
  );
  check(conflict.status === 409 && conflict.code === "IDEMPOTENCY_CONFLICT", `same key, other payload: ${JSON.stringify(conflict)}`);
  const invalid = await refusal(
    models.createRecord({
      model,
      version,
      idempotencyKey: `${runId}-key-invalid`,
      createRequest: { payload: payloadOf("passport-invalid.json") },
    }),
  );
  check(invalid.status === 422 && invalid.code === "VALIDATION_FAILED", `an invalid create: ${JSON.stringify(invalid)}`);
  check(JSON.stringify(invalid.details).includes("$.record_scope"), "the refusal carries the report");

  const second: Payload = { ...valid, id: `${runId}-b`, mass_kg: 2.5 };
  await models.createRecord({ model, version, idempotencyKey: `${runId}-key-b`, createRequest: { payload: second } });
  const got = await models.getRecord({ model, version, id: first.id });
  check(got.id === first.id && got.payload["product_name"] === first["product_name"], "getRecord reads it back");

  const ours = { field: "id", op: "in" as const, value: [first.id, second.id] };
  const heavy = await models.queryRecords({
    model,
    version,
    queryRequest: { filter: { where: [ours, { field: "payload.mass_kg", op: "gt", value: 2 }] } },
  });
  const heavyIds = heavy.records.map((r) => r.id);
  check(JSON.stringify(heavyIds) === JSON.stringify([second.id]), `query mass_kg > 2: ${JSON.stringify(heavyIds)}`);
  const newestFirst = await models.queryRecords({
    model,
    version,
    queryRequest: {
      filter: {
        where: [ours, { field: "payload.record_scope", op: "eq", value: "product" }],
        sort: [{ field: "created_at", direction: "desc" }],
        limit: 10,
      },
    },
  });
  const queryIds = newestFirst.records.map((r) => r.id);
  check(JSON.stringify(queryIds) === JSON.stringify([second.id, first.id]), `query newest first: ${JSON.stringify(queryIds)}`);
  check(newestFirst.limit === 10 && newestFirst.offset === 0, `limit and offset applied: ${newestFirst.limit}, ${newestFirst.offset}`);
  const badQuery = await refusal(
    models.queryRecords({ model, version, queryRequest: { filter: { where: [{ field: "colour", op: "eq", value: "red" }] } } }),
  );
  check(badQuery.status === 400 && badQuery.code === "INVALID_QUERY", `an unknown field: ${JSON.stringify(badQuery)}`);
  step(`queryRecords: ${JSON.stringify(queryIds)}`);

  const summary = {
    language: "typescript",
    models: pairs,
    violations,
    record: { id: record.id },
    replayed_header: replayHeader,
    query_ids: queryIds,
  };
  fs.writeFileSync(summaryFile, JSON.stringify(summary));
  step("all checks passed");
}

main().catch((error) => {
  process.stderr.write(`typescript sdk: FAILED: ${error instanceof Error ? error.stack : error}\n`);
  process.exit(1);
});
