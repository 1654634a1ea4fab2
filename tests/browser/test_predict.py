"""Predict view: label and class scores from the real API, words shaded by attention or importance."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SECOND_MODEL, ConsolePage

pytestmark = pytest.mark.browser
TEXT = "A gripping, beautifully acted film that never lets go, though the ending drags a little."
VALUE = re.compile(r"(attention|importance|occlusion) (-?\d+\.\d+)")


def predict_via_ui(console: ConsolePage, text: str = TEXT) -> Any:
    page = console.page
    page.goto("/#predict")
    page.fill("#text-a", text)
    page.click("#predict-form button[type=submit]")
    return page.locator(".result").first


def shown_values(locator: Any) -> list[dict[str, float]]:
    """Per word, the exact values shown in its tooltip, e.g. {"attention": 0.05, "importance": 0.7}."""
    return [
        {k: float(v) for k, v in VALUE.findall(title)} for title in locator.evaluate_all("els => els.map(e => e.title)")
    ]


def test_predict_shows_label_scores_and_attention_shading(console: ConsolePage, api_url: str) -> None:
    result = predict_via_ui(console)
    words = result.locator(".shaded .w")
    expect(words.first).to_be_visible()
    api = httpx.post(f"{api_url}/predict", json={"inputs": [TEXT]}, timeout=30).json()
    expected = api["predictions"][0]
    expect(result.locator(".label-value")).to_have_text(str(expected["label"]))
    expect(result.locator("h3")).to_contain_text(api["model_id"])
    for label, p in expected["scores"].items():
        expect(result.locator(".scores tr", has_text=label).locator(".num")).to_have_text(f"{p:.4f}")
    values = shown_values(words)
    assert len(values) == len(expected["words"])
    assert [round(v["attention"], 4) for v in values] == [round(w["attention"], 4) for w in expected["words"]]
    shades = [float(s) for s in words.evaluate_all("els => els.map(e => e.style.getPropertyValue('--a'))")]
    strongest = max(range(len(values)), key=lambda i: values[i]["attention"])
    assert shades[strongest] == pytest.approx(1.0) and min(shades) < 1.0  # shaded relative to the largest weight
    words.nth(strongest).focus()
    expect(result.locator(".readout")).to_contain_text(f"attention {values[strongest]['attention']:.4f}")
    console.screenshot("predict")
    assert console.js_errors() == []


def test_importance_toggle_and_exact_values_on_focus(console: ConsolePage) -> None:
    result = predict_via_ui(console)
    words = result.locator(".shaded .w")
    expect(words.first).to_be_visible()
    console.page.check("#sig-imp")
    expect(result.locator(".note")).to_contain_text("importance")
    values = shown_values(words)
    shades = [float(s) for s in words.evaluate_all("els => els.map(e => e.style.getPropertyValue('--a'))")]
    assert shades == pytest.approx([v["importance"] for v in values], abs=1e-3)
    third = words.nth(2)
    third.focus()
    readout = result.locator(".readout")
    expect(readout).to_have_text(third.get_attribute("title") or "missing title")
    expect(readout).to_contain_text(f"importance {values[2]['importance']:.4f}")
    console.page.check("#unit-tokens")
    expect(result.locator(".shaded .w")).not_to_have_count(len(values))  # wordpieces, not words
    assert console.js_errors() == []


def test_occlusion_reference_beside_the_attention(console: ConsolePage, api_url: str) -> None:
    page = console.page
    page.goto("/#predict")
    page.check("#occlusion-toggle")
    page.fill("#text-a", TEXT)
    page.click("#predict-form button[type=submit]")
    result = page.locator(".result").first
    reference = result.locator(".explainers .occlusion-block .shaded .w")
    expect(reference.first).to_be_visible()
    expect(result.locator(".explainer-title")).to_have_text(["SSA attention", "Occlusion (reference)"])
    api = httpx.post(f"{api_url}/predict", json={"inputs": [TEXT], "explain": "occlusion"}, timeout=30).json()
    expected = api["predictions"][0]
    assert expected["explainer"] == "occlusion"
    values = shown_values(reference)
    assert [round(v["occlusion"], 4) for v in values] == [round(w["occlusion"], 4) for w in expected["words"]]
    shades = [float(s) for s in reference.evaluate_all("els => els.map(e => e.style.getPropertyValue('--a'))")]
    drops = [max(0.0, w["occlusion"]) for w in expected["words"]]  # a word whose removal raises p is unshaded
    assert shades == pytest.approx([d / max(drops) for d in drops], abs=2e-3)  # scaled to the largest drop
    attention = result.locator(".explainers .explainer").first.locator(".shaded .w")
    assert [round(v["attention"], 4) for v in shown_values(attention)] == [
        round(w["attention"], 4) for w in expected["words"]
    ]
    console.screenshot("predict-occlusion")
    assert console.js_errors() == []


def test_compare_two_models_side_by_side(console: ConsolePage, api_url: str) -> None:
    page = console.page
    page.goto("/#predict")
    expect(page.locator("#model-b option", has_text=SECOND_MODEL)).to_have_count(1)
    page.select_option("#model-b", SECOND_MODEL)
    page.fill("#text-a", TEXT)
    page.click("#predict-form button[type=submit]")
    cards = page.locator(".results.compare .result")
    expect(cards).to_have_count(2)
    expect(cards.first.locator(".shaded .w").first).to_be_visible()
    second = httpx.post(f"{api_url}/predict", json={"inputs": [TEXT], "model": SECOND_MODEL}, timeout=30)
    assert second.status_code == 200  # the API serves any stored model per request
    expect(cards.nth(1).locator("h3")).to_contain_text(SECOND_MODEL)
    expect(cards.nth(1).locator(".shaded .w").first).to_be_visible()
    console.screenshot("predict-compare")
    assert console.js_errors() == []


def test_input_errors_are_readable(console: ConsolePage) -> None:
    page = console.page
    page.goto("/#predict")
    page.click("#predict-form button[type=submit]")
    expect(page.locator("#predict-msg")).to_have_text("Enter a text to classify.")
    page.uncheck("#truncate")
    predict_via_ui(console, "a very long sentence " * 60)
    page.uncheck("#truncate")
    page.click("#predict-form button[type=submit]")
    message = page.locator(".result .msg-error")
    expect(message).to_contain_text("422 · validation_error")
    expect(message).to_contain_text("more than the model's maximum")
    page.check("#pair-toggle")
    page.click("#predict-form button[type=submit]")
    expect(page.locator("#predict-msg")).to_contain_text("Enter the second text of the pair")
    page.fill("#text-b", "The second sentence of the pair.")
    page.click("#predict-form button[type=submit]")
    expect(message).to_contain_text("takes single texts")  # the tiny model is not a pair model
    assert console.js_errors() == []
