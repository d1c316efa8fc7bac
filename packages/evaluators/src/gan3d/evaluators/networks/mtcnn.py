"""MTCNN (Zhang et al. 2016): a face detector that also gives five landmarks, for aligning faces before ArcFace.

The three cascaded networks with the layer names of facenet-pytorch (``models/mtcnn.py``: ``PNet``,
``RNet``, ``ONet``), so its published weight files load as they are: ``pnet.pt``, ``rnet.pt`` and
``onet.pt`` from facenet-pytorch's ``data/`` folder (weights converted from the original MTCNN).
EG3D's FFHQ preprocessing finds its landmarks with this detector (``dataset_preprocessing/ffhq/
batch_mtcnn.py``). The cascade: an image pyramid scanned by P-Net (12x12 windows, stride 2),
candidates refined by R-Net on 24x24 crops and by O-Net on 48x48 crops, which also regresses the five
points (eye centres, nose tip, mouth corners); non-maximum suppression after each stage. Defaults are
facenet-pytorch's ``MTCNN``: ``min_face_size=20``, ``thresholds=[0.6, 0.7, 0.7]``, ``factor=0.709``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .weights import WeightsError, load_weights

__all__ = ["PNet", "RNet", "ONet", "MTCNN", "load_mtcnn", "MTCNN_WEIGHTS_SOURCE"]

MTCNN_WEIGHTS_SOURCE = "facenet-pytorch's facenet_pytorch/data/{pnet,rnet,onet}.pt (timesler/facenet-pytorch)"


class PNet(nn.Module):
    """Proposal net: fully convolutional; ``[B, 3, H, W]`` -> box offsets ``[B, 4, h, w]``, face
    probability ``[B, 2, h, w]`` (softmax over no-face/face)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), F.softmax(self.conv4_1(x), dim=1)


class RNet(nn.Module):
    """Refinement net on 24x24 crops: offsets ``[N, 4]``, probabilities ``[N, 2]``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        # the converted weights flatten in (width, height, channel) order (facenet-pytorch: permute(0, 3, 2, 1))
        x = self.prelu4(self.dense4(x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)))
        return self.dense5_2(x), F.softmax(self.dense5_1(x), dim=1)


class ONet(nn.Module):
    """Output net on 48x48 crops: offsets ``[N, 4]``, landmarks ``[N, 10]`` (x0..x4, y0..y4 relative to
    the box), probabilities ``[N, 2]``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)))
        return self.dense6_2(x), self.dense6_3(x), F.softmax(self.dense6_1(x), dim=1)


def _nms(boxes: Tensor, scores: Tensor, threshold: float, mode: str = "union") -> Tensor:
    """Indices kept by greedy non-maximum suppression; overlap = intersection over union (or over the
    smaller box, ``mode='min'``), areas with the +1 pixel convention of the original MTCNN."""
    x1, y1, x2, y2 = boxes.unbind(1)
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = scores.argsort(descending=True)
    keep = []
    while order.numel():
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        w = (torch.minimum(x2[i], x2[rest]) - torch.maximum(x1[i], x1[rest]) + 1).clamp(min=0)
        h = (torch.minimum(y2[i], y2[rest]) - torch.maximum(y1[i], y1[rest]) + 1).clamp(min=0)
        inter = w * h
        denom = torch.minimum(area[i], area[rest]) if mode == "min" else area[i] + area[rest] - inter
        order = rest[inter / denom <= threshold]
    return torch.tensor(keep, dtype=torch.long)


def _regress(boxes: Tensor, offsets: Tensor) -> Tensor:
    """Boxes moved by the nets' offsets (fractions of the box size)."""
    size = torch.stack([boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1] * 2, 1)
    return boxes[:, :4] + offsets * size


def _square(boxes: Tensor) -> Tensor:
    """Boxes made square about their centres (side: the longer side)."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(w, h)
    x1 = boxes[:, 0] + w * 0.5 - side * 0.5
    y1 = boxes[:, 1] + h * 0.5 - side * 0.5
    return torch.stack([x1, y1, x1 + side, y1 + side], 1)


def _crops(image: Tensor, boxes: Tensor, size: int) -> Tensor:
    """``[N, 3, size, size]`` crops of ``image [3, H, W]`` at integer ``boxes`` (zero outside the image),
    resized with area averaging (facenet-pytorch ``imresample``)."""
    _, height, width = image.shape
    out = []
    for x1, y1, x2, y2 in boxes.round().long().tolist():
        crop = torch.zeros(3, max(y2 - y1 + 1, 1), max(x2 - x1 + 1, 1), dtype=image.dtype)
        sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x2, width - 1), min(y2, height - 1)
        if sx2 >= sx1 and sy2 >= sy1:
            crop[:, sy1 - y1:sy2 - y1 + 1, sx1 - x1:sx2 - x1 + 1] = image[:, sy1:sy2 + 1, sx1:sx2 + 1]
        out.append(F.interpolate(crop[None], size=(size, size), mode="area")[0])
    return torch.stack(out)


class MTCNN(nn.Module):
    """The cascade: :meth:`detect` finds faces and their five landmarks in one image.

    Args:
        min_face_size: the smallest face searched (pixels).
        thresholds: face-probability thresholds of P-, R- and O-Net.
        factor: the image pyramid's scale step.
    """

    def __init__(self, min_face_size: int = 20, thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
                 factor: float = 0.709) -> None:
        super().__init__()
        self.pnet, self.rnet, self.onet = PNet(), RNet(), ONet()
        self.min_face_size, self.thresholds, self.factor = min_face_size, thresholds, factor

    @torch.no_grad()
    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Faces of ``image [H, W, 3]`` uint8 RGB: ``boxes [N, 5]`` (x1, y1, x2, y2, probability) and
        ``points [N, 5, 2]`` (left eye, right eye, nose, left and right mouth corner, in the image's
        left/right), most probable first; ``N = 0`` when there is none."""
        device = next(self.parameters()).device
        x = (torch.as_tensor(np.ascontiguousarray(image), device=device).permute(2, 0, 1).float() - 127.5) * 0.0078125
        _, height, width = x.shape
        empty = np.zeros((0, 5), np.float32), np.zeros((0, 5, 2), np.float32)
        # Stage 1: P-Net over a pyramid whose first scale maps min_face_size to the 12-px window.
        scale = 12.0 / self.min_face_size
        side = min(height, width) * scale
        candidates = []
        while side >= 12:
            h, w = int(height * scale + 1), int(width * scale + 1)
            offsets, probs = self.pnet(F.interpolate(x[None], size=(h, w), mode="area"))
            ys, xs = torch.nonzero(probs[0, 1] >= self.thresholds[0], as_tuple=True)
            if ys.numel():
                grid = torch.stack([xs, ys], 1).float()
                corner1 = torch.floor((2 * grid + 1) / scale)  # stride 2, 12-px cells, 1-based as the original
                corner2 = torch.floor((2 * grid + 12) / scale)
                boxes = torch.cat([corner1, corner2, probs[0, 1, ys, xs, None], offsets[0, :, ys, xs].T], 1)
                candidates.append(boxes[_nms(boxes[:, :4], boxes[:, 4], 0.5)])
            scale *= self.factor
            side *= self.factor
        if not candidates:
            return empty
        boxes = torch.cat(candidates)
        boxes = boxes[_nms(boxes[:, :4], boxes[:, 4], 0.7)]
        boxes = torch.cat([_square(_regress(boxes[:, :4], boxes[:, 5:9])), boxes[:, 4:5]], 1)
        # Stage 2: R-Net on 24x24 crops.
        offsets, probs = self.rnet(_crops(x, boxes[:, :4], 24))
        keep = probs[:, 1] > self.thresholds[1]
        boxes, offsets, score = boxes[keep], offsets[keep], probs[keep, 1]
        if not boxes.shape[0]:
            return empty
        keep = _nms(boxes[:, :4], score, 0.7)
        boxes = _square(_regress(boxes[keep, :4], offsets[keep]))
        # Stage 3: O-Net on 48x48 crops; landmarks relative to the (unregressed) box.
        offsets, marks, probs = self.onet(_crops(x, boxes, 48))
        keep = probs[:, 1] > self.thresholds[2]
        boxes, offsets, marks, score = boxes[keep], offsets[keep], marks[keep], probs[keep, 1]
        if not boxes.shape[0]:
            return empty
        w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        points = torch.stack([w * marks[:, :5] + boxes[:, :1] - 1, h * marks[:, 5:] + boxes[:, 1:2] - 1], 2)
        boxes = _regress(boxes, offsets)
        keep = _nms(boxes, score, 0.7, mode="min")
        order = keep[score[keep].argsort(descending=True)]
        result = torch.cat([boxes[order], score[order, None]], 1)
        return result.cpu().numpy().astype(np.float32), points[order].cpu().numpy().astype(np.float32)


def load_mtcnn(path: str | Path, *, option: str = "landmark_weights") -> MTCNN:
    """An :class:`MTCNN` filled from ``path``: a folder holding facenet-pytorch's ``pnet.pt``,
    ``rnet.pt`` and ``onet.pt``; in eval mode."""
    folder = Path(path) if path else None
    if folder is None or not folder.is_dir():
        raise WeightsError(f"{option}: give the folder holding MTCNN's pnet.pt, rnet.pt and onet.pt "
                           f"({MTCNN_WEIGHTS_SOURCE}); got {str(path)!r}")
    net = MTCNN()
    for name, module in (("pnet", net.pnet), ("rnet", net.rnet), ("onet", net.onet)):
        load_weights(module, folder / f"{name}.pt", what=f"MTCNN {name}", option=option,
                     expected_name=f"{name}.pt", source=MTCNN_WEIGHTS_SOURCE)
    return net.eval().requires_grad_(False)
