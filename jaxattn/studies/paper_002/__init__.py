"""Reproductions of Geshkovski, Letrouit, Polyanskiy, Rigollet, "A mathematical perspective on
transformers" (2023): figures 2-4 and the checkable statements of §§4-7, one module per topic.
Every function returns an `xarray.Dataset` (or plain numbers for closed forms); ``plot_*``
helpers draw them with matplotlib.

* `.phase_diagrams` - Figs 2-4 and the random (Q, K, V) ensembles of Fig 4;
* `.circle` - meta-stability on the circle (Fig 3, Problem 2);
* `.wendel` - Thm 4.5 (open hemispheres);
* `.small_beta` - beta = 0 and small beta (Thms 5.1-5.2);
* `.saddles` - strict saddles of the circle energy (Prop 6.1, Appendix C);
* `.repulsion` - V = -I and sharp configurations (§7.1);
* `.euler` - the authors' Euler + renormalise scheme and its time stretch.

(SA) is eq. (2.6) with the softmax partition function (2.4); (USA) replaces Z_i by n. The scalar
ODE of Thm 4.6 and the phase boundary (4.11) are `jaxattn.analysis.gamma`. The paper's errata
relied on here are listed in ``docs/errata.md``.
"""

from . import circle, euler, phase_diagrams, repulsion, saddles, small_beta, wendel
from .circle import circle_metastability as circle_metastability
from .circle import plot_circle_metastability as plot_circle_metastability
from .euler import euler_bias as euler_bias
from .euler import euler_renormalise as euler_renormalise
from .phase_diagrams import KQ_ENSEMBLES as KQ_ENSEMBLES
from .phase_diagrams import PHASE_SOLVERS as PHASE_SOLVERS
from .phase_diagrams import VALUE_ENSEMBLES as VALUE_ENSEMBLES
from .phase_diagrams import phase_diagram as phase_diagram
from .phase_diagrams import plot_phase_diagram as plot_phase_diagram
from .phase_diagrams import random_matrices as random_matrices
from .repulsion import repulsive_configuration as repulsive_configuration
from .repulsion import sharp_configuration as sharp_configuration
from .saddles import beta_one as beta_one
from .saddles import circle_hessian as circle_hessian
from .saddles import circle_hessian_analytic as circle_hessian_analytic
from .small_beta import antipodal_configuration as antipodal_configuration
from .small_beta import small_beta_consensus as small_beta_consensus
from .wendel import hemisphere_margin as hemisphere_margin
from .wendel import in_open_hemisphere as in_open_hemisphere
from .wendel import wendel_monte_carlo as wendel_monte_carlo
from .wendel import wendel_probability as wendel_probability
