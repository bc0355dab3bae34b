"""minstab: which minima can gradient descent stably reach, and what that forces on the function.

Exact loss Hessians and sharpness (dense, Lanczos, closed-form Gram) for shallow ReLU
networks, in JAX. See README.md and ../DESIGN for the layers.
"""

from importlib.metadata import PackageNotFoundError, version

from . import data as data
from . import images as images
from . import plotting as plotting
from .bounds import population_weight_1d as population_weight_1d
from .bounds import sharpness_lower_bound as sharpness_lower_bound
from .bounds import theorem1_budget as theorem1_budget
from .bounds import theorem2_delta as theorem2_delta
from .bounds import weight as weight
from .bounds import weight_1d as weight_1d
from .bounds import weighted_curvature as weighted_curvature
from .curvature import SHARPNESS_METHODS as SHARPNESS_METHODS
from .curvature import SharpnessResult as SharpnessResult
from .curvature import gauss_newton_gram as gauss_newton_gram
from .curvature import gauss_newton_matvec as gauss_newton_matvec
from .curvature import hessian as hessian
from .curvature import hvp as hvp
from .curvature import jacobian as jacobian
from .curvature import residual_curvature_bound as residual_curvature_bound
from .curvature import shallow_hvp as shallow_hvp
from .curvature import sharpness as sharpness
from .deep import DeepParams as DeepParams
from .deep import bump_network as bump_network
from .deep import deep_forward as deep_forward
from .deep import deep_hessian as deep_hessian
from .deep import deep_sharpness as deep_sharpness
from .deep import init_deep as init_deep
from .eigen import EigResult as EigResult
from .eigen import eigh_dense as eigh_dense
from .eigen import lanczos as lanczos
from .eigen import power_iteration as power_iteration
from .flattest import FlattestResult as FlattestResult
from .flattest import flattest_implementation as flattest_implementation
from .images import load_digits_subset as load_digits_subset
from .images import load_mnist as load_mnist
from .images import read_idx as read_idx
from .images import two_class_subset as two_class_subset
from .losses import exponential_loss as exponential_loss
from .losses import logistic_loss as logistic_loss
from .losses import quadratic_loss as quadratic_loss
from .losses import residuals as residuals
from .modes import ModeAnalysis as ModeAnalysis
from .modes import mode_hessians as mode_hessians
from .nets import Hyperplanes as Hyperplanes
from .nets import Knots as Knots
from .nets import ShallowParams as ShallowParams
from .nets import flatten as flatten
from .nets import forward as forward
from .nets import hyperplanes as hyperplanes
from .nets import init_shallow as init_shallow
from .nets import knots as knots
from .nets import num_params as num_params
from .nets import permute as permute
from .nets import rescale as rescale
from .nets import unflatten as unflatten
from .predict import Prediction as Prediction
from .predict import check_against_sweep as check_against_sweep
from .predict import smoothest_interpolant as smoothest_interpolant
from .report import StabilityReport as StabilityReport
from .report import stability_report as stability_report
from .sgd import SGDThreshold as SGDThreshold
from .sgd import batch_noise_p as batch_noise_p
from .sgd import non_uniformity as non_uniformity
from .sgd import sgd_stability_threshold as sgd_stability_threshold
from .sgd import simulate_linear_sgd as simulate_linear_sgd
from .sweep import SweepResult as SweepResult
from .sweep import load_sweep as load_sweep
from .sweep import sweep as sweep
from .train import TrainLog as TrainLog
from .train import TrainResult as TrainResult
from .train import train as train

try:
    __version__ = version("minstab")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"
