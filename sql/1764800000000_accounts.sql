-- Up Migration

-- Revocation: every token carries the generation of its user at the time it was signed (claim `gen`).
-- POST /logout and POST /me/password move the generation on, so every token signed before is refused
-- (the user's row is read on every request anyway), and one signed after, even within the same second,
-- is accepted. Tokens signed before this column existed carry no claim, read as 0.
alter table users add column token_generation integer not null default 0;

-- GET /users: newest first by id (the primary key), or one role's (this index).
create index users_role_id on users (role, id desc);

-- Open event streams and waits of a user end when their tokens are revoked, their role changes or their
-- account goes: a NOTIFY on the task events channel, sent at commit, names them.
-- At most 500 ids a notification, so a payload stays far below Postgres' 8000-byte limit.
create function notify_users_changed() returns trigger language plpgsql as $$
begin
  if tg_op = 'UPDATE' then
    perform pg_notify('task_events', json_build_object('revoked', json_agg(id))::text)
    from (select n.id, (row_number() over (order by n.id) - 1) / 500 as part
          from new_rows n join old_rows o using (id)
          where n.token_generation <> o.token_generation or n.role <> o.role) changed
    group by part;
  else
    perform pg_notify('task_events', json_build_object('revoked', json_agg(id))::text)
    from (select id, (row_number() over (order by id) - 1) / 500 as part from old_rows) gone
    group by part;
  end if;
  return null;
end $$;

create trigger users_notify_update after update on users
  referencing old table as old_rows new table as new_rows for each statement execute function notify_users_changed();
create trigger users_notify_delete after delete on users
  referencing old table as old_rows for each statement execute function notify_users_changed();

-- Down Migration
drop trigger users_notify_delete on users;
drop trigger users_notify_update on users;
drop function notify_users_changed();
drop index users_role_id;
alter table users drop column token_generation;
