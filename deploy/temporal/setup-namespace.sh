#!/bin/sh
# One-shot after the server is up: create the namespace and register orderflow's search attributes.
# Arguments are NAME=Type pairs (workflows/search_attributes.py; tests/test_compose.py keeps them in step).
# Idempotent: an existing namespace or attribute of the same type is kept; an attribute that exists with
# ANOTHER type fails the job, since orders would then fail every workflow task that upserts it.
set -eu

ADDRESS=${TEMPORAL_ADDRESS:?}
NAMESPACE=${TEMPORAL_NAMESPACE:-default}
RETENTION=${TEMPORAL_NAMESPACE_RETENTION:-7d}
ATTEMPTS=${TEMPORAL_SETUP_ATTEMPTS:-60}

attempt=1
until temporal operator cluster health --address "$ADDRESS" >/dev/null 2>&1; do
    if [ "$attempt" -ge "$ATTEMPTS" ]; then
        echo "temporal_setup_failed reason=server_unhealthy address=$ADDRESS attempts=$attempt" >&2
        exit 1
    fi
    attempt=$((attempt + 1))
    sleep 2
done

if temporal operator namespace describe --address "$ADDRESS" --namespace "$NAMESPACE" >/dev/null 2>&1; then
    echo "temporal_namespace_exists namespace=$NAMESPACE"
else
    temporal operator namespace create --address "$ADDRESS" --namespace "$NAMESPACE" --retention "$RETENTION"
    echo "temporal_namespace_created namespace=$NAMESPACE retention=$RETENTION"
fi

# One call per attribute: the server rejects a whole batch when any one of them already exists. Transient
# errors (a namespace created a moment ago is not in every cache yet) are retried.
register() {
    temporal operator search-attribute create --address "$ADDRESS" --namespace "$NAMESPACE" \
        --name "$1" --type "$2" 2>&1
}

for pair in "$@"; do
    name=${pair%%=*}
    type=${pair#*=}
    attempt=1
    while :; do
        if output=$(register "$name" "$type"); then
            echo "search_attribute_registered name=$name type=$type"
            break
        fi
        if printf '%s' "$output" | grep -qi "different type"; then
            echo "search_attribute_conflict name=$name type=$type: $output" >&2
            exit 1
        fi
        if printf '%s' "$output" | grep -qi "already exists"; then
            echo "search_attribute_exists name=$name type=$type"
            break
        fi
        if [ "$attempt" -ge 15 ]; then
            echo "search_attribute_failed name=$name type=$type: $output" >&2
            exit 1
        fi
        attempt=$((attempt + 1))
        sleep 2
    done
done
echo "temporal_setup_done namespace=$NAMESPACE attributes=$#"
