#!/usr/bin/env python3
"""The workspace's speed with many tickets (a benchmark, not a test).

    scripts/bench_web.py [--tickets N] [--requests N] [--postgres URL] [BINARY]

Makes a fresh database (SQLite in a temporary folder, or a new database on
the PostgreSQL server of --postgres), lets `servicedesk agents add` create
the schema and an agent, seeds N tickets (default 100,000) with two thread
messages each straight into the tables (categories, statuses, customers,
languages and senders spread evenly, a tenth assigned, a twentieth flagged
for attention), starts `servicedesk web` (release build by default), logs in
and times, one after the other over loopback HTTP:

  * the queue page `/` (all open tickets, first page, with counts),
  * a filtered queue page `/?view=open&category=incident&language=fr`,
  * the third page of a queue (through the `before` cursor),
  * a ticket page `/tickets/CS-0NNNNN` (random tickets),
  * `GET /api/tickets?category=incident&limit=50` with a bearer token.

It prints p50/p95/max per request kind (client-side, loopback: the server's
time plus a little HTTP) and the server's peak RSS (VmHWM).
"""
import argparse, json, os, random, re, shutil, socket, sqlite3, statistics, subprocess, sys, tempfile, time
import urllib.error, urllib.parse, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CATEGORIES = ["question", "incident", "change", "feedback"]
STATUSES = ["new", "open", "open", "awaiting_approval", "on_hold", "resolved", "closed"]
LANGUAGES = ["nl", "nl", "fr", "en", "de"]
REASONS = [None, None, None, "infrastructure", "training", "on_site"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rows(n):
    rnd = random.Random(7)
    for i in range(1, n + 1):
        cust = rnd.randrange(200)
        yield (
            i, f"CS-{i:06d}", rnd.choice(CATEGORIES), rnd.choice(REASONS), rnd.choice(STATUSES),
            f"Customer {cust:03d}", f"person{rnd.randrange(5)}@customer{cust:03d}.example",
            f"Person {cust}", f"Ticket subject {i} about module {rnd.randrange(40)}",
            rnd.choice(LANGUAGES), '{"rules": [["incident.failure.nl", 7.5]], "confidence": 0.9}',
            f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}T10:00:00.000Z",
            "agent@desk.example" if i % 10 == 0 else None,
            "sorting unsure" if i % 20 == 0 else None,
        )


TICKET_SQL = (
    "INSERT INTO tickets (id, number, category, chargeable_reason, status, customer, sender, sender_name, "
    "subject, language, evidence, created_at, updated_at, assignee, attention) "
    "VALUES ({p})"
)


def seed_sqlite(path, n):
    db = sqlite3.connect(path)
    db.executemany(
        TICKET_SQL.format(p=", ".join("?" * 15)),
        (r[:12] + (r[11],) + r[12:] for r in rows(n)),
    )
    db.executemany(
        "INSERT INTO messages (ticket_id, direction, message_id, from_addr, subject, body, created_at, outsider) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
        (m for r in rows(n) for m in (
            (r[0], "in", f"m{r[0]}@customer.example", r[6], r[8], "Dag servicedesk,\n\nEr loopt iets mis.\n" * 5, r[11]),
            (r[0], "out", f"sd.{r[0]}.received@example.test", "support@example.test", f"[{r[1]}] Ontvangen", "Bedankt.\n" * 5, r[11]),
        )),
    )
    db.commit()
    db.close()


def seed_postgres(url, n):
    sql = f"""
INSERT INTO tickets (number, category, chargeable_reason, status, customer, sender, sender_name, subject,
                     language, evidence, created_at, updated_at, assignee, attention)
OVERRIDING SYSTEM VALUE
SELECT 'CS-' || lpad(i::text, 6, '0'),
       (ARRAY['question','incident','change','feedback'])[1 + i % 4],
       (ARRAY[NULL,NULL,NULL,'infrastructure','training','on_site'])[1 + i % 6],
       (ARRAY['new','open','open','awaiting_approval','on_hold','resolved','closed'])[1 + i % 7],
       'Customer ' || lpad((i % 200)::text, 3, '0'),
       'person' || (i % 5) || '@customer' || lpad((i % 200)::text, 3, '0') || '.example',
       'Person ' || (i % 200), 'Ticket subject ' || i || ' about module ' || (i % 40),
       (ARRAY['nl','nl','fr','en','de'])[1 + i % 5],
       '{{"rules": [["incident.failure.nl", 7.5]], "confidence": 0.9}}',
       '2026-01-01T10:00:00.000Z', '2026-01-01T10:00:00.000Z',
       CASE WHEN i % 10 = 0 THEN 'agent@desk.example' END,
       CASE WHEN i % 20 = 0 THEN 'sorting unsure' END
FROM generate_series(1, {n}) AS i;
INSERT INTO messages (ticket_id, direction, message_id, from_addr, subject, body, created_at, outsider)
SELECT t.id, d.direction, d.direction || t.id || '@customer.example', t.sender, t.subject,
       repeat('Dag servicedesk, er loopt iets mis. ', 5), t.created_at, 0
FROM tickets t CROSS JOIN (VALUES ('in'), ('out')) AS d(direction);
ANALYZE;
"""
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url], input=sql.encode(), check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tickets", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--postgres", help="admin URL of a PostgreSQL server; a new database is made there")
    ap.add_argument("binary", nargs="?", default=os.path.join(ROOT, "target/release/servicedesk"))
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-web-")
    port = free_port()
    pg_name = None
    if a.postgres:
        pg_name = f"sd_bench_web_{os.getpid()}"
        subprocess.run(["psql", "-q", a.postgres, "-c", f"CREATE DATABASE {pg_name}"], check=True)
        db_url = re.sub(r"/[^/?]*(\?|$)", f"/{pg_name}\\1", a.postgres, count=1) if a.postgres.count("/") > 2 else a.postgres + "/" + pg_name
    else:
        db_url = f"sqlite://{work}/bench.db"
    config = os.path.join(work, "servicedesk.toml")
    with open(config, "w") as f:
        f.write(f'[database]\nurl = "{db_url}"\n[support]\naddress = "support@example.test"\n[web]\nlisten = "127.0.0.1:{port}"\n')
    run = lambda *args, stdin=None: subprocess.run([a.binary, "--config", config, *args], input=stdin, capture_output=True, check=True)
    run("agents", "add", "agent@desk.example", "--name", "Agent", "--role", "lead", stdin=b"bench-password\n")
    token = run("agents", "token", "agent@desk.example").stdout.decode().strip()
    t0 = time.time()
    if a.postgres:
        seed_postgres(db_url, a.tickets)
    else:
        seed_sqlite(f"{work}/bench.db", a.tickets)
    print(f"seeded {a.tickets} tickets and {2 * a.tickets} messages in {time.time() - t0:.1f}s ({'PostgreSQL' if a.postgres else 'SQLite'})")
    web = subprocess.Popen([a.binary, "--config", config, "web"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
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
        try:
            opener.open(req)
        except urllib.error.HTTPError as e:
            cookie = e.headers["Set-Cookie"].split(";")[0]
        rnd = random.Random(1)
        first = json.loads(urllib.request.urlopen(urllib.request.Request(
            base + "/api/tickets?view=open&limit=101", headers={"Authorization": f"Bearer {token}"})).read())
        cursor = first[-1]["number"]
        kinds = {
            "queue page /": lambda: ("/", {"Cookie": cookie}),
            "queue page, filtered": lambda: ("/?view=open&category=incident&language=fr", {"Cookie": cookie}),
            "queue page, third page": lambda: (f"/?view=open&before={cursor}", {"Cookie": cookie}),
            "ticket page": lambda: (f"/tickets/CS-{rnd.randrange(1, a.tickets + 1):06d}", {"Cookie": cookie}),
            "GET /api/tickets?category=incident&limit=50": lambda: (
                "/api/tickets?category=incident&limit=50", {"Authorization": f"Bearer {token}"}),
        }
        for name, make in kinds.items():
            times = []
            for i in range(a.requests + 5):
                path, headers = make()
                t = time.perf_counter()
                with urllib.request.urlopen(urllib.request.Request(base + path, headers=headers)) as r:
                    r.read()
                    assert r.status == 200, (path, r.status)
                if i >= 5:  # warm-up
                    times.append((time.perf_counter() - t) * 1000)
            times.sort()
            p95 = times[int(len(times) * 0.95) - 1]
            print(f"{name:48} p50 {statistics.median(times):6.1f} ms  p95 {p95:6.1f} ms  max {times[-1]:6.1f} ms")
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
