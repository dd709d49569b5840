#!/usr/bin/env python3
"""Search speed with many tickets (a benchmark, not a test).

    scripts/bench_search.py [--tickets N] [--requests N] [--postgres URL] [BINARY]

Makes a fresh database (SQLite in a temporary folder, or a new database on
the PostgreSQL server of --postgres), lets `servicedesk agents add` create
the schema (so the search index and its triggers exist), and seeds N tickets
(default 100,000) straight into the tables: each ticket's mail is one of the
1,160 realistic mails of tests/corpus (four languages) with its own
greeting, room, campus and reference lines, plus the automatic
acknowledgement; three in ten get an agent's reply and one in seven an
internal note. The triggers index each message as it is written; on SQLite
the word stems of the seeded messages are then added by the first start of
the binary (as after migration 0017), which is timed. A few rare words are
sown into a handful of tickets.

Then `servicedesk web` (release build by default) answers, one request at a
time over loopback HTTP, `GET /api/tickets?q=...&limit=50` (bearer token)
and the queue page `/?view=everything&q=...` (session) for six kinds of
search, each with several values in turn: a common word, a rare word, a
ticket number, a customer, two words, and a prefix (type-ahead). It prints
p50/p95/max per kind (client-side: the server's time plus a little HTTP),
how many tickets each kind found, and the index's size on disk.
"""
import argparse, email, email.policy, glob, json, os, random, re, shutil, socket, sqlite3, statistics
import subprocess, sys, tempfile, time, urllib.error, urllib.parse, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CATEGORIES = ["question", "incident", "change", "feedback"]
STATUSES = ["new", "open", "open", "awaiting_approval", "on_hold", "resolved", "closed", "waiting"]
CAMPUSES = ["Gent", "Aalst", "Brugge", "Leuven", "Namur", "Liège", "Eupen", "Hasselt", "Mons", "Kortrijk"]
NAMES = ["Peeters", "Janssens", "Maes", "Jacobs", "Mertens", "Willems", "Claes", "Goossens", "Wouters",
         "De Smet", "Dubois", "Lambert", "Dupont", "Martin", "Simon", "Laurent", "Schmitz", "Wagner"]
RARE = ["xylofoon", "zeppelinhangar", "kaleidoscoop", "ornithorynque", "quetzalcoatl"]
REPLIES = {
    "nl": ["Bedankt voor het melden. We hebben de instelling van de module aangepast; kunt u opnieuw proberen?",
           "We hebben het probleem kunnen reproduceren. Een oplossing volgt in de volgende update."],
    "fr": ["Merci pour votre message. Nous avons corrigé le paramètre du module ; pouvez-vous réessayer ?",
           "Nous avons pu reproduire le problème. Une correction suivra dans la prochaine mise à jour."],
    "en": ["Thank you for reporting this. We changed the module's setting; could you try again?",
           "We could reproduce the problem. A fix follows in the next update."],
    "de": ["Danke für Ihre Meldung. Wir haben die Einstellung des Moduls angepasst; bitte versuchen Sie es erneut.",
           "Wir konnten das Problem nachstellen. Eine Korrektur folgt mit dem nächsten Update."],
}
NOTES = ["Klant teruggebeld, wacht op logbestanden.", "Zelfde probleem als vorige maand bij deze klant.",
         "Escalated to development, see release notes.", "Rappel prévu demain matin avec le responsable ICT."]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def corpus():
    mails = []
    for path in sorted(glob.glob(os.path.join(ROOT, "tests/corpus/*/*.eml"))):
        with open(path, "rb") as f:
            msg = email.message_from_binary_file(f, policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain",))
        text = body.get_content() if body else ""
        lang = os.path.basename(os.path.dirname(path))
        mails.append((lang, str(msg["Subject"] or ""), text))
    return mails


def common_words(mails):
    """Words of six letters or more by how many mails hold them."""
    df = {}
    for _, subject, text in mails:
        for w in set(re.findall(r"\w{6,}", (subject + " " + text).lower())):
            if not w.isdigit():
                df[w] = df.get(w, 0) + 1
    return sorted(df.items(), key=lambda kv: -kv[1])


def tickets(n, mails):
    """(ticket row, [message rows]) for n tickets, reproducibly."""
    rnd = random.Random(7)
    rare_at = {rnd.randrange(1, n + 1): w for w in RARE for _ in range(5)}
    for i in range(1, n + 1):
        lang, subject, text = mails[rnd.randrange(len(mails))]
        cust = rnd.randrange(200)
        sender = f"person{rnd.randrange(5)}@customer{cust:03d}.example"
        name = f"{rnd.choice(['An', 'Els', 'Marc', 'Sophie', 'Tom', 'Julie'])} {rnd.choice(NAMES)}"
        extra = f"\n\nKamer {rnd.randrange(1, 400)}, campus {rnd.choice(CAMPUSES)}, ref {rnd.randrange(10**6):06d}"
        if i in rare_at:
            extra += f" ({rare_at[i]})"
        at = f"2026-{1 + (i * 12) // (n + 1):02d}-{1 + i % 28:02d}T{i % 24:02d}:00:00.000Z"
        number = f"CS-{i:06d}"
        ticket = (i, number, rnd.choice(CATEGORIES), rnd.choice(STATUSES), f"Customer {cust:03d}", sender, name,
                  subject, lang, '{"rules": [], "confidence": 0.9}', at, at,
                  "agent@desk.example" if i % 10 == 0 else None)
        msgs = [
            (i, "in", f"m{i}@customer.example", sender, subject, f"Goedendag,\n\n{text}{extra}", at, None),
            (i, "out", f"ack{i}@example.test", "support@example.test", f"[{number}] Ontvangen: {subject}",
             f"Bedankt voor uw bericht. Uw aanvraag werd geregistreerd onder ticketnummer {number}.", at, None),
        ]
        if rnd.random() < 0.3:
            msgs.append((i, "out", f"r{i}@example.test", "support@example.test", f"Re: [{number}] {subject}",
                         rnd.choice(REPLIES[lang]), at, "agent@desk.example"))
        if rnd.random() < 0.15:
            msgs.append((i, "note", f"n{i}@example.test", "agent@desk.example", subject, rnd.choice(NOTES), at,
                         "agent@desk.example"))
        yield ticket, msgs


TICKET_COLS = ("id, number, category, status, customer, sender, sender_name, subject, language, evidence, "
               "created_at, updated_at, assignee")
MESSAGE_COLS = "ticket_id, direction, message_id, from_addr, subject, body, created_at, author"


def seed_sqlite(path, n, mails):
    db = sqlite3.connect(path)
    t_rows, m_rows = [], []
    for t, ms in tickets(n, mails):
        t_rows.append(t)
        m_rows.extend(ms)
    db.executemany(f"INSERT INTO tickets ({TICKET_COLS}) VALUES ({', '.join('?' * 13)})", t_rows)
    db.executemany(f"INSERT INTO messages ({MESSAGE_COLS}, outsider) VALUES ({', '.join('?' * 8)}, 0)", m_rows)
    # As after migration 0017: the stems are added when the binary next opens it.
    db.execute("INSERT OR IGNORE INTO message_search_restem (message_id) SELECT rowid FROM message_search")
    db.commit()
    db.close()
    return len(m_rows)


def copy_text(v):
    if v is None:
        return "\\N"
    return str(v).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def seed_postgres(url, n, mails):
    t_lines, m_lines = [], []
    for t, ms in tickets(n, mails):
        t_lines.append("\t".join(copy_text(v) for v in t))
        m_lines.extend("\t".join(copy_text(v) for v in m) for m in ms)
    sql = (f"COPY tickets ({TICKET_COLS}) FROM STDIN;\n" + "\n".join(t_lines) + "\n\\.\n"
           f"COPY messages ({MESSAGE_COLS}) FROM STDIN;\n" + "\n".join(m_lines) + "\n\\.\n"
           "SELECT setval(pg_get_serial_sequence('tickets', 'id'), (SELECT max(id) FROM tickets));\n"
           "VACUUM ANALYZE;\n")
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url], input=sql.encode(), check=True)
    return len(m_lines)


def index_size(db_url, sqlite_path):
    if sqlite_path:
        db = sqlite3.connect(sqlite_path)
        try:
            rows = db.execute("SELECT SUM(pgsize) FROM dbstat WHERE name LIKE 'message_search%'").fetchone()
            fts = rows[0] or 0
        except sqlite3.OperationalError:
            fts = None
        total = os.path.getsize(sqlite_path)
        db.close()
        return f"FTS5 tables {fts / 2**20:.0f} MiB of a {total / 2**20:.0f} MiB database" if fts is not None else "?"
    out = subprocess.run(["psql", "-At", db_url, "-c",
                          "SELECT pg_relation_size('messages_search'), "
                          "(SELECT sum(pg_column_size(search)) FROM messages), pg_database_size(current_database())"],
                         capture_output=True, check=True).stdout.decode().strip().split("|")
    gin, col, total = (int(x) for x in out)
    return (f"GIN index {gin / 2**20:.0f} MiB + tsvector column {col / 2**20:.0f} MiB "
            f"of a {total / 2**20:.0f} MiB database")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tickets", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--postgres", help="admin URL of a PostgreSQL server; a new database is made there")
    ap.add_argument("binary", nargs="?", default=os.path.join(ROOT, "target/release/servicedesk"))
    a = ap.parse_args()
    mails = corpus()
    work = tempfile.mkdtemp(prefix="bench-search-")
    port = free_port()
    pg_name = None
    sqlite_path = None
    if a.postgres:
        pg_name = f"sd_bench_search_{os.getpid()}"
        subprocess.run(["psql", "-q", a.postgres, "-c", f"CREATE DATABASE {pg_name}"], check=True)
        db_url = re.sub(r"/[^/?]*(\?|$)", f"/{pg_name}\\1", a.postgres, count=1) if a.postgres.count("/") > 2 else a.postgres + "/" + pg_name
    else:
        sqlite_path = f"{work}/bench.db"
        db_url = f"sqlite://{sqlite_path}"
    config = os.path.join(work, "servicedesk.toml")
    with open(config, "w") as f:
        f.write(f'[database]\nurl = "{db_url}"\n[support]\naddress = "support@example.test"\n[web]\nlisten = "127.0.0.1:{port}"\n')
    run = lambda *args, stdin=None: subprocess.run([a.binary, "--config", config, *args], input=stdin, capture_output=True, check=True)
    run("agents", "add", "agent@desk.example", "--name", "Agent", "--role", "lead", stdin=b"bench-password\n")
    token = run("agents", "token", "agent@desk.example").stdout.decode().strip()
    backend = "PostgreSQL" if a.postgres else "SQLite"
    t0 = time.time()
    n_msgs = seed_postgres(db_url, a.tickets, mails) if a.postgres else seed_sqlite(sqlite_path, a.tickets, mails)
    print(f"{backend}: seeded {a.tickets} tickets and {n_msgs} messages, indexed by the triggers, in {time.time() - t0:.1f}s")
    if sqlite_path:
        t0 = time.time()
        run("agents", "list")  # the first opening adds the stems
        print(f"{backend}: stems of the seeded messages added at the first start in {time.time() - t0:.1f}s")
    print(f"{backend}: {index_size(db_url, sqlite_path)}")
    web = subprocess.Popen([a.binary, "--config", config, "web"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=2)
                break
            except OSError:
                time.sleep(0.1)

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kw):
                return None

        opener = urllib.request.build_opener(NoRedirect)
        req = urllib.request.Request(base + "/login", data=urllib.parse.urlencode(
            {"email": "agent@desk.example", "password": "bench-password"}).encode(), headers={"Origin": base})
        cookie = None
        try:
            opener.open(req)
        except urllib.error.HTTPError as e:
            cookie = e.headers["Set-Cookie"].split(";")[0]
        ranked = [w for w, df in common_words(mails)]
        common = [w for w, df in common_words(mails) if df > len(mails) * 0.08][:6]
        mid = [w for w, df in common_words(mails) if len(mails) * 0.02 < df < len(mails) * 0.05]
        rnd = random.Random(3)
        pairs = []
        for lang, subject, text in mails:
            words = set(re.findall(r"\w{6,}", (subject + " " + text).lower()))
            both = [w for w in mid if w in words]
            if len(both) >= 2:
                pairs.append(f"{both[0]} {both[1]}")
        kinds = {
            "common word": [w + " " for w in common],
            "rare word": [w + " " for w in RARE],
            "ticket number": [f"CS-{rnd.randrange(1, a.tickets + 1):06d}" for _ in range(20)],
            "customer": [f"Customer {rnd.randrange(200):03d}" for _ in range(20)],
            "two words": [p + " " for p in pairs[:: max(1, len(pairs) // 20)][:20]],
            "prefix (type-ahead)": [w[:4] for w in ranked[:400:20]],
        }
        print("queries: " + "; ".join(f"{k}: {', '.join(repr(v) for v in vs[:4])}…" for k, vs in kinds.items()))
        for name, values in kinds.items():
            with urllib.request.urlopen(urllib.request.Request(
                    base + "/api/tickets?" + urllib.parse.urlencode({"q": values[0], "limit": 10000}),
                    headers={"Authorization": f"Bearer {token}"})) as r:
                print(f"  {name}: {values[0]!r} matches {len(json.loads(r.read()))} tickets")
        for where, make in [
            ("GET /api/tickets?q=…&limit=50", lambda q: ("/api/tickets?" + urllib.parse.urlencode({"q": q, "limit": 50}),
                                                       {"Authorization": f"Bearer {token}"})),
            ("queue page /?view=everything&q=…", lambda q: ("/?" + urllib.parse.urlencode({"view": "everything", "q": q}),
                                                          {"Cookie": cookie})),
        ]:
            print(where)
            for name, values in kinds.items():
                times, found = [], []
                for i in range(a.requests + 5):
                    q = values[i % len(values)]
                    path, headers = make(q)
                    t = time.perf_counter()
                    with urllib.request.urlopen(urllib.request.Request(base + path, headers=headers)) as r:
                        body = r.read()
                        assert r.status == 200, (path, r.status)
                    if i >= 5:  # warm-up
                        times.append((time.perf_counter() - t) * 1000)
                        if path.startswith("/api/"):
                            found.append(len(json.loads(body)))
                times.sort()
                p95 = times[int(len(times) * 0.95) - 1]
                hits = f"  found {statistics.median(found):.0f} (median of the first 50)" if found else ""
                print(f"  {name:22} p50 {statistics.median(times):6.1f} ms  p95 {p95:6.1f} ms  max {times[-1]:6.1f} ms{hits}")
        with open(f"/proc/{web.pid}/status") as f:
            hwm = next(l for l in f if l.startswith("VmHWM")).split()[1]
        print(f"servicedesk web peak RSS: {int(hwm) / 1024:.1f} MiB")
    finally:
        web.terminate()
        web.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
        if pg_name:
            subprocess.run(["psql", "-q", a.postgres, "-c", f"DROP DATABASE IF EXISTS {pg_name} WITH (FORCE)"])


if __name__ == "__main__":
    main()
