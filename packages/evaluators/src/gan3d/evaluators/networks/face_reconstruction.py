"""Deep3DFaceRecon_pytorch's coefficient regressor (``models/networks.py``: ``ReconNetWrapper``).

A torchvision-layout ResNet-50 (``backbone.conv1``, ``backbone.layer1.0.conv1``, ...) without its
classifier, followed by seven 1x1 convolutions (``final_layers.0`` .. ``final_layers.6``) that give
the 257 coefficients of the BFM 3DMM: identity 80, expression 64, texture 80, rotation angles 3
(radians, x/y/z), lighting 27 (SH), translation 3. The published checkpoint ``epoch_20.pth`` (a dict
whose ``net_recon`` entry is this state dict) loads with ``load_state_dict``.

Input: a 224x224 RGB face crop in ``[0, 1]`` (``facerecon_model.py`` feeds ``imgs`` in ``[0, 1]``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .weights import load_weights

__all__ = ["ReconNet", "load_recon_net", "coefficient_slices", "RECON_WEIGHTS_NAME", "RECON_WEIGHTS_SOURCE",
           "face_angles_to_view"]

RECON_WEIGHTS_NAME = "epoch_20.pth"
RECON_WEIGHTS_SOURCE = "Deep3DFaceRecon_pytorch pretrained model (checkpoints/<name>/epoch_20.pth)"

#: Widths of the 257 coefficients in the order of ``final_layers`` (Deep3DFaceRecon ``split_coeff``).
COEFFICIENT_WIDTHS = {"id": 80, "exp": 64, "tex": 80, "angle": 3, "gamma": 27, "trans_xy": 2, "trans_z": 1}


def coefficient_slices() -> dict[str, slice]:
    """Where each coefficient group sits in the 257-vector."""
    out, start = {}, 0
    for name, width in COEFFICIENT_WIDTHS.items():
        out[name] = slice(start, start + width)
        start += width
    return out


class Bottleneck(nn.Module):
    """torchvision's ResNet-50 bottleneck (stride on the 3x3, "ResNet v1.5")."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResNet50Backbone(nn.Module):
    """ResNet-50 up to the global average pool: ``[B, 3, H, W]`` -> ``[B, 2048, 1, 1]``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes = 64
        for index, (planes, blocks, stride) in enumerate(((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)), 1):
            downsample = None
            if stride != 1 or inplanes != planes * 4:
                downsample = nn.Sequential(nn.Conv2d(inplanes, planes * 4, 1, stride=stride, bias=False),
                                           nn.BatchNorm2d(planes * 4))
            layer = [Bottleneck(inplanes, planes, stride, downsample)]
            inplanes = planes * 4
            layer += [Bottleneck(inplanes, planes) for _ in range(1, blocks)]
            setattr(self, f"layer{index}", nn.Sequential(*layer))
        self.avgpool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x)


class ReconNet(nn.Module):
    """``faces [B, 3, 224, 224]`` in ``[0, 1]`` -> ``coefficients [B, 257]``."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = ResNet50Backbone()
        self.final_layers = nn.ModuleList(nn.Conv2d(2048, w, 1, bias=True) for w in COEFFICIENT_WIDTHS.values())

    def forward(self, faces: Tensor) -> Tensor:
        x = self.backbone(faces)
        return torch.cat([layer(x) for layer in self.final_layers], dim=1).flatten(1)


def face_angles_to_view(angles: Tensor) -> Tensor:
    """Head rotation ``[B, 3]`` (x, y, z radians, Deep3DFaceRecon's ``R = Rz Ry Rx``) -> ``[B, 2]``
    (yaw, polar) of the camera seen from the face, in gan3d's camera convention.

    The face is rendered by a camera on the +z axis; in the face's frame that camera sits along
    ``R^T e_z = (-sin y, sin x cos y, cos x cos y)``. gan3d puts a camera at
    ``(-sin v cos h, cos v, sin v sin h)`` (:mod:`gan3d.core.cameras`), hence
    ``v = arccos(sin x cos y)`` and ``h = atan2(cos x cos y, sin y)``; roll is dropped.
    """
    x, y = angles[:, 0], angles[:, 1]
    direction_y = torch.sin(x) * torch.cos(y)
    polar = torch.arccos(direction_y.clamp(-1.0, 1.0))
    yaw = torch.atan2(torch.cos(x) * torch.cos(y), torch.sin(y))
    return torch.stack([yaw, polar], dim=-1)


def load_recon_net(path: str, *, option: str = "weights") -> ReconNet:
    """A :class:`ReconNet` filled from Deep3DFaceRecon's ``epoch_20.pth`` at ``path``, in eval mode."""
    net = ReconNet()
    load_weights(net, path, what="Deep3DFaceRecon ResNet-50", option=option, expected_name=RECON_WEIGHTS_NAME,
                 source=RECON_WEIGHTS_SOURCE, nested_keys=("net_recon", "state_dict"))
    return net.eval().requires_grad_(False)
