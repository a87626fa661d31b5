"""jaxattn: self-attention dynamics as interacting particle systems.

Tokens are particles, layers are time. See README.md for a tour; the public API is
re-exported here and nothing else lives in this file.
"""

from . import _config  # noqa: F401  (float64 by default; see jaxattn._config)

__version__ = "0.1.0"
