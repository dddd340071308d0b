"""trivd, the application: the ``trivd`` command and its front ends (train, eval, predict, bench, conform, info).

The numerical library is :mod:`trivd_core` (backend-agnostic), checked against
:mod:`reference` by :mod:`conformance`, with frameworks in :mod:`backends`.  This
package imports all of them and nothing imports it.  ``python -m trivd`` runs the command.
"""

from trivd_core import __version__

__all__ = ["__version__"]
