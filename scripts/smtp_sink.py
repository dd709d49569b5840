#!/usr/bin/python3
"""SMTP capture server for servicedesk's tests (aiosmtpd, Debian python3-aiosmtpd).

Listens on 127.0.0.1:PORT, offers STARTTLS (when --cert/--key are given; and
with --tls-port, also listens there with implicit TLS), accepts
any AUTH PLAIN/LOGIN credentials (also without TLS) or no AUTH at all, and
SMTPUTF8.  Every accepted message is saved in OUTDIR as

    <n>.json   {"mail_from": ..., "rcpt_tos": [...], "mail_options": [...],
                "rcpt_options": [...], "auth_login": str|null, "tls": bool}
    <n>.eml    the message bytes exactly as received (CRLF line ends,
               dot-unstuffed)

with n = 1, 2, 3, ... in arrival order (continuing after the highest n already
in OUTDIR).  Both files are written to a temporary name and renamed; the .json
is renamed first, so a reader that sees <n>.eml also finds <n>.json.

Fault injection: if OUTDIR/../smtp-mode exists and contains "tempfail", every
DATA is answered with "451 4.3.0 try again later"; "permfail" gives
"554 5.7.1 rejected"; anything else (or no file) accepts.  The file is read for
every message, so tests can switch modes while the server runs.

With --oauth-introspect URL, AUTH XOAUTH2 is offered too: the bearer token
is checked at that RFC 7662 introspection endpoint (active, and issued for the
user named in the SASL string) and refused with 535 otherwise.  The .json then
says "auth_mechanism": "XOAUTH2".

Usage:
    smtp_sink.py --port PORT --outdir OUTDIR [--host 127.0.0.1]
                 [--cert cert.pem --key key.pem] [--pidfile FILE]
                 [--oauth-introspect URL]

Exits cleanly (status 0, pid file removed) on SIGTERM or SIGINT.
"""

import argparse
import asyncio
import json
import logging
import os
import re
import signal
import base64
import ssl
import sys
import urllib.parse
import urllib.request

from aiosmtpd.smtp import SMTP, AuthResult

log = logging.getLogger("smtp_sink")


def _text(value):
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="surrogateescape")
    return str(value)


def _accept_any(server, session, envelope, mechanism, auth_data):
    login = getattr(auth_data, "login", None)
    return AuthResult(success=True, handled=True, auth_data=_text(login))


def _introspect(url, token):
    body = urllib.parse.urlencode({"token": token}).encode("ascii")
    with urllib.request.urlopen(url, data=body, timeout=10) as answer:
        return json.load(answer)


class OAuthHandler:
    """AUTH XOAUTH2, checked at an introspection endpoint (mixed into the handler)."""

    introspect_url = None

    async def auth_XOAUTH2(self, server, args):
        if len(args) > 1:
            initial = args[1]
        else:
            initial = await server.challenge_auth("", encode_to_b64=False)
            if not isinstance(initial, bytes):
                return AuthResult(success=False, handled=False)
            initial = initial.decode("ascii", "replace")
        try:
            fields = base64.b64decode(initial).decode("utf-8").split("\x01")
            user = next(f[5:] for f in fields if f.startswith("user="))
            token = next(f[12:] for f in fields if f.startswith("auth=Bearer "))
        except Exception:
            return AuthResult(success=False, handled=False, message="501 5.5.2 malformed XOAUTH2")
        loop = asyncio.get_running_loop()
        try:
            info = await loop.run_in_executor(None, _introspect, self.introspect_url, token)
        except Exception as e:
            log.info("introspection failed: %s", e)
            return AuthResult(success=False, handled=False, message="454 4.7.0 temporary authentication failure")
        if info.get("active") is True and info.get("username") == user:
            server.session.sd_mechanism = "XOAUTH2"
            log.info("AUTH XOAUTH2 as %s accepted", user)
            return AuthResult(success=True, auth_data=user)
        log.info("AUTH XOAUTH2 as %s refused (inactive or other user)", user)
        return AuthResult(success=False, handled=False)


class CaptureHandler(OAuthHandler):
    def __init__(self, outdir):
        self.outdir = os.path.abspath(outdir)
        self.mode_file = os.path.join(os.path.dirname(self.outdir), "smtp-mode")
        os.makedirs(self.outdir, exist_ok=True)
        highest = 0
        for name in os.listdir(self.outdir):
            match = re.fullmatch(r"(\d+)\.(eml|json)", name)
            if match:
                highest = max(highest, int(match.group(1)))
        self.next_n = highest + 1

    def _mode(self):
        try:
            with open(self.mode_file, encoding="utf-8", errors="replace") as f:
                return f.read().strip().lower()
        except FileNotFoundError:
            return ""

    def _write_atomic(self, name, data):
        final = os.path.join(self.outdir, name)
        tmp = final + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, final)

    async def handle_DATA(self, server, session, envelope):
        mode = self._mode()
        if mode == "tempfail":
            log.info("DATA from %s answered 451 (smtp-mode tempfail)", envelope.mail_from)
            return "451 4.3.0 try again later"
        if mode == "permfail":
            log.info("DATA from %s answered 554 (smtp-mode permfail)", envelope.mail_from)
            return "554 5.7.1 rejected"

        # No await between taking the number and writing the files, so
        # concurrent sessions cannot interleave here.
        n = self.next_n
        self.next_n += 1
        meta = {
            "mail_from": _text(envelope.mail_from),
            "rcpt_tos": [_text(r) for r in envelope.rcpt_tos],
            "mail_options": [_text(o) for o in envelope.mail_options],
            "rcpt_options": [_text(o) for o in envelope.rcpt_options],
            "auth_login": _text(getattr(session, "auth_data", None)),
            "auth_mechanism": getattr(session, "sd_mechanism", None),
            "tls": getattr(session, "ssl", None) is not None
            or server.transport.get_extra_info("ssl_object") is not None,
        }
        content = envelope.original_content
        if content is None:
            content = envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8", errors="surrogateescape")
        self._write_atomic(f"{n}.json", (json.dumps(meta, ensure_ascii=False) + "\n").encode("utf-8"))
        self._write_atomic(f"{n}.eml", bytes(content))
        log.info("saved %d.eml (%d bytes) from %s to %s", n, len(content), meta["mail_from"], meta["rcpt_tos"])
        return "250 2.0.0 OK: queued as %d" % n


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls-port", type=int, help="also listen here with implicit TLS (needs --cert/--key)")
    parser.add_argument("--outdir", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--pidfile")
    parser.add_argument("--hostname", default="smtp.example.test")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--oauth-introspect", help="offer AUTH XOAUTH2, checking tokens here")
    args = parser.parse_args()

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )

    tls_context = None
    if args.cert or args.key:
        if not (args.cert and args.key):
            parser.error("--cert and --key go together")
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.check_hostname = False
        tls_context.verify_mode = ssl.CERT_NONE
        tls_context.load_cert_chain(args.cert, args.key)

    handler = CaptureHandler(args.outdir)
    handler.introspect_url = args.oauth_introspect
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def factory(implicit=False):
        return SMTP(
            handler,
            hostname=args.hostname,
            enable_SMTPUTF8=True,
            decode_data=False,
            # No STARTTLS offered inside implicit TLS.
            tls_context=None if implicit else tls_context,
            require_starttls=False,
            auth_required=False,
            auth_require_tls=False,
            authenticator=_accept_any,
            # XOAUTH2 only when tokens can be checked.
            auth_exclude_mechanism=None if args.oauth_introspect else ["XOAUTH2"],
            loop=loop,
        )

    servers = [loop.run_until_complete(loop.create_server(factory, host=args.host, port=args.port))]
    log.info("listening on %s:%d, saving to %s", args.host, args.port, handler.outdir)
    if args.tls_port:
        if tls_context is None:
            parser.error("--tls-port needs --cert and --key")
        servers.append(
            loop.run_until_complete(
                loop.create_server(
                    lambda: factory(implicit=True), host=args.host, port=args.tls_port, ssl=tls_context
                )
            )
        )
        log.info("listening on %s:%d with implicit TLS", args.host, args.tls_port)

    if args.pidfile:
        tmp = args.pidfile + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(tmp, args.pidfile)

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        loop.run_until_complete(stop.wait())
        log.info("stopping")
        for server in servers:
            server.close()
            loop.run_until_complete(server.wait_closed())
        # Drop the sessions still open (their clients see the connection close).
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    finally:
        if args.pidfile:
            try:
                with open(args.pidfile) as f:
                    mine = f.read().strip() == str(os.getpid())
                if mine:
                    os.unlink(args.pidfile)
            except FileNotFoundError:
                pass
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
