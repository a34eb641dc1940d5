-- Up Migration

-- Counters of rate-limiter-flexible's Postgres store, shared by every web process. `expire` is epoch
-- milliseconds; the library deletes rows that expired an hour ago.
create table rate_limits (
  key varchar(255) primary key,
  points integer not null default 0,
  expire bigint
);

-- POST /tasks with an Idempotency-Key: the first response, kept 24 hours, so that a retry with the same
-- key and body gets it again and creates nothing. Written in the same transaction as the task.
create table idempotency_keys (
  user_id bigint not null references users (id) on delete cascade,
  key text not null,
  fingerprint text not null,
  response jsonb not null,
  created_at timestamptz not null default now(),
  primary key (user_id, key)
);
create index idempotency_keys_created_at on idempotency_keys (created_at);

-- Down Migration
drop table idempotency_keys;
drop table rate_limits;
