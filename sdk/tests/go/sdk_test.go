// Exercises the generated Go client against a live hex-core-service: list models, validate (every
// violation with its JSON path), create with an Idempotency-Key and replay it, conflicts and
// refusals as typed errors, get and query. Written against what a client calls and sees, so a
// contract change that breaks the client fails here (go vet, the client's own checks of required
// fields, or an assertion). Built by `scripts/sdk build go` (go test -c) and run by
// `scripts/sdk run go`; the same steps exist in ../typescript and ../python.
package sdktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	hexcore "codeberg.org/CE-RISE-software/hex-core/sdk/go"
)

type violation struct {
	Path     string `json:"path"`
	Message  string `json:"message"`
	Severity string `json:"severity"`
}

type refused struct {
	status  int
	code    string
	details string
}

func env(t *testing.T, name, fallback string) string {
	t.Helper()
	value := os.Getenv(name)
	if value == "" {
		value = fallback
	}
	if value == "" {
		t.Fatalf("%s is not set (scripts/sdk run sets it; see scripts/sdk)", name)
	}
	return value
}

func payloadOf(t *testing.T, examples, name string) map[string]interface{} {
	t.Helper()
	bytes, err := os.ReadFile(filepath.Join(examples, name))
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]interface{}
	if err := json.Unmarshal(bytes, &body); err != nil {
		t.Fatal(err)
	}
	if payload, ok := body["payload"].(map[string]interface{}); ok {
		return payload
	}
	return body
}

// with returns a copy of payload with the given fields replaced.
func with(payload map[string]interface{}, fields map[string]interface{}) map[string]interface{} {
	out := map[string]interface{}{}
	for k, v := range payload {
		out[k] = v
	}
	for k, v := range fields {
		out[k] = v
	}
	return out
}

// refusal is the status and error envelope of a refused call; a failure when it succeeded.
func refusal(t *testing.T, response *http.Response, err error) refused {
	t.Helper()
	if err == nil {
		t.Fatalf("the call succeeded (%d) but should have been refused", response.StatusCode)
	}
	var apiError *hexcore.GenericOpenAPIError
	if !errors.As(err, &apiError) || response == nil {
		t.Fatalf("expected an API error with a response, got %v", err)
	}
	var envelope struct {
		Code    string          `json:"code"`
		Details json.RawMessage `json:"details"`
	}
	if err := json.Unmarshal(apiError.Body(), &envelope); err != nil {
		t.Fatalf("the error body is not an envelope: %v: %s", err, apiError.Body())
	}
	return refused{response.StatusCode, envelope.Code, string(envelope.Details)}
}

func ok(t *testing.T, response *http.Response, err error, what string) {
	t.Helper()
	if err != nil {
		body := ""
		var apiError *hexcore.GenericOpenAPIError
		if errors.As(err, &apiError) {
			body = string(apiError.Body())
		}
		t.Fatalf("%s: %v %s", what, err, body)
	}
}

func client(baseURL string) *hexcore.APIClient {
	config := hexcore.NewConfiguration()
	config.Servers = hexcore.ServerConfigurations{{URL: baseURL}}
	return hexcore.NewAPIClient(config)
}

func TestGeneratedClientAgainstALiveService(t *testing.T) {
	baseURL := strings.TrimSuffix(env(t, "HEX_SDK_URL", ""), "/")
	token := env(t, "HEX_SDK_TOKEN", "")
	examples := env(t, "HEX_SDK_EXAMPLES", "")
	summaryFile := env(t, "HEX_SDK_SUMMARY", "")
	model := env(t, "HEX_SDK_MODEL", "demo-passport")
	version := env(t, "HEX_SDK_VERSION", "0.1.0")
	runID := env(t, "HEX_SDK_RUN_ID", fmt.Sprintf("go-%d", os.Getpid()))

	api := client(baseURL)
	anonymous := context.Background()
	ctx := context.WithValue(anonymous, hexcore.ContextAccessToken, token)

	// Authentication is real: the same call without a token is refused.
	_, response, err := api.DiscoveryAPI.ListModels(anonymous).Execute()
	if r := refusal(t, response, err); r.status != 401 {
		t.Fatalf("no token: expected 401, got %+v", r)
	}

	listed, response, err := api.DiscoveryAPI.ListModels(ctx).Execute()
	ok(t, response, err, "ListModels")
	pairs := [][]string{}
	found := false
	for _, m := range listed.Models {
		pairs = append(pairs, []string{m.Id, m.Version})
		found = found || (m.Id == model && m.Version == version)
	}
	if !found {
		t.Fatalf("%s %s is not listed: %v", model, version, pairs)
	}
	t.Logf("ListModels: %v", pairs)

	valid := payloadOf(t, examples, "passport-valid.json")
	invalidPayload := payloadOf(t, examples, "passport-invalid.json")
	passed, response, err := api.ModelsAPI.ValidateModelPayload(ctx, model, version).
		ValidateRequest(*hexcore.NewValidateRequest(valid)).Execute()
	ok(t, response, err, "ValidateModelPayload (valid)")
	if !passed.Passed {
		t.Fatalf("the valid example does not pass: %+v", passed)
	}

	report, response, err := api.ModelsAPI.ValidateModelPayload(ctx, model, version).
		ValidateRequest(*hexcore.NewValidateRequest(invalidPayload)).Execute()
	ok(t, response, err, "ValidateModelPayload (invalid)")
	if report.Passed {
		t.Fatal("the invalid example passes")
	}
	violations := []violation{}
	sawRecordScope := false
	for _, r := range report.Results {
		v := violation{r.Path, r.Message, r.Severity}
		if !strings.HasPrefix(v.Path, "$") || v.Message == "" {
			t.Fatalf("a violation without a JSON path or message: %+v", v)
		}
		if v.Severity != "error" && v.Severity != "warning" && v.Severity != "info" {
			t.Fatalf("a violation with an unknown severity: %+v", v)
		}
		sawRecordScope = sawRecordScope || v.Path == "$.record_scope"
		violations = append(violations, v)
	}
	if len(violations) == 0 || !sawRecordScope {
		t.Fatalf("the record_scope violation is not seen: %+v", violations)
	}
	t.Logf("ValidateModelPayload: %d violations", len(violations))

	first := with(valid, map[string]interface{}{"id": runID + "-a"})
	key := runID + "-key-a"
	create := func(key string, payload map[string]interface{}) (*hexcore.Record, *http.Response, error) {
		return api.ModelsAPI.CreateRecord(ctx, model, version).IdempotencyKey(key).
			CreateRequest(*hexcore.NewCreateRequest(payload)).Execute()
	}
	record, response, err := create(key, first)
	ok(t, response, err, "CreateRecord")
	if response.StatusCode != 200 || response.Header.Get("Idempotency-Replayed") == "true" {
		t.Fatalf("a first create: %d, Idempotency-Replayed %q", response.StatusCode, response.Header.Get("Idempotency-Replayed"))
	}
	if record.Id != first["id"] || record.Model != model || record.Version != version {
		t.Fatalf("the record: %+v", record)
	}
	if !reflect.DeepEqual(record.Payload["materials"], first["materials"]) {
		t.Fatalf("the payload does not round-trip: %v", record.Payload)
	}

	replayed, response, err := create(key, first)
	ok(t, response, err, "CreateRecord (replay)")
	replayHeader := response.Header.Get("Idempotency-Replayed")
	if replayHeader != "true" {
		t.Fatalf("a replay says Idempotency-Replayed %q", replayHeader)
	}
	if replayed.Id != record.Id || !replayed.CreatedAt.Equal(*record.CreatedAt) {
		t.Fatalf("a replay answers another record: %+v, first %+v", replayed, record)
	}
	t.Logf("CreateRecord %s, replayed with Idempotency-Replayed: %s", record.Id, replayHeader)

	_, response, err = create(key, with(first, map[string]interface{}{"mass_kg": 9}))
	if r := refusal(t, response, err); r.status != 409 || r.code != "IDEMPOTENCY_CONFLICT" {
		t.Fatalf("same key, other payload: %+v", r)
	}
	_, response, err = create(runID+"-key-invalid", invalidPayload)
	if r := refusal(t, response, err); r.status != 422 || r.code != "VALIDATION_FAILED" || !strings.Contains(r.details, "$.record_scope") {
		t.Fatalf("an invalid create: %+v", r)
	}

	second := with(valid, map[string]interface{}{"id": runID + "-b", "mass_kg": 2.5})
	_, response, err = create(runID+"-key-b", second)
	ok(t, response, err, "CreateRecord (second)")
	got, response, err := api.ModelsAPI.GetRecord(ctx, model, version, runID+"-a").Execute()
	ok(t, response, err, "GetRecord")
	if got.Id != first["id"] || got.Payload["product_name"] != first["product_name"] {
		t.Fatalf("GetRecord: %+v", got)
	}

	ours := *hexcore.NewRecordQueryCondition("id", "in", []string{runID + "-a", runID + "-b"})
	query := func(filter hexcore.RecordQueryFilter) ([]string, *http.Response, error) {
		answer, response, err := api.ModelsAPI.QueryRecords(ctx, model, version).
			QueryRequest(*hexcore.NewQueryRequest(filter)).Execute()
		ids := []string{}
		if answer != nil {
			for _, r := range answer.Records {
				ids = append(ids, r.Id)
			}
		}
		return ids, response, err
	}
	heavyIDs, response, err := query(*filterWhere([]hexcore.RecordQueryCondition{
		ours, *hexcore.NewRecordQueryCondition("payload.mass_kg", "gt", 2),
	}))
	ok(t, response, err, "QueryRecords (mass_kg)")
	if !reflect.DeepEqual(heavyIDs, []string{runID + "-b"}) {
		t.Fatalf("query mass_kg > 2: %v", heavyIDs)
	}
	newestFirst := filterWhere([]hexcore.RecordQueryCondition{
		ours, *hexcore.NewRecordQueryCondition("payload.record_scope", "eq", "product"),
	})
	createdDesc := hexcore.NewRecordQuerySort("created_at")
	createdDesc.SetDirection("desc")
	newestFirst.SetSort([]hexcore.RecordQuerySort{*createdDesc})
	newestFirst.SetLimit(10)
	queryIDs, response, err := query(*newestFirst)
	ok(t, response, err, "QueryRecords (newest first)")
	if !reflect.DeepEqual(queryIDs, []string{runID + "-b", runID + "-a"}) {
		t.Fatalf("query newest first: %v", queryIDs)
	}
	_, response, err = query(*filterWhere([]hexcore.RecordQueryCondition{
		*hexcore.NewRecordQueryCondition("colour", "eq", "red"),
	}))
	if r := refusal(t, response, err); r.status != 400 || r.code != "INVALID_QUERY" {
		t.Fatalf("an unknown field: %+v", r)
	}
	t.Logf("QueryRecords: %v", queryIDs)

	summary, err := json.Marshal(map[string]interface{}{
		"language":        "go",
		"models":          pairs,
		"violations":      violations,
		"record":          map[string]string{"id": record.Id},
		"replayed_header": replayHeader,
		"query_ids":       queryIDs,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(summaryFile, summary, 0o644); err != nil {
		t.Fatal(err)
	}
}

// filterWhere is a filter with these conditions (`where` is optional in the contract: absent or
// null matches every record, so the generated constructor no longer takes it).
func filterWhere(conditions []hexcore.RecordQueryCondition) *hexcore.RecordQueryFilter {
	f := hexcore.NewRecordQueryFilter()
	f.SetWhere(conditions)
	return f
}
