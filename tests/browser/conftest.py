"""Real-browser fixtures: the test app served on a free local port, driven by Debian's Chromium."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def live_server(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        message = "Debian chromium is not installed: apt-get install chromium"
        if os.environ.get("REQUIRE_BROWSER_TESTS"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=10_000)  # a loaded CI machine answers more slowly

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="zh-CN")
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def scheduler(app):
    """What `flask scheduler run` does every few seconds (uploaded files, "close now"
    requests, report PDFs), in a thread beside the live server."""
    from portal.db import utcnow
    from portal.extensions import db
    from portal.metrics.uploads import run_upload_tasks
    from portal.periods.report_files import run_report_requests
    from portal.periods.services import run_requested_closes

    stop = threading.Event()

    def loop():
        while not stop.is_set():
            with app.app_context():
                run_upload_tasks()
                run_requested_closes(utcnow())
                run_report_requests(utcnow())
                db.session.remove()
            stop.wait(0.3)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join()


def settled(page) -> None:
    """Wait until htmx has finished its last swap: new content is shown at once, but only
    wired (its own hx- attributes working) when htmx settles it, about 20 ms later."""
    page.wait_for_function(
        "() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling, "
        ".htmx-added')"
    )
