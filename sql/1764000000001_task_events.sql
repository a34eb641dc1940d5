-- Up Migration

-- Every change a client can watch, written by triggers in the transaction that changed the task, so the
-- API, the worker and an operator's SQL all record events alike, and a rolled-back change records none.
-- Readers order events by (tx_id, id) and only read those whose transaction is older than every one
-- still running (pg_snapshot_xmin): then no event can appear later in front of one already read, and a
-- cursor of (tx_id, id) never skips one. Kept 24 hours (the worker deletes older ones).
create table task_events (
  tx_id xid8 not null default pg_current_xact_id(),
  id bigint generated always as identity,
  user_id bigint not null, -- no foreign key: a deleted user's task deletions are events too
  task_id bigint not null,
  type text not null check (type in ('created', 'completed', 'deleted')),
  at timestamptz not null default now(),
  primary key (tx_id, id)
);
create index task_events_user on task_events (user_id, tx_id, id);
create index task_events_at on task_events (at);

create function record_task_events() returns trigger language plpgsql as $$
begin
  if tg_op = 'INSERT' then
    insert into task_events (user_id, task_id, type) select user_id, id, 'created' from new_rows;
  elsif tg_op = 'UPDATE' then
    insert into task_events (user_id, task_id, type)
    select n.user_id, n.id, 'completed' from new_rows n join old_rows o using (id)
    where o.status = 'pending' and n.status = 'completed';
  else
    insert into task_events (user_id, task_id, type) select user_id, id, 'deleted' from old_rows;
  end if;
  return null;
end $$;

create trigger tasks_record_insert after insert on tasks
  referencing new table as new_rows for each statement execute function record_task_events();
create trigger tasks_record_update after update on tasks
  referencing old table as old_rows new table as new_rows for each statement execute function record_task_events();
create trigger tasks_record_delete after delete on tasks
  referencing old table as old_rows for each statement execute function record_task_events();

-- NOTIFY on commit (never for a rolled-back change), one per 200 events of a statement, so a payload stays
-- far below Postgres' 8000-byte limit: the newest event's place, a nudge for readers of the table, and the
-- ids of the tasks completed ('c') or deleted ('d'), so a request waiting on one task wakes at once.
create function notify_task_events() returns trigger language plpgsql as $$
begin
  perform pg_notify('task_events', chunk)
  from (
    select json_build_object(
      'tx', max(tx_id)::text,
      'id', max(id),
      'changed', coalesce(json_agg(json_build_array(task_id, left(type, 1))) filter (where type <> 'created'), '[]')
    )::text as chunk
    from (select *, (row_number() over (order by id) - 1) / 200 as part from recorded) numbered
    group by part
  ) chunks;
  return null;
end $$;

create trigger task_events_notify after insert on task_events
  referencing new table as recorded for each statement execute function notify_task_events();

-- Down Migration
drop trigger tasks_record_insert on tasks;
drop trigger tasks_record_update on tasks;
drop trigger tasks_record_delete on tasks;
drop function record_task_events();
drop table task_events;
drop function notify_task_events();
