#!/usr/bin/env python3
"""Helpers for scripts/bench.sh (standard library only).

    bench_seed.py registry CORPUS OUTDIR
        Writes OUTDIR/customers.csv (one active customer "Bench Care") and
        OUTDIR/persons.csv (every corpus sender; the first general, the rest
        technical; language from the corpus folder).

    bench_seed.py seed CORPUS --port P --count N [--batch B]
        Builds mails 0..N-1 (mail i = corpus file i mod 1000 with the
        Message-ID <bench-i@bench.example>) and APPENDs them to INBOX over one
        plain IMAP connection on 127.0.0.1:P, B messages per MULTIAPPEND
        command sent as LITERAL+ (no continuation round trips). Prints
        "seeded N mails in S s".

    bench_seed.py count --port P MAILBOX...
        Prints "MAILBOX COUNT" per mailbox (0 when it does not exist).

    bench_seed.py replies OUTDIR --count N [--corpus CORPUS] [--intake JSON]
        Checks the SMTP capture folder: every bench-i (i < N) answered exactly
        once, nothing else captured. Prints the figures, and for unanswered
        mails their corpus file and intake outcome; exit 1 when not so.

    bench_seed.py latency CORPUS --port P --outdir SMTP_OUT --rounds R [--warmup W]
                  [--record FILE]
        APPENDs one mail at a time (Message-ID <bench-idle-K@bench.example>)
        and waits for the reply whose In-Reply-To names it (polling SMTP_OUT
        every 20 ms). Prints every latency and median / p99 / max; FILE gets
        "MESSAGE-ID APPEND-EPOCH REPLY-SEEN-EPOCH" per measured mail.

    bench_seed.py phases LOG --start EPOCH
        Where the time of a `run --once` went, from the daemon's log:
        start-up, intake (first to last "message processed"), delivery (to
        the last "reply sent").

    bench_seed.py idle-phases LOG RECORD
        For the latency mails: APPEND to "message processed" and from there
        to "reply sent", medians, from the daemon's log and the record.

The mailbox login is the test servers' support@example.test / support-pass.
"""

import argparse
import csv
import email
import email.policy
import json
import os
import re
import socket
import statistics
import sys
import time

USER = "support@example.test"
PASSWORD = "support-pass"
LANGUAGES = ("nl", "fr", "en", "de")
CUSTOMER = "Bench Care"


# ------------------------------------------------------------------ corpus --

def corpus_files(corpus):
    """The corpus files in the order nl, fr, en, de; each folder sorted."""
    files = []
    for lang in LANGUAGES:
        folder = os.path.join(corpus, lang)
        for name in sorted(os.listdir(folder)):
            if name.endswith(".eml"):
                files.append((lang, os.path.join(folder, name)))
    if not files:
        sys.exit("bench_seed: no .eml files under %s" % corpus)
    return files


def split_message(raw):
    """(header bytes without the blank line, separator, body) of a raw mail."""
    m = re.search(rb"\r?\n\r?\n", raw)
    if not m:
        return raw, b"\r\n\r\n", b""
    return raw[: m.start()], raw[m.start() : m.end()], raw[m.end() :]


def header_fields(header):
    """The header as a list of fields, each with its folded continuation lines."""
    fields = []
    for line in re.split(rb"\r?\n", header):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1].append(line)
        else:
            fields.append([line])
    return fields


def with_message_id(raw, message_id):
    """The mail with its Message-ID replaced (added at the top when missing),
    everything else byte for byte, line ends made CRLF for IMAP."""
    header, _, body = split_message(raw)
    new_field = b"Message-ID: " + message_id.encode()
    out, replaced = [], False
    for field in header_fields(header):
        if re.match(rb"(?i)message-id\s*:", field[0]):
            if not replaced:
                out.append(new_field)
                replaced = True
            continue
        out.append(b"\r\n".join(field))
    if not replaced:
        out.insert(0, new_field)
    body = re.sub(rb"\r?\n", b"\r\n", body)
    return b"\r\n".join(out) + b"\r\n\r\n" + body


def sender(raw):
    """(address lower case, display name) of the From field."""
    header, _, _ = split_message(raw)
    msg = email.message_from_bytes(header + b"\r\n\r\n", policy=email.policy.default)
    from_ = msg["From"]
    if from_ is None or not from_.addresses:
        return None, None
    addr = from_.addresses[0]
    return addr.addr_spec.strip().lower(), addr.display_name.strip()


class Corpus:
    def __init__(self, path):
        self.files = corpus_files(path)
        self.raw = []
        for _, f in self.files:
            with open(f, "rb") as fh:
                self.raw.append(fh.read())

    def mail(self, i, message_id):
        return with_message_id(self.raw[i % len(self.raw)], message_id)


def bench_id(i):
    return "<bench-%d@bench.example>" % i


def idle_id(k):
    return "<bench-idle-%d@bench.example>" % k


# -------------------------------------------------------------------- imap --

class Imap:
    """A minimal IMAP client: LOGIN, STATUS, and APPEND with LITERAL+."""

    def __init__(self, port, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=120)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rfile = self.sock.makefile("rb")
        self.seq = 0
        greeting = self.rfile.readline()
        if not greeting.startswith(b"* OK"):
            raise RuntimeError("IMAP greeting: %r" % greeting)
        lines = self.command(b"LOGIN " + quote(USER) + b" " + quote(PASSWORD))
        self.capabilities = set()
        for line in lines:
            m = re.search(rb"CAPABILITY ([^\]\r\n]*)", line)
            if m:
                self.capabilities = set(m.group(1).upper().split())
        if not self.capabilities:
            for line in self.command(b"CAPABILITY"):
                if line.startswith(b"* CAPABILITY "):
                    self.capabilities = set(line[13:].upper().split())

    def next_tag(self):
        self.seq += 1
        return b"b%d" % self.seq

    def send(self, data):
        self.sock.sendall(data)

    def response(self, tag):
        """Lines up to and including the tagged one; raises unless OK."""
        lines = []
        while True:
            line = self.rfile.readline()
            if not line:
                raise RuntimeError("IMAP connection closed; last lines: %r" % lines[-3:])
            lines.append(line)
            if line.startswith(tag + b" "):
                status = line[len(tag) + 1 :].split(b" ", 1)[0].upper()
                if status != b"OK":
                    raise RuntimeError("IMAP: %s" % line.decode(errors="replace").strip())
                return lines

    def command(self, text):
        tag = self.next_tag()
        self.send(tag + b" " + text + b"\r\n")
        return self.response(tag)

    def append_many(self, mailbox, messages):
        """One APPEND (MULTIAPPEND when several) with non-synchronising literals."""
        tag = self.next_tag()
        parts = [tag, b" APPEND ", quote(mailbox)]
        for m in messages:
            parts.append(b" {%d+}\r\n" % len(m))
            parts.append(m)
        parts.append(b"\r\n")
        self.send(b"".join(parts))
        return self.response(tag)

    def status(self, mailbox):
        tag = self.next_tag()
        self.send(tag + b" STATUS " + quote(mailbox) + b" (MESSAGES)\r\n")
        lines = []
        while True:
            line = self.rfile.readline()
            if not line:
                raise RuntimeError("IMAP connection closed")
            lines.append(line)
            if line.startswith(tag + b" "):
                break
        if not line[len(tag) + 1 :].upper().startswith(b"OK"):
            return 0  # no such mailbox
        for line in lines:
            m = re.search(rb"\(MESSAGES (\d+)\)", line)
            if m:
                return int(m.group(1))
        raise RuntimeError("STATUS without MESSAGES: %r" % lines)

    def logout(self):
        try:
            self.command(b"LOGOUT")
        except (OSError, RuntimeError):
            pass
        self.sock.close()


def quote(s):
    return b'"' + s.replace("\\", "\\\\").replace('"', '\\"').encode() + b'"'


# ---------------------------------------------------------------- commands --

def cmd_registry(args):
    corpus = corpus_files(args.corpus)
    persons = {}
    for lang, path in corpus:
        with open(path, "rb") as fh:
            addr, name = sender(fh.read())
        if not addr:
            sys.exit("bench_seed: %s has no usable From" % path)
        persons.setdefault(addr, (name or addr.split("@")[0], lang))
    os.makedirs(args.outdir, exist_ok=True)
    with open(os.path.join(args.outdir, "customers.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["customer", "contract_status", "campuses"])
        w.writerow([CUSTOMER, "active", ""])
    with open(os.path.join(args.outdir, "persons.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["email", "name", "customer", "campus", "role", "language"])
        for n, (addr, (name, lang)) in enumerate(persons.items()):
            w.writerow([addr, name, CUSTOMER, "", "general" if n == 0 else "technical", lang])
    print("registry: %d corpus mails, %d reference persons" % (len(corpus), len(persons)))


def cmd_seed(args):
    corpus = Corpus(args.corpus)
    mails = [corpus.mail(i, bench_id(i)) for i in range(args.count)]
    size = sum(len(m) for m in mails)
    start = time.monotonic()
    imap = Imap(args.port)
    for cap in (b"MULTIAPPEND", b"LITERAL+"):
        if cap not in imap.capabilities:
            sys.exit("bench_seed: the IMAP server does not offer %s" % cap.decode())
    for b in range(0, len(mails), args.batch):
        imap.append_many("INBOX", mails[b : b + args.batch])
    imap.logout()
    secs = time.monotonic() - start
    print(
        "seeded %d mails (%.1f MB) in %.2f s (%.0f mails/s)"
        % (len(mails), size / 1e6, secs, len(mails) / secs if secs else 0)
    )


def cmd_count(args):
    imap = Imap(args.port)
    for mailbox in args.mailboxes:
        print("%s %d" % (mailbox, imap.status(mailbox)))
    imap.logout()


def in_reply_to(path):
    """The In-Reply-To of a captured reply (header only)."""
    with open(path, "rb") as fh:
        data = fh.read()
    header, _, _ = split_message(data)
    msg = email.message_from_bytes(header + b"\r\n\r\n", policy=email.policy.compat32)
    value = msg.get("In-Reply-To")
    return " ".join(str(value).split()) if value else None


def captured(outdir):
    return [n for n in os.listdir(outdir) if re.fullmatch(r"\d+\.eml", n)]


def cmd_replies(args):
    names = captured(args.outdir)
    answered = {}
    for n in names:
        irt = in_reply_to(os.path.join(args.outdir, n))
        answered[irt] = answered.get(irt, 0) + 1
    expected = {bench_id(i) for i in range(args.count)}
    missing = sorted((m for m in expected if m not in answered), key=lambda s: int(re.sub(r"\D", "", s)))
    twice = {m: c for m, c in answered.items() if m in expected and c > 1}
    stray = {m: c for m, c in answered.items() if m not in expected}
    print("replies captured: %d (expected %d)" % (len(names), args.count))
    ok = len(names) == args.count and not missing and not twice and not stray
    if not ok:
        corpus = corpus_files(args.corpus) if args.corpus else None
        intake = {}
        if args.intake:
            with open(args.intake, encoding="utf-8") as fh:
                for row in json.load(fh):
                    intake["<%s>" % row.get("message_id")] = row
        print("  unanswered: %d, answered more than once: %d, replies to other mail: %d"
              % (len(missing), len(twice), sum(stray.values())))
        for m in missing[:20]:
            i = int(re.sub(r"\D", "", m))
            src = " (%s)" % os.path.relpath(corpus[i % len(corpus)][1], args.corpus) if corpus else ""
            row = intake.get(m)
            why = ": %s, %s" % (row.get("outcome"), row.get("detail")) if row else ""
            print("  unanswered: %s%s%s" % (m, src, why))
        for m, c in list(twice.items())[:10]:
            print("  answered %d times: %s" % (c, m))
        for m, c in list(stray.items())[:10]:
            print("  %d reply(ies) with In-Reply-To %s" % (c, m))
    sys.exit(0 if ok else 1)


def cmd_latency(args):
    corpus = Corpus(args.corpus)
    imap = Imap(args.port)
    seen = set(captured(args.outdir))
    results = []
    record = open(args.record, "w", encoding="utf-8") if args.record else None
    total = args.warmup + args.rounds
    for k in range(total):
        mid = idle_id(k)
        raw = corpus.mail(k * 37 + 11, mid)  # spread over the languages
        wall = time.time()
        start = time.monotonic()
        imap.append_many("INBOX", [raw])
        deadline = start + args.timeout
        found = None
        while found is None:
            for n in captured(args.outdir):
                if n in seen:
                    continue
                seen.add(n)
                if in_reply_to(os.path.join(args.outdir, n)) == mid:
                    found = time.monotonic() - start
            if found is None:
                if time.monotonic() > deadline:
                    sys.exit("bench_seed: no reply to %s within %g s" % (mid, args.timeout))
                time.sleep(0.02)
        label = "warm-up" if k < args.warmup else "round %d" % (k - args.warmup + 1)
        print("  %-9s %s  %7.1f ms" % (label, mid, found * 1000), flush=True)
        if k >= args.warmup:
            results.append(found)
            if record:
                record.write("%s %.6f %.6f\n" % (mid, wall, wall + found))
    imap.logout()
    if record:
        record.close()
    ordered = sorted(results)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    print(
        "latency: n=%d median %.1f ms, p99 %.1f ms, max %.1f ms"
        % (len(results), statistics.median(results) * 1000, p99 * 1000, ordered[-1] * 1000)
    )


ANSI = re.compile(r"\x1b\[[0-9;]*m")
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z\s+(\w+)\s+(\S+): (.*)$")


def log_events(path):
    """(epoch, level, target, message) per line of a tracing log."""
    import datetime

    events = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            m = LOG_LINE.match(ANSI.sub("", line.rstrip("\n")))
            if not m:
                continue
            t = datetime.datetime.fromisoformat(m.group(1)).replace(tzinfo=datetime.timezone.utc)
            events.append((t.timestamp(), m.group(2), m.group(3), m.group(4)))
    return events


def field(message, name):
    m = re.search(r"\b%s=\"?([^\"\s]+)" % re.escape(name), message)
    return m.group(1) if m else None


def cmd_phases(args):
    events = log_events(args.log)
    processed = [t for t, _, _, msg in events if msg.startswith("message processed")]
    sent = [t for t, _, _, msg in events if msg.startswith("reply sent")]
    if not processed:
        print("phases: no \"message processed\" in the log")
        return
    parts = ["start-up %.2f s" % (processed[0] - args.start)]
    intake = processed[-1] - processed[0]
    parts.append("intake %d mails in %.2f s (%.1f ms/mail)"
                 % (len(processed), intake, 1000 * intake / max(1, len(processed) - 1)))
    if sent:
        delivery = sent[-1] - processed[-1]
        parts.append("delivery %d replies in %.2f s (%.1f ms/reply)"
                     % (len(sent), delivery, 1000 * (sent[-1] - sent[0]) / max(1, len(sent) - 1)))
    print("phases: " + ", ".join(parts))


def cmd_idle_phases(args):
    events = log_events(args.log)
    processed, ticket_of, sent = {}, {}, {}
    for t, _, _, msg in events:
        if msg.startswith("message processed"):
            mid = "<%s>" % field(msg, "message_id")
            processed[mid] = t
            ticket_of[mid] = field(msg, "ticket")
        elif msg.startswith("reply sent"):
            sent.setdefault(field(msg, "ticket"), t)
    to_processed, to_sent = [], []
    with open(args.record, encoding="utf-8") as fh:
        for line in fh:
            mid, appended, _ = line.split()
            if mid in processed:
                to_processed.append(processed[mid] - float(appended))
                if ticket_of[mid] in sent:
                    to_sent.append(sent[ticket_of[mid]] - processed[mid])
    if to_processed and to_sent:
        print("where it went (medians): APPEND -> processed %.1f ms, processed -> reply sent %.1f ms"
              % (1000 * statistics.median(to_processed), 1000 * statistics.median(to_sent)))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("registry")
    s.add_argument("corpus")
    s.add_argument("outdir")
    s.set_defaults(func=cmd_registry)

    s = sub.add_parser("seed")
    s.add_argument("corpus")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--batch", type=int, default=500)
    s.set_defaults(func=cmd_seed)

    s = sub.add_parser("count")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("mailboxes", nargs="+")
    s.set_defaults(func=cmd_count)

    s = sub.add_parser("replies")
    s.add_argument("outdir")
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--corpus", help="name the corpus file of unanswered mails")
    s.add_argument("--intake", help="`intake list --json` output: say what became of them")
    s.set_defaults(func=cmd_replies)

    s = sub.add_parser("latency")
    s.add_argument("corpus")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--outdir", required=True)
    s.add_argument("--rounds", type=int, default=30)
    s.add_argument("--warmup", type=int, default=0)
    s.add_argument("--timeout", type=float, default=60)
    s.add_argument("--record")
    s.set_defaults(func=cmd_latency)

    s = sub.add_parser("phases")
    s.add_argument("log")
    s.add_argument("--start", type=float, required=True)
    s.set_defaults(func=cmd_phases)

    s = sub.add_parser("idle-phases")
    s.add_argument("log")
    s.add_argument("record")
    s.set_defaults(func=cmd_idle_phases)

    args = p.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
