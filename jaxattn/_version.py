"""The one source of jaxattn's version: read by ``pyproject.toml`` (setuptools' dynamic version),
``jaxattn.__version__`` and ``jaxattn --version``. Imports nothing, so the CLI reads it instantly."""

__version__ = "0.1.0"
