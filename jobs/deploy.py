"""The deploy gate: the one place that decides whether a model may become the store's active one, and the one
check that a model folder can serve. The worker calls it after a job (deploy: if_better / always) and before
publishing; the API calls it for a manual deploy (`POST /models/{id}/deploy`) and when it loads a model.

The gate's checks, in order, each recorded (jobs.records.GateCheck) and the first failure ends it:
1. `labels`: task, label set and input kind (single texts / pairs) equal the active model's;
2. `loads`: the model loads through the ONNX runtime and predicts a short and a max-length input (finite scores);
3. `explanations`: its served attention is not close to uniform (if_better only; not judged for baseline/co);
4. `score`: both models are scored by the ONNX runtime on the same data, the new job's dev set; ties keep the
   active model (if_better only).
With no active model, checks 1, 3 and 4 are skipped: serving a model that loads beats serving none. A model that
passes becomes active only after it was loaded (`gate_and_deploy`), so active.json never names a model that cannot
be served."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from jobs.records import GATE_CHECKS, DeployReport, GateCheck, GateCheckName, GateScores
from jobs.spec import ALWAYS, IF_BETTER, NEVER, Deploy
from ssa_core.data.datasets import Dataset
from ssa_core.evaluation.metrics import classification_metrics, regression_metrics
from ssa_core.runtime.artifacts import ArtifactStore, ModelInfo
from ssa_core.runtime.predictor import Item, Predictor
from ssa_core.vocabulary import Provider

log = logging.getLogger("ssa.deploy")
GATE_RUNS = 3  # an if_better gate runs again (at most this often) when the active model changed while it ran
REASON_MAX = 300
_ABSOLUTE_PATH = re.compile(r"(?<![\w.])/(?:[^\s'\"/:,;()\[\]]+/)+([^\s'\"/:,;()\[\]]*)")


class NotServable(RuntimeError):
    """A model folder cannot be loaded or cannot predict through the ONNX runtime. The message is one line, free of
    paths and tracebacks, fit for a job's record and an API response."""


def public_reason(exc: BaseException, folder: Path | None = None) -> str:
    """One line saying why `exc` happened, without absolute paths (a path is cut to its last component, the model
    folder becomes 'the model folder') and without a traceback."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if folder is not None:
        text = text.replace(str(folder), "the model folder")
    text = _ABSOLUTE_PATH.sub(lambda match: match.group(1) or "", text)
    reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return reason if len(reason) <= REASON_MAX else reason[: REASON_MAX - 3] + "..."


def smoke_inputs(predictor: Predictor) -> list[Item]:
    """A short input and one of the model's full max length (the positions a real request can reach)."""
    text = "warm up " * (predictor.max_length // 2)
    return [("warm", "up"), ("warm " + text, text)] if predictor.pair else ["warm up", text]


def smoke_test(predictor: Predictor) -> None:
    """Predict the smoke inputs (on the overlap session too, where the predictor has one); raises NotServable unless
    every score is finite (ONNX Runtime errors too)."""
    try:
        predictions = predictor.predict(smoke_inputs(predictor), truncate=True)
        if predictor.overlap_session is not None:
            with predictor.overlapping():
                predictions += predictor.predict(smoke_inputs(predictor), truncate=True)
    except Exception as exc:
        raise NotServable(f"it fails to predict: {public_reason(exc, predictor.model_dir)}") from exc
    if not all(math.isfinite(p.score) for p in predictions):
        raise NotServable("it produces non-finite scores")


def load_checked(folder: Path, *, provider: Provider = "cpu", intra_op_threads: int | None = None,
                 allow_spinning: bool = True) -> Predictor:
    """Load `folder` through the ONNX runtime and run the smoke test: the model as the API would serve it. Raises
    NotServable with a path-free reason."""
    try:
        predictor = Predictor.load(folder, provider=provider, intra_op_threads=intra_op_threads,
                                   allow_spinning=allow_spinning)
    except Exception as exc:
        raise NotServable(f"it fails to load: {public_reason(exc, folder)}") from exc
    smoke_test(predictor)
    return predictor


# ---- the checks ------------------------------------------------------------------------------------------------
def input_kind(pair: bool) -> str:
    return "text pairs" if pair else "single texts"


def labels_check(new: ModelInfo, active: ModelInfo | None) -> GateCheck:
    """Check 1: the new model answers the same question as the active one (task, label set, input kind)."""
    if active is None:
        return GateCheck(name="labels", outcome="skipped", detail="no active model")
    if new.task != active.task:
        detail = f"its task {new.task!r} differs from the active model {active.model_id!r}'s {active.task!r}"
    elif set(new.labels) != set(active.labels):
        detail = (f"its labels {sorted(new.labels)} differ from the active model {active.model_id!r}'s "
                  f"{sorted(active.labels)}")
    elif new.pair != active.pair:
        detail = (f"it takes {input_kind(new.pair)}, the active model {active.model_id!r} takes "
                  f"{input_kind(active.pair)}")
    else:
        return GateCheck(name="labels", outcome="passed",
                         detail=f"same task ({new.task}), labels and inputs as the active model {active.model_id!r}")
    return GateCheck(name="labels", outcome="failed", detail=detail)


def explanations_check(new: ModelInfo, max_entropy: float) -> GateCheck:
    """Check 3: the model's explanations single something out (see `uniform_attention`)."""
    scores = (new.metrics or {}).get("explanations")
    if new.meta.method not in ("layer", "hybrid"):
        return GateCheck(name="explanations", outcome="skipped",
                         detail=f"a {new.meta.method} model's prediction is not pooled by its attention")
    if not isinstance(scores, dict):
        return GateCheck(name="explanations", outcome="skipped", detail="no explanation measurement in metrics.json")
    reason = uniform_attention_of(new, max_entropy)
    if reason is not None:
        return GateCheck(name="explanations", outcome="failed", detail=reason)
    entropy = float(scores.get("entropy", 0.0))
    return GateCheck(name="explanations", outcome="passed",
                     detail=f"normalised attention entropy {entropy:.3f} <= {max_entropy:.3f}")


def uniform_attention_of(info: ModelInfo, max_entropy: float) -> str | None:
    """Why the model explains nothing, or None: its served attention (measured on its dev set at the end of
    training, metrics.json "explanations") has a normalised entropy above `max_entropy`. Models whose prediction is
    not pooled by the SSA attention (baseline, co) and models without the measurement are not judged."""
    scores = (info.metrics or {}).get("explanations")
    if info.meta.method not in ("layer", "hybrid") or not isinstance(scores, dict):
        return None
    entropy = float(scores.get("entropy", 0.0))
    if entropy <= max_entropy:
        return None
    return (f"not deployed: its attention is close to uniform (normalised entropy {entropy:.3f} > {max_entropy:.3f}, "
            "SSA_DEPLOY_MAX_ATTENTION_ENTROPY), so its explanations would single out nothing")


def uniform_attention(store: ArtifactStore, model_id: str, max_entropy: float) -> str | None:
    """`uniform_attention_of` for a stored model."""
    return uniform_attention_of(store.get_model(model_id), max_entropy)


def dev_items(dev: Dataset) -> list[Item]:
    return [(e.text, e.text_pair) if e.text_pair is not None else e.text for e in dev.examples]


def dev_score(predictor: Predictor, dev: Dataset, metric: str, classes: Sequence[str]) -> float:
    """`metric` of `predictor` on `dev`, predicted through the ONNX runtime (over-long inputs cut, as served).
    Classes are indexed by name in `classes`, so two models whose label order differs are scored alike."""
    predictions = predictor.predict(dev_items(dev), truncate=True, return_tokens=False, return_words=False)
    if dev.task == "regression":
        gold = np.array([float(e.label) for e in dev.examples], dtype=np.float64)
        values = np.array([float(p.label) for p in predictions], dtype=np.float64)
        return float(regression_metrics(gold, values)[metric])
    index = {name: k for k, name in enumerate(classes)}
    gold = np.array([index[str(e.label)] for e in dev.examples], dtype=np.int64)
    chosen = np.array([index[str(p.label)] for p in predictions], dtype=np.int64)
    return float(classification_metrics(gold, chosen, len(classes))[metric])


# ---- the gate --------------------------------------------------------------------------------------------------
class _Run:
    """The checks of one gate run, in order."""

    def __init__(self, policy: Deploy, active: str | None, joblog: logging.Logger | None) -> None:
        self.policy, self.active, self.joblog = policy, active, joblog
        self.checks: list[GateCheck] = []
        self.scores: GateScores | None = None

    def add(self, check: GateCheck) -> GateCheck:
        self.checks.append(check)
        if self.joblog is not None:
            self.joblog.info("deploy gate: %s %s: %s", check.name, check.outcome, check.detail)
        return check

    def skip(self, name: GateCheckName, detail: str) -> None:
        self.add(GateCheck(name=name, outcome="skipped", detail=detail))

    def end(self, deployed: bool, reason: str) -> DeployReport:
        done = {check.name for check in self.checks}
        for name in GATE_CHECKS:
            if name not in done:
                self.checks.append(GateCheck(name=name, outcome="skipped", detail="not reached"))
        if self.joblog is not None:
            self.joblog.info("deploy gate: %s", reason)
        return DeployReport(policy=self.policy, deployed=deployed, reason=reason, active_before=self.active,
                            checks=self.checks, scores=self.scores)


def active_model(store: ArtifactStore, besides: str | None = None) -> ModelInfo | None:
    """The store's active model (None when there is none, it is unreadable, or it is `besides`)."""
    active = store.active_model_id()
    if active is None or active == besides or not store.has_model(active):
        return None
    try:
        return store.get_model(active)
    except Exception as exc:  # an unreadable folder counts as no active model
        log.warning("the active model %s is unreadable: %s", active, exc)
        return None


def decide_deploy(store: ArtifactStore, policy: Deploy, model_id: str, dev: Dataset | None = None,
                  metric: str | None = None, *, max_entropy: float = 1.0, provider: Provider = "cpu",
                  joblog: logging.Logger | None = None) -> DeployReport:
    """Run the gate for the published model `model_id` (deploy policy `policy`; `dev` and `metric`: the job's dev
    set and metric, needed under if_better). Switches nothing: see `gate_and_deploy`."""
    new = store.get_model(model_id)
    active = active_model(store, besides=model_id)
    run = _Run(policy, active.model_id if active else None, joblog)
    if policy == NEVER:
        for name in GATE_CHECKS:
            run.skip(name, f"deploy: {NEVER}")
        return run.end(False, f"not deployed (deploy: {NEVER})")
    if run.add(labels_check(new, active)).outcome == "failed":
        return run.end(False, f"not deployed: {run.checks[-1].detail} (POST /models/{model_id}/deploy with "
                              '"force": true deploys it anyway)')
    try:
        predictor = load_checked(new.path, provider=provider)
    except NotServable as exc:
        run.add(GateCheck(name="loads", outcome="failed", detail=str(exc)))
        return run.end(False, f"not deployed: the model cannot serve: {exc}")
    run.add(GateCheck(name="loads", outcome="passed",
                      detail=f"loaded and predicted through the ONNX runtime ({predictor.provider})"))
    if policy == ALWAYS or active is None:
        why = f"deploy: {ALWAYS}" if policy == ALWAYS else "no active model: serving a model beats serving none"
        run.skip("explanations", why)
        run.skip("score", why)
        note = f"deployed (deploy: {ALWAYS})" if policy == ALWAYS else "deployed: there was no active model"
        return run.end(True, note)
    assert policy == IF_BETTER
    if run.add(explanations_check(new, max_entropy)).outcome == "failed":
        return run.end(False, run.checks[-1].detail)
    return _score(run, predictor, new, active, dev, metric or new.metric or "accuracy", provider)


def _score(run: _Run, predictor: Predictor, new: ModelInfo, active: ModelInfo, dev: Dataset | None, metric: str,
           provider: Provider) -> DeployReport:
    if dev is None or not dev.examples:
        run.add(GateCheck(name="score", outcome="failed", detail="no dev examples to score both models on"))
        return run.end(False, "not deployed: no dev examples to score both models on")
    classes = sorted(set(new.labels) | {str(e.label) for e in dev.examples}) if dev.task != "regression" else []
    new_score = dev_score(predictor, dev, metric, classes)
    try:
        old = Predictor.load(active.path, provider=provider)
        old_score: float | None = dev_score(old, dev, metric, classes)
    except Exception as exc:
        old_score, why = None, public_reason(exc, active.path)
        log.warning("the active model %s could not be scored: %s", active.model_id, why)
    run.scores = GateScores(metric=metric, examples=len(dev.examples), new=new_score, active=old_score)
    where = f"on this job's dev set ({len(dev.examples)} examples, ONNX runtime)"
    if old_score is None:
        detail = f"dev {metric} {new_score:.4f} {where}; the active model {active.model_id!r} could not be scored"
        run.add(GateCheck(name="score", outcome="passed", detail=detail))
        return run.end(True, f"deployed: {detail}")
    better = new_score > old_score  # a tie keeps the active model
    relation = ">" if better else ("=" if new_score == old_score else "<")
    detail = f"dev {metric} {new_score:.4f} {relation} {old_score:.4f} of active model {active.model_id!r} {where}"
    run.add(GateCheck(name="score", outcome="passed" if better else "failed", detail=detail))
    return run.end(better, f"{'deployed' if better else 'not deployed'}: {detail}")


def gate_and_deploy(store: ArtifactStore, policy: Deploy, model_id: str, dev: Dataset | None = None,
                    metric: str | None = None, *, max_entropy: float = 1.0, provider: Provider = "cpu",
                    joblog: logging.Logger | None = None) -> DeployReport:
    """Run the gate and, when the model passes, point active.json at it: only after the gate loaded it. When the
    active model changed while an if_better gate ran (another job, a manual deploy), the gate runs again against
    the new one."""
    for _ in range(GATE_RUNS):
        report = decide_deploy(store, policy, model_id, dev, metric, max_entropy=max_entropy, provider=provider,
                               joblog=joblog)
        now = active_model(store, besides=model_id)
        if policy == IF_BETTER and (now.model_id if now else None) != report.active_before:
            if joblog is not None:
                joblog.info("deploy gate: the active model changed while the gate ran; running it again")
            continue
        if report.deployed:
            store.set_active_model(model_id)
        return report
    return report.model_copy(update={"deployed": False, "reason": "not deployed: the active model kept changing "
                                     "while the gate ran; deploy it by hand"})
