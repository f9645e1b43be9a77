-- Runs health.lua against fixture objects; prints one line per case and a closing
-- "N passed, N failed" line. Usage: lua5.1 test.lua   (from any directory)
local here = (arg and arg[0] or "test.lua"):match("^(.*)/") or "."
local chunk = assert(loadfile(here .. "/health.lua"))

local function run(object)
  obj = object -- Argo CD passes the live object as the global `obj`
  return chunk()
end

local function cond(kind, status, extra)
  local c = { type = kind, status = status, reason = kind .. status, message = "" }
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end

local cases = {
  { "no status yet", { metadata = { generation = 1 }, spec = {} }, "Progressing" },
  { "ready for the current generation",
    { metadata = { generation = 3 }, spec = {},
      status = { observedGeneration = 3, conditions = { cond("Ready", "True", { message = "3/3 replicas on abc" }) } } },
    "Healthy", "3/3 replicas on abc" },
  { "observedGeneration lags",
    { metadata = { generation = 4 }, spec = {},
      status = { observedGeneration = 3, conditions = { cond("Ready", "True") } } },
    "Progressing" },
  { "Ready condition from an older generation",
    { metadata = { generation = 4 }, spec = {},
      status = { observedGeneration = 4, conditions = { cond("Ready", "True", { observedGeneration = 3 }) } } },
    "Progressing" },
  { "converging: Ready false",
    { metadata = { generation = 2 }, spec = {},
      status = { observedGeneration = 2, conditions = { cond("Ready", "False", { message = "1/3 replicas on new catalog" }), cond("Progressing", "True") } } },
    "Progressing", "1/3 replicas on new catalog" },
  { "no Ready condition yet",
    { metadata = { generation = 1 }, spec = {}, status = { observedGeneration = 1, conditions = {} } },
    "Progressing" },
  { "degraded wins over ready",
    { metadata = { generation = 2 }, spec = {},
      status = { observedGeneration = 2, conditions = { cond("Ready", "True"), cond("Degraded", "True", { message = "catalogs a and b declare m@1 differently" }) } } },
    "Degraded", "catalogs a and b declare m@1 differently" },
  { "degraded even when observedGeneration lags",
    { metadata = { generation = 5 }, spec = {},
      status = { observedGeneration = 4, conditions = { cond("Degraded", "True") } } },
    "Degraded" },
  { "paused by spec",
    { metadata = { generation = 2 }, spec = { paused = true }, status = { observedGeneration = 1 } },
    "Suspended" },
  { "paused by condition",
    { metadata = { generation = 2 }, spec = {},
      status = { observedGeneration = 2, conditions = { cond("ReconciliationPaused", "True", { message = "spec.paused is true" }), cond("Degraded", "True") } } },
    "Suspended", "spec.paused is true" },
  { "Degraded=False does not degrade",
    { metadata = { generation = 1 }, spec = {},
      status = { observedGeneration = 1, conditions = { cond("Degraded", "False"), cond("Ready", "True") } } },
    "Healthy" },
  { "ModelCatalog accepted (no spec.paused field)",
    { metadata = { generation = 1 }, spec = { models = {} },
      status = { observedGeneration = 1, modelCount = 4, conditions = { cond("Ready", "True") } } },
    "Healthy" },
}

local passed, failed = 0, 0
for _, case in ipairs(cases) do
  local name, object, want_status, want_message = case[1], case[2], case[3], case[4]
  local hs = run(object)
  local ok = hs.status == want_status and (want_message == nil or hs.message == want_message)
  if ok then
    passed = passed + 1
    print("ok     " .. name .. " -> " .. hs.status)
  else
    failed = failed + 1
    print("FAILED " .. name .. ": got " .. tostring(hs.status) .. " (" .. tostring(hs.message) ..
      "), want " .. want_status .. (want_message and (" (" .. want_message .. ")") or ""))
  end
end
print(string.format("lua: %d passed, %d failed", passed, failed))
os.exit(failed == 0 and 0 or 1)
