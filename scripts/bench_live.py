#!/usr/bin/env python3
"""The live desk's speed (a benchmark, not a test).

    scripts/bench_live.py [--mails N] [--agents N] [--changes N] [--postgres URL] [BINARY]

Starts private mail servers (scripts/mailservers.sh: Dovecot and the SMTP
sink), a fresh database (SQLite in a temporary folder, or a new database on
the PostgreSQL server of --postgres), the registry, agents with API tokens,
and `servicedesk run` with the workspace (release build by default). Then,
over loopback:

  * APPEND-to-screen: one agent's live stream (GET /events) is open; N
    mails (default 30) are APPENDed to the support mailbox over IMAPS, one
    after the other. For each: the time from the APPEND to the `created`
    event on the stream, and to the new row on the queue page (the page
    fetched on the event, as the page's script does). Median and p99.
  * Fan-out: 50 agents' streams (--agents) are open while --changes notes
    (default 200, one every 20 ms) are added through the API; the time from
    each API answer to the event's arrival at every client (median, p99),
    and the daemon's CPU time per event, against the same run without
    clients: the cost of each connected agent. Then a burst of 100 notes at
    once: how many pushes (counts updates) each client got for it.

It prints the figures and the daemon's peak RSS (VmHWM).
"""
import argparse, datetime, http.client, imaplib, json, os, re, shutil, socket, ssl, statistics, subprocess
import sys, tempfile, threading, time, urllib.error, urllib.parse, urllib.request
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASSWORD = "bench-password-123"
CUSTOMERS = "customer,contract_status,campuses\nWZC De Linde,active,Gent;Aalst\n"
PERSONS = ("email,name,customer,campus,role,language\n"
           "koen.dewitte@delinde.example,Koen De Witte,WZC De Linde,Aalst,campus,nl\n"
           "an.peeters@delinde.example,An Peeters,WZC De Linde,Gent,campus,nl\n"
           "els.vermeulen@delinde.example,Els Vermeulen,WZC De Linde,,general,nl\n"
           "tom.claes@delinde.example,Tom Claes,WZC De Linde,,technical,nl\n")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(len(v) * p / 100.0)) - 1))]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Stream(threading.Thread):
    """One live stream; records (arrival time, event, data) of each event."""

    def __init__(self, port, token, on_event=None):
        super().__init__(daemon=True)
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        self.conn.request("GET", "/events", headers={"Authorization": f"Bearer {token}"})
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200, self.resp.status
        self.events = []
        self.on_event = on_event
        self.ready = threading.Event()
        self.start()

    def run(self):
        event, data = "message", ""
        try:
            for raw in self.resp:
                line = raw.decode().rstrip("\r\n")
                if line == "":
                    if data:
                        t = time.perf_counter()
                        d = json.loads(data)
                        self.events.append((t, event, d))
                        if event == "counts":
                            self.ready.set()
                        if self.on_event:
                            self.on_event(t, event, d)
                    event, data = "message", ""
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data += line[5:].strip()
        except Exception:  # closed by close(), or the server went away
            pass

    def close(self):
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()


def mail(i):
    return (f"Message-ID: <bench-live-{i}-{time.time_ns()}@delinde.example>\r\n"
            "From: Koen De Witte <koen.dewitte@delinde.example>\r\nTo: support@example.test\r\n"
            f"Subject: Foutmelding {i} bij opslaan zorgplan\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            "Dag servicedesk,\r\n\r\nBij het opslaan van een zorgplan krijgen we een foutmelding.\r\n"
            "Kunnen jullie dit nakijken?\r\n\r\nKoen\r\n").encode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mails", type=int, default=30)
    ap.add_argument("--agents", type=int, default=50)
    ap.add_argument("--changes", type=int, default=200)
    ap.add_argument("--postgres", help="admin URL of a PostgreSQL server; a new database is made there")
    ap.add_argument("binary", nargs="?", default=os.path.join(ROOT, "target/release/servicedesk"))
    a = ap.parse_args()
    a.binary = os.path.abspath(a.binary)
    work = tempfile.mkdtemp(prefix="bench-live-", dir="/tmp")
    mails_dir = os.path.join(work, "m")
    os.makedirs(mails_dir)
    subprocess.run(["bash", os.path.join(ROOT, "scripts/mailservers.sh"), "start", mails_dir],
                   check=True, capture_output=True)
    try:
        bench(a, work, mails_dir)
    finally:
        subprocess.run(["bash", os.path.join(ROOT, "scripts/mailservers.sh"), "stop", mails_dir], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def bench(a, work, mails_dir):
    ports = dict(l.strip().split("=", 1) for l in open(os.path.join(mails_dir, "ports.env")) if "=" in l)
    pg_name = None
    if a.postgres:
        pg_name = f"sd_bench_live_{os.getpid()}"
        subprocess.run(["psql", "-q", a.postgres, "-c", f"CREATE DATABASE {pg_name}"], check=True)
        db_url = re.sub(r"/[^/?]*(\?|$)", f"/{pg_name}\\1", a.postgres, count=1)
    else:
        db_url = f"sqlite://{work}/bench.db"
    port = free_port()
    config = os.path.join(work, "servicedesk.toml")
    with open(config, "w") as f:
        f.write(f"""[database]
url = "{db_url}"
[support]
address = "support@example.test"
ticket_prefix = "CS"
[imap]
host = "127.0.0.1"
port = {ports['IMAPS_PORT']}
tls = "implicit"
ca_file = "{mails_dir}/tls/ca.pem"
username = "support@example.test"
password = "support-pass"
mailbox = "INBOX"
processed_folder = "Processed"
quarantine_folder = "Quarantine"
[smtp]
host = "127.0.0.1"
port = {ports['SMTP_PORT']}
tls = "none"
from = "Care Solutions Servicedesk <support@example.test>"
[web]
listen = "127.0.0.1:{port}"
""")
    run = lambda *args, stdin=None: subprocess.run([a.binary, "--config", config, *args], input=stdin,
                                                   capture_output=True, check=True, cwd=work)
    for name, text in (("customers.csv", CUSTOMERS), ("persons.csv", PERSONS)):
        with open(os.path.join(work, name), "w") as f:
            f.write(text)
    run("customers", "import", os.path.join(work, "customers.csv"))
    run("persons", "import", os.path.join(work, "persons.csv"))
    tokens = []
    for i in range(max(a.agents, 1)):
        run("agents", "add", f"agent{i}@desk.example", "--name", f"Agent {i}", "--role", "agent",
            stdin=f"{PASSWORD}\n".encode())
        tokens.append(run("agents", "token", f"agent{i}@desk.example").stdout.decode().strip())
    daemon = subprocess.Popen([a.binary, "--config", config, "run"], stdout=subprocess.DEVNULL,
                              stderr=open(os.path.join(work, "run.log"), "w"), cwd=work)
    base = f"http://127.0.0.1:{port}"
    streams = []
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=2)
                break
            except OSError:
                time.sleep(0.1)
        print(f"servicedesk live benchmark: {'PostgreSQL' if a.postgres else 'SQLite'}, {os.path.basename(a.binary)} "
              f"({'release' if '/release/' in a.binary else 'debug'} build)")

        # APPEND-to-screen.
        created = []
        cond = threading.Condition()

        def on_event(t, event, d):
            if event == "ticket" and d.get("field") == "created":
                # What the page's script does on the event: fetch the queue page.
                page = urllib.request.urlopen(urllib.request.Request(
                    base + "/", headers={"Cookie": cookie})).read().decode()
                assert d["ticket"] in page, d
                stored = datetime.datetime.fromisoformat(d["at"].replace("Z", "+00:00")).timestamp()
                with cond:
                    created.append((t, time.perf_counter(), d["ticket"], stored, time.time() - (time.perf_counter() - t)))
                    cond.notify_all()

        cookie = login(base)
        screen = Stream(port, tokens[0], on_event)
        screen.ready.wait(30)
        ctx = ssl.create_default_context(cafile=f"{mails_dir}/tls/ca.pem")
        imap = imaplib.IMAP4_SSL("127.0.0.1", int(ports["IMAPS_PORT"]), ssl_context=ctx)
        imap.login("support@example.test", "support-pass")
        to_event, to_row, to_stored, stored_to_event = [], [], [], []
        for i in range(a.mails):
            with cond:
                before = len(created)
            t0, w0 = time.perf_counter(), time.time()
            imap.append("INBOX", None, None, mail(i))
            with cond:
                if not cond.wait_for(lambda: len(created) > before, timeout=30):
                    raise SystemExit(f"mail {i}: no created event within 30 s")
                t_event, t_row, _, stored, w_event = created[before]
            to_event.append((t_event - t0) * 1000)
            to_row.append((t_row - t0) * 1000)
            to_stored.append((stored - w0) * 1000)
            stored_to_event.append((w_event - stored) * 1000)
            time.sleep(0.2)
        imap.logout()
        print(f"APPEND -> SSE event ({a.mails} mails)               median {statistics.median(to_event):7.1f} ms   p99 {pct(to_event, 99):7.1f} ms")
        print(f"APPEND -> row on the queue page             median {statistics.median(to_row):7.1f} ms   p99 {pct(to_row, 99):7.1f} ms")
        print(f"  of which APPEND -> ticket stored (IDLE, fetch, triage, commit)  median {statistics.median(to_stored):7.1f} ms")
        print(f"  and ticket stored -> SSE event (hub, stream)                   median {statistics.median(stored_to_event):7.1f} ms")
        screen.close()

        # Fan-out: the same changes without clients, then with 50.
        ticket = created[0][2]

        def note(i, token=tokens[0]):
            req = urllib.request.Request(base + f"/api/tickets/{ticket}/notes", method="POST",
                                         data=json.dumps({"text": f"note {i}"}).encode(),
                                         headers={"Authorization": f"Bearer {token}",
                                                  "Content-Type": "application/json"})
            urllib.request.urlopen(req).read()
            return time.perf_counter()

        def phase(n):
            c0 = cpu_seconds(daemon.pid)
            done = []
            for i in range(n):
                done.append(note(i))
                time.sleep(0.02)
            time.sleep(1.0)
            return cpu_seconds(daemon.pid) - c0, done

        cpu_alone, _ = phase(a.changes)
        streams = [Stream(port, tokens[i % len(tokens)]) for i in range(a.agents)]
        for s in streams:
            s.ready.wait(30)
        for s in streams:
            s.events.clear()
        cpu_with, done = phase(a.changes)
        lat = []
        for s in streams:
            got = [t for (t, e, d) in s.events if e == "ticket" and d.get("field") == "note"]
            if len(got) != len(done):
                raise SystemExit(f"a client got {len(got)} of {len(done)} events")
            lat.extend((g - d) * 1000 for g, d in zip(got, done))
        per_event_alone = cpu_alone / a.changes * 1000
        per_event_with = cpu_with / a.changes * 1000
        print(f"fan-out to {a.agents} clients ({a.changes} changes, 1 per 20 ms)  median {statistics.median(lat):6.1f} ms   p99 {pct(lat, 99):6.1f} ms  (API answer -> event at each client)")
        print(f"daemon CPU per change: {per_event_alone:.2f} ms without clients, {per_event_with:.2f} ms with {a.agents} "
              f"-> {(per_event_with - per_event_alone) / a.agents * 1000:.1f} µs per change per client")
        for s in streams:
            s.events.clear()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(note, range(100)))
        time.sleep(1.5)
        pushes = [sum(1 for (_, e, _) in s.events if e == "counts") for s in streams]
        notes = [sum(1 for (_, e, d) in s.events if e == "ticket") for s in streams]
        print(f"burst of 100 notes at once: every client got {min(notes)}..{max(notes)} events in "
              f"{min(pushes)}..{max(pushes)} pushes (counts updates)")
        with open(f"/proc/{daemon.pid}/status") as f:
            hwm = next(l for l in f if l.startswith("VmHWM")).split()[1]
        print(f"servicedesk run peak RSS: {int(hwm) / 1024:.1f} MiB")
    finally:
        for s in streams:
            s.close()
        daemon.terminate()
        try:
            daemon.wait(timeout=20)
        except subprocess.TimeoutExpired:
            daemon.kill()
        if pg_name:
            subprocess.run(["psql", "-q", a.postgres, "-c", f"DROP DATABASE IF EXISTS {pg_name} WITH (FORCE)"])


def login(base):
    """A session cookie of agent0 (the queue page needs one)."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kw):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    req = urllib.request.Request(base + "/login", data=urllib.parse.urlencode(
        {"email": "agent0@desk.example", "password": PASSWORD}).encode(), headers={"Origin": base})
    try:
        opener.open(req)
    except urllib.error.HTTPError as e:
        return e.headers["Set-Cookie"].split(";")[0]
    return None


if __name__ == "__main__":
    main()
