"""The project's vocabulary: every closed set of words that more than one module (or package) speaks, as a Literal
type and its values in order. ssa_core's configuration, the runtime, the job contract (jobs), the API's schemas and
the worker import them from here, so a word is spelled once. Torch-free and import-free.

Two words are kept apart: an SSA **method** (baseline, co, layer, hybrid: what the network is) and an **ONNX
variant** (fp32, int8, fp16: which exported file of a model folder answers, i.e. its numeric precision)."""

from __future__ import annotations

from typing import Final, Literal, get_args

# What the model predicts.
Task = Literal["classification", "regression"]
TASKS: Final[tuple[Task, ...]] = get_args(Task)

# The SSA method (the network's variant in the paper's words): see SSA_METHOD.md.
Method = Literal["baseline", "co", "layer", "hybrid"]
METHODS: Final[tuple[Method, ...]] = get_args(Method)

# The weak-label rule of the probing step.
LabelMode = Literal["graded", "keep", "flip", "contrast"]
LABEL_MODES: Final[tuple[LabelMode, ...]] = get_args(LabelMode)

# The dev-set metrics: those of a classifier, then those of a regressor.
MetricName = Literal["accuracy", "macro_f1", "mcc", "pearson", "spearman"]
METRICS: Final[tuple[MetricName, ...]] = get_args(MetricName)
CLASS_METRICS: Final[tuple[MetricName, ...]] = ("accuracy", "macro_f1", "mcc")
REGRESSION_METRICS: Final[tuple[MetricName, ...]] = ("pearson", "spearman")

# What the SSA layer softmaxes, and how its pooled vector is mixed in.
AttentionScores = Literal["logit", "probability"]
ATTENTION_SCORES: Final[tuple[AttentionScores, ...]] = get_args(AttentionScores)
PoolTransform = Literal["none", "pooler"]
POOL_TRANSFORMS: Final[tuple[PoolTransform, ...]] = get_args(PoolTransform)

# The iteration schedule of training.
OriginalLabels = Literal["ones", "ignore"]
ORIGINAL_LABELS: Final[tuple[OriginalLabels, ...]] = get_args(OriginalLabels)
Schedule = Literal["replace", "augment"]
SCHEDULES: Final[tuple[Schedule, ...]] = get_args(Schedule)
ShareBalance = Literal["class", "none"]
SHARE_BALANCES: Final[tuple[ShareBalance, ...]] = get_args(ShareBalance)
# Where distractor copies take their inserted span from: "pool" (off-topic clauses), "spans" (words of a training row
# of another class) or "both" (each copy draws one of the two at random).
DistractorSources = Literal["pool", "spans", "both"]
DISTRACTOR_SOURCES: Final[tuple[DistractorSources, ...]] = get_args(DistractorSources)
# The named training recipes (ssa_core.recipes).
RecipeName = Literal["released", "graded", "robust"]
RECIPE_NAMES: Final[tuple[RecipeName, ...]] = get_args(RecipeName)

# Serving: the ONNX Runtime provider asked for, and how a prediction is explained.
Provider = Literal["auto", "cuda", "cpu"]
PROVIDERS: Final[tuple[Provider, ...]] = get_args(Provider)
Explainer = Literal["attention", "occlusion"]
EXPLAINERS: Final[tuple[Explainer, ...]] = get_args(Explainer)

# The ONNX variant (precision) of a model folder's exported file: fp32 (model.onnx, always there) first.
OnnxVariant = Literal["fp32", "int8", "fp16"]
ONNX_VARIANTS: Final[tuple[OnnxVariant, ...]] = get_args(OnnxVariant)
DEFAULT_ONNX_VARIANT: Final[OnnxVariant] = "fp32"
# The review tools a label job's records are exported for (ssa_core.labeling.review).
ReviewFormat = Literal["label-studio", "argilla"]
REVIEW_FORMATS: Final[tuple[ReviewFormat, ...]] = get_args(ReviewFormat)
# What a training job may ask to be quantized to besides fp32 (jobs.spec's `quantize`).
Quantize = Literal["none", "int8"]
QUANTIZE_CHOICES: Final[tuple[Quantize, ...]] = get_args(Quantize)
