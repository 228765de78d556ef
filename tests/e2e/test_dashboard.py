"""The web dashboard (``/ui``) in a real browser against a real ``codeq serve``.

Headless Chromium from the distribution (``/usr/bin/chromium``, or
``CODEQ_CHROMIUM``) driven by Playwright; Playwright's own browser downloads
are never used. Screenshots of every page land in ``tests/artifacts/dashboard/``
on every run, pass or fail.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from codeq.core.config import Settings
from codeq.testing.server import ServerProcess

REPO = Path(__file__).resolve().parents[2]
PLUGINS_DIR = REPO / "plugins"
ARTIFACTS = REPO / "tests" / "artifacts" / "dashboard"
CHROMIUM = os.environ.get("CODEQ_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
#: Longer than a couple of 2 s polling rounds.
UI_TIMEOUT_MS = 10_000


def dashboard_entry_point_installed() -> bool:
    return any(ep.name == "codeq_dashboard"
               for ep in importlib.metadata.entry_points(group="codeq"))


def server_env(tmp: Path) -> dict[str, str]:
    """Environment for ``codeq serve`` so that it loads the dashboard plugin.

    Once the distribution declares the ``codeq_dashboard`` entry point this is
    empty. Until then, a throw-away ``.dist-info`` on ``PYTHONPATH`` declares it,
    so that the server still finds the plugin the way it finds every plugin:
    through the ``codeq`` entry-point group (``test_entry_point_is_declared``
    reports the missing declaration on its own).
    """
    if dashboard_entry_point_installed():
        return {}
    info = tmp / "shim" / "codeq_dashboard_test_shim-0.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: codeq-dashboard-test-shim\n"
                                   "Version: 0.0\n")
    (info / "entry_points.txt").write_text("[codeq]\ncodeq_dashboard = codeq_dashboard\n")
    paths = [str(info.parent), str(PLUGINS_DIR), os.environ.get("PYTHONPATH", "")]
    return {"PYTHONPATH": os.pathsep.join(p for p in paths if p)}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("dashboard")
    with ServerProcess.start(tmp / "data", storage="memory://", env=server_env(tmp)) as running:
        yield running


@pytest.fixture(scope="module")
def api(server: ServerProcess) -> Iterator[Callable[..., httpx.Client]]:
    """``api(role, **token_kwargs)``: an httpx client on ``/v1/codeq`` with a dev token."""
    opened: list[httpx.Client] = []

    def make(role: str, **token: Any) -> httpx.Client:
        http = httpx.Client(base_url=server.api_url, timeout=10.0,
                            headers=server.headers(role, **token))  # type: ignore[arg-type]
        opened.append(http)
        return http

    yield make
    for http in opened:
        http.close()


# ---------------------------------------------------------------- packaging and routes


def test_entry_point_is_declared() -> None:
    """Rule 3: the dashboard is an ordinary plugin, found through the ``codeq`` group."""
    assert dashboard_entry_point_installed(), (
        "the codeq distribution does not declare the dashboard plugin: add "
        '`codeq_dashboard = "codeq_dashboard"` under [project.entry-points.codeq] in '
        "pyproject.toml and reinstall (pip install -e .)")


def test_static_files_ship_with_the_package() -> None:
    from codeq_dashboard import routes as codeq_dashboard

    names = set(codeq_dashboard.load_assets())
    assert {"index.html", "app.js", "app.css", "favicon.svg"} <= names
    index = (codeq_dashboard.STATIC_DIR / "index.html").read_text()
    # offline: nothing is loaded from another origin
    assert not re.search(r"""(src|href)=["'](https?:)?//""", index)


def test_ui_routes(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10.0) as http:
        moved = http.get("/ui")
        assert moved.status_code == 307 and moved.headers["location"] == "ui/"
        page = http.get("/ui/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        assert 'src="assets/app.js"' in page.text
        script = http.get("/ui/assets/app.js")
        assert script.status_code == 200
        assert script.headers["content-type"].startswith("text/javascript")
        again = http.get("/ui/assets/app.js", headers={"If-None-Match": script.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        missing = http.get("/ui/assets/..%2Fapp.js")
        assert missing.status_code == 404 and "error" in missing.json()
        assert http.get("/ui/assets/__init__.py").status_code == 404
        assert "/ui" not in http.get("/openapi.json").text


def test_dev_token_only_for_this_machine(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10.0) as http:
        given = http.get("/ui/dev-token")
        assert given.status_code == 200, given.text
        assert given.headers["cache-control"] == "no-store"
        token = given.json()["token"]
        queues = http.get("/v1/codeq/admin/queues", headers={"Authorization": f"Bearer {token}"})
        assert queues.status_code == 200, queues.text
        # a page served from another name that resolves to 127.0.0.1 (DNS rebinding)
        rebound = http.get("/ui/dev-token", headers={"Host": f"attacker.example:{server.port}"})
        assert rebound.status_code == 404 and "error" in rebound.json()
        proxied = http.get("/ui/dev-token", headers={"X-Forwarded-For": "203.0.113.9"})
        assert proxied.status_code == 404
        assert http.get("/ui/dev-token", headers={"Host": f"localhost:{server.port}"}
                        ).status_code == 200


@pytest.mark.parametrize(("env", "peer", "status"), [
    ("dev", "127.0.0.1", 200),
    ("dev", "::1", 200),
    ("dev", "192.168.1.20", 404),
    ("prod", "127.0.0.1", 404),
])
async def test_dev_token_rules(tmp_path: Path, env: str, peer: str, status: int) -> None:
    from codeq_dashboard import routes as codeq_dashboard

    app = FastAPI()
    settings = Settings.model_validate({"env": env, "dataDir": str(tmp_path)})
    app.include_router(codeq_dashboard.build_router(settings))
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8080") as http:
        answer = await http.get("/ui/dev-token")
    assert answer.status_code == status, answer.text
    assert ("token" in answer.json()) == (status == 200)
    # a token is minted only when one is handed out
    assert (tmp_path / "dev-signing-key.pem").exists() == (status == 200)


# ---------------------------------------------------------------- in the browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright import sync_api  # the test extra: playwright

    assert Path(CHROMIUM).exists() or shutil.which(CHROMIUM), (
        f"no Chromium at {CHROMIUM}: apt-get install chromium (or set CODEQ_CHROMIUM)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


class Shots:
    """Numbered screenshots under ``tests/artifacts/dashboard/``."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.n = 0
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for old in ARTIFACTS.glob("*.png"):
            old.unlink()

    def __call__(self, name: str, *, full_page: bool = True) -> Path:
        self.n += 1
        path = ARTIFACTS / f"{self.n:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


def dead_letter(producer: httpx.Client, worker: httpx.Client, command: str,
                payload: Any, reason: str) -> str:
    """A task of ``command`` that reached the DLQ: maxAttempts 1, claimed, NACKed."""
    created = producer.post("/tasks", json={"command": command, "payload": payload,
                                             "maxAttempts": 1})
    assert created.status_code == 202, created.text
    claimed = worker.post("/tasks/claim", json={"commands": [command], "leaseSeconds": 60})
    assert claimed.status_code == 200, claimed.text
    task_id = claimed.json()["id"]
    nacked = worker.post(f"/tasks/{task_id}/nack", json={"reason": reason, "delaySeconds": 0})
    assert nacked.status_code == 200 and nacked.json()["status"] == "dlq", nacked.text
    return str(task_id)


@pytest.mark.timeout(120)
def test_operate_queues_in_the_browser(server: ServerProcess, api: Callable[..., httpx.Client],
                                       browser: Any) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=UI_TIMEOUT_MS)
    producer, admin = api("producer"), api("admin")
    worker = api("worker", sub="dashboard-test-worker")
    suffix = str(int(time.time() * 1000) % 10_000_000)
    busy, broken = f"RENDER_{suffix}", f"INVOICE_{suffix}"

    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda msg: problems.append(f"console: {msg.text}")
            if msg.type == "error" and "Failed to load resource" not in msg.text else None)
    shot = Shots(page)
    finished = False
    try:
        # -- dev mode fills in an admin token; the overview shows live depths
        page.goto(f"{server.base_url}/ui")
        expect(page.get_by_role("heading", level=1, name="Queues")).to_be_visible()
        expect(page.locator("#dev-badge")).to_be_visible()
        assert page.evaluate("sessionStorage.getItem('codeq.dashboard.token')")
        expect(page.locator("#live")).to_have_text("Live")
        shot("overview-first-load")

        for n in range(3):
            assert producer.post("/tasks", json={"command": busy, "payload": {"frame": n}}
                                 ).status_code == 202
        ready = page.locator(f'tr[data-command="{busy}"] [data-field="ready"]')
        expect(ready).to_have_text("3")
        producer.post("/tasks/batch", json={"tasks": [
            {"command": busy, "payload": {"frame": n}, "priority": n % 3} for n in range(3, 12)]})
        expect(ready).to_have_text("12")
        claimed = worker.post("/tasks/claim/batch", json={"commands": [busy], "count": 4})
        assert len(claimed.json()["tasks"]) == 4
        expect(ready).to_have_text("8")
        expect(page.locator(f'tr[data-command="{busy}"] [data-field="inProgress"]')).to_have_text("4")

        # -- a queue with dead-lettered tasks; payloads are shown as text, never as HTML
        hostile = "<img src=x onerror=window.__pwned=1>"
        first = dead_letter(producer, worker, broken, {"invoice": 1001, "note": hostile},
                            "upstream said <b>402</b>")
        second = dead_letter(producer, worker, broken, {"invoice": 1002, "customer": "ACME"},
                             "timeout talking to the billing API")
        dlq_cell = page.locator(f'tr[data-command="{broken}"] [data-field="dlq"]')
        expect(dlq_cell).to_have_text("2")
        expect(page.locator(".stat-bad .stat-value")).to_have_text("2")
        shot("overview")

        # -- keyboard: focus the queue link and press Enter
        link = page.get_by_role("link", name=broken, exact=True)
        link.focus()
        page.keyboard.press("Enter")
        expect(page).to_have_url(re.compile(rf"#/queues/{broken}$"))
        expect(page.get_by_role("heading", level=1, name=broken)).to_be_visible()
        rows = page.locator("table.dlq tbody tr")
        expect(rows).to_have_count(2)
        expect(page.locator(f'table.dlq tr[data-task="{first}"]')).to_contain_text(hostile)
        # the worker's last reason, next to the dead-letter error
        expect(page.locator(f'table.dlq tr[data-task="{first}"] .error-cell')).to_contain_text(
            "last: upstream said <b>402</b>")
        assert page.locator("img[src=x]").count() == 0
        assert page.evaluate("window.__pwned") is None
        page.locator(f'table.dlq tr[data-task="{second}"] details summary').click()
        shot("queue-with-dlq")

        # -- redrive one task: tick it with the keyboard, click the button
        box = page.get_by_role("checkbox", name=f"Select task {first}")
        box.focus()
        page.keyboard.press("Space")
        expect(box).to_be_checked()
        expect(box).to_be_focused()
        shot("queue-selection", full_page=False)
        page.get_by_role("button", name="Redrive selected (1)").click()
        expect(page.locator("#toast")).to_contain_text("Redrove 1 task")
        expect(rows).to_have_count(1)
        expect(page.get_by_role("button", name="Redrive selected", exact=True)).to_be_disabled()
        expect(page.locator(f'table.dlq tr[data-task="{second}"]')).to_be_visible()
        redriven = admin.get(f"/tasks/{first}").json()
        assert redriven["status"] == "PENDING" and redriven["attempts"] == 0, redriven
        assert admin.get(f"/admin/queues/{broken}").json()["dlq"] == 1

        # -- pause, check through the API, resume
        page.get_by_role("button", name="Pause queue").click()
        expect(page.locator("#queue-state")).to_have_text("paused")
        assert admin.get(f"/admin/queues/{broken}").json()["paused"] is True
        assert worker.post("/tasks/claim", json={"commands": [broken]}).status_code == 204
        shot("queue-paused")
        page.get_by_role("button", name="Resume queue").click()
        expect(page.locator("#queue-state")).to_have_text("active")
        assert admin.get(f"/admin/queues/{broken}").json()["paused"] is False

        # -- redrive everything that is left, through the confirmation dialog
        page.get_by_role("button", name="Redrive all").click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text(broken)
        shot("redrive-all-dialog", full_page=False)
        dialog.get_by_role("button", name="Redrive all").click()
        expect(page.get_by_text("The dead-letter queue is empty.")).to_be_visible()
        expect(page.get_by_role("button", name="Redrive all")).to_be_disabled()
        assert admin.get(f"/admin/queues/{broken}").json()["dlq"] == 0

        # -- a finished task, looked up by id with the search form (Enter submits)
        task = claimed.json()["tasks"][0]
        done = worker.post(f"/tasks/{task['id']}/result", json={
            "status": "COMPLETED", "result": {"frames": 240, "output": "s3://renders/out.mp4"},
            "artifacts": [{"name": "preview.png", "url": "https://example.com/preview.png"},
                          {"name": "render.log", "url": "https://example.com/logs/render.log"}]})
        assert done.status_code == 200, done.text
        page.locator("#lookup-id").fill(task["id"])
        page.locator("#lookup-id").press("Enter")
        expect(page).to_have_url(re.compile(rf"#/tasks/{task['id']}$"))
        expect(page.locator("#task-result")).to_contain_text('"frames": 240')
        expect(page.locator("#task-payload")).to_contain_text('"frame"')
        expect(page.locator("#task-attempts")).to_have_text("1 of 5")
        expect(page.locator("ol.timeline li")).to_have_count(len(
            admin.get(f"/tasks/{task['id']}", params={"history": "true"}).json()["history"]))
        expect(page.get_by_role("link", name=re.compile("preview.png"))).to_have_attribute(
            "href", "https://example.com/preview.png")
        shot("task-completed")

        # -- the dead-lettered history of a redriven task
        page.goto(f"{server.base_url}/ui/#/tasks/{second}")
        expect(page.locator(".timeline")).to_contain_text("timeout talking to the billing API")
        shot("task-redriven")

        # -- an unknown id shows the server's own error message
        page.locator("#lookup-id").fill("not-a-task")
        page.locator("#lookup-id").press("Enter")
        expect(page.get_by_role("heading", name="Task not found")).to_be_visible()
        message = admin.get("/tasks/not-a-task").json()["error"]
        expect(page.locator("main")).to_contain_text(message)

        # -- a command name the server refuses
        page.goto(f"{server.base_url}/ui/#/queues/not%20a%20command")
        expect(page.get_by_role("heading", name="No such queue")).to_be_visible()
        refused = admin.get("/admin/queues/not a command").json()["error"]
        expect(page.locator("main")).to_contain_text(refused)

        # -- signing in by hand: server errors are shown, an admin token works
        page.goto(f"{server.base_url}/ui/#/")
        page.get_by_role("button", name="Sign out").click()
        token_input = page.get_by_label("Admin token")
        expect(token_input).to_be_focused()
        token_input.fill("not-a-token")
        token_input.press("Enter")
        refused = httpx.get(f"{server.api_url}/admin/queues",
                            headers={"Authorization": "Bearer not-a-token"}).json()["error"]
        expect(page.locator("#signin-error")).to_have_text(refused)
        token_input.fill(server.token("producer"))
        token_input.press("Enter")
        expect(page.locator("#signin-error")).to_contain_text("not an admin token")
        shot("sign-in-error")
        token_input.fill(server.token("admin"))
        token_input.press("Enter")
        expect(page.get_by_role("heading", level=1, name="Queues")).to_be_visible()
        expect(page.locator("#dev-badge")).to_be_hidden()
        assert page.evaluate("sessionStorage.getItem('codeq.dashboard.tokenSource')") == "manual"
        expect(page.locator(f'tr[data-command="{busy}"] [data-field="ready"]')).to_have_text("8")
        page.emulate_media(color_scheme="dark", reduced_motion="reduce")
        shot("overview-dark")

        assert problems == []
        finished = True
    finally:
        if not finished:
            shot("failure")  # what the page showed when the test gave up
        context.close()
