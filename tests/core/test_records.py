"""ssa_core.records: the typed iteration record, probe summary, explanation scores and training metrics write exactly
the JSON written before they were typed, and read it back (old checkpoints, metrics.json files and job records)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ssa_core.records import ExplanationScores, IterationRecord, ProbeSummary, TrainingMetrics

KEEP_PROBE = {"probed_examples": 24, "masked_copies": 96, "kept_copies": 40, "kept_rate": 0.4166,
              "original_accuracy": 0.75, "masked_token_share": 0.2, "rounds": 4, "zero_label_share": 0.3,
              "labelled_tokens_per_example": 9.5, "selected": 12}
GRADED_PROBE = {"probed_examples": 24, "masked_copies": 200, "kept_copies": 0, "kept_rate": 0.0,
                "original_accuracy": 0.8, "masked_token_share": 0.1, "rounds": 1, "examples_with_targets": 0.9,
                "target_entropy": 0.7, "selected": 24, "reviewed": 6, "reviewed_even": 2}
FIRST = {"iteration": 0, "share": 0.0, "train_loss": 0.7, "cls_loss": 0.6, "tok_loss": 0.1,
         "dev": {"accuracy": 0.5, "macro_f1": 0.4, "mcc": 0.0}, "seconds": 1.25}
SECOND = {"iteration": 1, "share": 0.2, "train_loss": 0.5, "cls_loss": 0.45, "tok_loss": 0.05,
          "dev": {"accuracy": 0.75, "macro_f1": 0.7, "mcc": 0.5}, "probe": KEEP_PROBE, "seconds": 2.5}
SCORES = {"sentences": 200, "entropy": 0.61, "top20_share": 0.5, "comprehensiveness_20": 0.29,
          "sufficiency_20": 0.1, "random_comprehensiveness_20": 0.08}
METRICS = {"metric": "accuracy", "best_iteration": 1, "dev": SECOND["dev"], "iterations": [FIRST, SECOND],
           "human_rationales": {"rows": 0, "train_rows": 100}, "explanations": SCORES}


def text(data: Any) -> str:
    """JSON as written (key order included)."""
    return json.dumps(data, indent=2)


@pytest.mark.parametrize("record", [FIRST, SECOND, {**SECOND, "probe": GRADED_PROBE},
                                    {"iteration": 0, "dev": {"accuracy": 0.5}},  # an older, sparser entry
                                    {**FIRST, "later_key": [1, 2]}])  # a newer version's key is kept
def test_iteration_record_round_trips_exactly(record: dict[str, Any]) -> None:
    typed = IterationRecord.from_dict(record)
    assert text(typed.to_dict()) == text(record)
    assert IterationRecord.from_dict(json.loads(json.dumps(typed.to_dict()))) == typed


def test_probe_summary_fields() -> None:
    record = IterationRecord.from_dict(SECOND)
    assert isinstance(record.probe, ProbeSummary) and record.probe.kept_rate == 0.4166
    assert record.probe.selected == 12 and record.probe.reviewed is None
    assert record.dev["accuracy"] == 0.75 and record.seconds == 2.5


def test_training_metrics_round_trip_exactly() -> None:
    typed = TrainingMetrics.from_dict(METRICS)
    assert text(typed.to_dict()) == text(METRICS)
    assert typed.dev_metric == 0.75 and typed.iterations[1].iteration == 1
    assert isinstance(typed.explanations, ExplanationScores) and typed.explanations.entropy == 0.61
    without = {k: v for k, v in METRICS.items() if k not in ("human_rationales", "explanations")}
    assert text(TrainingMetrics.from_dict(without).to_dict()) == text(without)


def test_explanation_scores_to_dict_is_its_fields_in_order() -> None:
    scores = ExplanationScores(200, 0.61, 0.5, 0.29, 0.1, 0.08)
    assert text(scores.to_dict()) == text(SCORES)


def test_a_checkpoint_history_of_dicts_loads(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from ssa_core.config import TrainConfig
    from ssa_core.train.checkpoint import TrainState, load_checkpoint, save_checkpoint
    from ssa_core.train.trainer import make_optimizer

    model = torch.nn.Linear(2, 2)
    optimizer = make_optimizer(model, TrainConfig())
    state = TrainState("fp", completed_iterations=2, global_step=4, best_iteration=1, best_score=0.75,
                       history=[FIRST, SECOND])  # type: ignore[list-item]  # as json.loads gives it
    assert all(isinstance(r, IterationRecord) for r in state.history)
    save_checkpoint(tmp_path, model, {}, optimizer, state)
    written = json.loads((tmp_path / "iter-2" / "state.json").read_text())["state"]
    assert text(written["history"]) == text([FIRST, SECOND])  # state.json as before
    checkpoint = load_checkpoint(tmp_path)
    assert checkpoint is not None and checkpoint.state == state


def test_job_summary_reads_the_typed_record_and_its_json() -> None:
    from jobs.records import iteration_summary

    typed, raw = iteration_summary(IterationRecord.from_dict(SECOND), "accuracy"), iteration_summary(SECOND, "accuracy")
    assert typed == raw and typed.kept_rate == 0.4166 and typed.dev_metric == 0.75
    assert typed.label_stats is not None and typed.label_stats["selected"] == 12


def test_vocabulary_and_records_import_without_torch() -> None:
    code = ("import sys; sys.modules['torch'] = None; sys.modules['transformers'] = None\n"
            "import ssa_core.vocabulary, ssa_core.records, ssa_core.config\n")
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
