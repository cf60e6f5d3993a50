"""Drives the web console in headless Chromium (the DevTools protocol over
a websocket, Debian's python3-websocket): loads each page, runs a query,
approves a queued command, checks what is shown and writes a screenshot of
each page.

    console_browser.py BASE_URL OUT_DIR
"""
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket

BASE, OUT = sys.argv[1], sys.argv[2]
TIMEOUT_S = 30


class Page:
    def __init__(self, ws_url):
        self.ws = websocket.create_connection(ws_url, timeout=TIMEOUT_S)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method,
                                 "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def eval(self, expression):
        r = self.call("Runtime.evaluate", expression=expression,
                      awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait_for(self, expression, what):
        deadline = time.time() + TIMEOUT_S
        while time.time() < deadline:
            if self.eval(expression):
                return
            time.sleep(0.1)
        raise RuntimeError(f"timed out waiting for {what}: " + str(
            self.eval("document.body && document.body.innerText")))

    def open(self, page):
        # The first loads the page; the next change its hash (the page
        # shows the new one on hashchange).
        self.call("Page.navigate", url=f"{BASE}/console#{page}")
        name = page.split("?")[0]
        self.wait_for(f"!!document.body && "
                      f"document.body.dataset.ready === '{name}'",
                      f"the {name} page")

    def screenshot(self, name):
        png = self.call("Page.captureScreenshot", format="png")["data"]
        path = os.path.join(OUT, f"console-{name}.png")
        with open(path, "wb") as f:
            f.write(base64.b64decode(png))
        assert os.path.getsize(path) > 1000, path
        print("screenshot:", path)

    def text(self, selector):
        return self.eval(
            f"(document.querySelector({json.dumps(selector)}) || "
            f"{{innerText: ''}}).innerText")


def main():
    profile = tempfile.mkdtemp()
    browser = subprocess.Popen(
        ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
         "--disable-dev-shm-usage", f"--user-data-dir={profile}",
         "--remote-debugging-port=0", "--window-size=1280,900",
         "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        active = os.path.join(profile, "DevToolsActivePort")
        deadline = time.time() + TIMEOUT_S
        while not os.path.exists(active) and time.time() < deadline:
            time.sleep(0.1)
        port = open(active).read().split()[0]
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/json/new?about:blank", method="PUT")
        target = json.load(urllib.request.urlopen(request, timeout=TIMEOUT_S))
        page = Page(target["webSocketDebuggerUrl"])
        page.call("Page.enable")
        page.call("Runtime.enable")

        page.open("cluster")
        nodes = page.text("#nodes")
        assert "leader" in nodes and "yes" in nodes, nodes
        assert "Leader" in page.text("#this-node"), page.text("#this-node")
        page.screenshot("cluster")

        page.open("query")
        page.eval("document.getElementById('sql').value = "
                  "'SELECT name, count(*) AS n FROM fruit GROUP BY name "
                  "ORDER BY name'")
        page.eval("document.getElementById('run').click()")
        page.wait_for("!!document.getElementById('rows')", "the query's rows")
        rows = page.text("#rows")
        assert "apple\t2" in rows and "pear\t1" in rows, rows
        page.screenshot("query")

        page.open("devices")
        devices = page.text("#devices")
        assert "pump-1" in devices, page.text("main")
        points = page.eval("document.querySelector('#devices polyline')"
                           ".getAttribute('points').split(' ').length")
        assert points >= 20, points
        page.screenshot("devices")

        page.open("decisions")
        assert "pending" in page.text("#approvals"), page.text("#approvals")
        page.screenshot("decisions")
        page.eval("document.querySelector('button.approve').click()")
        page.wait_for("!document.querySelector('button.approve') && "
                      "!!document.getElementById('approvals')",
                      "the approval answered")
        approvals = page.text("#approvals")
        assert "approved" in approvals, approvals
        page.screenshot("decisions-approved")
        print("console: every page shown, a query run, a command approved")
    finally:
        browser.kill()
        browser.wait()


main()
