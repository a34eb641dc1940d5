-- Up Migration
create table users (
  id bigint generated always as identity primary key,
  email text not null check (email = lower(btrim(email)) and email <> ''),
  password_hash text not null,
  role text not null default 'user' check (role in ('user', 'admin')),
  -- True only for the admin who registered while no admin existed (see the index below).
  bootstrap_admin boolean not null default false check (not bootstrap_admin or role = 'admin'),
  created_at timestamptz not null default now()
);

-- Emails are stored trimmed and lower-cased; uniqueness is therefore case-insensitive.
create unique index users_email_key on users (email);

-- At most one row may be "the first admin": two racing bootstrap registrations cannot both win.
create unique index users_one_bootstrap_admin on users (bootstrap_admin) where bootstrap_admin;

-- Down Migration
drop table users;
