"""The pre-training gate (:mod:`conformance.gate`): passes on a backend that conforms, refuses one that drifts."""

from __future__ import annotations

import numpy as np

import backends
from conformance.gate import build_gate, gate_records
from trivd_core.configs import get_config

#: the loop tests' config (tests/_test_helpers.LOOP_CFG)
CFG = get_config("tiny", t_cond=1, t_pred=2, K=2, batch_size=4, decomposition="faster")


class _Perturbed:
    """The NumPy backend with every result moved by 1e-2 (what a bfloat16 matmul would do)."""

    def __init__(self, be):
        self._be = be
        self.name = be.name
        self.supports_float64 = be.supports_float64

    def __getattr__(self, k):
        return getattr(self._be, k)

    def to_numpy(self, tree):
        out = self._be.to_numpy(tree)
        return {k: self.to_numpy(v) for k, v in out.items()} if isinstance(out, dict) else out * np.float32(1.01) + 1e-2


def test_gate_passes_on_numpy_and_refuses_a_perturbed_backend():
    cfg = CFG.replace(cell="convgru")
    be = backends.load("numpy")
    ok, report = build_gate(cfg, be)()
    assert ok, report
    assert "cell_step[convgru]" in gate_records(cfg)
    ok, report = build_gate(cfg, _Perturbed(be))()
    assert not ok
    assert "generate (G forward)" in report and "discriminate[dF]" in report and "--skip-conformance" in report


