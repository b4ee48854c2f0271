#!/bin/sh
# One-shot before the server starts: create Temporal's two databases and bring their schemas up to date.
# Idempotent: an existing database is kept and `update-schema` applies only the versions still missing, so
# this runs on every `up` and also upgrades the schema after the server image is bumped.
set -eu

: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${SQL_PASSWORD:?}"
SCHEMA_ROOT=/etc/temporal/schema/postgresql/v12

sql_tool() {
    temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "${DB_PORT:-5432}" -u "$POSTGRES_USER" "$@"
}

for pair in "${DBNAME:-temporal}:temporal" "${VISIBILITY_DBNAME:-temporal_visibility}:visibility"; do
    database=${pair%%:*}
    schema=${pair#*:}
    echo "temporal_schema database=$database"
    sql_tool --db "$database" create
    sql_tool --db "$database" setup-schema -v 0.0
    sql_tool --db "$database" update-schema -d "$SCHEMA_ROOT/$schema/versioned"
done
echo "temporal_schema_ready"
