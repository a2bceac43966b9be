"""Fixtures: the fake upstream, a real flo2 binary, and headless Debian Chromium via Playwright."""

import os
import pathlib

import flo2_harness
import pytest
from playwright.sync_api import sync_playwright

ARTIFACTS = pathlib.Path(__file__).parent / "artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def fake_upstream():
    proc, base = flo2_harness.start_fake_upstream()
    yield base
    flo2_harness.stop(proc)


@pytest.fixture(scope="session")
def flo2():
    proc, base = flo2_harness.start_flo2("flo2-browser-")
    yield base
    flo2_harness.stop(proc, must_exit_cleanly=True)


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium"), args=CHROMIUM_ARGS)
        yield b
        b.close()


class Watched:
    """A page whose console errors and page errors are collected, with a screenshot helper."""

    def __init__(self, page, name):
        self.page = page
        self.name = name
        self.errors = []
        page.on("console", lambda m: self.errors.append(f"{m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("response", lambda r: self.errors.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 and not self.expect_errors else None)
        self.expect_errors = False

    def shot(self, label):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{self.name}-{label}.png"), full_page=True)


@pytest.fixture
def new_page(browser):
    contexts = []

    def make(name, **context_args):
        ctx = browser.new_context(accept_downloads=True, **context_args)
        contexts.append(ctx)
        return Watched(ctx.new_page(), name)

    yield make
    for c in contexts:
        c.close()
