"""StyleGAN2 building blocks in plain PyTorch (equalized-lr layers, filtered resampling, modulated
convolution, mapping, synthesis and discriminator networks), shared by the methods that use them.

Parameter names and shapes follow the official StyleGAN2-ADA / EG3D code
(training/networks_stylegan2.py), so parameter counts match the official networks.
"""

from .bias_act import ACTIVATIONS, Activation, activation_gain, bias_act
from .conv2d_resample import conv2d_resample
from .discriminator import DiscriminatorBlock, DiscriminatorEpilogue, MinibatchStdLayer, StyleGAN2Discriminator
from .equalized import Conv2dLayer, FullyConnectedLayer
from .filtered_resampling import downsample2d, filter2d, setup_filter, upfirdn2d, upsample2d
from .mapping import MappingNetwork, normalize_2nd_moment
from .modulated_conv import is_channels_last, modulated_conv2d
from .synthesis import NOISE_MODES, SynthesisBlock, SynthesisLayer, SynthesisNetwork, ToRGBLayer
from .winograd import conv3x3_winograd, set_winograd_enabled, winograd_applies, winograd_enabled

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "activation_gain",
    "bias_act",
    "conv2d_resample",
    "setup_filter",
    "upfirdn2d",
    "upsample2d",
    "downsample2d",
    "filter2d",
    "FullyConnectedLayer",
    "Conv2dLayer",
    "modulated_conv2d",
    "is_channels_last",
    "normalize_2nd_moment",
    "MappingNetwork",
    "NOISE_MODES",
    "SynthesisLayer",
    "ToRGBLayer",
    "SynthesisBlock",
    "SynthesisNetwork",
    "DiscriminatorBlock",
    "MinibatchStdLayer",
    "DiscriminatorEpilogue",
    "StyleGAN2Discriminator",
    "conv3x3_winograd",
    "winograd_applies",
    "winograd_enabled",
    "set_winograd_enabled",
]
