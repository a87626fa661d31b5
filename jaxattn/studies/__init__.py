"""Paper reproductions: the data of each figure and the figure (``docs/sweeps.md``).

* `.paper_000`: Figure 2 of paper 000 (hardmax layers, leaders, attracting set).
* `.paper_001`, `.paper_002`: the figures and theorems of papers 001 and 002.
* `.paper_003`: Figs. 1-3 and Conjecture 1 of paper 003 (causal attention).
* `.paper_004`: Figs. 2-5 of paper 004 (particles and the mean-field PDE).
* `.gradients`: differentiable parameter studies (optax fits, sensitivity maps).
* `.normalisation`: rates of the normalisation schemes and the noisy bifurcation (``docs/normalisation.md``).
* `.field_models`: the models beyond the five papers (``docs/beyond.md``).
* `.euler`: the papers' authors' baseline scheme (Euler + renormalisation).
* `.figures`: every plot of the studies (the notebooks call them).
* `.cli`: the runners of ``jaxattn sweep ...`` and ``jaxattn causal ...``.

The data functions return `xarray.Dataset` objects; the long ones are resumable sweeps
([`jaxattn.sweeps`][jaxattn.sweeps]).
"""

from . import euler as euler
from . import field_models as field_models
from . import figures as figures
from . import gradients as gradients
from . import normalisation as normalisation
from . import paper_000 as paper_000
from . import paper_001 as paper_001
from . import paper_002 as paper_002
from . import paper_003 as paper_003
from . import paper_004 as paper_004
