"""Where G's batch norms take their statistics from: the batch, or standing statistics (appendix E.2).

Standing statistics are the mean over real batches of the per-batch mean and (biased)
variance of every BN layer of G, per time step; :func:`trivd_core.generator.accumulate_standing_stats`
computes them with a :class:`StatsSource` that *collects* the batch statistics of each
pass, and ``generate(..., train=False)`` reads them back through one that holds them.
"""

from __future__ import annotations

from collections.abc import Mapping

from . import layers

__all__ = ["BN_AXES", "StatsSource"]

#: per time step: statistics over (B, H, W) of (B, T, H, W, C)
BN_AXES = (0, 2, 3)


class StatsSource:
    """Where the batch norms of one forward pass take their statistics from."""

    def __init__(self, standing, collect):
        self.standing = standing  # nested dict of {"mean", "var"} or None (batch statistics)
        self.collect = collect  # dict path -> (mean, var) to fill with batch statistics, or None

    def stats(self, path, x):
        if self.standing is None:
            mean, var = layers.batch_stats(x, BN_AXES)
            if self.collect is not None:
                self.collect[path] = (mean, var)
            return mean, var
        node = self.standing
        for key in path:
            if not isinstance(node, Mapping) or key not in node:
                raise ValueError(
                    "generate(): state['standing'] has no statistics for the batch norm at "
                    f"{'/'.join(path)}; recompute them with accumulate_standing_stats()"
                )
            node = node[key]
        mean, var = node["mean"], node["var"]
        want = (1, x.shape[1], 1, 1, x.shape[-1])
        if tuple(mean.shape) != want or tuple(var.shape) != want:
            raise ValueError(
                f"generate(): state['standing'] statistics at {'/'.join(path)} have shape {tuple(mean.shape)}, "
                f"but this call needs {want} (T_pred={x.shape[1]} time steps, {x.shape[-1]} channels); "
                "standing statistics are per time step, recompute them for this horizon"
            )
        return mean, var
