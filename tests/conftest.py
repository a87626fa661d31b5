import jax
import pytest

import jaxattn  # noqa: F401  (float64 on)


@pytest.fixture
def key():
    return jax.random.PRNGKey(20261122)
