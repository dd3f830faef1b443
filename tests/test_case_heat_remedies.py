"""The heat-remedies case study (case_studies/heat_remedies): its variants are the shipped heat
config with exactly the change each one names, so its table compares like with like."""

from __future__ import annotations

import numpyro
import pytest
from case_study_support import case_script

from bpinn.api import prepare
from bpinn.config import load_config

analyse = case_script("heat_remedies")


def _model(tmp_path, name):
    edits, overrides, _ = analyse.VARIANTS[name]
    config = load_config(analyse.write_variant(tmp_path, name, edits), overrides=overrides)
    return config, prepare(config)


def _observed(model):
    tr = numpyro.handlers.trace(numpyro.handlers.seed(model.model, 0)).get_trace()
    return {n for n, s in tr.items() if s["type"] == "sample" and s["is_observed"]}


@pytest.mark.parametrize("name", list(analyse.VARIANTS))
def test_every_variant_builds(tmp_path, name):
    config, model = _model(tmp_path, name)
    edits, overrides, _ = analyse.VARIANTS[name]
    for key, value in overrides.items():
        assert getattr(config.inference, key) == value


def test_variants_differ_from_the_shipped_case_only_as_named(tmp_path):
    _, hard = _model(tmp_path, "hard")
    _, soft = _model(tmp_path, "soft")
    _, gpinn = _model(tmp_path, "hard_32_gpinn")
    assert not hard.soft and hard.solution.lift_fn is not None
    # soft: the Dirichlet faces and the initial condition become likelihood terms
    assert soft.solution.lift_fn is None
    assert any(t.name.startswith("initial") for t in soft.soft)
    assert any(t.name.startswith("dirichlet") for t in soft.soft)
    assert _observed(soft) - _observed(hard) == {f"condition.{t.name}" for t in soft.soft}
    assert gpinn.collocation.shape[0] == 32 and hard.collocation.shape[0] == 128
    assert _observed(gpinn) - _observed(hard) == {"pde_residual_gradient"}
    assert gpinn.settings.residual_gradient_noise == 0.05


def test_an_edit_that_does_not_apply_is_refused(tmp_path):
    with pytest.raises(ValueError, match="not in the heat config"):
        analyse.write_variant(tmp_path, "bad", (("no such text", "x"),))
