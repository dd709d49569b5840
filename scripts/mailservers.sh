#!/usr/bin/env bash
# Private, loopback-only mail servers for servicedesk's tests:
#   - Dovecot (IMAP with STARTTLS, and IMAPS), users in a passwd-file, Maildir
#   - scripts/smtp_sink.py (aiosmtpd ESMTP with STARTTLS/AUTH/SMTPUTF8) that
#     saves every accepted message to DIR/smtp-out/<n>.eml + <n>.json
#
# Usage:
#   scripts/mailservers.sh install            apt-get install what is missing
#   scripts/mailservers.sh start DIR          start both (creates DIR)
#   scripts/mailservers.sh stop DIR           stop both, wait for exit
#   scripts/mailservers.sh start-imap DIR     start only Dovecot  (same ports)
#   scripts/mailservers.sh stop-imap DIR      stop only Dovecot
#   scripts/mailservers.sh start-smtp DIR     start only the SMTP sink (same port)
#   scripts/mailservers.sh stop-smtp DIR      stop only the SMTP sink
#   scripts/mailservers.sh status DIR         print ports.env and what runs
#
# Ports: env IMAP_PORT (plain IMAP + STARTTLS), IMAPS_PORT (implicit TLS),
# SMTP_PORT (plain SMTP + STARTTLS), SMTPS_PORT (implicit TLS).  Unset or 0 means: reuse DIR/ports.env if it exists, else pick
# free ports on 127.0.0.1.  The ports used are written to DIR/ports.env.
# DOVECOT_IMAP_CAPABILITY at `start`: the capabilities Dovecot announces after
# login (e.g. without MOVE and IDLE, to test the fallbacks).
# OAUTH_INTROSPECT_URL at `start`: also accept OAuth2 bearer tokens (IMAP
# XOAUTH2 and OAUTHBEARER through Dovecot's oauth2 passdb, SMTP AUTH XOAUTH2
# in the sink), checked at this RFC 7662 introspection endpoint (e.g. the one
# of scripts/oauth_server.py). Kept in DIR/oauth-introspect for restarts.
#
# Layout of DIR:
#   ports.env              IMAP_PORT=.. IMAPS_PORT=.. SMTP_PORT=.. SMTPS_PORT=..
#   tls/ca.pem             throw-away CA that clients must trust
#   tls/cert.pem key.pem   server certificate (CA:FALSE, SAN IP:127.0.0.1,
#                          DNS:localhost), used by Dovecot and the SMTP sink
#   smtp-out/<n>.eml/json  captured messages (n = 1, 2, ...)
#   smtp-mode              optional; "tempfail" / "permfail" / anything else
#   mail/example.test/<user>/Maildir   the mailboxes (chroot of the mail processes)
#   dovecot.conf users dovecot.log smtp.log smtp.pid state/
#   base_dir               holds the path of Dovecot's base_dir: /tmp/sd-<hash of
#                          DIR> (sockets, master.pid; removed by stop)
#
# Users: support@example.test / support-pass, other@example.test / other-pass
#
# Several instances can run at once in different DIRs with different ports.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
PY=/usr/bin/python3
START_TIMEOUT=30
PACKAGES=(dovecot-imapd python3-aiosmtpd openssl)
IMAP_READY=()
SMTP_READY=()

log() { echo "mailservers: $*" >&2; }
die() { echo "mailservers: error: $*" >&2; exit 1; }

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit 2
}

# ---------------------------------------------------------------- install --

packages_missing() {
  local p missing=()
  for p in "${PACKAGES[@]}"; do
    if [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]]; then
      missing+=("$p")
    fi
  done
  echo "${missing[@]}"
}

cmd_install() {
  local missing
  missing="$(packages_missing)"
  if [[ -z "$missing" && -x /usr/sbin/dovecot && -x "$PY" ]] \
      && "$PY" -c 'import aiosmtpd' 2>/dev/null; then
    return 0
  fi
  [[ $(id -u) == 0 ]] || die "install needs root (missing: $missing)"
  log "installing: ${missing:-${PACKAGES[*]}}"
  local created_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    # Keep apt from starting the system-wide Dovecot on 0.0.0.0:143/993.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
  fi
  local rc=0
  export DEBIAN_FRONTEND=noninteractive
  local apt_opts=(-y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  # shellcheck disable=SC2086
  if ! apt-get install "${apt_opts[@]}" ${missing:-${PACKAGES[*]}}; then
    log "apt-get install failed; running apt-get update and retrying"
    # shellcheck disable=SC2086
    apt-get update -q && apt-get install "${apt_opts[@]}" ${missing:-${PACKAGES[*]}} || rc=$?
  fi
  if [[ $created_policy == 1 ]]; then
    rm -f /usr/sbin/policy-rc.d
  fi
  [[ $rc == 0 ]] || die "apt-get install failed (exit $rc)"
  "$PY" -c 'import aiosmtpd' || die "aiosmtpd not importable by $PY after install"
}

# ---------------------------------------------------------------- helpers --

abs_dir() {
  # Absolute, symlink-free path of DIR (creating it).
  local d="$1"
  [[ -n "$d" ]] || die "missing DIR argument"
  mkdir -p "$d"
  (cd "$d" && pwd -P)
}

base_dir_for() {
  # Dovecot's base_dir holds unix sockets (paths < 108 bytes), so it lives in a
  # short private dir derived from DIR.  (Not inside DIR: a 0700 DIR would also
  # block the unprivileged Dovecot processes that connect to those sockets.)
  local hash
  hash="$(printf '%s' "$1" | sha256sum | cut -c1-12)"
  echo "/tmp/sd-$hash"
}

pid_alive() {
  local pid="$1"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null \
    && [[ "$(ps -o stat= -p "$pid" 2>/dev/null)" != Z* ]]
}

read_pidfile() {
  local f="$1" pid=""
  if [[ -s "$f" ]]; then
    read -r pid < "$f" || true
  fi
  [[ "$pid" =~ ^[0-9]+$ ]] && echo "$pid" || true
}

dovecot_pid() { read_pidfile "$(base_dir_for "$DIR")/master.pid"; }
smtp_pid() { read_pidfile "$DIR/smtp.pid"; }

pick_free_ports() {
  # Four distinct free ports, chosen by the kernel while all are held open.
  "$PY" - <<'EOF'
import socket
socks = []
for _ in range(4):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
}

valid_port() { [[ "$1" =~ ^[0-9]+$ ]] && (( $1 > 0 && $1 < 65536 )); }

PORT_NAMES=(IMAP_PORT IMAPS_PORT SMTP_PORT SMTPS_PORT)

# Sets IMAP_PORT IMAPS_PORT SMTP_PORT SMTPS_PORT; AUTO_PORTS=1 when freshly picked.
# Each comes from the environment, else DIR/ports.env, else a free port.
resolve_ports() {
  local name value from_file free=() i=0 need=0 seen=" "
  for name in "${PORT_NAMES[@]}"; do
    value="${!name:-0}"
    from_file=0
    [[ -f "$DIR/ports.env" ]] && from_file="$(sed -n "s/^$name=//p" "$DIR/ports.env")"
    valid_port "$value" || value="$from_file"
    valid_port "$value" || need=1
    printf -v "$name" '%s' "$value"
  done
  AUTO_PORTS=0
  if (( need )); then
    read -r -a free <<< "$(pick_free_ports)"
    AUTO_PORTS=1
  fi
  for name in "${PORT_NAMES[@]}"; do
    valid_port "${!name}" || printf -v "$name" '%s' "${free[$i]}"
    i=$((i + 1))
    [[ "$seen" == *" ${!name} "* ]] && die "ports must differ: $(for n in "${PORT_NAMES[@]}"; do printf '%s=%s ' "$n" "${!n}"; done)"
    seen+="${!name} "
  done
  local tmp="$DIR/ports.env.tmp"
  for name in "${PORT_NAMES[@]}"; do printf '%s=%s\n' "$name" "${!name}"; done > "$tmp"
  mv -f "$tmp" "$DIR/ports.env"
}

load_ports() {
  [[ -f "$DIR/ports.env" ]] || die "$DIR/ports.env missing: run '$0 start $DIR' first"
  local name
  for name in "${PORT_NAMES[@]}"; do
    printf -v "$name" '%s' "$(sed -n "s/^$name=//p" "$DIR/ports.env")"
    valid_port "${!name}" || die "bad $DIR/ports.env (no $name)"
  done
}

# wait_ready [--pidfile FILE]... [--alive PID]... PORT...
# Wait until every PORT accepts a TCP connection on 127.0.0.1 and every pid
# FILE exists (the SMTP sink writes its pid file only after binding, so a port
# answered by somebody else does not count); fail early if an --alive PID dies.
wait_ready() {
  "$PY" - "$START_TIMEOUT" "$@" <<'EOF'
import os, socket, sys, time
timeout = float(sys.argv[1])
args = sys.argv[2:]
pidfiles, alive, ports = [], [], []
while args:
    a = args.pop(0)
    if a == "--pidfile":
        pidfiles.append(args.pop(0))
    elif a == "--alive":
        alive.append(int(args.pop(0)))
    else:
        ports.append(int(a))

def running(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False

deadline = time.monotonic() + timeout
pending = list(ports)
while True:
    for p in list(pending):
        try:
            socket.create_connection(("127.0.0.1", p), timeout=0.5).close()
            pending.remove(p)
        except OSError:
            pass
    missing = [f for f in pidfiles if not os.path.exists(f)]
    if not pending and not missing:
        sys.exit(0)
    dead = [pid for pid in alive if not running(pid)]
    if dead:
        print("process %s exited during start-up" % dead, file=sys.stderr)
        sys.exit(1)
    if time.monotonic() > deadline:
        print("not ready after %gs: ports %s, pid files %s" % (timeout, pending, missing), file=sys.stderr)
        sys.exit(1)
    time.sleep(0.02)
EOF
}

# ------------------------------------------------------------------ setup --

make_tls() {
  local t="$DIR/tls"
  if [[ -s "$t/ca.pem" && -s "$t/cert.pem" && -s "$t/key.pem" ]]; then
    return 0
  fi
  mkdir -p "$t"
  chmod 755 "$t"
  local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  openssl req -x509 "${ec[@]}" -keyout "$t/ca-key.pem" -out "$t/ca.pem" -days 3650 \
    -subj "/O=servicedesk tests/CN=servicedesk throw-away test CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" 2>"$t/openssl.log" \
    || { cat "$t/openssl.log" >&2; die "openssl (CA) failed"; }
  openssl req -new "${ec[@]}" -keyout "$t/key.pem" -out "$t/server.csr" \
    -subj "/O=servicedesk tests/CN=localhost" 2>>"$t/openssl.log" \
    || { cat "$t/openssl.log" >&2; die "openssl (server key) failed"; }
  cat > "$t/server.ext" <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
EOF
  openssl x509 -req -in "$t/server.csr" -CA "$t/ca.pem" -CAkey "$t/ca-key.pem" \
    -set_serial "0x$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" -days 825 -sha256 \
    -extfile "$t/server.ext" -out "$t/cert.pem" 2>>"$t/openssl.log" \
    || { cat "$t/openssl.log" >&2; die "openssl (server cert) failed"; }
  chmod 644 "$t/ca.pem" "$t/cert.pem"
  chmod 600 "$t/key.pem" "$t/ca-key.pem"
}

write_dovecot_conf() {
  local base; base="$(base_dir_for "$DIR")"
  local hash="${base##*/sd-}"
  local mail="$DIR/mail"
  local uid gid
  uid="$(id -u nobody)"
  gid="$(getent group nogroup | cut -d: -f3)"
  [[ -n "$gid" ]] || gid="$(id -g nobody)"

  # Mail must not be owned by root: the mail processes run as nobody, chrooted
  # into DIR/mail (home "DIR/mail/./example.test/USER"), so DIR itself may be 0700.
  mkdir -p "$mail" "$DIR/state"
  echo "$base" > "$DIR/base_dir"
  chmod 755 "$mail"
  local user home users_tmp="$DIR/users.tmp"
  : > "$users_tmp"
  for user in support:support-pass other:other-pass; do
    home="$mail/example.test/${user%%:*}"
    mkdir -p "$home"
    chmod 755 "$mail/example.test"
    chown "$uid:$gid" "$home"
    chmod 700 "$home"
    printf '%s@example.test:{PLAIN}%s:%s:%s::%s/./example.test/%s::\n' \
      "${user%%:*}" "${user#*:}" "$uid" "$gid" "$mail" "${user%%:*}" >> "$users_tmp"
  done
  chmod 600 "$users_tmp"
  mv -f "$users_tmp" "$DIR/users"

  # OAuth2: tokens are checked by the introspection endpoint; passwords
  # still work (the passwd-file is asked first).
  local mechanisms="plain login" oauth_passdb=""
  if [[ -s "$DIR/oauth-introspect" ]]; then
    mechanisms="plain login xoauth2 oauthbearer"
    cat > "$DIR/dovecot-oauth2.conf.ext" <<EOF2
introspection_mode = post
introspection_url = $(cat "$DIR/oauth-introspect")
username_attribute = username
active_attribute = active
active_value = true
EOF2
    oauth_passdb="passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = $DIR/dovecot-oauth2.conf.ext
}"
  fi

  local dh=""
  if [[ -s /usr/share/dovecot/dh.pem ]]; then
    dh="ssl_dh = </usr/share/dovecot/dh.pem"
  fi

  cat > "$DIR/dovecot.conf.tmp" <<EOF
# Generated by scripts/mailservers.sh -- private test instance, loopback only.
base_dir = $base
state_dir = $DIR/state
instance_name = servicedesk-test-$hash
log_path = $DIR/dovecot.log
info_log_path = $DIR/dovecot.log
debug_log_path = $DIR/dovecot.log
auth_verbose = yes

protocols = imap
listen = 127.0.0.1
shutdown_clients = yes

ssl = yes
ssl_cert = <$DIR/tls/cert.pem
ssl_key = <$DIR/tls/key.pem
$dh
ssl_min_protocol = TLSv1.2

disable_plaintext_auth = no
auth_mechanisms = $mechanisms
auth_failure_delay = 0
first_valid_uid = 1
first_valid_gid = 1

passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $DIR/users
}
$oauth_passdb
userdb {
  driver = passwd-file
  args = username_format=%u $DIR/users
}

mail_location = maildir:~/Maildir
valid_chroot_dirs = $mail
namespace inbox {
  inbox = yes
}
mailbox_idle_check_interval = 1 secs

protocol imap {
  mail_max_userip_connections = 1000
  ${DOVECOT_IMAP_CAPABILITY:+imap_capability = $DOVECOT_IMAP_CAPABILITY}
}

service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $IMAP_PORT
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $IMAPS_PORT
    ssl = yes
  }
}
service auth {
  # The passwd-file is in DIR, which may be a 0700 temp dir.
  user = root
}
service stats {
  unix_listener stats-writer {
    mode = 0666
  }
}
EOF
  mv -f "$DIR/dovecot.conf.tmp" "$DIR/dovecot.conf"
}

# ------------------------------------------------------- start/stop parts --

start_imap() {
  local pid; pid="$(dovecot_pid)"
  if pid_alive "$pid" && pid_matches "$pid" "$(dovecot_needle)"; then
    log "dovecot already running in $DIR (pid $pid)"
    IMAP_READY=("$IMAP_PORT" "$IMAPS_PORT")
    return 0
  fi
  make_tls
  write_dovecot_conf
  local base; base="$(base_dir_for "$DIR")"
  rm -f "$base/master.pid"
  if ! /usr/sbin/dovecot -c "$DIR/dovecot.conf" </dev/null >"$DIR/dovecot.start.log" 2>&1; then
    cat "$DIR/dovecot.start.log" >&2
    [[ -f "$DIR/dovecot.log" ]] && tail -n 20 "$DIR/dovecot.log" >&2
    return 1
  fi
  # The master binds its listeners before it goes to the background.
  IMAP_READY=(--pidfile "$base/master.pid" "$IMAP_PORT" "$IMAPS_PORT")
}

start_smtp() {
  local pid; pid="$(smtp_pid)"
  if pid_alive "$pid" && pid_matches "$pid" "$(smtp_needle)"; then
    log "smtp sink already running in $DIR (pid $pid)"
    SMTP_READY=("$SMTP_PORT" "$SMTPS_PORT")
    return 0
  fi
  make_tls
  mkdir -p "$DIR/smtp-out"
  rm -f "$DIR/smtp.pid"
  # setsid + no inherited stdio: the caller (a test harness reading our output
  # through a pipe) must not wait for the background server.
  local oauth=()
  if [[ -s "$DIR/oauth-introspect" ]]; then
    oauth=(--oauth-introspect "$(cat "$DIR/oauth-introspect")")
  fi
  setsid "$PY" "$SCRIPT_DIR/smtp_sink.py" \
    --host 127.0.0.1 --port "$SMTP_PORT" --tls-port "$SMTPS_PORT" --outdir "$DIR/smtp-out" \
    --cert "$DIR/tls/cert.pem" --key "$DIR/tls/key.pem" "${oauth[@]}" \
    --pidfile "$DIR/smtp.pid" </dev/null >>"$DIR/smtp.log" 2>&1 &
  local launched=$!
  echo "$launched" > "$DIR/smtp.launch.pid"
  SMTP_READY=(--pidfile "$DIR/smtp.pid" --alive "$launched" "$SMTP_PORT" "$SMTPS_PORT")
}

# Wait for the process to exit after SIGTERM; SIGKILL after a timeout.
kill_wait() {
  local pid="$1" what="$2" i
  pid_alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 200; i++)); do
    pid_alive "$pid" || return 0
    sleep 0.05
  done
  log "$what (pid $pid) did not exit after SIGTERM; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    pid_alive "$pid" || return 0
    sleep 0.05
  done
  die "$what (pid $pid) does not exit"
}

# Children of the Dovecot master (log, config, auth, imap, ...) by pid.
dovecot_children() {
  local pid="$1"
  ps -o pid= --ppid "$pid" 2>/dev/null | tr -d ' ' || true
}

# Command lines that identify this instance's processes (and no other
# instance's): used to check pids from pid files and, when a pid file is gone
# (DIR deleted under a running instance), to find the processes.
dovecot_needle() { echo "/usr/sbin/dovecot -c $DIR/dovecot.conf "; }
smtp_needle() { echo " --outdir $DIR/smtp-out "; }

cmdline_of() { { tr '\0' ' ' < "/proc/$1/cmdline"; } 2>/dev/null || true; }

pid_matches() { # pid_matches PID NEEDLE
  [[ -n "$1" ]] && [[ "$(cmdline_of "$1")" == *"$2"* ]]
}

pids_matching() { # pids_matching NEEDLE -> pids whose command line contains it
  "$PY" - "$1" <<'EOF'
import os, sys
needle = sys.argv[1]
for pid in os.listdir("/proc"):
    if not pid.isdigit() or int(pid) == os.getpid():
        continue
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode("utf-8", "surrogateescape")
    except OSError:
        continue
    if needle in cmd:
        print(pid)
EOF
}

stop_imap() {
  local base; base="$(base_dir_for "$DIR")"
  local pid; pid="$(dovecot_pid)"
  if ! pid_matches "$pid" "$(dovecot_needle)"; then
    pid="$(pids_matching "$(dovecot_needle)" | head -n 1)"
  fi
  if pid_alive "$pid"; then
    local children; children="$(dovecot_children "$pid")"
    kill_wait "$pid" "dovecot"
    # The master normally takes its children down with it; make sure.
    local c
    for c in $children; do
      kill_wait "$c" "dovecot child"
    done
  fi
  rm -f "$base/master.pid"
}

stop_smtp() {
  local pid pids=""
  for pid in "$(smtp_pid)" "$(read_pidfile "$DIR/smtp.launch.pid")"; do
    if pid_matches "$pid" "$(smtp_needle)"; then pids="$pid"; break; fi
  done
  [[ -n "$pids" ]] || pids="$(pids_matching "$(smtp_needle)")"
  for pid in $pids; do
    kill_wait "$pid" "smtp sink"
  done
  rm -f "$DIR/smtp.pid" "$DIR/smtp.launch.pid"
}

show_logs() {
  local f
  for f in "$DIR/dovecot.start.log" "$DIR/dovecot.log" "$DIR/smtp.log"; do
    if [[ -s "$f" ]]; then
      echo "----- $f (last 40 lines) -----" >&2
      tail -n 40 "$f" >&2
    fi
  done
}

# wait_ready, printing the logs on failure.
await_or_fail() {
  if ! wait_ready "$@"; then
    show_logs
    return 1
  fi
}

# ---------------------------------------------------------------- commands --

cmd_start() {
  local attempt
  if [[ -n "${OAUTH_INTROSPECT_URL:-}" ]]; then
    echo "$OAUTH_INTROSPECT_URL" > "$DIR/oauth-introspect"
  fi
  for attempt in 1 2 3; do
    resolve_ports
    if start_imap && start_smtp && await_or_fail "${IMAP_READY[@]}" "${SMTP_READY[@]}"; then
      log "started in $DIR: IMAP 127.0.0.1:$IMAP_PORT (STARTTLS), IMAPS :$IMAPS_PORT, SMTP :$SMTP_PORT (STARTTLS), SMTPS :$SMTPS_PORT"
      return 0
    fi
    stop_smtp || true
    stop_imap || true
    if [[ $AUTO_PORTS == 1 && $attempt -lt 3 ]]; then
      # An automatically picked port may have been taken meanwhile: pick again.
      log "start failed with automatically picked ports; retrying with new ones"
      rm -f "$DIR/ports.env"
      continue
    fi
    rm -rf "$(base_dir_for "$DIR")"
    die "could not start the mail servers in $DIR"
  done
}

cmd_start_imap() {
  load_ports
  if start_imap && await_or_fail "${IMAP_READY[@]}"; then
    return 0
  fi
  stop_imap || true
  die "could not start dovecot in $DIR"
}

cmd_start_smtp() {
  load_ports
  if start_smtp && await_or_fail "${SMTP_READY[@]}"; then
    return 0
  fi
  stop_smtp || true
  die "could not start the smtp sink in $DIR"
}

cmd_stop() {
  stop_smtp
  stop_imap
  rm -rf "$(base_dir_for "$DIR")"
}

cmd_status() {
  [[ -f "$DIR/ports.env" ]] && cat "$DIR/ports.env"
  local pid
  pid="$(dovecot_pid)"
  if pid_alive "$pid" && pid_matches "$pid" "$(dovecot_needle)"; then
    echo "dovecot: running (pid $pid)"
  else
    echo "dovecot: stopped"
  fi
  pid="$(smtp_pid)"
  if pid_alive "$pid" && pid_matches "$pid" "$(smtp_needle)"; then
    echo "smtp: running (pid $pid)"
  else
    echo "smtp: stopped"
  fi
}

main() {
  local cmd="${1:-}"
  case "$cmd" in
    install) cmd_install ;;
    start|stop|start-imap|stop-imap|start-smtp|stop-smtp|status)
      [[ $# -ge 2 ]] || die "usage: $0 $cmd DIR"
      if [[ $cmd == start* ]]; then
        [[ -x /usr/sbin/dovecot ]] && "$PY" -c 'import aiosmtpd' 2>/dev/null \
          || die "dovecot/aiosmtpd not installed: run '$0 install' first"
      fi
      if [[ $cmd == stop* || $cmd == status ]]; then
        # Do not create DIR; it may also be gone under a running instance.
        DIR="$(realpath -m -- "$2")"
      else
        DIR="$(abs_dir "$2")"
      fi
      case "$cmd" in
        start) cmd_start ;;
        stop) cmd_stop ;;
        start-imap) cmd_start_imap ;;
        stop-imap) stop_imap ;;
        start-smtp) cmd_start_smtp ;;
        stop-smtp) stop_smtp ;;
        status) cmd_status ;;
      esac
      ;;
    -h|--help|help) usage ;;
    *) usage ;;
  esac
}

main "$@"
