"""Faces aligned by five landmarks to ArcFace's 112x112 template, as the seed's identity metric does.

Carver (``metrics/face_identity.py``, ``--align_face true``) finds landmarks with dlib (its HOG
frontal-face detector and the 68-point ``shape_predictor_68_face_landmarks.dat``), reduces them to five
points (the nose tip, the two eye centres as means of the eye corners, the two mouth corners), fits a
similarity transform to ArcFace's five-point template (``skimage.transform.SimilarityTransform``,
``FaceAligner.estimate_norm``) and warps the image to 112x112 (``cv2.warpAffine``, border 0). When an
image of a batch shows no face it returns the whole batch unaligned.

gan3d does the same template fit and warp, and the same whole-batch fallback, with the five points
from MTCNN (:mod:`gan3d.evaluators.networks.mtcnn`), the detector EG3D's own FFHQ preprocessing aligns
with: dlib is a compiled library outside our dependencies and its face detector's weights are built
into it, while MTCNN's weights load from a path like the other networks'. The five points mean the
same places; dlib's eye centres are means of two corners, MTCNN regresses them directly.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np
import torch
from skimage.transform import SimilarityTransform
from torch import Tensor

__all__ = ["ARCFACE_TEMPLATE", "align_faces", "align_face", "alignment_matrix"]

logger = logging.getLogger(__name__)

#: ArcFace's five landmarks in its 112x112 input (Carver ``FaceAligner.arcface_src_pts``, insightface):
#: left eye, right eye, nose tip, left mouth corner, right mouth corner (left/right in the image).
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float32)


def alignment_matrix(points: np.ndarray) -> np.ndarray:
    """The ``[2, 3]`` similarity (rotation, uniform scale, translation) taking ``points [5, 2]`` closest
    to :data:`ARCFACE_TEMPLATE` in least squares (Umeyama, as ``SimilarityTransform.estimate``)."""
    src, dst = np.asarray(points, np.float64), ARCFACE_TEMPLATE.astype(np.float64)
    if hasattr(SimilarityTransform, "from_estimate"):  # scikit-image >= 0.26
        transform = SimilarityTransform.from_estimate(src, dst)
        ok = bool(transform)
    else:
        transform = SimilarityTransform()
        ok = transform.estimate(src, dst)
    if not ok or not np.isfinite(transform.params).all():
        raise ValueError(f"landmarks {np.asarray(points).tolist()} are degenerate; no similarity fits them")
    return transform.params[:2].astype(np.float32)


def align_face(image: np.ndarray, points: np.ndarray, size: int = 112) -> np.ndarray:
    """``image [H, W, 3]`` warped so that its ``points [5, 2]`` land on the template: ``[size, size, 3]``
    (the template is for 112; other sizes scale it)."""
    matrix = alignment_matrix(points) * np.float32(size / 112.0)
    return cv2.warpAffine(image, matrix, (size, size), borderValue=0.0)


def align_faces(images: Tensor, detector, size: int = 112) -> Tensor | None:
    """``images [B, 3, H, W]`` in ``[-1, 1]`` aligned to ``[B, 3, size, size]`` by each image's most
    probable face, or ``None`` when some image shows none (Carver then keeps the batch unaligned).

    ``detector.detect(image [H, W, 3] uint8 RGB) -> (boxes [N, 5], points [N, 5, 2])``.
    """
    pixels = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    pixels = pixels.permute(0, 2, 3, 1).cpu().numpy()
    aligned = []
    for image in pixels:
        _, points = detector.detect(image)
        if len(points) == 0:
            logger.debug("no face found in an image; the batch stays unaligned (Carver's rule)")
            return None
        aligned.append(align_face(image, points[0], size))
    out = torch.from_numpy(np.stack(aligned)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    return out.to(images.device)
