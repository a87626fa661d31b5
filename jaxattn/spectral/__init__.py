"""Mean-field attention PDE: spectral solvers on S^1, S^2 and zonal S^{d-1}, linear theory, particle bridge.

Conventions (Bruno, Pasqualotto, Agazzi 2025, §2 and §4.1; ``docs/spectral.md``): time is the particle
time of the USA/SA ODE, W(q) = beta^{-1} e^{beta q}, densities on S^1 are w.r.t. d theta (uniform
1/(2 pi)), on S^{d-1} (d >= 3) w.r.t. the normalised surface measure (uniform 1).
"""

from ._base import (
    AbstractSpectralModel as AbstractSpectralModel,
    AbstractSpectralTrajectory as AbstractSpectralTrajectory,
    solve_monitored as solve_monitored,
)
from .linear import (
    crossover_betas as crossover_betas,
    dominant_mode as dominant_mode,
    exit_time_slope as exit_time_slope,
    funk_hecke_coefficients as funk_hecke_coefficients,
    grenier_coefficient as grenier_coefficient,
    growth_rate as growth_rate,
    growth_rates as growth_rates,
    harmonic_dimension as harmonic_dimension,
    kernel_coefficients as kernel_coefficients,
    kmax_asymptotic as kmax_asymptotic,
    log_kernel_coefficients as log_kernel_coefficients,
)
from .circle import (
    CircleModel as CircleModel,
    DensityTrajectory as DensityTrajectory,
    check_coefficients as check_coefficients,
    coefficients_from_density as coefficients_from_density,
    density_on_grid as density_on_grid,
    integrate_circle as integrate_circle,
    mode_coefficients as mode_coefficients,
    noise_coefficients as noise_coefficients,
    solve_circle as solve_circle,
)
from .zonal import (
    ZonalModel as ZonalModel,
    ZonalTrajectory as ZonalTrajectory,
    solve_zonal as solve_zonal,
    zonal_coefficients as zonal_coefficients,
    zonal_density as zonal_density,
    zonal_mode as zonal_mode,
)
from .sphere import (
    SphereModel as SphereModel,
    SphereTrajectory as SphereTrajectory,
    solve_sphere as solve_sphere,
    sphere_coefficients as sphere_coefficients,
    sphere_zonal_mode as sphere_zonal_mode,
)
from .gradients import (
    PDEGradients as PDEGradients,
    circle_pde_value_and_grad as circle_pde_value_and_grad,
)
from .bridge import (
    bin_masses as bin_masses,
    cluster_measure as cluster_measure,
    discretize_density as discretize_density,
    fourier_moments as fourier_moments,
    harmonic_power as harmonic_power,
    histogram as histogram,
    iid_sample as iid_sample,
    quantile_sample as quantile_sample,
    w1_circle as w1_circle,
    wasserstein_sphere as wasserstein_sphere,
)
from . import bridge as bridge, circle as circle, gradients as gradients, linear as linear, sphere as sphere, zonal as zonal
