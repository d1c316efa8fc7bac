"""Depth and pose estimators for DE and PE (registry family ``estimator``).

An estimator looks at generated images only and says what depth map and camera angles it sees:

    estimator.predict(images [B, 3, H, W] in [-1, 1]) -> EstimatorOutput(depth, depth_mask, angles)

with ``depth [B, 1, h, w]`` (any scale: DE standardizes it per image), ``depth_mask [B, 1, h, w]``
(where the depth is meaningful, or ``None`` for everywhere) and ``angles [B, 2]`` (yaw, polar in
gan3d's convention, :mod:`gan3d.core.cameras`). ``provides_depth`` / ``provides_pose`` say which it
gives.

* ``trained``: :class:`TrainedEstimator`, the toolkit's own :class:`~..networks.depth_pose_net.DepthPoseNet`
  trained with :func:`train_depth_pose_net` on any posed data set with depth (the embedded synthetic
  set has exact ground truth), saved and loaded with :func:`save_depth_pose_net` /
  :func:`load_depth_pose_net`.
* ``face_reconstruction``: :class:`FaceReconstructionEstimator`, Deep3DFaceRecon_pytorch's ResNet-50
  from a user-given ``epoch_20.pth``; pose only (its depth needs the BFM basis and a mesh rasterizer,
  which gan3d does not carry).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan3d.core.checkpoint import describe_load_failure, torch_load_quietly

from ..networks.depth_pose_net import DepthPoseNet
from ..networks.face_reconstruction import coefficient_slices, face_angles_to_view, load_recon_net
from ..networks.weights import WeightsError, load_weights
from .dataset_items import item_fields
from .feature_statistics import as_model_images
from .identity import crop_faces
from .sampling import view_angles

__all__ = [
    "EstimatorOutput",
    "Estimator",
    "TrainedEstimator",
    "FaceReconstructionEstimator",
    "train_depth_pose_net",
    "save_depth_pose_net",
    "load_depth_pose_net",
    "standardize_depth",
]

logger = logging.getLogger(__name__)


@dataclass
class EstimatorOutput:
    """What an estimator sees in a batch of images (see the module doc for shapes)."""

    depth: Tensor | None = None
    depth_mask: Tensor | None = None
    angles: Tensor | None = None


class Estimator(nn.Module):
    """Base of the ``estimator`` family."""

    provides_depth: bool = False
    provides_pose: bool = False

    def predict(self, images: Tensor) -> EstimatorOutput:
        raise NotImplementedError


def standardize_depth(depth: Tensor, mask: Tensor | None = None) -> Tensor:
    """Depth ``[B, 1, h, w]`` shifted and scaled to zero mean and unit std over ``mask`` per image
    (Carver's DE normalization); pixels outside the mask are set to 0."""
    if mask is None:
        mask = torch.ones_like(depth, dtype=torch.bool)
    mask = mask.bool() & torch.isfinite(depth)
    m = mask.float()
    count = m.sum(dim=(1, 2, 3), keepdim=True).clamp_min(1)
    d = torch.where(mask, depth, torch.zeros_like(depth))
    mean = d.sum(dim=(1, 2, 3), keepdim=True) / count
    var = (((d - mean) * m) ** 2).sum(dim=(1, 2, 3), keepdim=True) / count
    return torch.where(mask, (d - mean) / var.sqrt().clamp_min(1e-8), torch.zeros_like(d))


# ----------------------------------------------------------------------------- trained estimator
TRAINED_WEIGHTS_NAME = "depth_pose_net.pth"
TRAINED_WEIGHTS_SOURCE = "written by gan3d.evaluators.metrics.estimators.train_depth_pose_net + save_depth_pose_net"


def save_depth_pose_net(net: DepthPoseNet, path: str | Path) -> Path:
    """Write ``{"config": {...}, "state_dict": {...}}`` to ``path`` (readable with weights_only=True)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": net.config, "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()}},
               path)
    return path


def load_depth_pose_net(path: str | Path, *, option: str = "estimator_options.weights") -> DepthPoseNet:
    """The :class:`DepthPoseNet` saved at ``path`` by :func:`save_depth_pose_net`, in eval mode."""
    path = str(path or "")
    config: dict = {}
    if path and Path(path).is_file():
        try:
            obj = torch_load_quietly(path)
        except Exception as exc:
            raise WeightsError(f"trained depth/pose estimator: '{path}' {describe_load_failure(path, exc)}") from None
        config = obj.get("config", {}) if isinstance(obj, dict) else {}
    net = DepthPoseNet(**{k: int(v) for k, v in config.items() if k in ("resolution", "channels")})
    load_weights(net, path, what="trained depth/pose estimator", option=option, expected_name=TRAINED_WEIGHTS_NAME,
                 source=TRAINED_WEIGHTS_SOURCE)
    return net.eval().requires_grad_(False)


def _posed_batch(dataset, indices: list[int]) -> tuple[Tensor, Tensor, Tensor]:
    images, labels, depths = [], [], []
    for i in indices:
        image, label, depth = item_fields(dataset[i])
        if label is None or depth is None:
            raise ValueError(
                "training the depth/pose estimator needs data set items with a camera label and a depth map "
                "((image, label, depth) or .image/.label/.depth); gan3d's synthetic data set read with "
                "load_depth=True provides them"
            )
        images.append(image)
        labels.append(label.float())
        depth = depth.float()
        depths.append(depth if depth.ndim == 3 else depth[None])
    return as_model_images(torch.stack(images)), torch.stack(labels), torch.stack(depths)


def depth_pose_loss(net: DepthPoseNet, images: Tensor, labels: Tensor, depths: Tensor) -> Tensor:
    """Masked MSE of the standardized depth plus MSE of (yaw, polar), for one batch."""
    pred_depth, pred_angles = net(images)
    target = F.interpolate(depths, size=pred_depth.shape[-2:], mode="nearest")
    mask = torch.isfinite(target) & (target > 0)
    target = standardize_depth(target, mask)
    m = mask.float()
    depth_loss = (((pred_depth - target) ** 2) * m).sum() / m.sum().clamp_min(1)
    angles = view_angles(labels[:, :16].reshape(-1, 4, 4))
    return depth_loss + ((pred_angles - angles) ** 2).mean()


def train_depth_pose_net(
    dataset,
    *,
    steps: int = 2000,
    batch_size: int = 32,
    lr: float = 2e-3,
    resolution: int = 64,
    channels: int = 32,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> DepthPoseNet:
    """Train a :class:`DepthPoseNet` on a posed data set with depth.

    Items are ``(image [3, H, W] in [-1, 1], label [25], depth [1, H, W], ...)``; the label's cam2world
    gives the (yaw, polar) target (:func:`~.sampling.view_angles`), the depth (distance along rays,
    ``> 0`` where valid) is standardized per image. Adam, batches drawn with ``seed``.

    Example:
        >>> net = train_depth_pose_net(synthetic_set, steps=500)        # doctest: +SKIP
        >>> save_depth_pose_net(net, "work/depth_pose_net.pth")         # doctest: +SKIP
    """
    torch.manual_seed(seed)
    net = DepthPoseNet(resolution=resolution, channels=channels).to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    for step in range(steps):
        indices = torch.randint(len(dataset), (min(batch_size, len(dataset)),), generator=gen).tolist()
        images, labels, depths = (t.to(device) for t in _posed_batch(dataset, indices))
        loss = depth_pose_loss(net, images, labels, depths)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 200 == 0 or step == steps - 1:
            logger.info("depth/pose estimator step %d: loss %.4f", step, float(loss.detach()))
    return net.eval()


class TrainedEstimator(Estimator):
    """The ``trained`` estimator: a :class:`DepthPoseNet` loaded from ``weights``.

    Args:
        weights: a file written by :func:`save_depth_pose_net`.
    """

    provides_depth = True
    provides_pose = True

    def __init__(self, *, weights: str = "") -> None:
        super().__init__()
        self.net = load_depth_pose_net(weights, option="estimator_options.weights")

    def predict(self, images: Tensor) -> EstimatorOutput:
        self.net.to(images.device)
        with torch.no_grad():
            depth, angles = self.net(images)
        return EstimatorOutput(depth=depth, depth_mask=None, angles=angles)


class FaceReconstructionEstimator(Estimator):
    """The ``face_reconstruction`` estimator: head pose from Deep3DFaceRecon's coefficients.

    The face crop is a fixed central crop (``crop_fraction``, ``crop_offset_y``) resized to 224 with
    antialiased bilinear filtering (Deep3DFaceRecon aligns with detected landmarks; gan3d carries no
    detector). The rotation angles (coefficients 224-226) become the camera's (yaw, polar) with
    :func:`~..networks.face_reconstruction.face_angles_to_view`. No depth (see the module doc).

    Args:
        weights: path of Deep3DFaceRecon's ``epoch_20.pth``.
        crop_fraction, crop_offset_y: the fixed face crop.
    """

    provides_depth = False
    provides_pose = True

    def __init__(self, *, weights: str = "", crop_fraction: float = 1.0, crop_offset_y: float = 0.0) -> None:
        super().__init__()
        self.net = load_recon_net(weights, option="estimator_options.weights")
        self.crop_fraction = crop_fraction
        self.crop_offset_y = crop_offset_y

    def predict(self, images: Tensor) -> EstimatorOutput:
        self.net.to(images.device)
        faces = crop_faces(images, size=224, crop_fraction=self.crop_fraction, crop_offset_y=self.crop_offset_y)
        with torch.no_grad():
            coefficients = self.net((faces + 1) / 2)
        angles = face_angles_to_view(coefficients[:, coefficient_slices()["angle"]])
        return EstimatorOutput(angles=angles)
