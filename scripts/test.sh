#!/usr/bin/env bash
# The project's test command (CI runs it through .ci/run).
#
#   scripts/test.sh [ARGS...]         everything; ARGS go to the test runner
#                                     (cargo nextest run / cargo test)
#   scripts/test.sh --servers-only    only steps 1-3 (install mail servers,
#                                     make PostgreSQL reachable), then exit
#
# Steps:
#   1. scripts/mailservers.sh install        (Dovecot + aiosmtpd, from Debian),
#      and Debian's chromium + chromium-driver (the browser tests)
#   2. PostgreSQL on 127.0.0.1:5432           (start it, or install it, if needed)
#   3. export SERVICEDESK_TEST_PG_URL         (default postgres://root@127.0.0.1:5432/postgres;
#                                             the tests create/drop their own databases)
#   4. cargo fmt --all -- --check
#   5. cargo clippy --all-targets -- -D warnings
#   6. cargo nextest run --no-fail-fast ARGS  (cargo test --no-fail-fast ARGS
#                                             without nextest)
#   7. scripts/package.sh                     (the .deb built, installed, checked,
#                                             removed; only without ARGS)
#
# Runs as root on a fresh Debian 12 machine that has only Rust installed.
# Steps 4-7 all run even if one fails; the exit status is non-zero if any failed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"

SERVERS_ONLY=0
ARGS=()
for a in "$@"; do
  case "$a" in
    --servers-only) SERVERS_ONLY=1 ;;
    *) ARGS+=("$a") ;;
  esac
done

export SERVICEDESK_TEST_PG_URL="${SERVICEDESK_TEST_PG_URL:-postgres://root@127.0.0.1:5432/postgres}"
DEFAULT_PG_URL=1
[[ "$SERVICEDESK_TEST_PG_URL" == "postgres://root@127.0.0.1:5432/postgres" ]] || DEFAULT_PG_URL=0
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"
export DEBIAN_FRONTEND=noninteractive

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
fmt_ms() { printf '%d.%01ds' $(( $1 / 1000 )) $(( ($1 % 1000) / 100 )); }
T_ALL=$(now_ms)
T_STEP=$T_ALL
STEP_NAME=""
FAILED=()

step() {
  STEP_NAME="$1"
  T_STEP=$(now_ms)
  echo
  echo "=================================================================="
  echo "==> $1"
  echo "=================================================================="
}
step_done() { # step_done STATUS
  local dt=$(( $(now_ms) - T_STEP ))
  if [[ "$1" == 0 ]]; then
    echo "==> ok: $STEP_NAME ($(fmt_ms $dt))"
  else
    echo "==> FAILED (exit $1): $STEP_NAME ($(fmt_ms $dt))"
    FAILED+=("$STEP_NAME")
  fi
}
fatal() {
  echo "==> FAILED: $STEP_NAME: $*" >&2
  echo "==> test.sh stopped after $(fmt_ms $(( $(now_ms) - T_ALL )))" >&2
  exit 1
}

# apt-get install with a temporary policy-rc.d (no services started by apt);
# runs apt-get update and retries if the first attempt fails.
apt_install() {
  local created_policy=0 rc=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
  fi
  local opts=(-y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  if ! apt-get install "${opts[@]}" "$@"; then
    echo "apt-get install failed; running apt-get update and retrying"
    { apt-get update -q && apt-get install "${opts[@]}" "$@"; } || rc=$?
  fi
  [[ $created_policy == 1 ]] && rm -f /usr/sbin/policy-rc.d
  return $rc
}

# ------------------------------------------------------------- 1. servers --
step "1. mail servers (scripts/mailservers.sh install) and the test browser"
bash scripts/mailservers.sh install || fatal "could not install dovecot-imapd / python3-aiosmtpd / openssl"
echo "dovecot $(/usr/sbin/dovecot --version 2>/dev/null || echo '?'),"\
  "aiosmtpd $(/usr/bin/python3 -c 'import aiosmtpd; print(aiosmtpd.__version__)' 2>/dev/null || echo '?')"
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  echo "installing Debian's chromium and chromium-driver for tests/browser.rs"
  apt_install chromium chromium-driver || fatal "could not install chromium / chromium-driver"
fi
echo "$(chromium --version 2>/dev/null || echo 'chromium ?'), $(chromedriver --version 2>/dev/null | cut -d' ' -f1-2 || echo 'chromedriver ?')"
step_done 0

# ---------------------------------------------------------- 2. PostgreSQL --
step "2. PostgreSQL on 127.0.0.1:5432"

pg_ready() {
  if command -v pg_isready >/dev/null; then
    pg_isready -q -h 127.0.0.1 -p 5432 -t 2
  else
    (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null
  fi
}

pg_version() { # newest installed server version, e.g. 15
  { ls /usr/lib/postgresql 2>/dev/null || true; } | sort -V | tail -n 1
}

pg_cluster_version() { # version dir of the first existing cluster config
  local v
  for v in $(ls /etc/postgresql 2>/dev/null | sort -V); do
    if [[ -d /etc/postgresql/$v/main ]]; then echo "$v"; return 0; fi
  done
  return 0
}

pg_start() {
  local v
  v="$(pg_cluster_version)"
  if [[ -z "$v" ]]; then
    v="$(pg_version)"
    [[ -n "$v" ]] || return 1
    echo "creating PostgreSQL $v cluster 'main'"
    pg_createcluster "$v" main --port 5432 || return 1
  fi
  echo "starting PostgreSQL $v cluster 'main'"
  pg_ctlcluster --skip-systemctl-redirect "$v" main start || true
}

pg_wait() {
  local i
  for ((i = 0; i < 60; i++)); do
    pg_ready && return 0
    sleep 0.5
  done
  return 1
}

as_postgres() { runuser -u postgres -- "$@"; }

# Make postgres://root@127.0.0.1:5432/postgres work without a password: a
# superuser role root and trust for loopback TCP. Only for the default URL and
# only on a local cluster we can administer as the postgres OS user.
pg_fix_access() {
  id postgres >/dev/null 2>&1 || return 1
  if ! as_postgres psql -h /var/run/postgresql -p 5432 -Atqc \
      "select 1 from pg_roles where rolname = 'root'" postgres | grep -q 1; then
    echo "creating superuser role root"
    as_postgres createuser -h /var/run/postgresql -p 5432 -s root || return 1
  fi
  pg_url_ok && return 0
  local hba
  hba="$(as_postgres psql -h /var/run/postgresql -p 5432 -Atqc 'show hba_file' postgres)" || return 1
  [[ -f "$hba" ]] || return 1
  if ! grep -q '^# servicedesk tests: trust loopback' "$hba"; then
    echo "allowing passwordless (trust) loopback connections in $hba"
    local tmp="$hba.servicedesk.tmp"
    {
      echo "# servicedesk tests: trust loopback (added by scripts/test.sh)"
      echo "host    all    all    127.0.0.1/32    trust"
      echo "host    all    all    ::1/128         trust"
      cat "$hba"
    } > "$tmp"
    chown --reference="$hba" "$tmp"
    chmod --reference="$hba" "$tmp"
    mv -f "$tmp" "$hba"
  fi
  as_postgres psql -h /var/run/postgresql -p 5432 -Atqc 'select pg_reload_conf()' postgres >/dev/null || return 1
  sleep 0.5
}

pg_url_ok() {
  command -v psql >/dev/null || return 0   # cannot check; the tests will tell
  PGCONNECT_TIMEOUT=5 psql -w "$SERVICEDESK_TEST_PG_URL" -Atqc 'select 1' </dev/null >/dev/null 2>&1
}

if pg_ready; then
  echo "PostgreSQL is accepting connections"
else
  if [[ -z "$(pg_version)" ]]; then
    echo "no PostgreSQL server installed: apt-get install postgresql"
    apt_install postgresql || fatal "apt-get install postgresql failed"
  fi
  pg_start || fatal "could not start a PostgreSQL cluster"
  pg_wait || fatal "PostgreSQL not ready on 127.0.0.1:5432 after 30 s"
  echo "PostgreSQL is accepting connections"
fi
if ! pg_url_ok; then
  if [[ $DEFAULT_PG_URL == 1 ]]; then
    pg_fix_access || true
  fi
  pg_url_ok || {
    PGCONNECT_TIMEOUT=5 psql -w "$SERVICEDESK_TEST_PG_URL" -Atqc 'select 1' </dev/null || true
    fatal "cannot connect to $SERVICEDESK_TEST_PG_URL"
  }
fi
command -v psql >/dev/null && psql -w "$SERVICEDESK_TEST_PG_URL" -Atqc 'select version()' </dev/null
step_done 0

# ------------------------------------------------------------ 3. env --
step "3. environment for the tests"
echo "SERVICEDESK_TEST_PG_URL=$SERVICEDESK_TEST_PG_URL"
step_done 0

if [[ $SERVERS_ONLY == 1 ]]; then
  echo
  echo "==> servers ready (--servers-only): $(fmt_ms $(( $(now_ms) - T_ALL )))"
  exit 0
fi

# ------------------------------------------------------------ 4-7. cargo --
run_step() { # run_step NAME CMD...
  local name="$1"; shift
  step "$name"
  echo "+ $*"
  local rc=0
  "$@" || rc=$?
  step_done $rc
}

run_step "4. cargo fmt --all -- --check" cargo fmt --all -- --check
run_step "5. cargo clippy --all-targets -- -D warnings" cargo clippy --all-targets -- -D warnings

HAVE_NEXTEST=0
if cargo nextest --version >/dev/null 2>&1; then HAVE_NEXTEST=1; fi

if [[ $HAVE_NEXTEST == 1 ]]; then
  run_step "6. tests: cargo nextest run --no-fail-fast ${ARGS[*]:-}" \
    cargo nextest run --no-fail-fast "${ARGS[@]}"
else
  run_step "6. tests: cargo test --no-fail-fast ${ARGS[*]:-} (cargo-nextest not installed)" \
    cargo test --no-fail-fast "${ARGS[@]}"
fi

# The .deb, built, installed, checked and removed (only on a full run).
if [[ ${#ARGS[@]} -eq 0 ]]; then
  run_step "7. package: scripts/package.sh (cargo deb, dpkg -i, systemd-analyze, dpkg -P)" \
    scripts/package.sh
fi

TOTAL="$(fmt_ms $(( $(now_ms) - T_ALL )))"
echo
if [[ ${#FAILED[@]} -gt 0 ]]; then
  echo "==> test.sh FAILED steps: $(IFS=';'; echo "${FAILED[*]}") (total $TOTAL)"
  exit 1
fi
echo "==> test.sh: every step succeeded (total $TOTAL)"
