"""Jobs view against a real API and a real Celery worker: upload, live progress, chart, weak labels, deploy, cancel."""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ConsolePage
from tests.browser.server import API_KEY
from tests.conftest import sentiment_train_file
from tests.worker.procs import WorkerProcess

pytestmark = pytest.mark.browser
JOB_TIMEOUT_MS = 240_000


def write_rows(path: Path, rows: list[str]) -> Path:
    path.write_text("".join(rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small real train/dev pair: 48 + 16 movie-sentiment rows."""
    rows = sentiment_train_file().read_text(encoding="utf-8").splitlines(keepends=True)
    folder = tmp_path_factory.mktemp("job-data")
    return write_rows(folder / "train.jsonl", rows[:48]), write_rows(folder / "dev.jsonl", rows[48:64])


def start_job(console: ConsolePage, train: Path, dev: Path | None, config: dict[str, Any]) -> None:
    """Fill the job form (key, files, settings) and submit it."""
    page = console.page
    page.goto("/#jobs")
    page.fill("#api-key", API_KEY)
    page.get_by_role("button", name="Use key").click()
    page.set_input_files("#job-train", str(train))
    if dev is not None:
        page.set_input_files("#job-dev", str(dev))
    if "model_id" in config:
        page.locator("#job-form details.more summary").click()
    for name, value in config.items():
        field = page.locator(f"#job-form [name={name}]")
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(str(value))
        else:
            field.fill(str(value))
    page.get_by_role("button", name="Start job").click()


def job_id_of(console: ConsolePage) -> str:
    expect(console.page.locator("#job-form-msg")).to_contain_text("queued")
    return (console.page.locator("#job-title").text_content() or "").split()[1]


def test_a_bad_dataset_is_refused_with_the_row_named(console: ConsolePage, tmp_path: Path) -> None:
    rows = [{"text": f"sentence {i}", "label": "positive" if i % 2 else "negative"} for i in range(8)]
    rows[2]["text"] = "   "
    train = write_rows(tmp_path / "train.jsonl", [json.dumps(row) + "\n" for row in rows])
    start_job(console, train, None, {"base_model": "tiny"})
    message = console.page.locator("#job-form-msg")
    expect(message).to_have_class("msg msg-error")
    expect(message).to_contain_text("422 · ")
    expect(message.locator("li").first).to_contain_text("row 3")
    assert console.js_errors() == []


def test_train_follow_browse_labels_and_deploy(console: ConsolePage, api_url: str, dataset: tuple[Path, Path],
                                               training_worker: WorkerProcess) -> None:
    page = console.page
    start_job(console, *dataset, {"base_model": "tiny", "iterations": 2, "batch_size": 16, "max_length": 48,
                                  "model_id": "browser-job"})
    job_id = job_id_of(console)
    detail = page.locator("#job-detail")
    expect(detail).to_have_attribute("data-status", "running", timeout=JOB_TIMEOUT_MS)
    expect(detail.locator(".progress-text")).to_contain_text("stage ")
    expect(detail).to_have_attribute("data-status", "succeeded", timeout=JOB_TIMEOUT_MS)
    job = httpx.get(f"{api_url}/jobs/{job_id}", timeout=10).json()
    expect(detail.locator(".progress-text")).to_contain_text("100%")
    expect(detail.locator("svg.chart circle")).to_have_count(len(job["iterations"]))
    expect(detail.locator(".iter-table tbody tr")).to_have_count(len(job["iterations"]))
    first = job["iterations"][0]
    expect(detail.locator(".iter-table tbody tr").first.locator("td").nth(1)).to_have_text(f"{first['dev_metric']:.4f}")
    expect(page.locator(f"#jobs-table tr[data-job='{job_id}'] .badge")).to_have_text("succeeded")

    detail.get_by_role("button", name="Show labels").click()
    records = page.locator(".label-record")
    expect(records.first).to_be_visible()
    labels = httpx.get(f"{api_url}/jobs/{job_id}/labels", params={"iteration": 1}, headers={"X-API-Key": API_KEY},
                       timeout=10).text.splitlines()
    expect(records).to_have_count(min(25, len(labels)))
    expect(detail.locator(".labels-box .msg")).to_contain_text(f"{len(labels)} labelled sentences")
    marked = page.locator(".label-record [data-label]")
    ones = sum(t["label"] == 1 for t in json.loads(labels[0])["tokens"])
    expect(records.first.locator("mark.lab1")).to_have_count(ones)
    assert marked.count() > 0

    with page.expect_download() as got:
        detail.get_by_role("button", name="Download labels").click()
    assert got.value.suggested_filename == f"{job_id}-labels-iter1.jsonl"
    assert Path(got.value.path()).read_text(encoding="utf-8").splitlines() == labels
    with page.expect_download() as got:
        detail.get_by_role("button", name="Download model").click()
    assert got.value.suggested_filename == "browser-job.tar.gz"
    with tarfile.open(got.value.path()) as archive:
        assert "browser-job/model.onnx" in archive.getnames()

    detail.get_by_role("button", name="Show log").click()
    expect(detail.locator("pre.log")).not_to_be_empty()
    before = httpx.get(f"{api_url}/models", timeout=10).json()["active"]
    try:
        detail.get_by_role("button", name="Deploy model browser-job").click()
        expect(detail.locator(".job-msg")).to_have_text("Model browser-job is now active.", timeout=60_000)
        assert httpx.get(f"{api_url}/models", timeout=10).json()["active"] == "browser-job"
        console.screenshot("jobs")
    finally:
        httpx.post(f"{api_url}/models/{before}/deploy", headers={"X-API-Key": API_KEY}, timeout=60)
    assert console.js_errors() == []


def test_cancel_a_running_job(console: ConsolePage, api_url: str, dataset: tuple[Path, Path],
                             training_worker: WorkerProcess) -> None:
    start_job(console, *dataset, {"base_model": "tiny", "iterations": 20, "batch_size": 4, "max_length": 48})
    job_id_of(console)
    detail = console.page.locator("#job-detail")
    expect(detail).to_have_attribute("data-status", "running", timeout=JOB_TIMEOUT_MS)
    detail.get_by_role("button", name="Cancel job").click()
    expect(detail.locator(".job-msg")).to_have_text("Cancellation requested.")
    expect(detail).to_have_attribute("data-status", "cancelled", timeout=JOB_TIMEOUT_MS)
    expect(detail.get_by_role("button", name="Cancel job")).to_have_count(0)
    assert console.js_errors() == []


def test_the_training_form_sends_only_what_was_filled_and_shows_the_servers_defaults(console: ConsolePage,
                                                                                       api_url: str) -> None:
    """An untouched field sends nothing, so the job gets the server's default (not a value frozen in the page)."""
    page = console.page
    page.goto("/#jobs")
    defaults = httpx.get(f"{api_url}/openapi.json", timeout=10).json()["components"]["schemas"]["TrainJobSpec"]
    for name in ("lambda_tok", "tau", "iterations", "learning_rate"):
        field = page.locator(f"#job-form [name={name}]")
        expect(field).to_have_value("")
        expect(field).to_have_attribute("placeholder", re.compile(r"^default "))
        shown = (field.get_attribute("placeholder") or "").removeprefix("default ")
        assert float(shown) == defaults["properties"][name]["default"], name
    config = page.evaluate("""async () => {
        const { readConfig } = await import('/static/js/jobs.js');
        return readConfig(document.querySelector('#job-form'));
    }""")
    assert config == {"method": "hybrid", "deploy": "never"}
    assert console.js_errors() == []


def test_a_label_job_from_the_console_downloads_in_every_format(console: ConsolePage, api_url: str,
                                                                dataset: tuple[Path, Path],
                                                                training_worker: WorkerProcess) -> None:
    import pyarrow.parquet as pq

    page = console.page
    page.goto("/#jobs")
    page.fill("#api-key", API_KEY)
    page.get_by_role("button", name="Use key").click()
    active = httpx.get(f"{api_url}/models", timeout=10).json()["active"]
    expect(page.locator("#label-model option").first).to_have_text(f"the active model ({active})")
    page.set_input_files("#label-data", str(dataset[0]))
    page.fill("#label-probes", "2")
    page.fill("#label-shard", "16")
    page.get_by_role("button", name="Start label job").click()
    expect(page.locator("#label-form-msg")).to_contain_text("queued")
    job_id = (page.locator("#job-title").text_content() or "").split()[1]
    detail = page.locator("#job-detail")
    expect(detail).to_have_attribute("data-status", "succeeded", timeout=JOB_TIMEOUT_MS)
    expect(detail).to_contain_text(f"Label job · model {active}")
    expect(detail.get_by_role("button", name="Deploy model")).to_have_count(0)
    formats = httpx.get(f"{api_url}/openapi.json", timeout=10).json()["paths"]["/jobs/{job_id}/labels"]["get"][
        "parameters"]
    offered = next(p for p in formats if p["name"] == "format")["schema"]["enum"]
    expect(detail.locator(".results-box button")).to_have_count(len(offered))
    rows = dataset[0].read_text(encoding="utf-8").splitlines()
    with page.expect_download() as got:
        detail.get_by_role("button", name="Download jsonl").click()
    assert got.value.suggested_filename == f"{job_id}-labels.jsonl"
    records = [json.loads(line) for line in Path(got.value.path()).read_text(encoding="utf-8").splitlines()]
    assert [r["index"] for r in records] == list(range(len(rows)))
    assert [r["text"] for r in records] == [json.loads(row)["text"] for row in rows]
    with page.expect_download() as got:
        detail.get_by_role("button", name="Download parquet").click()
    assert pq.read_table(got.value.path()).num_rows == len(rows)
    assert console.js_errors() == []
