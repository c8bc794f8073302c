"""Screenshots of the console over an existing database (e.g. one an ``aiops demo`` run left behind).

    python scripts/console_screenshots.py sqlite:////tmp/demo.db docs/screenshots

The tests write screenshots of seeded rows (``AIOPS_CONSOLE_SCREENSHOTS``); this one shows what the
agents themselves recorded: the incident with the most kept metric series, its plots, topology and
blast radius, and the learning pages. Real Chromium, the app without workers (nothing changes).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path


def main(database_url: str, out: str) -> None:
    os.environ["AIOPS_DATABASE_URL"] = database_url
    os.environ.setdefault("AIOPS_EMBEDDING", "hashing")
    import uvicorn
    from playwright.sync_api import sync_playwright
    from sqlalchemy import select

    from services.api.app import create_app
    from services.config import Settings
    from services.incidents.models import TimelineEvent
    from services.storage.base import session_scope

    with session_scope(database_url) as session:
        observed = session.scalars(select(TimelineEvent).where(TimelineEvent.kind == "observed")).all()
        best = max(observed, key=lambda e: len((e.data or {}).get("series") or []), default=None)
        incident = best.incident_id if best else None
    server = uvicorn.Server(uvicorn.Config(create_app(Settings(), start_workers=False), host="127.0.0.1", port=0,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.1)
    port = server.servers[0].sockets[0].getsockname()[1]
    pages = [("/learning/episodes", "demo-episodes"), ("/incidents", "demo-incidents")]
    if incident:
        pages.insert(0, (f"/incidents/{incident}", "demo-incident-evidence"))
    Path(out).mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        for path, name in pages:
            page.goto(f"http://127.0.0.1:{port}{path}")
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(Path(out) / f"console-{name}.png"), full_page=True)
            print(f"{path} -> {out}/console-{name}.png")
        browser.close()
    server.should_exit = True
    thread.join(10)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "docs/screenshots")
