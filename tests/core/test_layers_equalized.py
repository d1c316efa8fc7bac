"""Equalized learning rate: stored N(0,1) weights scaled by 1/sqrt(fan_in) at run time (ProGAN sec. 4.1)."""

import math

import pytest
import torch
import torch.nn.functional as F

from gan3d.core.layers import ACTIVATIONS, Conv2dLayer, FullyConnectedLayer, bias_act


def test_fully_connected_runtime_scaling_and_lr_multiplier():
    torch.manual_seed(0)
    layer = FullyConnectedLayer(50, 7, lr_multiplier=0.01, bias_init=0.5)
    # Stored weights are N(0, 1) / lr_multiplier; the bias keeps its init value.
    assert 80 < layer.weight.std().item() < 120
    assert torch.all(layer.bias == 0.5)
    x = torch.randn(4, 50)
    expected = x @ (layer.weight * 0.01 / math.sqrt(50)).t() + layer.bias * 0.01
    torch.testing.assert_close(layer(x), expected)
    # Gradient w.r.t. the stored weight carries the run-time gain lr_multiplier / sqrt(fan_in).
    layer(x).sum().backward()
    torch.testing.assert_close(layer.weight.grad, (0.01 / math.sqrt(50)) * torch.ones(7, 4) @ x)


def test_fully_connected_lrelu_gain():
    layer = FullyConnectedLayer(3, 2, activation="lrelu")
    x = torch.randn(5, 3)
    pre = x @ (layer.weight / math.sqrt(3)).t()
    torch.testing.assert_close(layer(x), F.leaky_relu(pre, 0.2) * math.sqrt(2))


def test_conv_runtime_scaling_gain_and_clamp():
    torch.manual_seed(1)
    layer = Conv2dLayer(4, 6, 3, activation="lrelu", conv_clamp=0.5)
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(2, 4, 8, 8)
    pre = F.conv2d(x, layer.weight / math.sqrt(4 * 9), layer.bias, padding=1)
    expected = (F.leaky_relu(pre, 0.2) * math.sqrt(2)).clamp(-0.5, 0.5)
    torch.testing.assert_close(layer(x), expected)
    # gain scales the output and the clamp together
    expected_gain = (F.leaky_relu(pre, 0.2) * math.sqrt(2) * 0.5).clamp(-0.25, 0.25)
    torch.testing.assert_close(layer(x, gain=0.5), expected_gain)


def test_conv_resampling_shapes_and_frozen_weights():
    x = torch.randn(2, 3, 8, 8)
    assert Conv2dLayer(3, 5, 3, up=2)(x).shape == (2, 5, 16, 16)
    assert Conv2dLayer(3, 5, 3, down=2)(x).shape == (2, 5, 4, 4)
    assert Conv2dLayer(3, 5, 1, down=2, bias=False)(x).shape == (2, 5, 4, 4)
    frozen = Conv2dLayer(3, 5, 3, trainable=False)
    assert list(frozen.parameters()) == [] and frozen.weight.shape == (5, 3, 3, 3)


def test_activation_gains_and_errors():
    assert ACTIVATIONS["lrelu"].default_gain == pytest.approx(math.sqrt(2))
    assert ACTIVATIONS["relu"].default_gain == pytest.approx(math.sqrt(2))
    assert ACTIVATIONS["linear"].default_gain == 1.0
    x = torch.tensor([[-1.0, 2.0]])
    torch.testing.assert_close(bias_act(x, torch.tensor([0.5, -1.0]), activation="lrelu"),
                               torch.tensor([[-0.1 * math.sqrt(2), 1.0 * math.sqrt(2)]]))
    with pytest.raises(ValueError, match="unknown activation 'gelu2'"):
        FullyConnectedLayer(2, 2, activation="gelu2")
