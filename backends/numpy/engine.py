"""The numpy backend has no training engine: NumPy has no autodiff, and finite differences do not scale to G and D.

It evaluates and predicts (``trivd eval/predict --backend numpy``) and is the array
backend of the conformance suite; training is ``--backend jax`` or ``--backend torch``.
"""

from __future__ import annotations

__all__ = ["NO_ENGINE", "engine"]

NO_ENGINE = ("the numpy backend does not train (no autodiff: its value_and_grad is finite differences, for small "
             "checks); train with --backend jax or --backend torch")


def engine(config, **options):
    """Raises :class:`NotImplementedError` with :data:`NO_ENGINE`."""
    raise NotImplementedError(NO_ENGINE)
