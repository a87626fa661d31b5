"""Mean-field attention PDE: spectral solvers on S^1, S^2 and zonal S^{d-1}, linear theory, particle bridge.

Conventions (paper 004; digest ``research/seeds/004-metastable.md`` §0, §4): time is the particle time
of the USA/SA ODE, W(q) = beta^{-1} e^{beta q}, densities on S^1 are w.r.t. d theta (uniform 1/(2 pi)),
on S^{d-1} (d >= 3) w.r.t. the normalised surface measure (uniform 1). See ``docs/spectral.md``.
"""

from .linear import (
    crossover_betas,
    dominant_mode,
    exit_time_slope,
    funk_hecke_coefficients,
    grenier_coefficient,
    growth_rate,
    growth_rates,
    harmonic_dimension,
    kernel_coefficients,
    kmax_asymptotic,
)
from .circle import (
    CircleModel,
    DensityTrajectory,
    coefficients_from_density,
    density_on_grid,
    integrate_circle,
    mode_coefficients,
    noise_coefficients,
    solve_circle,
)
from .zonal import ZonalModel, ZonalTrajectory, solve_zonal, zonal_coefficients, zonal_density, zonal_mode
from .sphere import SphereModel, SphereTrajectory, solve_sphere, sphere_coefficients, sphere_zonal_mode
from .bridge import (
    angles_of,
    bin_masses,
    cluster_measure,
    discretize_density,
    fourier_moments,
    harmonic_power,
    histogram,
    iid_sample,
    quantile_sample,
    w1_circle,
    wasserstein_sphere,
)
from . import bridge, circle, linear, sphere, zonal  # noqa: E402
