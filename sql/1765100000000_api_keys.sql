-- Up Migration

-- API keys for scripts: only a SHA-256 of the key is kept (the key is 256 random bits: no guessing
-- needs slowing down, so a fast hash is right, and a lookup by it is one index probe). `prefix` (the
-- first characters) names it in lists and logs. A key acts as its user, with the user's current role,
-- within its scopes.
create table api_keys (
  id bigint generated always as identity primary key,
  user_id bigint not null references users (id) on delete cascade,
  name text not null check (length(name) between 1 and 100),
  scopes text[] not null check (
    cardinality(scopes) between 1 and 6
    and scopes <@ array['tasks:read', 'tasks:write', 'schedules:read', 'schedules:write', 'webhooks:read', 'webhooks:write']
  ),
  prefix text not null,
  hash bytea not null unique,
  created_at timestamptz not null default now(),
  expires_at timestamptz,
  last_used_at timestamptz
);
create index api_keys_user_id on api_keys (user_id, id desc);

-- A revoked key (deleted, with its user too) is refused at once in every process: each web process caches
-- keys it has seen, and this NOTIFY, sent at commit on the task events channel, names the ones to forget.
create function notify_api_keys_revoked() returns trigger language plpgsql as $$
begin
  perform pg_notify('task_events', json_build_object('keys', json_agg(id))::text)
  from (select id, (row_number() over (order by id) - 1) / 500 as part from old_rows) gone
  group by part;
  return null;
end $$;
create trigger api_keys_notify_delete after delete on api_keys
  referencing old table as old_rows for each statement execute function notify_api_keys_revoked();

-- Down Migration
drop trigger api_keys_notify_delete on api_keys;
drop function notify_api_keys_revoked();
drop table api_keys;
