-- Argo CD health check for hex-core custom resources (HexCoreService and ModelCatalog).
-- Install through argocd-cm `resource.customizations.health.<group>_<Kind>` (see README.md here).
-- Argo CD runs this with gopher-lua (Lua 5.1): `obj` is the live object; return {status, message}.
--   Suspended   spec.paused, or ReconciliationPaused=True
--   Degraded    Degraded=True
--   Progressing no status yet, status.observedGeneration behind metadata.generation, or Ready not True
--   Healthy     Ready=True for the current generation
local hs = {}

local function condition(conditions, kind)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function describe(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  if c ~= nil and c.reason ~= nil and c.reason ~= "" then
    return c.reason
  end
  return fallback
end

local status = obj.status
local spec = obj.spec or {}
local conditions = nil
if status ~= nil then
  conditions = status.conditions
end

local paused = condition(conditions, "ReconciliationPaused")
if spec.paused == true or (paused ~= nil and paused.status == "True") then
  hs.status = "Suspended"
  hs.message = describe(paused, "reconciliation is paused")
  return hs
end

if status == nil then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to report status"
  return hs
end

local degraded = condition(conditions, "Degraded")
if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(degraded, "degraded")
  return hs
end

local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "the operator has not observed generation " .. tostring(generation) .. " yet"
  return hs
end

local ready = condition(conditions, "Ready")
if ready ~= nil and ready.status == "True" then
  if ready.observedGeneration ~= nil and generation ~= nil and ready.observedGeneration < generation then
    hs.status = "Progressing"
    hs.message = "Ready refers to an older generation"
    return hs
  end
  hs.status = "Healthy"
  hs.message = describe(ready, "ready")
  return hs
end

hs.status = "Progressing"
hs.message = describe(ready, "converging")
return hs
