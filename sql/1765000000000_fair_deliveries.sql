-- Up Migration

-- An endpoint that has failed every attempt since `failing_since` (the first failure after its last
-- success) is disabled once that is 5 days ago (Svix's rule), with a reason its owner can read; so is one
-- that answered 410 Gone. `PATCH {"enabled": true}` turns it back on and clears both.
alter table webhook_endpoints
  add column failing_since timestamptz,
  add column disabled_reason text check (length(disabled_reason) <= 500);

-- Down Migration
alter table webhook_endpoints drop column disabled_reason, drop column failing_since;
