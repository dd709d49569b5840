#!/usr/bin/env bash
# Builds servicedesk's .deb (cargo deb) and checks it on this machine, as root:
#   install with dpkg -i; `servicedesk --version`; the system user, the
#   conffile and its permissions, /var/lib/servicedesk; systemd-analyze
#   verify and security (exposure "OK" or better); remove (the conffile
#   stays), purge (conffile and user go).
# Leaves the package uninstalled. scripts/test.sh runs it as its last step.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
fail() { echo "package: FAILED: $*" >&2; exit 1; }

if ! cargo deb --version >/dev/null 2>&1; then
  echo "+ cargo install cargo-deb --locked"
  cargo install cargo-deb --locked
fi
# A package left by an interrupted earlier run.
dpkg -P servicedesk >/dev/null 2>&1 || true

echo "+ cargo deb"
cargo deb
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
DEB="$(ls -t target/debian/servicedesk_"${VERSION}"*_*.deb | head -1)"
[[ -f "$DEB" ]] || fail "no .deb built"
echo "built $DEB ($(du -h "$DEB" | cut -f1))"

echo "+ dpkg -i $DEB"
dpkg -i "$DEB"
trap 'dpkg -P servicedesk >/dev/null 2>&1 || true' EXIT

OUT="$(/usr/bin/servicedesk --version)"
[[ "$OUT" == "servicedesk $VERSION" ]] || fail "--version said: $OUT"
getent passwd servicedesk >/dev/null || fail "no system user servicedesk"
[[ "$(stat -c '%a %U:%G' /etc/servicedesk/servicedesk.toml)" == "640 root:servicedesk" ]] \
  || fail "/etc/servicedesk/servicedesk.toml: $(stat -c '%a %U:%G' /etc/servicedesk/servicedesk.toml)"
[[ "$(stat -c '%U' /var/lib/servicedesk)" == "servicedesk" ]] || fail "/var/lib/servicedesk not the daemon's"
dpkg-query -W -f='${Conffiles}\n' servicedesk | grep -q '/etc/servicedesk/servicedesk.toml' \
  || fail "servicedesk.toml is not a conffile"

UNIT=/lib/systemd/system/servicedesk.service
echo "+ systemd-analyze verify $UNIT"
VERIFY="$(systemd-analyze verify "$UNIT" 2>&1 || true)"
if grep -i 'servicedesk' <<<"$VERIFY" >/dev/null; then
  echo "$VERIFY"
  fail "systemd-analyze verify found problems in the unit"
fi
echo "+ systemd-analyze security --offline=true $UNIT"
SECURITY="$(systemd-analyze security --offline=true "$UNIT" 2>&1 | tail -1)"
echo "$SECURITY"
grep -Eq 'exposure level for servicedesk.service: [0-9.]+ (OK|SAFE)' <<<"$SECURITY" \
  || fail "exposure worse than OK"

echo "+ dpkg -r servicedesk"
dpkg -r servicedesk
[[ ! -e /usr/bin/servicedesk ]] || fail "the binary is still there after removal"
[[ -e /etc/servicedesk/servicedesk.toml ]] || fail "removal (not purge) must keep the configuration"
echo "+ dpkg -P servicedesk"
dpkg -P servicedesk
[[ ! -e /etc/servicedesk/servicedesk.toml ]] || fail "purge left the configuration"
! getent passwd servicedesk >/dev/null || fail "purge left the system user"
trap - EXIT
echo "package: ok ($SECURITY)"
