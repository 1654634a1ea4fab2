"""Models view: every model with its metric, the active one marked, its card; deploy with the API key."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from ssa_core.runtime.modelmeta import read_card
from tests.browser.conftest import SECOND_MODEL, ConsolePage
from tests.browser.server import API_KEY

pytestmark = pytest.mark.browser


def active_id(api_url: str) -> str:
    return str(httpx.get(f"{api_url}/models", timeout=10).json()["active"])


def test_models_list_marks_the_active_model_and_opens_its_card(console: ConsolePage, api_url: str) -> None:
    page = console.page
    listing = httpx.get(f"{api_url}/models", timeout=10).json()
    page.goto("/#models")
    rows = page.locator("#models-table tbody tr[data-model]")
    expect(rows).to_have_count(len(listing["models"]))
    active = page.locator(f"#models-table tr[data-model='{listing['active']}']")
    expect(active.locator(".badge")).to_have_text("active")
    expect(page.locator("#active-model")).to_have_text(f"Active model: {listing['active']}")
    model = next(m for m in listing["models"] if m["model_id"] == listing["active"])
    expect(active.locator("td.num")).to_have_text(f"{model['metric']} {model['dev_metric']:.4f}")
    active.get_by_role("button", name=f"Card of {listing['active']}").click()
    card = page.locator("#model-card")
    expect(card.locator("h3")).to_have_text(f"Model {listing['active']}")
    expect(card.locator(".facts")).to_contain_text(model["method"])
    expect(card.locator("svg.chart circle")).to_have_count(len(model["metrics"]["iterations"]))
    expect(card.locator(".iter-table tbody tr")).to_have_count(len(model["metrics"]["iterations"]))
    detail = httpx.get(f"{api_url}/models/{listing['active']}", timeout=10).json()
    report = detail["metrics"]["robustness"]
    measured = [report[key] for key in ("offtopic", "fragments") if report[key]]
    assert measured, report
    expect(card.locator(".robust-table tbody tr")).to_have_count(len(measured))
    # the misleading accuracy of the first measurement, in % with one decimal (JavaScript rounds halves up)
    shown = card.locator(".robust-table tbody tr").first.locator("td").nth(3).inner_text()
    assert abs(float(shown.rstrip(" %")) - 100 * measured[0]["misleading_accuracy"]) <= 0.051, shown
    card_text = detail.get("card") or detail.get("card_md")
    if card_text:  # the card's markdown is rendered (headings, tables), never injected as HTML
        expect(card.locator(".card-md h4").nth(1)).to_have_text(card_text.splitlines()[0].lstrip("# "))
        expect(card.locator(".card-md table")).not_to_have_count(0)
    else:
        expect(card).to_contain_text("The API returned no model card")
    console.screenshot("models")
    assert console.js_errors() == []


def test_deploy_needs_the_key_then_swaps_the_active_model(console: ConsolePage, api_url: str) -> None:
    page = console.page
    before = active_id(api_url)
    page.goto("/#models")
    page.get_by_role("button", name=f"Deploy {SECOND_MODEL}").click()
    expect(page.locator("#models-msg")).to_contain_text("401 · ")
    expect(page.locator("#models-msg")).to_contain_text("Enter a valid API key")
    assert active_id(api_url) == before
    page.fill("#api-key", API_KEY)
    page.get_by_role("button", name="Use key").click()
    expect(page.locator("#key-status")).to_have_text("Key set for this tab.")
    assert page.evaluate("sessionStorage.getItem('ssa.apiKey')") == API_KEY
    try:
        page.get_by_role("button", name=f"Deploy {SECOND_MODEL}").click()
        expect(page.locator("#models-msg")).to_have_text(f"Model {SECOND_MODEL} is now active.")
        expect(page.locator(f"#models-table tr[data-model='{SECOND_MODEL}'] .badge")).to_have_text("active")
        assert active_id(api_url) == SECOND_MODEL
    finally:
        httpx.post(f"{api_url}/models/{before}/deploy", headers={"X-API-Key": API_KEY}, timeout=60)
    assert console.js_errors() == []


def test_card_markdown_is_rendered_as_text_never_as_html(console: ConsolePage, tiny_model_dir: Path) -> None:
    card = (read_card(tiny_model_dir) or "") + "\n<img src=x onerror=alert(1)> **bold**\n"
    metrics = json.loads((tiny_model_dir / "metrics.json").read_text(encoding="utf-8"))
    iterations = metrics["iterations"]
    # the card's tables: the robustness report's (one row per measurement) and the iterations'
    measured = [key for key in ("offtopic", "fragments") if (metrics.get("robustness") or {}).get(key)]
    console.page.goto("/#models")
    shown = console.page.evaluate(RENDER_CARD, card)
    assert shown["heading"] == card.splitlines()[0].lstrip("# ")
    assert shown["tables"] == 1 + bool(measured) and shown["rows"] == len(iterations) + len(measured)
    assert shown["images"] == 0 and "<img src=x onerror=alert(1)>" in shown["text"]
    assert "bold" in shown["strong"]
    assert console.js_errors() == []


RENDER_CARD = """async (text) => {
  const { renderMarkdown } = await import("/static/js/markdown.js");
  const el = renderMarkdown(text);
  document.body.append(el);
  return { heading: el.querySelector("h4").textContent, tables: el.querySelectorAll("table").length,
           rows: el.querySelectorAll("tbody tr").length, images: el.querySelectorAll("img").length,
           text: el.textContent, strong: [...el.querySelectorAll("strong")].map((s) => s.textContent).join(" ") };
}"""
