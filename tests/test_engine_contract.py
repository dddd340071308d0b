"""The engine contract in code (``trivd_core.train.engine.Engine``): the checks every engine shares.

A framework-free subclass stands in for the JAX, torch and XLA engines (which subclass the same
base: see ``test_the_backends_engines_subclass_the_contract``); the tests exercise the shared
initial tree and the layout check that runs before any engine restores a tree.
"""

from __future__ import annotations

import numpy as np
import pytest

from trivd_core import get_config
from trivd_core.train.engine import EXPORT_KEYS, OPT_KEYS, Engine
from trivd_core.tree import tree_map

CFG = get_config("tiny", batch_size=2)


class _Recording(Engine):
    """Keeps the checked tree it was asked to restore."""

    name = "recording"

    @property
    def devices(self):
        return ["cpu"]

    def _restore(self, tree):
        self.restored = tree
        return tree

    def step(self, ts, inputs):  # pragma: no cover - not used here
        raise NotImplementedError

    def export(self, ts):
        return ts

    def predict(self, ts, cond_frames, z, *, ema=True):  # pragma: no cover - not used here
        raise NotImplementedError


def test_the_initial_tree_has_the_contract_layout_and_restores():
    eng = _Recording(CFG)
    tree = eng.initial_tree(3)
    assert set(tree) == set(EXPORT_KEYS)
    for opt in ("opt_g", "opt_d"):
        assert set(tree[opt]) == set(OPT_KEYS) and int(tree[opt]["count"]) == 0
    eng.init(3)
    assert eng.restored["step"] == 0 and isinstance(eng.restored["step"], int)
    # the same seed draws the same weights; another seed, others
    w = tree["g_params"]["G"]["linear_in"]["w"]
    np.testing.assert_array_equal(w, eng.initial_tree(3)["g_params"]["G"]["linear_in"]["w"])
    assert not np.array_equal(w, eng.initial_tree(4)["g_params"]["G"]["linear_in"]["w"])


def test_restore_checks_every_key_and_leaf_shape_before_the_backend_sees_it():
    eng = _Recording(CFG)
    tree = eng.initial_tree(0)
    with pytest.raises(ValueError, match=r"must have keys \['step'"):
        eng.restore({k: v for k, v in tree.items() if k != "ema"})
    bad = dict(tree, d_params=tree_map(np.copy, tree["d_params"]))
    name = next(iter(bad["d_params"]))
    bad["d_params"][name]["block0"]["conv1"]["w"] = np.zeros((1, 1, 1, 1), np.float32)
    with pytest.raises(ValueError, match=rf"at d_params/{name}/block0/conv1/w must have shape"):
        eng.restore(bad)
    other = _Recording(CFG.replace(g_ch=CFG.g_ch * 2)).initial_tree(0)  # a checkpoint of another config
    with pytest.raises(ValueError, match=r"restore\(\): argument 'tree' at g_params/"):
        eng.restore(other)
    with pytest.raises(ValueError, match="at step must be a non-negative 0-d integer"):
        eng.restore(dict(tree, step=np.int64(-1)))
    with pytest.raises(ValueError, match="at opt_g must have keys"):
        eng.restore(dict(tree, opt_g={"mu": tree["opt_g"]["mu"]}))
    # standing statistics in g_state are allowed (eval writes them)
    eng.restore(dict(tree, g_state={**tree["g_state"], "standing": {}}))


def test_an_engine_must_supply_the_backend_parts():
    class Incomplete(Engine):
        pass

    with pytest.raises(TypeError, match="abstract"):
        Incomplete(CFG)
    with pytest.raises(TypeError, match="argument 'config' must be a trivd_core.configs.Config"):
        _Recording(3)


def test_the_numpy_backend_says_it_does_not_train():
    import backends

    be = backends.load("numpy")
    assert be.trains is False
    with pytest.raises(NotImplementedError, match="does not train.*--backend jax or --backend torch"):
        be.engine(CFG)


def test_the_backends_engines_subclass_the_contract():
    import importlib

    checked = []
    for module in ("backends.jax.engine", "backends.torch.engine"):
        try:
            mod = importlib.import_module(module)
        except ImportError:  # that framework is not installed in this env
            continue
        engines = [getattr(mod, n) for n in ("JaxEngine", "TorchEngine", "XlaEngine") if hasattr(mod, n)]
        assert engines and all(issubclass(e, Engine) for e in engines), module
        checked += engines
    if not checked:
        pytest.skip("neither JAX nor torch is installed")


def test_step_inputs_are_checked_once_for_every_engine():
    from _test_helpers import LOOP_CFG, loop_loader

    from trivd_core.train import InputSampler, loop_rng

    cfg = LOOP_CFG  # decomposition "faster": dF (frame indices) and crV (crop corners)
    eng = _Recording(cfg)
    with loop_loader() as loader:
        inputs = InputSampler(cfg, loader, loop_rng(0)).draw()
    checked = eng.check_inputs(inputs)
    assert checked["real"].dtype == np.float32 and checked["rand_d"]["idx"].dtype == np.int64
    with pytest.raises(ValueError, match="must have key 'z_g'"):
        eng.check_inputs({k: v for k, v in inputs.items() if k != "z_g"})
    with pytest.raises(ValueError, match=rf"inputs\['real'\] must have shape \(d_steps={cfg.d_steps}"):
        eng.check_inputs({**inputs, "real": inputs["real"][0]})
    with pytest.raises(ValueError, match=r"inputs\['z_d'\] must have shape"):
        eng.check_inputs({**inputs, "z_d": inputs["z_d"][:, :1]})
    with pytest.raises(ValueError, match=r"inputs\['rand_g'\]\['idx'\] must be an integer array"):
        eng.check_inputs({**inputs, "rand_g": {**inputs["rand_g"], "idx": inputs["rand_g"]["idx"] * 0.5}})
