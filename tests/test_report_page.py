"""The leaderboard page in a real browser: Debian's headless Chromium, driven over the DevTools
protocol on a pipe (standard library only), at a desktop window and with phone emulation.

Checks from the DOM, at 1400 x 1000 and at 390 x 844 (mobile, device scale 3): the layout
viewport is the window's width (the viewport tag works: without it a phone lays the page out
980 px wide and zooms out), no table widens the page (each scrolls in its own box), and body
text is at least 12 CSS px. Screenshots go to the test's tmp_path. Also: report filtering, the
verdicts and the banner, and the parquet round trip.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from harness.api import ContractError
from harness.report import write_report
from tests.test_collect_report import write_trial

# -- boards ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two workloads x three methods x 3 studies x 2 trials on `default` ("fast" clearly
    fastest on toy), a smoke run that would win if it were mixed in, and a hard workload that
    nobody reaches."""
    runs = tmp_path_factory.mktemp("runs")
    for workload, slow in (("toy", 1.0), ("toy2", 2.0)):
        for study in range(3):
            for trial in range(2):
                write_trial(runs, "fast", study, trial, (1.2 + 0.2 * study) / slow, workload)
                write_trial(runs, "slow", study, trial, (0.5 + 0.1 * trial) / slow, workload)
                write_trial(runs, "a_method_with_a_rather_long_name", study, trial, 0.6, workload)
    for run_json in runs.rglob("run.json"):  # a long CPU name must not widen a phone's page
        run = json.loads(run_json.read_text())
        run["hardware"]["cpu"] = "Intel(R) Xeon(R) Platinum 8480+ Processor, a long model name"
        run_json.write_text(json.dumps(run))
    smoke = write_trial(runs, "slow", 5, 0, 50.0)  # reached at once: a smoke run
    moved = smoke.parents[3] / "smoke" / "slow" / "study_5" / "trial_0"
    moved.parent.mkdir(parents=True)
    smoke.rename(moved)
    run = json.loads((moved / "run.json").read_text())
    (moved / "run.json").write_text(json.dumps(run | {"variant": "smoke"}))
    return runs


@pytest.fixture(scope="module")
def board(runs: Path, tmp_path_factory: pytest.TempPathFactory):
    return write_report(runs, tmp_path_factory.mktemp("board"), n_resamples=300)


@pytest.fixture(scope="module")
def missed(tmp_path_factory: pytest.TempPathFactory):
    """Nobody reaches the target: the page opens with the banner."""
    runs = tmp_path_factory.mktemp("missed")
    for study in range(2):
        write_trial(runs, "slow", study, 0, 0.1)
        write_trial(runs, "slower", study, 0, 0.05)
    write_trial(runs, "slow", 2, 0, 2.0)  # one study of three reached it
    return write_report(runs, tmp_path_factory.mktemp("board"), n_resamples=300)


def test_smoke_runs_never_join_a_default_board(board) -> None:
    text = board.readme.read_text()
    assert "**fast** reached `err` ≤ 0.1 in" in text  # the verdict, not the smoke run's 0 s
    assert "1 finished trials of other variants are not on this board" in text
    assert set(board.board.trials.variant) == {"default"}


def test_verdicts_open_the_page(board, missed) -> None:
    page = board.html.read_text()
    assert page.index('id="verdicts-h"') < page.index("<table>") < page.index('id="verdicts"')
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "`" not in page.split("<body>", 1)[1].split("</body>")[0].replace("&#x60;", "")
    assert "<code>err</code> ≤ 0.1" in page and "P(faster than" in page
    assert 'id="banner"' not in page
    banner = missed.readme.read_text()
    assert "Nothing reached a target yet" in banner
    assert "closest slow at" in banner and "reached in some studies: slow 1/3" in banner
    assert 'id="banner"' in missed.html.read_text()
    head = banner.split("## Verdicts")[0]
    assert (
        "Platinum 8480+" in head
        or "Test CPU" in head
        and "2.13.0" in head
        and "`0123456`" in head
        and "2026-01-01" in head
    )


def test_filters_and_refusals(runs: Path, tmp_path: Path) -> None:
    rep = write_report(runs, tmp_path / "one", workloads=["toy"], submissions=["fast", "slow"])
    assert set(rep.board.trials.workload) == {"toy"}
    assert set(rep.board.trials.submission) == {"fast", "slow"}
    smoke = write_report(runs, tmp_path / "smoke", variant="smoke", n_resamples=50)
    assert len(smoke.board.trials) == 1
    for kwargs, words in (
        ({"workloads": ["nope"]}, "known workloads: ['toy', 'toy2']"),
        ({"submissions": ["nope"]}, "known submissions: ['a_method"),
        ({"variant": "full"}, "variants there: ['default', 'smoke']"),
        ({"hardware_class": "h100"}, "have ['cpu-2core']"),
        ({"baseline": "nope"}, "baseline 'nope'"),
    ):
        with pytest.raises(ContractError, match=words.replace("[", r"\[").replace("(", r"\(")):
            write_report(runs, tmp_path / "refused", n_resamples=50, **kwargs)
        assert not (tmp_path / "refused").exists(), kwargs  # nothing written
    with pytest.raises(ContractError, match="no finished, intact runs"):
        write_report(tmp_path / "one" / "figures", tmp_path / "refused")
    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(ContractError, match="not a readable parquet"):
        write_report(tmp_path / "junk.parquet", tmp_path / "refused")


def _tables(readme: Path) -> str:
    """The README from its first table on, without the Problems list (paths differ)."""
    text = readme.read_text()
    return text[text.index("## Verdicts") :].split("## Problems")[0].split("Built by", 1)[1]


def test_board_rebuilt_from_its_own_parquet(board, tmp_path: Path) -> None:
    again = write_report(board.parquet, tmp_path / "again", n_resamples=300)
    first, second = _tables(board.readme), _tables(again.readme)
    first, second = first.split("trials.", 1)[1], second.split("trials.", 1)[1]  # origin path
    assert first == second
    assert [p.name for p in again.figures] == [p.name for p in board.figures]
    pd.testing.assert_frame_equal(
        board.board.times, again.board.times, check_exact=True, check_dtype=False
    )
    left = pd.read_parquet(board.parquet)
    right = pd.read_parquet(again.parquet)
    assert left.shape == right.shape and "trial.device_s" in left


# -- Chromium over the DevTools protocol -----------------------------------------------------

MEASURE = """(() => {
  const vw = window.innerWidth;
  const px = el => parseFloat(getComputedStyle(el).fontSize);
  const boxes = [...document.querySelectorAll('.scroll')].map(d => d.getBoundingClientRect());
  const tables = [...document.querySelectorAll('table')];
  return {
    innerWidth: vw,
    scrollWidth: document.documentElement.scrollWidth,
    tables: tables.length,
    unwrapped: tables.filter(t => !t.parentElement.classList.contains('scroll')).length,
    outside: boxes.filter(r => r.left < -0.5 || r.right > vw + 0.5).length,
    body: px(document.body),
    p: Math.min(...[...document.querySelectorAll('p')].map(px)),
    td: Math.min(...[...document.querySelectorAll('td')].map(px)),
    images: document.images.length,
    loaded: [...document.images].filter(i => i.complete && i.naturalWidth > 0).length,
  };
})()"""


def _chromium() -> str | None:
    return shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None
    )


class DevTools:
    """A minimal DevTools-protocol client over --remote-debugging-pipe (fds 3 and 4)."""

    def __init__(self, browser: str, profile: Path) -> None:
        to_child, self._w = os.pipe()
        self._r, from_child = os.pipe()
        os.set_inheritable(to_child, True)
        os.set_inheritable(from_child, True)
        flags = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
        ]

        def fds() -> None:  # the protocol's pipes are the child's fds 3 (in) and 4 (out)
            os.dup2(to_child, 3)
            os.dup2(from_child, 4)

        self.proc = subprocess.Popen(
            [browser, *flags, "about:blank"],
            preexec_fn=fds,
            close_fds=False,  # else fds 3 and 4 would be closed after preexec_fn
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_child)
        os.close(from_child)
        self._buf, self._id, self.session = b"", 0, None

    def _read(self) -> dict:
        while b"\0" not in self._buf:
            chunk = os.read(self._r, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method: str, **params) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if self.session and not method.startswith(("Target.", "Browser.")):
            msg["sessionId"] = self.session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def wait_event(self, name: str) -> None:
        while self._read().get("method") != name:
            pass

    def open(self, url: str, width: int, height: int, mobile: bool) -> None:
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=3 if mobile else 1,
            mobile=mobile,
        )
        if mobile:
            self.call("Emulation.setTouchEmulationEnabled", enabled=True)
        self.call("Page.enable")
        self.call("Page.navigate", url=url)
        self.wait_event("Page.loadEventFired")

    def measure(self) -> dict:
        return self.call("Runtime.evaluate", expression=MEASURE, returnByValue=True)["result"][
            "value"
        ]

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (RuntimeError, OSError):
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self._w)
        os.close(self._r)


SIZES = {"desktop": (1400, 1000, False), "phone": (390, 844, True)}


@pytest.mark.parametrize("which", ["board", "missed"])
@pytest.mark.parametrize("size", list(SIZES))
def test_page_fits_the_screen_in_chromium(
    which: str, size: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium not found (Debian: apt-get install chromium); CI installs it")
    rep = request.getfixturevalue(which)
    width, height, mobile = SIZES[size]
    dev = DevTools(browser, tmp_path / "profile")
    try:
        dev.open(rep.html.as_uri(), width, height, mobile)
        m = dev.measure()
        dev.screenshot(tmp_path / f"{which}-{size}.png")
    finally:
        dev.close()
    assert abs(m["innerWidth"] - width) <= 1, m  # a phone would say 980 without the viewport tag
    assert m["scrollWidth"] <= m["innerWidth"], m  # nothing widens the page
    assert m["tables"] > 0 and m["unwrapped"] == 0 and m["outside"] == 0, m
    assert min(m["body"], m["p"], m["td"]) >= 12, m
    if not mobile:
        assert m["body"] >= 16, m
    assert m["images"] == len(rep.figures) and m["loaded"] == m["images"], m


def test_a_bench_protocol_sets_the_verdict_level_and_travels_with_the_board(runs, tmp_path):
    """With <runs>/bench.json (the adaptive bench) the verdicts are tested at its look level,
    the intro states the protocol, and the board's protocol.json keeps both for a rebuild from
    the board's parquet."""
    from harness import bench

    copy = tmp_path / "runs"
    shutil.copytree(runs, copy)
    proto = bench.protocol(bench.looks(), 2.0, {"toy": True, "toy2": False})
    (copy / bench.STATE).write_text(json.dumps({"spent_s": 1.0, "protocol": proto}))
    rep = write_report(copy, tmp_path / "board")
    assert rep.board.level == pytest.approx(0.9875)
    text = rep.readme.read_text()
    verdicts = text[text.index("## Verdicts") :].split("### Paper pairs")[0]
    assert "at 98.75% per look, so that over the bench's 4 looks (3, 5, 8, 12 studies)" in verdicts
    assert "looks of 3, 5, 8, 12 where a verdict was open" in text
    assert "one trial per core, pinned, one thread, on toy" in text
    again = write_report(rep.parquet, tmp_path / "again")
    assert again.board.level == rep.board.level
    plain = write_report(runs, tmp_path / "plain")
    assert plain.board.level == 0.95 and not (tmp_path / "plain" / "protocol.json").exists()
