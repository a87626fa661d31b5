import gc

import jax
import pytest

import jaxattn  # noqa: F401  (float64 on)


@pytest.fixture
def key():
    return jax.random.PRNGKey(20261122)


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_code():
    """Drop JAX's compiled executables after each test module. A worker of ``pytest -n 2`` runs ~500 tests
    and compiles a few thousand functions; kept for the whole session, they made XLA's CPU compiler crash
    (a segmentation fault inside ``backend_compile_and_load``) late in two full runs, in tests that pass on
    their own. Test modules rarely share compiled functions, so little is recompiled."""
    yield
    jax.clear_caches()
    gc.collect()
