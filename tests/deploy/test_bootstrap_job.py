"""SSA_BOOTSTRAP_JOB: the test-only way to shrink the first-start job (the compose test sets it), read from the
environment as JSON; deploy and model_id stay those of the bootstrap job."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.settings import Settings
from service.submissions.bootstrap import BOOTSTRAP_MODEL_ID, bootstrap_config


def test_unset_keeps_the_default_job(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSA_BOOTSTRAP_JOB", raising=False)
    job = bootstrap_config(Settings())
    assert (job.method, job.iterations, job.deploy, job.model_id) == ("hybrid", 3, "always", BOOTSTRAP_MODEL_ID)


def test_json_from_the_environment_replaces_settings_but_not_deploy_or_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSA_BOOTSTRAP_JOB", '{"iterations": 1, "max_length": 48, "deploy": "never", "model_id": "x"}')
    job = bootstrap_config(Settings())
    assert (job.iterations, job.max_length) == (1, 48)
    assert (job.deploy, job.model_id) == ("always", BOOTSTRAP_MODEL_ID)


def test_an_unknown_job_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSA_BOOTSTRAP_JOB", '{"iteratons": 1}')
    with pytest.raises(ValidationError, match="iteratons"):
        bootstrap_config(Settings())
