# Shell functions that the benchmark scripts share. Source it after
# setting profile (the stack profile) and cd to the repository root.

log() {
    echo "bench: $*" >&2
}

fail() {
    echo "bench: $*" >&2
    exit 1
}

# Fails unless every argument is a positive integer.
check_settings() {
    local value

    for value in "$@"; do
        [[ $value =~ ^[1-9][0-9]*$ ]] ||
            fail "invalid setting '$value': the NH_BENCH_* settings must be positive integers"
    done
}

# Stops the profile's stack, deletes its state except results/, and starts
# the services given as arguments; then reads var/PROFILE/env.
fresh_stack() {
    log "stopping the $profile stack and deleting its state, except results/"
    scripts/stack "$profile" stop >&2
    find "var/$profile" -mindepth 1 -maxdepth 1 ! -name results -exec rm -rf {} +

    log "starting the $profile stack: $*"
    scripts/stack "$profile" start "$@" >&2

    # shellcheck source=/dev/null
    . "var/$profile/env"
}

bench_sql() {
    psql "$NH_PG_DSN" -X -q -A -t -v ON_ERROR_STOP=1 "$@"
}

# Sends request $1 $2 with JSON body $3 and the extra curl arguments that
# follow. Prints the HTTP status, a newline and the body.
api() {
    local method=$1 path=$2 body=$3 response

    shift 3
    response=$(curl -sS -X "$method" "$NH_BASE_URL$path" \
                    -H 'Content-Type: application/json' --data-binary "$body" \
                    -w '\n%{http_code}' "$@") || fail "curl $method $path failed"
    printf '%s\n%s\n' "${response##*$'\n'}" "${response%$'\n'*}"
}

json_field() {
    python3 -c 'import json, sys; j = json.load(sys.stdin); print('"$1"')'
}

expect_status() {
    local response=$1 expected=$2 what=$3 status

    status=${response%%$'\n'*}
    if [ "$status" != "$expected" ]; then
        fail "$what returned HTTP $status, expected $expected: ${response#*$'\n'}"
    fi
    printf '%s\n' "${response#*$'\n'}"
}

# Creates the BENCHMARK plan (ENTERPRISE, whose bulk size is 1000, with
# request limits far above what the machine reaches), an owner, and a
# tenant on that plan. Sets api_key and tenant_id.
bench_tenant() {
    local owner_email owner_password signup token tenant

    bench_sql -c "CREATE TEMPORARY TABLE benchmark_plan AS SELECT * FROM plans WHERE name = 'ENTERPRISE'" \
              -c "UPDATE benchmark_plan SET name = 'BENCHMARK', monthly_quota = 1000000000000, rate_per_second = 1000000000, burst = 1000000000" \
              -c "INSERT INTO plans SELECT * FROM benchmark_plan" >/dev/null ||
        fail "creating the BENCHMARK plan failed; update bench/lib.sh to the columns of the plans table"

    owner_email="bench-$(date -u +%Y%m%d%H%M%S)-$$@example.com"
    owner_password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')

    log "creating the owner $owner_email, a tenant and an API key"
    signup=$(api POST /api/auth/signup \
                 "{\"email\":\"$owner_email\",\"password\":\"$owner_password\",\"name\":\"Benchmark\"}")
    token=$(expect_status "$signup" 201 "POST /api/auth/signup" | json_field 'j["token"]')
    tenant=$(api POST /api/tenants '{"name":"Benchmark","plan":"BENCHMARK"}' \
                 -H "Authorization: Bearer $token")
    tenant=$(expect_status "$tenant" 201 "POST /api/tenants")
    api_key=$(json_field 'j["apiKey"]["key"]' <<< "$tenant")
    tenant_id=$(json_field 'j["tenant"]["id"]' <<< "$tenant")
}
