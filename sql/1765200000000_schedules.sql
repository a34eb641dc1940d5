-- Up Migration

-- Recurring tasks. An active schedule always has exactly one pending task, its next occurrence (tasks with
-- its schedule_id), written with its job in the transaction that creates, resumes or changes the schedule,
-- and the following one in the transaction that completes or deletes the current one. `fires_at` is the
-- cron time the pending occurrence stands for (the user may move the occurrence itself): the next one is
-- the first cron time after it, or after now when that has passed (the times between are `skipped`).
create table schedules (
  id bigint generated always as identity primary key,
  user_id bigint not null references users (id) on delete cascade,
  title text not null check (length(title) between 1 and 200),
  description text not null default '' check (length(description) <= 5000),
  cron text not null check (length(cron) between 1 and 200),
  time_zone text not null default 'UTC',
  paused boolean not null default false,
  fires_at timestamptz,
  skipped integer not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check (paused = (fires_at is null))
);
create index schedules_user_id_id on schedules (user_id, id desc);

-- Completed occurrences stay when their schedule is deleted, with schedule_id null.
alter table tasks add column schedule_id bigint references schedules (id) on delete set null;
-- Two pending occurrences of one schedule can never exist.
create unique index tasks_one_pending_occurrence on tasks (schedule_id) where status = 'pending';
-- GET /tasks?schedule_id=: a schedule's occurrences, newest first.
create index tasks_schedule_id_id on tasks (schedule_id, id desc) where schedule_id is not null;

-- The task as the API shows it, in webhook bodies: with its schedule.
create or replace function task_json(t tasks) returns json language sql stable as $$
  select json_build_object(
    'id', t.id, 'user_id', t.user_id, 'title', t.title, 'description', t.description, 'status', t.status,
    'due_at', to_char(t.due_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'completed_at', to_char(t.completed_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'created_at', to_char(t.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'updated_at', to_char(t.updated_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'job_id', t.job_id,
    'schedule_id', t.schedule_id)
$$;

-- Down Migration
create or replace function task_json(t tasks) returns json language sql stable as $$
  select json_build_object(
    'id', t.id, 'user_id', t.user_id, 'title', t.title, 'description', t.description, 'status', t.status,
    'due_at', to_char(t.due_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'completed_at', to_char(t.completed_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'created_at', to_char(t.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'updated_at', to_char(t.updated_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'job_id', t.job_id)
$$;
drop index tasks_schedule_id_id;
drop index tasks_one_pending_occurrence;
alter table tasks drop column schedule_id;
drop table schedules;
