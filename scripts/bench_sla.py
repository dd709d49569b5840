#!/usr/bin/env python3
"""The SLA clock's speed with many tickets (a benchmark, not a test).

    scripts/bench_sla.py [--tickets N] [--requests N] [--postgres URL] [BINARY]

Seeds N tickets (default 100,000) as scripts/bench_web.py does, gives every
one the tier `gold` and due times, with a running clock (the due time the
queue sorts on, spread from two days ago to two days ahead) on the new and
open ones, starts `servicedesk web` with an `[sla]` section, and times,
one after the other over loopback HTTP:

  * the "due soon / overdue" view `/?view=due_soon` (with the counts),
  * `GET /api/tickets?view=due_soon&limit=50` with a bearer token,
  * `PATCH /api/tickets/CS-0NNNNN` changing the priority of a random open
    ticket (the change, its audit and correction, and the clock computed again).

It prints p50/p95/max per request kind (client-side, loopback) and how
many tickets the view and its count hold.
"""
import argparse, json, os, random, re, shutil, statistics, subprocess, sys, tempfile, time
import urllib.error, urllib.parse, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_web  # noqa: E402  the seeding and helpers of the workspace benchmark

SLA = """
[sla]
due_soon = "2h"
[[sla.tiers]]
name = "gold"
first_response = "4h"
resolution = "16h"
[[sla.tiers.targets]]
priority = "critical"
first_response = "1h"
resolution = "8h"
"""

SQLITE_SLA = """
UPDATE tickets SET sla_tier = 'gold', sla_response_minutes = 240, sla_resolution_minutes = 960,
  first_response_due = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ((id % 5760) - 2880) || ' minutes'),
  resolution_due = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ((id % 5760) + 2880) || ' minutes'),
  sla_next_due = CASE WHEN status IN ('new', 'open')
      THEN strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ((id % 5760) - 2880) || ' minutes') END,
  sla_paused_since = CASE WHEN status IN ('new', 'open') THEN NULL ELSE created_at END;
ANALYZE;
"""

POSTGRES_SLA = """
UPDATE tickets SET sla_tier = 'gold', sla_response_minutes = 240, sla_resolution_minutes = 960,
  first_response_due = to_char((now() at time zone 'utc') + ((id % 5760) - 2880) * interval '1 minute', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
  resolution_due = to_char((now() at time zone 'utc') + ((id % 5760) + 2880) * interval '1 minute', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
  sla_next_due = CASE WHEN status IN ('new', 'open')
      THEN to_char((now() at time zone 'utc') + ((id % 5760) - 2880) * interval '1 minute', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') END,
  sla_paused_since = CASE WHEN status IN ('new', 'open') THEN NULL ELSE created_at END;
-- What autovacuum does on a desk in use: the counts read the index alone.
VACUUM ANALYZE tickets;
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tickets", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--postgres", help="admin URL of a PostgreSQL server; a new database is made there")
    ap.add_argument("binary", nargs="?", default=os.path.join(bench_web.ROOT, "target/release/servicedesk"))
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-sla-")
    port = bench_web.free_port()
    pg_name = None
    if a.postgres:
        pg_name = f"sd_bench_sla_{os.getpid()}"
        subprocess.run(["psql", "-q", a.postgres, "-c", f"CREATE DATABASE {pg_name}"], check=True)
        db_url = re.sub(r"/[^/?]*(\?|$)", f"/{pg_name}\\1", a.postgres, count=1) if a.postgres.count("/") > 2 else a.postgres + "/" + pg_name
    else:
        db_url = f"sqlite://{work}/bench.db"
    config = os.path.join(work, "servicedesk.toml")
    with open(config, "w") as f:
        f.write(f'[database]\nurl = "{db_url}"\n[support]\naddress = "support@example.test"\n'
                f'[web]\nlisten = "127.0.0.1:{port}"\n{SLA}')
    run = lambda *args, stdin=None: subprocess.run([a.binary, "--config", config, *args], input=stdin, capture_output=True, check=True)
    run("agents", "add", "agent@desk.example", "--name", "Agent", "--role", "lead", stdin=b"bench-password\n")
    token = run("agents", "token", "agent@desk.example").stdout.decode().strip()
    t0 = time.time()
    if a.postgres:
        bench_web.seed_postgres(db_url, a.tickets)
        subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", db_url], input=POSTGRES_SLA.encode(), check=True)
    else:
        bench_web.seed_sqlite(f"{work}/bench.db", a.tickets)
        import sqlite3
        db = sqlite3.connect(f"{work}/bench.db")
        db.executescript(SQLITE_SLA)
        db.commit()
        db.close()
    print(f"seeded {a.tickets} tickets with due times in {time.time() - t0:.1f}s ({'PostgreSQL' if a.postgres else 'SQLite'})")
    web = subprocess.Popen([a.binary, "--config", config, "web"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    bearer = {"Authorization": f"Bearer {token}"}
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
        due = json.loads(urllib.request.urlopen(urllib.request.Request(
            base + "/api/tickets?view=due_soon&limit=10000", headers=bearer)).read())
        page = urllib.request.urlopen(urllib.request.Request(base + "/?view=due_soon", headers={"Cookie": cookie})).read().decode()
        count = re.search(r'view=due_soon"[^>]*>[^<]*<span class="count">(\d+)', page)
        print(f"due soon or overdue: {len(due)} listed, count {count.group(1) if count else '?'}")
        open_numbers = [t["number"] for t in json.loads(urllib.request.urlopen(urllib.request.Request(
            base + "/api/tickets?view=open&limit=2000", headers=bearer)).read()) if t["status"] in ("new", "open")]
        rnd = random.Random(1)
        priorities = ["normal", "high", "critical"]

        def patch():
            body = json.dumps({"priority": rnd.choice(priorities)}).encode()
            return urllib.request.Request(base + f"/api/tickets/{rnd.choice(open_numbers)}", data=body, method="PATCH",
                                          headers={**bearer, "Content-Type": "application/json"})

        kinds = {
            "due-soon view /?view=due_soon": lambda: urllib.request.Request(base + "/?view=due_soon", headers={"Cookie": cookie}),
            "GET /api/tickets?view=due_soon&limit=50": lambda: urllib.request.Request(
                base + "/api/tickets?view=due_soon&limit=50", headers=bearer),
            "PATCH priority (clock computed again)": patch,
        }
        for name, make in kinds.items():
            times = []
            for i in range(a.requests + 5):
                req = make()
                t = time.perf_counter()
                with urllib.request.urlopen(req) as r:
                    r.read()
                    assert r.status == 200, (req.full_url, r.status)
                if i >= 5:  # warm-up
                    times.append((time.perf_counter() - t) * 1000)
            times.sort()
            p95 = times[int(len(times) * 0.95) - 1]
            print(f"{name:48} p50 {statistics.median(times):6.1f} ms  p95 {p95:6.1f} ms  max {times[-1]:6.1f} ms")
    finally:
        web.terminate()
        web.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
        if pg_name:
            subprocess.run(["psql", "-q", a.postgres, "-c", f"DROP DATABASE IF EXISTS {pg_name} WITH (FORCE)"])


if __name__ == "__main__":
    main()
