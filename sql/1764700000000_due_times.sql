-- Up Migration

-- Each task's own due time (POST /tasks due_at or delay_seconds; PATCH reschedules it).

-- due_at is kept to the millisecond, whoever writes it (an operator's `now()` included): the job's
-- start_after (a JS Date) then equals it exactly, and a `sort=due` cursor (the task's due_at as the API shows
-- it, plus its id) names a row exactly.
create function tasks_due_at_milliseconds() returns trigger language plpgsql as $$
begin
  new.due_at := date_trunc('milliseconds', new.due_at);
  return new;
end $$;
create trigger tasks_due_at_milliseconds before insert or update of due_at on tasks
  for each row execute function tasks_due_at_milliseconds();
update tasks set due_at = due_at where due_at <> date_trunc('milliseconds', due_at);

-- GET /tasks?sort=due: soonest due first, ties by id, keyset pages on (due_at, id). One user's list and an
-- admin's all-users list each walk an index in order. Pending tasks have partial indexes of their own: most
-- tasks are completed and due in the past, so "what is due next" would otherwise step over all of them.
create index tasks_user_id_due_at_id on tasks (user_id, due_at, id);
create index tasks_due_at_id on tasks (due_at, id);
create index tasks_pending_user_id_due_at_id on tasks (user_id, due_at, id) where status = 'pending';
create index tasks_pending_due_at_id on tasks (due_at, id) where status = 'pending';

-- A rescheduled task is an event too: event streams see it, and its NOTIFY re-arms the workers' wake timers
-- (a task moved earlier than the armed time must not wait for it).
alter table task_events drop constraint task_events_type_check;
alter table task_events add constraint task_events_type_check
  check (type in ('created', 'completed', 'deleted', 'rescheduled'));

create or replace function record_task_events() returns trigger language plpgsql as $$
begin
  if tg_op = 'INSERT' then
    insert into task_events (user_id, task_id, type) select user_id, id, 'created' from new_rows;
  elsif tg_op = 'UPDATE' then
    insert into task_events (user_id, task_id, type)
    select n.user_id, n.id,
           case when o.status = 'pending' and n.status = 'completed' then 'completed' else 'rescheduled' end
    from new_rows n join old_rows o using (id)
    where (o.status = 'pending' and n.status = 'completed')
       or (n.status = 'pending' and n.due_at is distinct from o.due_at);
  else
    insert into task_events (user_id, task_id, type) select user_id, id, 'deleted' from old_rows;
  end if;
  return null;
end $$;

-- As before, with only completions and deletions in `changed` (what wakes a request waiting on a task).
create or replace function notify_task_events() returns trigger language plpgsql as $$
begin
  perform pg_notify('task_events', chunk)
  from (
    select json_build_object(
      'tx', max(tx_id)::text,
      'id', max(id),
      'changed', coalesce(
        json_agg(json_build_array(task_id, left(type, 1))) filter (where type in ('completed', 'deleted')), '[]')
    )::text as chunk
    from (select *, (row_number() over (order by id) - 1) / 200 as part from recorded) numbered
    group by part
  ) chunks;
  return null;
end $$;

-- Down Migration
create or replace function notify_task_events() returns trigger language plpgsql as $$
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
create or replace function record_task_events() returns trigger language plpgsql as $$
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
delete from task_events where type = 'rescheduled';
alter table task_events drop constraint task_events_type_check;
alter table task_events add constraint task_events_type_check check (type in ('created', 'completed', 'deleted'));
drop index tasks_pending_due_at_id;
drop index tasks_pending_user_id_due_at_id;
drop index tasks_due_at_id;
drop index tasks_user_id_due_at_id;
drop trigger tasks_due_at_milliseconds on tasks;
drop function tasks_due_at_milliseconds();
