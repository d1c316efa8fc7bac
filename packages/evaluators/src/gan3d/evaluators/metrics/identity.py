"""ID: identity consistency, the ArcFace cosine similarity of one latent rendered from two cameras.

Protocol (Carver ``metrics/face_identity.py``, after EG3D's paper): for each latent, two cameras are
drawn independently (Carver: two data-set poses); both renders share one ``ws``; faces go through an
ArcFace IResNet and the cosine similarity of the two L2-normalized embeddings is averaged. Higher is
better.

Face preprocessing: an optional fixed central crop (``crop_fraction`` of the side, shifted down by
``crop_offset_y`` of the side) and an antialiased bilinear resize to 112x112 (Carver resizes with
nearest neighbour); or, with ``align_face`` (Carver's ``--align_face true``), each face warped to
ArcFace's five-point template by its landmarks (:mod:`.face_alignment`, MTCNN's points from
``landmark_weights``), a batch with a face-less image falling back to the crop as in Carver.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan3d.core.data.base import GanDataset
from gan3d.core.interfaces import Evaluator
from gan3d.core.types import Cameras

from ..networks.iresnet import load_iresnet
from ..networks.mtcnn import load_mtcnn
from .dataset_items import item_fields
from .distributed import BatchPlan
from .face_alignment import align_faces
from .sampling import batch_generator, evaluation_mode, render_latents, sample_latents

__all__ = ["IdentityEvaluator", "crop_faces"]


def crop_faces(images: Tensor, *, size: int = 112, crop_fraction: float = 1.0, crop_offset_y: float = 0.0) -> Tensor:
    """``[B, 3, H, W]`` -> ``[B, 3, size, size]``: central square crop then antialiased bilinear resize."""
    if not 0 < crop_fraction <= 1:
        raise ValueError(f"crop_fraction must be in (0, 1], got {crop_fraction}")
    _, _, h, w = images.shape
    side = max(1, round(min(h, w) * crop_fraction))
    top = min(max(0, (h - side) // 2 + round(crop_offset_y * h)), h - side)
    left = (w - side) // 2
    crop = images[:, :, top:top + side, left:left + side]
    return F.interpolate(crop.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True)


class IdentityEvaluator(Evaluator):
    """``evaluate(G)`` -> ``{"id": mean cosine similarity}``; under ``torch.distributed`` the latents are
    shared among the ranks and every rank returns the one-process value.

    Args:
        arcface_weights: path of arcface_torch's ``backbone.pth`` (IResNet-100 or -50).
        arch: ``'r100'`` (Carver's choice), ``'r50'``, ``'r34'`` or ``'r18'``.
        num_samples: latents (Carver: 1024).
        batch_size: latents rendered at a time.
        pose_source: ``'generator'`` (both cameras from ``G.pose_sampler``, seeded) or ``'dataset'``
            (both from the data set's camera labels, drawn with the seed, as Carver).
        crop_fraction, crop_offset_y: the fixed face crop (1.0, 0.0: the whole image).
        face_size: input side of the network (112 for the published weights).
        truncation_psi: truncation of the latents.
        align_face: align each face by five landmarks to ArcFace's template (Carver ``--align_face``).
        landmark_weights: the folder of MTCNN's ``pnet.pt``, ``rnet.pt``, ``onet.pt`` (facenet-pytorch),
            needed by ``align_face``.
    """

    name = "identity"

    def __init__(self, *, arcface_weights: str = "", arch: str = "r100", num_samples: int = 1024,
                 batch_size: int = 8, pose_source: str = "generator", crop_fraction: float = 1.0,
                 crop_offset_y: float = 0.0, face_size: int = 112, truncation_psi: float = 1.0,
                 align_face: bool = False, landmark_weights: str = "") -> None:
        if pose_source not in ("generator", "dataset"):
            raise ValueError(f"identity option 'pose_source' must be 'generator' or 'dataset', got {pose_source!r}")
        self.arcface_weights = arcface_weights
        self.arch = arch
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.pose_source = pose_source
        self.crop_fraction = crop_fraction
        self.crop_offset_y = crop_offset_y
        self.face_size = face_size
        self.truncation_psi = truncation_psi
        self.align_face = align_face
        self.landmark_weights = landmark_weights

    def _cameras(self, generator: nn.Module, n: int, gen: torch.Generator, device, labels: Tensor | None) -> Cameras:
        if labels is None:
            return generator.pose_sampler(n, device=device, generator=gen)
        index = torch.randint(len(labels), (n,), generator=gen, device=device)
        return Cameras.from_label(labels.to(device)[index])

    def evaluate(self, generator: nn.Module, *, dataset=None, device: torch.device | str = "cpu",
                 seed: int = 0) -> dict[str, float]:
        # the landmark detector first: its missing weights are the cheaper thing to report
        detector = load_mtcnn(self.landmark_weights, option="identity.landmark_weights").to(device) \
            if self.align_face else None
        net = load_iresnet(self.arcface_weights, arch=self.arch, option="identity.arcface_weights",
                           input_size=self.face_size).to(device)
        labels = None
        if self.pose_source == "dataset":
            if dataset is None:
                raise ValueError("identity with pose_source='dataset' needs dataset=...")
            labels = dataset.labels if isinstance(dataset, GanDataset) else None  # else read item by item
            if callable(labels):
                labels = labels()
            if not isinstance(labels, Tensor):
                labels = torch.stack([item_fields(dataset[i])[1].float() for i in range(len(dataset))])
            labels = labels.float()
        plan = BatchPlan(self.num_samples, self.batch_size)  # this rank's batches under torch.distributed
        scores = []
        with evaluation_mode(generator):
            for index, n in plan:
                gen = batch_generator(seed, index, device)
                z = sample_latents(generator, n, gen, device)
                cams_a = self._cameras(generator, n, gen, device, labels)
                cams_b = self._cameras(generator, n, gen, device, labels)
                embeddings = []
                for cams in (cams_a, cams_b):
                    out = render_latents(generator, z, cams, truncation_psi=self.truncation_psi, gen=gen,
                                         condition=cams_a)
                    faces = align_faces(out.image, detector, self.face_size) if detector is not None else None
                    if faces is None:
                        faces = crop_faces(out.image, size=self.face_size, crop_fraction=self.crop_fraction,
                                           crop_offset_y=self.crop_offset_y)
                    embeddings.append(F.normalize(net(faces), dim=1))
                scores.append((embeddings[0] * embeddings[1]).sum(1).cpu())
        return {"id": float(np.mean(plan.gather(scores).numpy()))}
