-- Up Migration

-- A user's webhook endpoints. The secret must be readable by the worker to sign (HMAC needs it), so it is
-- stored as it is given out (`whsec_` + base64 of 32 random bytes); it never appears in a log or in an
-- answer but the creation and a rotation. During a rotation the previous secret signs too, until
-- `previous_secret_until`.
create table webhook_endpoints (
  id bigint generated always as identity primary key,
  user_id bigint not null references users (id) on delete cascade,
  url text not null check (length(url) between 1 and 2000),
  events text[] not null check (
    cardinality(events) between 1 and 3
    and events <@ array['task.created', 'task.completed', 'task.deleted']
  ),
  description text not null default '' check (length(description) <= 500),
  enabled boolean not null default true,
  secret text not null,
  previous_secret text,
  previous_secret_until timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index webhook_endpoints_user_id on webhook_endpoints (user_id, id desc);

-- One delivery per (event, endpoint): the unique key means no relay can write one twice. `body` holds the
-- exact bytes sent, so every attempt sends the same body under the same webhook-id (the delivery's id).
create table webhook_deliveries (
  id uuid primary key,
  seq bigint generated always as identity unique, -- the order of the deliveries log's pages
  endpoint_id bigint not null references webhook_endpoints (id) on delete cascade,
  user_id bigint not null,
  event_tx xid8 not null,
  event_id bigint not null,
  event_type text not null,
  task_id bigint not null,
  event_at timestamptz not null,
  body text not null,
  status text not null default 'pending' check (status in ('pending', 'succeeded', 'failed')),
  attempts integer not null default 0,
  last_status_code integer,
  last_error text,
  last_response text,
  next_attempt_at timestamptz,
  created_at timestamptz not null default now(),
  delivered_at timestamptz,
  unique (endpoint_id, event_tx, event_id)
);
create index webhook_deliveries_endpoint_seq on webhook_deliveries (endpoint_id, seq desc);
create index webhook_deliveries_created_at on webhook_deliveries (created_at);

-- The relay's place in the task event history: it turns the events after it into deliveries, and moves it
-- on in the same transaction. One row; a relay locks it, so one relay works at a time.
create table webhook_relay (
  id integer primary key default 1 check (id = 1),
  tx xid8 not null,
  event_id bigint not null
);
insert into webhook_relay (tx, event_id) values (pg_snapshot_xmin(pg_current_snapshot()), 0);

-- A task as the API shows it (src/domain/tasks/task.ts), for the deliveries' bodies: times in UTC to the
-- millisecond, keys in the API's order.
create function task_json(t tasks) returns json language sql stable as $$
  select json_build_object(
    'id', t.id, 'user_id', t.user_id, 'title', t.title, 'description', t.description, 'status', t.status,
    'due_at', to_char(t.due_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'completed_at', to_char(t.completed_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'created_at', to_char(t.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'updated_at', to_char(t.updated_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'job_id', t.job_id)
$$;

-- Down Migration
drop function task_json(tasks);
drop table webhook_relay;
drop table webhook_deliveries;
drop table webhook_endpoints;
