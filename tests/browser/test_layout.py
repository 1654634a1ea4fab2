"""Keyboard use, visible focus and phone-width layout of every view."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ConsolePage

pytestmark = pytest.mark.browser
VIEWS = ("predict", "jobs", "models")


def test_keyboard_reaches_the_views_and_focus_is_visible(console: ConsolePage) -> None:
    page = console.page
    page.goto("/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    names = []
    for _ in VIEWS:
        page.keyboard.press("Tab")
        names.append(page.evaluate("document.activeElement.textContent"))
    assert names == ["Predict", "Jobs", "Models"]
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none")
    page.keyboard.press("Enter")
    expect(page.locator("#view-models")).to_be_visible()
    expect(page.locator("#view-predict")).to_be_hidden()
    expect(page.locator("nav a[aria-current=page]")).to_have_text("Models")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")  # the skip link: focus moves to the content, the view stays
    assert page.evaluate("document.activeElement.id") == "main"
    expect(page.locator("#view-models")).to_be_visible()
    clickable_divs = page.locator("div[onclick], span[onclick], div[role=button]")
    expect(clickable_divs).to_have_count(0)
    assert console.js_errors() == []


@pytest.mark.parametrize("view", VIEWS)
def test_phone_width_has_no_horizontal_scroll(console: ConsolePage, view: str) -> None:
    page = console.page
    page.set_viewport_size({"width": 375, "height": 800})
    page.goto(f"/#{view}")
    expect(page.locator(f"#view-{view}")).to_be_visible()
    page.wait_for_load_state("networkidle")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert console.js_errors() == []
