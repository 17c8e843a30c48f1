#!/usr/bin/env python3
"""chring-proxy's dashboard in a real browser (Debian's chromium, headless,
driven by chromedriver through Selenium).

    python3 proxy/tests/browser/dashboard.py --proxy target/debug/chring-proxy [--out DIR]

Starts four real redis-server processes on free 127.0.0.1 ports, chring-proxy
over three of them (admin and control ports on 127.0.0.1), live traffic through
the proxy from a bounded background loop, and chromium on /dashboard. Checks:

1. numbers: after two refreshes, every server's numbers on the page equal
   /api/state at the same moment (counters between the snapshots taken one
   refresh before and just after reading the page; key shares and health
   exactly), and with the traffic stopped, equal exactly;
2. ejection: a redis-server killed during the test shows as ejected on the
   page within server_retry_timeout (plus one refresh);
3. add from the page: the add form (with its confirmation) adds the fourth
   server, and ROUTE on the control port then sends keys to it.

A screenshot per check goes to --out (default target/dashboard). Exits 0 when
every check passed, 1 otherwise; every wait and loop is bounded.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

REFRESH_S = 1.0
RETRY_TIMEOUT_MS = 2000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class Redis:
    def __init__(self, workdir, name):
        self.name = name
        self.port = free_port()
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def resp(*parts):
    out = [f"*{len(parts)}\r\n".encode()]
    for p in parts:
        b = p if isinstance(p, bytes) else str(p).encode()
        out.append(f"${len(b)}\r\n".encode() + b + b"\r\n")
    return b"".join(out)


class Traffic(threading.Thread):
    """SET then GET of a rotating key set through the proxy, one request at a
    time, at most `limit` requests and until stopped; errors (a killed server)
    are counted, the connection reopened."""

    def __init__(self, port, limit=200_000):
        super().__init__(daemon=True)
        self.port, self.limit = port, limit
        self.stop = threading.Event()
        self.sent = self.errors = 0

    def run(self):
        sock = None
        i = 0
        while not self.stop.is_set() and self.sent < self.limit:
            try:
                if sock is None:
                    sock = socket.create_connection(("127.0.0.1", self.port), timeout=2)
                key = f"customer-{i % 5000:05d}"
                cmd = resp("SET", key, "v") if i % 4 == 0 else resp("GET", key)
                sock.sendall(cmd)
                reply = sock.recv(4096)
                if not reply:
                    raise OSError("closed")
                if reply.startswith(b"-"):
                    self.errors += 1
                self.sent += 1
                i += 1
                time.sleep(0.002)
            except OSError:
                self.errors += 1
                if sock is not None:
                    sock.close()
                sock = None
                time.sleep(0.05)
        if sock is not None:
            sock.close()


def control(port, line):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(line.encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
        return buf.decode().strip()


def api_state(admin):
    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/api/state", timeout=5) as r:
        return json.loads(r.read())


def health_name(h):
    if isinstance(h, str):
        return h
    if isinstance(h, dict) and "ejected" in h:
        return "ejected"
    return str(h)


PAGE_ROWS_JS = """
const rows = {};
for (const tr of document.querySelectorAll('tr[data-server]')) {
  rows[tr.dataset.server] = { requests: Number(tr.dataset.requests), key_share: tr.dataset.keyShare,
                              health: tr.dataset.health, errors: Number(tr.dataset.errors) };
}
return { refreshes: Number(document.body.dataset.refreshes || 0),
         snapshot_ms: Number(document.body.dataset.snapshotMs || 0), rows };
"""


def page_rows(driver):
    return driver.execute_script(PAGE_ROWS_JS)


def wait_until(what, pred, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}")


def wait_refreshes(driver, n, timeout=15.0):
    start = page_rows(driver)["refreshes"]
    wait_until(f"{n} page refreshes", lambda: page_rows(driver)["refreshes"] >= start + n, timeout)


def check_numbers(driver, admin, traffic):
    wait_refreshes(driver, 2)
    before = api_state(admin)
    time.sleep(REFRESH_S * 1.2)  # the page refreshes at least once after `before`
    page = page_rows(driver)
    after = api_state(admin)
    servers_before = {s["name"]: s for s in before["pools"][0]["servers"]}
    servers_after = {s["name"]: s for s in after["pools"][0]["servers"]}
    assert set(page["rows"]) == set(servers_after), (page["rows"].keys(), servers_after.keys())
    for name, row in page["rows"].items():
        lo, hi = servers_before[name]["requests"], servers_after[name]["requests"]
        assert lo <= row["requests"] <= hi, f"{name}: page {row['requests']} outside [{lo}, {hi}]"
        assert row["key_share"] == f"{servers_after[name]['key_share']:.6f}", (name, row)
        assert row["health"] == health_name(servers_after[name]["health"]), (name, row)
    assert sum(s["requests"] for s in servers_after.values()) > 0, "no traffic reached the servers"
    # Quiet: the page equals /api/state exactly.
    traffic.stop.set()
    traffic.join(timeout=10)
    time.sleep(0.3)
    wait_refreshes(driver, 2)
    page = page_rows(driver)
    state = api_state(admin)
    for s in state["pools"][0]["servers"]:
        row = page["rows"][s["name"]]
        assert row["requests"] == s["requests"], (s["name"], row, s["requests"])
        assert row["errors"] == s["server_err"] + s["server_timedout"], (s["name"], row)
    return sum(r["requests"] for r in page["rows"].values())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--proxy", required=True, help="the chring-proxy binary")
    ap.add_argument("--out", default="target/dashboard", help="where screenshots go")
    args = ap.parse_args()
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.by import By
    except ImportError:
        sys.exit("dashboard.py: needs Selenium: apt-get install -y python3-selenium chromium chromium-driver")
    for tool in ("chromium", "chromedriver", "redis-server"):
        if shutil.which(tool) is None:
            sys.exit(f"dashboard.py: {tool} not found: apt-get install -y chromium chromium-driver redis-server")
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="chring-dashboard-")
    procs, driver, traffic = [], None, None
    ok = False
    try:
        redis = [Redis(work, f"r{i}") for i in range(4)]
        procs.extend(redis)
        listen, admin, ctl = free_port(), free_port(), free_port()
        conf = os.path.join(work, "nutcracker.yml")
        with open(conf, "w") as f:
            f.write(
                "alpha:\n"
                f"  listen: 127.0.0.1:{listen}\n"
                "  hash: fnv1a_64\n  distribution: ketama\n  redis: true\n"
                "  timeout: 400\n  auto_eject_hosts: true\n"
                f"  server_retry_timeout: {RETRY_TIMEOUT_MS}\n  server_failure_limit: 1\n"
                "  servers:\n"
                + "".join(f"   - 127.0.0.1:{r.port}:1 {r.name}\n" for r in redis[:3]))
        log = open(os.path.join(work, "proxy.log"), "w")
        proxy = subprocess.Popen([args.proxy, "-c", conf, "--admin", f"127.0.0.1:{admin}",
                                  "--control", f"127.0.0.1:{ctl}", "-s", str(free_port()),
                                  "-a", "127.0.0.1"], stdout=log, stderr=subprocess.STDOUT)
        for p in (listen, admin, ctl):
            wait_port(p)
        traffic = Traffic(listen)
        traffic.start()

        opts = webdriver.ChromeOptions()
        opts.binary_location = shutil.which("chromium")
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--window-size=1400,1000", f"--user-data-dir={os.path.join(work, 'chromium')}"):
            opts.add_argument(flag)
        driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
        driver.set_page_load_timeout(20)
        driver.set_script_timeout(20)
        driver.get(f"http://127.0.0.1:{admin}/dashboard")

        # 1. The page's numbers are /api/state's.
        total = check_numbers(driver, admin, traffic)
        driver.save_screenshot(os.path.join(args.out, "numbers.png"))
        print(f"numbers: page equals /api/state ({total} requests on the page)")

        # 2. A killed server shows as ejected within server_retry_timeout.
        traffic = Traffic(listen)
        traffic.start()
        victim = redis[1]
        killed_at = time.monotonic()
        victim.kill()
        budget = RETRY_TIMEOUT_MS / 1000 + 2 * REFRESH_S
        wait_until(f"{victim.name} shown ejected",
                   lambda: page_rows(driver)["rows"].get(victim.name, {}).get("health") == "ejected", budget)
        print(f"ejection: {victim.name} shown ejected {time.monotonic() - killed_at:.2f} s after the kill "
              f"(budget {budget:.1f} s)")
        driver.save_screenshot(os.path.join(args.out, "ejected.png"))
        traffic.stop.set()
        traffic.join(timeout=10)

        # 3. An add from the page changes routing.
        keys = [f"route-{i}" for i in range(400)]
        newcomer = redis[3]
        before = {k: control(ctl, f"ROUTE alpha {k}") for k in keys}
        assert all(r.startswith("+") for r in before.values()), before
        assert f"+{newcomer.name}" not in before.values()
        form = driver.find_element(By.CSS_SELECTOR, 'form.add[data-pool="alpha"]')
        form.find_element(By.NAME, "name").send_keys(newcomer.name)
        form.find_element(By.NAME, "addr").send_keys(f"127.0.0.1:{newcomer.port}")
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        alert = wait_until("the confirmation", lambda: _alert(driver), 10)
        question = alert.text
        alert.accept()
        wait_until(f"{newcomer.name} on the page",
                   lambda: newcomer.name in page_rows(driver)["rows"], 10)
        after = {k: control(ctl, f"ROUTE alpha {k}") for k in keys}
        moved = [k for k in keys if after[k] != before[k]]
        assert moved, "no key routes differently after the add"
        assert all(after[k] == f"+{newcomer.name}" for k in moved), "a key moved to a server that was not added"
        driver.save_screenshot(os.path.join(args.out, "added.png"))
        print(f"add: confirmed ({question!r}); {len(moved)} of {len(keys)} keys now route to {newcomer.name}")
        ok = True
    except AssertionError as e:
        print(f"dashboard.py: FAILED: {e}", file=sys.stderr)
        if driver is not None:
            driver.save_screenshot(os.path.join(args.out, "failure.png"))
    finally:
        if traffic is not None:
            traffic.stop.set()
        if driver is not None:
            driver.quit()
        for p in procs:
            p.kill()
        if "proxy" in locals() and proxy.poll() is None:
            proxy.send_signal(signal.SIGTERM)
            try:
                proxy.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proxy.kill()
        if not ok and os.path.exists(os.path.join(work, "proxy.log")):
            print(open(os.path.join(work, "proxy.log")).read()[-4000:], file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


def _alert(driver):
    try:
        return driver.switch_to.alert
    except Exception:  # selenium raises NoAlertPresentException until it opens
        return None


if __name__ == "__main__":
    sys.exit(main())
