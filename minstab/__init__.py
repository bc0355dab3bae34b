"""minstab: which minima can gradient descent stably reach, and what that forces on the function.

Exact loss Hessians and sharpness (dense, Lanczos, closed-form Gram) for shallow ReLU
networks, in JAX. See README.md and ../DESIGN for the layers.
"""

from importlib.metadata import PackageNotFoundError, version

from . import data as data
from . import images as images
from . import implicit_bias as implicit_bias
from . import plotting as plotting
from .adapters import from_equinox as from_equinox
from .adapters import from_flax_linen as from_flax_linen
from .adapters import from_flax_nnx as from_flax_nnx
from .batching import read_idx_batches as read_idx_batches
from .blocks import BlockSharpness as BlockSharpness
from .blocks import block_sharpness as block_sharpness
from .blocks import block_trace as block_trace
from .blocks import plot_blocks as plot_blocks
from .bounds import population_weight_1d as population_weight_1d
from .bounds import sharpness_lower_bound as sharpness_lower_bound
from .bounds import theorem1_budget as theorem1_budget
from .bounds import theorem2_delta as theorem2_delta
from .bounds import weight as weight
from .bounds import weight_1d as weight_1d
from .bounds import weighted_curvature as weighted_curvature
from .config import TrainConfig as TrainConfig
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
from .devices import use_cpu_cores as use_cpu_cores
from .eigen import EigResult as EigResult
from .eigen import Tridiagonal as Tridiagonal
from .eigen import eigh_dense as eigh_dense
from .eigen import lanczos as lanczos
from .eigen import lanczos_tridiagonal as lanczos_tridiagonal
from .eigen import power_iteration as power_iteration
from .flattest import FlattestResult as FlattestResult
from .flattest import flattest_implementation as flattest_implementation
from .images import load_digits_subset as load_digits_subset
from .images import load_mnist as load_mnist
from .images import read_idx as read_idx
from .images import two_class_subset as two_class_subset
from .implicit_bias import Margins as Margins
from .implicit_bias import MinNormResult as MinNormResult
from .implicit_bias import NearOrthogonalData as NearOrthogonalData
from .implicit_bias import NeuronGDResult as NeuronGDResult
from .implicit_bias import TeacherData as TeacherData
from .implicit_bias import TwoLayerLog as TwoLayerLog
from .implicit_bias import TwoLayerResult as TwoLayerResult
from .implicit_bias import gd_single_neuron as gd_single_neuron
from .implicit_bias import init_two_layer as init_two_layer
from .implicit_bias import margin_summary as margin_summary
from .implicit_bias import min_norm_interpolant as min_norm_interpolant
from .implicit_bias import near_orthogonal_data as near_orthogonal_data
from .implicit_bias import near_orthogonality_constant as near_orthogonality_constant
from .implicit_bias import normalized_margins as normalized_margins
from .implicit_bias import relative_gap as relative_gap
from .implicit_bias import stable_rank as stable_rank
from .implicit_bias import sweep_two_layer as sweep_two_layer
from .implicit_bias import teacher_data as teacher_data
from .implicit_bias import train_two_layer as train_two_layer
from .implicit_bias import two_layer_forward as two_layer_forward
from .implicit_bias import two_layer_loss as two_layer_loss
from .losses import exponential_loss as exponential_loss
from .losses import logistic_loss as logistic_loss
from .losses import quadratic_loss as quadratic_loss
from .losses import residuals as residuals
from .losses import softmax_cross_entropy as softmax_cross_entropy
from .losses import squared_error as squared_error
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
from .operators import ModelLoss as ModelLoss
from .operators import model_loss as model_loss
from .predict import Prediction as Prediction
from .predict import check_against_sweep as check_against_sweep
from .predict import smoothest_interpolant as smoothest_interpolant
from .report import StabilityReport as StabilityReport
from .report import stability_report as stability_report
from .sgd import NonUniformity as NonUniformity
from .sgd import SGDSimulation as SGDSimulation
from .sgd import SGDThreshold as SGDThreshold
from .sgd import batch_noise_p as batch_noise_p
from .sgd import mean_square_rate as mean_square_rate
from .sgd import mean_square_trajectory as mean_square_trajectory
from .sgd import non_uniformity as non_uniformity
from .sgd import sgd_stability_threshold as sgd_stability_threshold
from .sgd import simulate_linear_sgd as simulate_linear_sgd
from .sgd import simulate_sgd as simulate_sgd
from .spectrum import TRACE_METHODS as TRACE_METHODS
from .spectrum import Eigenpairs as Eigenpairs
from .spectrum import SpectralDensity as SpectralDensity
from .spectrum import TraceEstimate as TraceEstimate
from .spectrum import hessian_eigenvalues as hessian_eigenvalues
from .spectrum import hessian_trace as hessian_trace
from .spectrum import spectral_density as spectral_density
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
