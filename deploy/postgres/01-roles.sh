#!/bin/sh
# The two roles session-vault needs (README "Running on PostgreSQL and S3"): an owner that
# runs the migrations and owns the tables, and the app role the replicas serve as, which is
# neither a superuser nor BYPASSRLS nor the owner, so row-level security always holds it.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" \
  -v owner_password="$VAULT_OWNER_PASSWORD" -v app_password="$VAULT_APP_PASSWORD" <<'SQL'
CREATE ROLE vault_owner LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD :'owner_password';
CREATE ROLE vault_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD :'app_password';
CREATE DATABASE session_vault OWNER vault_owner;
SQL
