-- Up Migration
create table tasks (
  id bigint generated always as identity primary key,
  user_id bigint not null references users (id) on delete cascade,
  title text not null check (length(title) between 1 and 200),
  description text not null default '' check (length(description) <= 5000),
  status text not null default 'pending' check (status in ('pending', 'completed')),
  due_at timestamptz not null,
  completed_at timestamptz,
  job_id uuid,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check ((status = 'completed') = (completed_at is not null))
);

-- Lists are newest first with the id as cursor: (user_id, id desc) serves a user's list, the primary
-- key serves an admin's; the status filter rides along.
create index tasks_user_id_id on tasks (user_id, id desc);
create index tasks_user_id_status_id on tasks (user_id, status, id desc);
create index tasks_status_id on tasks (status, id desc);
-- The worker finds a task by its job.
create unique index tasks_job_id on tasks (job_id);

-- Down Migration
drop table tasks;
