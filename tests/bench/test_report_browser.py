"""The interactive report opened in a real browser: Debian's chromium, headless.

Chromium is driven over the Chrome DevTools Protocol (CDP) on its websocket, with the
``websocket-client`` package, rather than by parsing ``--dump-dom`` and ``--enable-logging``
output: CDP is the protocol Chromium's own tooling (Puppeteer, Playwright, DevTools) is built on
and is versioned with the browser, so it reports uncaught exceptions (``Runtime.exceptionThrown``),
``console.error`` calls, browser-side errors (``Log.entryAdded``) and every network request
(``Network.requestWillBeSent``) as structured events, and it lets the test evaluate JavaScript in
the rendered page to count the figures plotly drew. Console lines on stderr are a debugging aid
whose format and verbosity change between releases; a test built on them passes silently when
the format moves. ``websocket-client`` is a small, synchronous, maintained client (no event loop
needed in a test).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlparse

import pytest

# flags that work on the CI image and on the build machines (root, no display, no GPU, no
# network): a fresh profile per browser, nothing fetched in the background. Software WebGL
# (SwiftShader) is opted into explicitly: the parallel-coordinates figure is WebGL, and
# Chromium's silent fallback to it is deprecated
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-unsafe-swiftshader"]

# what the rendered page says about itself: per plotly figure div, whether plotly built it (a
# .plot-container holding its svg.main-svg layers); links and sources that leave the machine
PROBE = textwrap.dedent("""
    (() => {
      const meta = document.querySelector('meta[name="hwnas-figures"]');
      const divs = [...document.querySelectorAll('div.plotly-graph-div')];
      const drawn = divs.filter(d => d.querySelector('.plot-container svg.main-svg') !== null
                                     && d._fullLayout !== undefined);
      const external = [...document.querySelectorAll('[src],[href]')]
        .map(e => e.getAttribute('src') || e.getAttribute('href'))
        .filter(u => /^\\s*(https?:)?\\/\\//i.test(u));
      return {expected: meta ? Number(meta.content) : null, divs: divs.length,
              drawn: drawn.length, external: external, ready: document.readyState};
    })()""")

# what a page may load: files on this machine and what it embeds
LOCAL = ("data", "blob", "about")


def chromium_or_skip() -> str:
    """Debian's chromium; absent, the test fails in CI (``.ci/run`` installs it) and skips
    elsewhere with the command that installs it."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI: .ci/run installs it (apt-get install -y "
                        "chromium)")
        pytest.skip("needs Debian's chromium for the browser check: apt-get install -y chromium")
    return exe


@dataclass
class PageCheck:
    """What a page did in the browser."""

    url: str
    expected: int | None = None
    divs: int = 0
    drawn: int = 0
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)

    @property
    def external_requests(self) -> list[str]:
        """Requests for anything but a local file or embedded data (a ``file://host/`` URL,
        which a protocol-relative link becomes on a file page, is not local)."""
        def local(url: str) -> bool:
            u = urlparse(url)
            return u.scheme in LOCAL or (u.scheme == "file" and u.netloc in ("", "localhost"))

        return [u for u in self.requests if not local(u)]


class Chromium:
    """A headless Chromium and one tab, spoken to over CDP (one websocket, flat sessions)."""

    def __init__(self, exe: str, timeout: float = 120.0):
        import websocket

        self.profile = tempfile.mkdtemp(prefix="hwnas-chromium-")
        self.timeout = timeout
        # port 0: the browser picks a free port and writes it to DevToolsActivePort
        self.proc = subprocess.Popen([exe, *FLAGS, f"--user-data-dir={self.profile}",
                                      "--remote-debugging-port=0", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        active = Path(self.profile) / "DevToolsActivePort"
        start = time.monotonic()
        while len(active.read_text().split()) < 2 if active.is_file() else True:
            if self.proc.poll() is not None or time.monotonic() - start > timeout:
                self.close()
                raise RuntimeError(f"chromium did not open its DevTools port ({exe})")
            time.sleep(0.05)
        port, path = active.read_text().split()[:2]
        self.ws = websocket.create_connection(f"ws://127.0.0.1:{port}{path}", timeout=timeout,
                                              suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target,
                                 flatten=True)["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            self.send(f"{domain}.enable", session=self.session)

    def _recv(self) -> dict:
        message = json.loads(self.ws.recv())
        if "method" in message:
            self.events.append(message)
        return message

    def send(self, method: str, session: str | None = None, **params) -> dict:
        """Call a CDP method and return its result (events that arrive meanwhile are kept)."""
        self.next_id += 1
        call = {"id": self.next_id, "method": method, "params": params}
        if session:
            call["sessionId"] = session
        self.ws.send(json.dumps(call))
        while True:
            message = self._recv()
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def _wait_for(self, method: str, since: int) -> None:
        deadline = time.monotonic() + self.timeout
        while not any(e["method"] == method for e in self.events[since:]):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {method} within {self.timeout} s")
            self._recv()

    def evaluate(self, expression: str) -> object:
        result = self.send("Runtime.evaluate", session=self.session, expression=expression,
                           returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"probe failed: {result['exceptionDetails']}")
        return result["result"]["value"]

    def check(self, url: str, settle: float = 30.0) -> PageCheck:
        """Load ``url``, wait for its load event and for every figure to be drawn (or
        ``settle`` seconds), and say what rendered and what went wrong."""
        since = len(self.events)
        self.send("Page.navigate", session=self.session, url=url)
        self._wait_for("Page.loadEventFired", since)
        deadline = time.monotonic() + settle
        # plotly draws in the scripts after each div, but may finish a figure after the load
        # event (fonts, WebGL): poll until every div is drawn
        while True:
            state = self.evaluate(PROBE)
            if state["drawn"] >= state["divs"] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        # a round trip, so events the page raised while drawing have arrived
        self.evaluate("0")
        out = PageCheck(url, state["expected"], state["divs"], state["drawn"],
                        external=state["external"])
        for e in self.events[since:]:
            p = e.get("params", {})
            if e["method"] == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                what = d.get("exception", {}).get("description") or d["text"]
                out.errors.append(f"uncaught: {what}")
            elif e["method"] == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
                out.errors.append("console.error: " + " ".join(
                    str(a.get("value", a.get("description"))) for a in p["args"]))
            elif e["method"] == "Log.entryAdded" and p["entry"]["level"] == "error":
                out.errors.append(f"log: {p['entry']['text']}")
            elif e["method"] == "Network.requestWillBeSent":
                out.requests.append(p["request"]["url"])
        return out

    def close(self) -> None:
        # the browser may already be gone; it is killed below either way
        with contextlib.suppress(Exception):
            self.send("Browser.close")
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


class _Links(HTMLParser):
    """The src and href of every element (script bodies are text to the parser, not tags)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.meta: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.urls += [a[k] for k in ("src", "href") if a.get(k)]
        if tag == "meta" and a.get("name"):
            self.meta[a["name"]] = a.get("content", "")


CONFIG = """
[compare]
seeds = [0, 1, 2]
budgets = [12, 24]
executor = "serial"

[[problems]]
name = "nb201"
space = "nb201"
task = "cifar10_test_200ep"
devices = ["dev_a"]
objectives = ["accuracy", "latency"]
constraints = ["latency<=8"]

[[problems]]
name = "tri"
space = "nb201"
task = "cifar10_test_200ep"
devices = ["dev_a"]
objectives = ["accuracy", "latency", "params"]
# a tight constraint keeps the true 3-objective front's domination matrix small
constraints = ["latency<=3"]

[[strategies]]
name = "random"

[[strategies]]
name = "evolution"
options = { population = 8, sample_size = 3 }
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory, synthetic_data) -> dict:
    """A report, written by ``hwnas report``, of a small real compare run: a constrained
    2-objective problem and a 3-objective one, two strategies, three seeds. Returns the index,
    each page's figure count (read from its ``hwnas-figures`` tag) and the CLI's summary."""
    from hwnas.bench.cli import main
    from hwnas.bench.compare import load_config, run_compare

    root = tmp_path_factory.mktemp("browser")
    (root / "grid.toml").write_text(CONFIG)
    stdout = io.StringIO()
    # module-scoped, so set up before the per-test isolation: isolate it the same way
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HWNAS_CACHE", str(root / "cache"))
        mp.setenv("HWNAS_RESULTS", str(root / "results"))
        mp.delenv("HWNAS_DATA", raising=False)
        run_compare(load_config(root / "grid.toml"), root / "cmp", str(synthetic_data))
        with contextlib.redirect_stdout(stdout):
            code = main(["--data", str(synthetic_data), "report", str(root / "cmp"), "--out",
                         str(root / "rep")])
    assert code == 0, stdout.getvalue()
    summary = re.search(r"interactive: (\S+) \((\d+) pages, (\d+) figures, offline\)",
                        stdout.getvalue())
    assert summary, stdout.getvalue()
    index = Path(summary.group(1))
    links = _Links()
    links.feed(index.read_text())
    # the interactive pages carry their figure count; the static report.html has none
    pages, static = {"index.html": 0}, []
    for name in links.urls:
        if name.endswith(".html") and name != "index.html":
            page = _Links()
            page.feed((index.parent / name).read_text())
            if "hwnas-figures" in page.meta:
                pages[name] = int(page.meta["hwnas-figures"])
            else:
                static.append(name)
    assert len(pages) - 1 == int(summary.group(2))
    assert sum(pages.values()) == int(summary.group(3))
    return {"index": index, "pages": pages, "static": static}


def test_every_page_is_offline_and_embeds_plotly_once(report):
    out = Path(report["index"]).parent
    assert set(report["pages"]) == {"index.html", "strategies.html", "problem_nb201.html",
                                    "problem_tri.html"}
    assert report["static"] == ["report.html"]
    for name, n in report["pages"].items():
        text = (out / name).read_text()
        links = _Links()
        links.feed(text)
        # nothing that leaves the machine: the plotly bundle's own "https://" strings are
        # script text, inert, and not seen by the parser as attributes
        assert not [u for u in links.urls if u.lower().lstrip().startswith(("http:", "https:",
                                                                            "//"))], name
        assert links.meta["hwnas-figures"] == str(n)
        assert text.count('class="plotly-graph-div"') == n
        assert text.count("plotly.js v") == (1 if n else 0), name
    index = (out / "index.html").read_text()
    for name in report["pages"]:
        assert name == "index.html" or f'href="{name}"' in index
    # the 3-objective problem gets its projections and parallel coordinates, the 2-objective
    # one its attainment surfaces
    tri, two = (out / "problem_tri.html").read_text(), (out / "problem_nb201.html").read_text()
    assert '"type":"parcoords"' in tri and "attainment" not in tri
    assert "attained by" in two and "infeasible" in two
    assert "Critical-difference diagram" in (out / "strategies.html").read_text()


def test_every_page_renders_every_figure_in_chromium_without_errors(report):
    exe = chromium_or_skip()
    out = Path(report["index"]).parent
    browser = Chromium(exe)
    try:
        for name, n in report["pages"].items():
            result = browser.check((out / name).as_uri())
            assert result.errors == [], (name, result.errors)
            assert result.expected == n and result.divs == n and result.drawn == n, result
            assert result.external == [] and result.external_requests == [], result
        # the static report too: its PNGs are inline, it has no plotly figure and no error
        for name in report["static"]:
            result = browser.check((out / name).as_uri())
            assert result.errors == [] and result.divs == 0, (name, result)
            assert result.external == [] and result.external_requests == [], result
    finally:
        browser.close()


def test_the_checker_catches_a_javascript_error_and_an_undrawn_figure(tmp_path):
    """The checker is proven on a page that throws, logs an error, lacks a figure it
    announces and links out (``.invalid`` never resolves): each is reported."""
    exe = chromium_or_skip()
    page = tmp_path / "broken.html"
    page.write_text('<!doctype html><html><head><meta charset="utf-8">'
                    '<meta name="hwnas-figures" content="1"></head><body>'
                    '<div class="plotly-graph-div" id="fig-0"></div>'
                    '<a href="https://example.invalid/">out</a>'
                    '<img alt="" src="https://example.invalid/x.png">'
                    '<script>console.error("drawing failed");</script>'
                    '<script>Plotly.newPlot("fig-0", []);</script></body></html>')
    browser = Chromium(exe)
    try:
        result = browser.check(page.as_uri(), settle=1.0)
    finally:
        browser.close()
    assert any("Plotly is not defined" in e for e in result.errors), result.errors
    assert any("drawing failed" in e for e in result.errors), result.errors
    assert result.expected == 1 and result.divs == 1 and result.drawn == 0
    assert result.external == ["https://example.invalid/", "https://example.invalid/x.png"]
    assert result.external_requests == ["https://example.invalid/x.png"], result.requests
