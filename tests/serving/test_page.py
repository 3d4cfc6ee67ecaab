"""The web page at ``/``, end to end in headless Chromium driven by Playwright, against a real
``recforge serve`` process: a user's lists, a click that adds an item, similar items, the
answering version and fallback, then an anonymous session. Saves ``results/serving-page.png``.
Skips when Chromium or Playwright is not available."""

import os
import shutil
from pathlib import Path

import pytest

from .conftest import TOKEN
from .server import ServeProcess

CHROMIUM = os.environ.get("RECFORGE_CHROMIUM", "/usr/bin/chromium")
RESULTS = Path(__file__).resolve().parents[2] / "results"


def test_page_is_served(client):
    resp = client.get("/")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    assert 'id="recs"' in resp.text and "/similar" in resp.text
    assert "/" not in client.get("/openapi.json").json()["paths"]


def _items(page, list_id):
    return page.eval_on_selector_all(f"#{list_id} li", "els => els.map(e => JSON.parse(e.dataset.item))")


@pytest.fixture
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.skip(f"no Chromium at {CHROMIUM}")
    with sync_api.sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        except Exception as exc:  # a driver or browser that does not start
            pytest.skip(f"Chromium does not start under Playwright: {exc}")
        yield b
        b.close()


def test_page_clicks_through_a_user_and_a_session(browser, models_root, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text(TOKEN + "\n")
    with ServeProcess(models_root / "knn", "--store", str(tmp_path / "store.sqlite"),
                      "--token-file", str(tokens), log=tmp_path / "serve.log") as srv:
        srv.wait_ready()
        page = browser.new_page(viewport={"width": 1200, "height": 700})
        page.goto(srv.url + "/")
        page.wait_for_function("document.getElementById('status').textContent.includes('version 1')")

        # user 4 (trained on items 30 and 40)
        page.fill("#user", "4")
        page.click("#load-user")
        page.wait_for_selector("#recs li")
        assert _items(page, "history") == [30, 40]
        before = _items(page, "recs")
        assert before and not {30, 40} & set(before)
        assert "model version 1 (ItemKNNTopN)" in page.inner_text("#answer")
        assert "no fallback" in page.inner_text("#answer")
        assert page.inner_text("#recs li:first-child .score").strip() != ""

        # without a token the click is refused, nothing changes
        page.click("#recs li:first-child")
        page.wait_for_function("document.getElementById('error').textContent.includes('401')")
        assert _items(page, "history") == [30, 40]

        # with the token the clicked item joins the history and leaves the recommendations
        page.fill("#token", TOKEN)
        chosen = before[0]
        page.click("#recs li:first-child")
        page.wait_for_function("document.querySelectorAll('#history li').length === 3")
        assert _items(page, "history") == [30, 40, str(chosen)]  # stored events are text ids
        assert chosen not in _items(page, "recs")
        page.wait_for_selector("#similar li")
        assert page.inner_text("#similar-to").endswith(f"#{chosen}")
        assert page.inner_text("#history li:first-child .name").strip() == "Thirty Adult"
        assert chosen not in _items(page, "similar")
        assert page.inner_text("#error") == ""
        RESULTS.mkdir(exist_ok=True)
        page.screenshot(path=str(RESULTS / "serving-page.png"), full_page=True)

        # an anonymous session: popularity first, named as the fallback; a click changes it
        page.click("#new-session")
        page.wait_for_function("document.getElementById('answer').textContent.includes('fallback:')")
        assert "popularity" in page.inner_text("#answer")
        assert _items(page, "history") == []
        first = _items(page, "recs")
        page.click("#recs li:first-child")
        page.wait_for_function("document.querySelectorAll('#history li').length === 1")
        assert _items(page, "history") == [first[0]]
        after = _items(page, "recs")
        assert first[0] not in after and after != first
        assert "session" in page.inner_text("#who")
        sessions = [e for e in srv.client.get("/metrics").text.splitlines()
                    if e.startswith("recforge_events_stored_total")]
        assert sessions and float(sessions[0].split()[-1]) == 2.0
