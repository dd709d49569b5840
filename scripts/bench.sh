#!/usr/bin/env bash
# End-to-end benchmark of servicedesk against real servers. Prints figures.
# It checks only that every mail got exactly one reply and INBOX ends empty;
# a failed check is printed loudly (!! FAILED), the measuring goes on, and the
# script exits 1 at the end, keeping its work directory (logs) for a look.
#
# Usage: scripts/bench.sh [N...]        (default: 2000 20000)
#
# For each N:
#   - N realistic mails: mail i is corpus file i mod 1000 (tests/corpus/{nl,fr,
#     en,de}) with the Message-ID <bench-i@bench.example>; every corpus sender
#     is a registered reference person of one active customer, so every mail
#     opens a ticket and gets one acknowledgement;
#   - per backend (SQLite, PostgreSQL): fresh private Dovecot + SMTP capture
#     server (scripts/mailservers.sh), N mails seeded into INBOX over one IMAP
#     connection (MULTIAPPEND, LITERAL+), then `servicedesk run --once` under
#     GNU time: wall seconds, mails/s end to end, peak RSS, replies captured;
# then once: latency under IDLE (the daemon on SQLite, one mail at a time,
# time until its reply reaches the SMTP server), and the SIGTERM shutdown time.
#
# Environment:
#   SERVICEDESK_TEST_PG_URL  PostgreSQL server to create the throw-away
#                            database sd_bench_<pid> on
#                            (default postgres://root@127.0.0.1:5432/postgres)
#   BENCH_TICKET_PREFIX      [support] ticket_prefix (default BN, see below)
#   BENCH_LATENCY_ROUNDS     mails in the latency test (default 30)
#   BENCH_KEEP=1             keep the work directory
#   BENCH_SQLITE_ONLY=1      skip the PostgreSQL runs
#   BENCH_PERF=1             record each `run --once` with `perf record` into
#                            the work directory (kept), for `perf report -i`;
#                            BENCH_PERF=all records the whole machine meanwhile
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"

PY="${PYTHON:-python3}"
BIN="$ROOT/target/release/servicedesk"
SEED=(env PYTHONDONTWRITEBYTECODE=1 "$PY" "$ROOT/scripts/bench_seed.py")
CORPUS="$ROOT/tests/corpus"
PG_ADMIN_URL="${SERVICEDESK_TEST_PG_URL:-postgres://root@127.0.0.1:5432/postgres}"
PG_DB="sd_bench_$$"
# The corpus quotes ticket numbers of a past desk ("RE: [CS-004387] ...").
# With the usual prefix CS those tokens would thread the mail onto whatever
# benchmark ticket got that number (every sender belongs to the one customer),
# so it would get no acknowledgement. Another prefix keeps every mail new.
TICKET_PREFIX="${BENCH_TICKET_PREFIX:-BN}"
LATENCY_ROUNDS="${BENCH_LATENCY_ROUNDS:-30}"
LATENCY_WARMUP=1

COUNTS=("$@")
[[ ${#COUNTS[@]} -gt 0 ]] || COUNTS=(2000 20000)
for n in "${COUNTS[@]}"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [N...]  (N: number of mails)" >&2; exit 2; }
done

WORK=""
SERVER_DIRS=()
PG_CREATED=0
DAEMON_PID=""
SUMMARY=()
FAILURES=()
LATENCY_LINE=""
SHUTDOWN_LINE=""

say() { printf '\n== %s\n' "$*"; }
die() { echo "bench: error: $*" >&2; exit 1; }

# A failed expectation: said loudly, remembered, and the benchmark goes on
# (the script exits 1 at the end).
fail() {
  printf '!! FAILED: %s\n' "$*"
  FAILURES+=("$*")
}

# Last lines of a daemon log (colours stripped), on failure.
show_tail() { # show_tail FILE [LINES]
  if [[ -s "$1" ]]; then
    echo "----- last ${2:-20} lines of $1"
    tail -n "${2:-20}" "$1" | sed 's/\x1b\[[0-9;]*m//g'
    echo "-----"
  fi
}

cleanup() {
  local rc=$?
  set +e
  if [[ -n "$DAEMON_PID" ]] && kill -0 "$DAEMON_PID" 2>/dev/null; then
    kill -KILL "$DAEMON_PID" 2>/dev/null
    wait "$DAEMON_PID" 2>/dev/null
  fi
  local d
  for d in "${SERVER_DIRS[@]}"; do
    scripts/mailservers.sh stop "$d" >/dev/null 2>&1
  done
  if [[ $PG_CREATED == 1 ]]; then
    pg_drop
  fi
  if [[ -n "$WORK" ]]; then
    if [[ "${BENCH_KEEP:-0}" == 1 || $rc != 0 ]]; then
      echo "bench: work directory kept: $WORK" >&2
    else
      rm -rf "$WORK"
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------ helpers --

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.1f", (s > 0 ? n / s : 0) }'; }

# A value of ports.env.
port_of() { sed -n "s/^$2=//p" "$1/ports.env"; }

# Starts a fresh pair of servers in WORK/NAME; prints nothing.
start_servers() { # start_servers NAME
  local dir="$WORK/$1"
  SERVER_DIRS+=("$dir")
  if ! scripts/mailservers.sh start "$dir" >"$WORK/$1.start.log" 2>&1; then
    cat "$WORK/$1.start.log" >&2
    die "the mail servers did not start in $dir"
  fi
}

stop_servers() { # stop_servers NAME
  scripts/mailservers.sh stop "$WORK/$1" >/dev/null 2>&1 || true
}

# postgres://user@host:port/db?x -> the same URL naming database $2.
with_database() {
  local url="$1" name="$2" base query="" scheme rest
  base="${url%%\?*}"
  [[ "$url" == *\?* ]] && query="?${url#*\?}"
  scheme="${base%%://*}"
  rest="${base#*://}"
  echo "$scheme://${rest%%/*}/$name$query"
}

pg_drop() {
  psql "$PG_ADMIN_URL" -X -q -v ON_ERROR_STOP=1 \
    -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 \
    || echo "bench: could not drop database $PG_DB on $PG_ADMIN_URL" >&2
  PG_CREATED=0
}

toml_str() { local s="${1//\\/\\\\}"; printf '"%s"' "${s//\"/\\\"}"; }

# The configuration for the servers in DIR and database URL.
write_config() { # write_config FILE SERVER_DIR DB_URL
  local file="$1" dir="$2" url="$3"
  cat >"$file" <<EOF
[database]
url = $(toml_str "$url")

[support]
address = "support@example.test"
ticket_prefix = "$TICKET_PREFIX"

[imap]
host = "127.0.0.1"
port = $(port_of "$dir" IMAPS_PORT)
tls = "implicit"
ca_file = $(toml_str "$dir/tls/ca.pem")
username = "support@example.test"
password = "support-pass"
mailbox = "INBOX"
processed_folder = "Processed"
quarantine_folder = "Quarantine"

[smtp]
host = "127.0.0.1"
port = $(port_of "$dir" SMTP_PORT)
tls = "none"
from = "Care Solutions Servicedesk <support@example.test>"
timeout_secs = 10

[outbox]
retry_base_secs = 1
once_wait_secs = 120

[limits]
# One address sends many mails here: keep the loop breaker and the
# explanation limit out of the way.
loop_max_tickets = 1000000
no_ticket_replies_per_day = 1000000
EOF
}

import_registry() { # import_registry CONFIG
  "$BIN" --config "$1" customers import "$WORK/registry/customers.csv"
  "$BIN" --config "$1" persons import "$WORK/registry/persons.csv"
}

# WARN and ERROR lines of a daemon log (colours stripped), at most 10, and their count.
log_problems() { # log_problems LOG INDENT
  local lines
  lines="$(sed 's/\x1b\[[0-9;]*m//g' "$1" | grep -E '^[^ ]+ +(WARN|ERROR) ' || true)"
  if [[ -n "$lines" ]]; then
    echo "$2log: $(wc -l <<<"$lines") WARN/ERROR line(s), the first ones:"
    head -n 10 <<<"$lines" | sed "s/^/$2  /"
  fi
}

# "suppressed 2, ticket 1998" from the output of `intake list --json`.
outcomes() { # outcomes INTAKE_JSON
  "$PY" -c '
import collections, json, sys
rows = json.load(open(sys.argv[1]))
c = collections.Counter(r.get("outcome", "?") for r in rows)
print(", ".join("%s %d" % kv for kv in sorted(c.items())) or "none")' "$1"
}

# ------------------------------------------------------------ one backend --

# Seeds N mails, runs `run --once`, checks and prints; appends to SUMMARY.
bench_backend() { # bench_backend NAME N DB_URL
  local name="$1" n="$2" url="$3"
  local tag="$name-$n" dir="$WORK/$name-$n"
  say "$name, $n mails"
  start_servers "$tag"
  local conf="$WORK/$tag.toml"
  write_config "$conf" "$dir" "$url"
  import_registry "$conf" | sed 's/^/  /'
  local seeded
  seeded="$("${SEED[@]}" seed "$CORPUS" --port "$(port_of "$dir" IMAP_PORT)" --count "$n")"
  echo "  $seeded"

  local timefile="$WORK/$tag.time" log="$WORK/$tag.stderr" t0 t1 rc=0
  t0="$(now)"
  local wrap=()
  case "${BENCH_PERF:-0}" in
    1) wrap=(perf record -q -F 999 -g -o "$WORK/$tag.perf.data" --) ;;
    all) wrap=(perf record -q -a -F 999 -g -o "$WORK/$tag.perf.data" --) ;;
  esac
  [[ ${#wrap[@]} -eq 0 ]] || BENCH_KEEP=1
  /usr/bin/time -v -o "$timefile" "${wrap[@]}" "$BIN" --config "$conf" run --once 2>"$log" || rc=$?
  t1="$(now)"
  if [[ $rc != 0 ]]; then
    show_tail "$log"
    fail "$name, $n mails: run --once exited $rc"
  fi
  local secs rss_kb intake="$WORK/$tag.intake.json"
  secs="$(elapsed "$t0" "$t1")"
  rss_kb="$(sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' "$timefile")"
  rss_kb="${rss_kb:-0}"
  "$BIN" --config "$conf" intake list --json >"$intake"
  echo "  servicedesk: $(grep -E '^processed [0-9]+ message' "$log" || echo '(no summary line)')"
  echo "  intake outcomes: $(outcomes "$intake")"
  echo "  $("${SEED[@]}" phases "$log" --start "$t0")"
  log_problems "$log" "  "

  local counts inbox processed quarantine
  counts="$("${SEED[@]}" count --port "$(port_of "$dir" IMAP_PORT)" INBOX Processed Quarantine)"
  inbox="$(awk '$1 == "INBOX" { print $2 }' <<<"$counts")"
  processed="$(awk '$1 == "Processed" { print $2 }' <<<"$counts")"
  quarantine="$(awk '$1 == "Quarantine" { print $2 }' <<<"$counts")"

  printf '  %-22s %s\n' \
    "mails" "$n" \
    "wall seconds" "$secs" \
    "mails/s end to end" "$(rate "$n" "$secs")" \
    "peak RSS" "$((rss_kb / 1024)) MiB ($rss_kb kB)" \
    "user/system CPU s" "$(sed -n 's/^[[:space:]]*User time (seconds): //p' "$timefile")/$(sed -n 's/^[[:space:]]*System time (seconds): //p' "$timefile")" \
    "IMAP after" "INBOX $inbox, Processed $processed, Quarantine $quarantine"
  local replies
  replies="$(find "$dir/smtp-out" -name '*.eml' | wc -l)"
  if ! "${SEED[@]}" replies "$dir/smtp-out" --count "$n" --corpus "$CORPUS" --intake "$intake" \
      | sed 's/^/  /'; then
    show_tail "$log" 5
    fail "$name, $n mails: $replies replies for $n mails, not exactly one per mail"
  fi
  [[ "$inbox" == 0 ]] || fail "$name, $n mails: INBOX still holds $inbox message(s)"
  SUMMARY+=("$(printf '%-9s %7s %9s %9s %9s %8s %10s' "$name" "$n" "$secs" "$(rate "$n" "$secs")" \
    "$((rss_kb / 1024)) MiB" "$replies" "$(sed -n 's/.* in \([0-9.]*\) s .*/\1/p' <<<"$seeded")")")
  stop_servers "$tag"
}

# -------------------------------------------------------- latency on IDLE --

bench_latency() { # bench_latency SQLITE_URL
  local url="$1" dir="$WORK/idle"
  say "latency under IDLE (daemon on SQLite, $LATENCY_ROUNDS mails one at a time)"
  start_servers idle
  local conf="$WORK/idle.toml" log="$WORK/idle.stderr"
  write_config "$conf" "$dir" "$url"
  import_registry "$conf" >/dev/null
  "$BIN" --config "$conf" run 2>"$log" &
  DAEMON_PID=$!
  local i
  for ((i = 0; i < 1500; i++)); do
    grep -q 'servicedesk running' "$log" && break
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    sleep 0.02
  done
  if ! grep -q 'servicedesk running' "$log"; then
    show_tail "$log"
    fail "the daemon did not log 'servicedesk running' within 30 s"
    LATENCY_LINE="latency: not measured"
    kill -KILL "$DAEMON_PID" 2>/dev/null || true
    wait "$DAEMON_PID" 2>/dev/null || true
    DAEMON_PID=""
    stop_servers idle
    return 0
  fi

  local out record="$WORK/idle.record" latency_ok=1
  out="$("${SEED[@]}" latency "$CORPUS" --port "$(port_of "$dir" IMAP_PORT)" \
    --outdir "$dir/smtp-out" --rounds "$LATENCY_ROUNDS" --warmup "$LATENCY_WARMUP" \
    --record "$record" 2>&1)" || latency_ok=0
  echo "$out"
  if [[ $latency_ok == 1 ]]; then
    LATENCY_LINE="$(grep '^latency:' <<<"$out") (after $LATENCY_WARMUP warm-up mail)"
  else
    show_tail "$log"
    fail "latency test: $(tail -n 1 <<<"$out")"
    LATENCY_LINE="latency: not measured"
  fi

  local t0 t1 rc=0
  t0="$(now)"
  kill -TERM "$DAEMON_PID"
  for ((i = 0; i < 500; i++)); do
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    sleep 0.02
  done
  if kill -0 "$DAEMON_PID" 2>/dev/null; then
    show_tail "$log"
    fail "the daemon did not exit within 10 s of SIGTERM (killed)"
    kill -KILL "$DAEMON_PID" 2>/dev/null || true
  fi
  wait "$DAEMON_PID" || rc=$?
  t1="$(now)"
  DAEMON_PID=""
  SHUTDOWN_LINE="shutdown after SIGTERM: $(elapsed "$t0" "$t1") s, exit $rc"
  if [[ $rc != 0 ]]; then
    show_tail "$log"
    fail "the daemon exited $rc after SIGTERM"
  fi
  [[ $latency_ok == 0 ]] || "${SEED[@]}" idle-phases "$log" "$record"
  echo "$SHUTDOWN_LINE"
  log_problems "$log" ""
  stop_servers idle
}

# --------------------------------------------------------------------- main --

say "build"
cargo build --release --quiet
scripts/mailservers.sh install
[[ -x /usr/bin/time ]] || {
  echo "installing GNU time"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q time >/dev/null
}
command -v psql >/dev/null || die "psql is needed to create the PostgreSQL database"

WORK="$(mktemp -d /tmp/sdbench.XXXXXX)"
echo "work directory: $WORK"
"${SEED[@]}" registry "$CORPUS" "$WORK/registry"

psql "$PG_ADMIN_URL" -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $PG_DB" >/dev/null \
  || die "cannot create database $PG_DB on $PG_ADMIN_URL (set SERVICEDESK_TEST_PG_URL)"
PG_CREATED=1
PG_URL="$(with_database "$PG_ADMIN_URL" "$PG_DB")"

SQLITE_URL=""
for n in "${COUNTS[@]}"; do
  SQLITE_URL="sqlite://$WORK/sqlite-$n/servicedesk.db"
  bench_backend sqlite "$n" "$SQLITE_URL"
  [[ "${BENCH_SQLITE_ONLY:-0}" == 1 ]] && continue
  # A fresh, empty PostgreSQL database for every N.
  pg_drop
  psql "$PG_ADMIN_URL" -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $PG_DB" >/dev/null
  PG_CREATED=1
  bench_backend postgres "$n" "$PG_URL"
done
pg_drop

# The daemon works on the SQLite database of the last run, with its tickets.
bench_latency "$SQLITE_URL"

say "summary"
printf '%-9s %7s %9s %9s %9s %8s %10s\n' backend mails seconds mails/s "peak RSS" replies "seeding s"
printf '%s\n' "${SUMMARY[@]}"
echo "$LATENCY_LINE"
echo "$SHUTDOWN_LINE"
if [[ ${#FAILURES[@]} -gt 0 ]]; then
  echo
  echo "!! ${#FAILURES[@]} FAILURE(S):"
  printf '!!   %s\n' "${FAILURES[@]}"
  exit 1
fi
