"""ArcFace IResNet (insightface ``recognition/arcface_torch/backbones/iresnet.py``).

Module names match arcface_torch, so its published ``backbone.pth`` files (e.g.
``ms1mv3_arcface_r100_fp16/backbone.pth``, ``glint360k_cosface_r100_fp16_0.1/backbone.pth``) load with
``load_state_dict``. Structure (Deng et al., ArcFace, and the "improved residual" block of
arcface_torch): a 3x3 stem with PReLU; four stages of pre-activation blocks
``BN -> conv3x3 -> BN -> PReLU -> conv3x3(stride) -> BN`` (+ identity or 1x1-conv/BN shortcut), each
stage halving the resolution; then BN, flatten of the 7x7x512 map, linear to 512, BatchNorm1d.

The input is a 112x112 RGB face in ``[-1, 1]`` (arcface_torch ``inference.py``: ``x / 255 - 0.5) / 0.5``).
"""

from __future__ import annotations

from torch import Tensor, nn

from .weights import load_weights

__all__ = ["IResNet", "IRESNET_LAYERS", "load_iresnet", "ARCFACE_WEIGHTS_NAME", "ARCFACE_WEIGHTS_SOURCE"]

#: Blocks per stage (arcface_torch ``iresnet18`` / ``34`` / ``50`` / ``100``).
IRESNET_LAYERS = {"r18": (2, 2, 2, 2), "r34": (3, 4, 6, 3), "r50": (3, 4, 14, 3), "r100": (3, 13, 30, 3)}
ARCFACE_WEIGHTS_NAME = "backbone.pth"
ARCFACE_WEIGHTS_SOURCE = "insightface arcface_torch model zoo, e.g. ms1mv3_arcface_r100_fp16/backbone.pth"


class IBasicBlock(nn.Module):
    """The improved residual block; the stride sits on the second convolution."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes, eps=1e-05)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-05)
        self.prelu = nn.PReLU(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes, eps=1e-05)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        identity = x if self.downsample is None else self.downsample(x)
        return out + identity


class IResNet(nn.Module):
    """ArcFace IResNet: ``faces [B, 3, 112, 112]`` in ``[-1, 1]`` -> ``embeddings [B, 512]`` (not normalized).

    Args:
        arch: ``'r18'``, ``'r34'``, ``'r50'`` or ``'r100'``.
        num_features: embedding size (512 in every published model).
        input_size: face side in pixels; the flattened map is ``(input_size / 16)^2 * 512`` wide
            (7x7 for 112). Tests use smaller faces; the published weights need 112.
    """

    def __init__(self, arch: str = "r100", num_features: int = 512, input_size: int = 112) -> None:
        super().__init__()
        if arch not in IRESNET_LAYERS:
            raise ValueError(f"IResNet arch must be one of {sorted(IRESNET_LAYERS)}, got {arch!r}")
        if input_size % 16:
            raise ValueError(f"input_size must be a multiple of 16, got {input_size}")
        self.input_size = input_size
        self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-05)
        self.prelu = nn.PReLU(64)
        inplanes = 64
        for index, (planes, blocks) in enumerate(zip((64, 128, 256, 512), IRESNET_LAYERS[arch]), start=1):
            downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride=2, bias=False), nn.BatchNorm2d(planes, eps=1e-05)
            )
            layer = [IBasicBlock(inplanes, planes, 2, downsample)]
            layer += [IBasicBlock(planes, planes) for _ in range(1, blocks)]
            setattr(self, f"layer{index}", nn.Sequential(*layer))
            inplanes = planes
        self.bn2 = nn.BatchNorm2d(512, eps=1e-05)
        self.dropout = nn.Dropout(p=0.0)
        side = input_size // 16
        self.fc = nn.Linear(512 * side * side, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=1e-05)

    def forward(self, faces: Tensor) -> Tensor:
        x = self.prelu(self.bn1(self.conv1(faces)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(self.bn2(x).flatten(1))
        return self.features(self.fc(x))


def load_iresnet(path: str, *, arch: str = "r100", option: str = "arcface_weights", input_size: int = 112) -> IResNet:
    """An :class:`IResNet` filled from arcface_torch's ``backbone.pth`` at ``path``, in eval mode."""
    net = IResNet(arch, input_size=input_size)
    load_weights(net, path, what=f"ArcFace IResNet-{arch[1:]}", option=option, expected_name=ARCFACE_WEIGHTS_NAME,
                 source=ARCFACE_WEIGHTS_SOURCE)
    return net.eval().requires_grad_(False)
