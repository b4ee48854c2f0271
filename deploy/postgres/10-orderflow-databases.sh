#!/bin/sh
# First start of the PostgreSQL volume: one role per tenant, so Temporal and orderflow never share tables.
# The postgres image runs (or sources) this once, on an empty data directory only: changing a password later
# needs `ALTER ROLE ... PASSWORD ...` or a fresh volume (`docker-compose down -v`).
set -e

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v temporal_password="${TEMPORAL_DB_PASSWORD:?}" \
    -v orderflow_password="${ORDERFLOW_DB_PASSWORD:?}" <<'SQL'
-- Temporal's schema job creates `temporal` and `temporal_visibility` itself, hence CREATEDB.
CREATE ROLE temporal LOGIN CREATEDB PASSWORD :'temporal_password';
CREATE ROLE orderflow LOGIN PASSWORD :'orderflow_password';
CREATE DATABASE orderflow OWNER orderflow;
SQL
