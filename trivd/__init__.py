"""trivd, the application: the ``trivd`` command and its front ends (train, eval, predict, bench, conform, info).

The numerical library is :mod:`trivd_core` (backend-agnostic), checked against
:mod:`reference` by :mod:`conformance`, with frameworks in :mod:`backends`.  This
package imports all of them and nothing imports it.  ``python -m trivd`` runs the command.
"""

__all__ = ["__version__"]


def __getattr__(name):
    # The version is trivd_core's; read on demand so that importing the command (``trivd.cli``) stays light: a
    # Ctrl-C during the heavy imports then lands inside ``main``, which reports it.
    if name == "__version__":
        from trivd_core import __version__

        return __version__
    raise AttributeError(f"module 'trivd' has no attribute {name!r}")
