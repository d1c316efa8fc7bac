"""Face alignment for the identity metric (Carver's --align_face): the five-point similarity fit, the
warp, the whole-batch fallback, and MTCNN's weight loading and cascade on small networks built here."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gan3d.evaluators.metrics.face_alignment import ARCFACE_TEMPLATE, align_face, align_faces, alignment_matrix
from gan3d.evaluators.networks.mtcnn import MTCNN, ONet, PNet, RNet, load_mtcnn
from gan3d.evaluators.networks.weights import WeightsError


def _moved_template(scale=1.7, angle=0.3, shift=(40.0, 25.0)) -> np.ndarray:
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return (scale * ARCFACE_TEMPLATE @ rotation.T + np.array(shift)).astype(np.float32)


def test_similarity_fit_maps_moved_landmarks_onto_the_template():
    points = _moved_template()
    matrix = alignment_matrix(points)
    mapped = points @ matrix[:, :2].T + matrix[:, 2]
    np.testing.assert_allclose(mapped, ARCFACE_TEMPLATE, atol=1e-3)
    with pytest.raises(ValueError, match="degenerate"):
        alignment_matrix(np.zeros((5, 2), np.float32))


def test_warp_puts_marked_points_at_the_template():
    points = _moved_template()
    image = np.zeros((240, 240, 3), np.uint8)
    for i, (x, y) in enumerate(points):
        image[int(round(y)) - 2:int(round(y)) + 3, int(round(x)) - 2:int(round(x)) + 3] = 50 * (i + 1)
    aligned = align_face(image, points)
    assert aligned.shape == (112, 112, 3)
    for i, (x, y) in enumerate(ARCFACE_TEMPLATE):
        assert abs(int(aligned[int(round(y)), int(round(x)), 0]) - 50 * (i + 1)) <= 10


class _FakeDetector:
    def __init__(self, faces):
        self.faces = list(faces)

    def detect(self, image):
        found = self.faces.pop(0)
        return (np.zeros((1, 5), np.float32), _moved_template()[None]) if found else (
            np.zeros((0, 5), np.float32), np.zeros((0, 5, 2), np.float32))


def test_a_batch_with_a_faceless_image_stays_unaligned():
    images = torch.rand(2, 3, 240, 240) * 2 - 1
    assert align_faces(images, _FakeDetector([True, False])) is None
    aligned = align_faces(images, _FakeDetector([True, True]))
    assert aligned.shape == (2, 3, 112, 112) and aligned.min() >= -1 and aligned.max() <= 1


def test_mtcnn_stage_shapes():
    offsets, probs = PNet()(torch.zeros(1, 3, 12, 12))
    assert offsets.shape == (1, 4, 1, 1) and probs.shape == (1, 2, 1, 1)
    offsets, probs = RNet()(torch.zeros(3, 3, 24, 24))  # 576 = 64 x 3 x 3 after the convolutions
    assert offsets.shape == (3, 4) and probs.shape == (3, 2)
    offsets, marks, probs = ONet()(torch.zeros(3, 3, 48, 48))  # 1152 = 128 x 3 x 3
    assert offsets.shape == (3, 4) and marks.shape == (3, 10) and probs.shape == (3, 2)


def _rigged_mtcnn(seed=0) -> MTCNN:
    """Random weights, with every stage's face score forced high, zero box offsets, and O-Net landmarks
    fixed at known fractions of its box."""
    torch.manual_seed(seed)
    net = MTCNN()
    with torch.no_grad():
        for layer in (net.pnet.conv4_1, net.rnet.dense5_1, net.onet.dense6_1):
            layer.weight.zero_()
            layer.bias.copy_(torch.tensor([-10.0, 10.0]))
        for layer in (net.pnet.conv4_2, net.rnet.dense5_2, net.onet.dense6_2, net.onet.dense6_3):
            layer.weight.zero_()
            layer.bias.zero_()
        net.onet.dense6_3.bias.copy_(torch.tensor([0.3, 0.7, 0.5, 0.35, 0.65, 0.4, 0.4, 0.6, 0.8, 0.8]))
    return net.eval()


def test_mtcnn_cascade_gives_landmarks_inside_its_box():
    boxes, points = _rigged_mtcnn().detect(np.full((60, 80, 3), 128, np.uint8))
    assert len(boxes) >= 1 and points.shape == (len(boxes), 5, 2)
    x1, y1, x2, y2, prob = boxes[0]
    assert prob > 0.99
    w, h = x2 - x1 + 1, y2 - y1 + 1  # zero offsets: the box O-Net saw is the box returned
    np.testing.assert_allclose(points[0, :, 0], w * np.array([0.3, 0.7, 0.5, 0.35, 0.65]) + x1 - 1, atol=1e-3)
    np.testing.assert_allclose(points[0, :, 1], h * np.array([0.4, 0.4, 0.6, 0.8, 0.8]) + y1 - 1, atol=1e-3)


def test_mtcnn_weights_load_from_a_folder(tmp_path):
    built = _rigged_mtcnn(seed=3)
    for name in ("pnet", "rnet", "onet"):
        torch.save(getattr(built, name).state_dict(), tmp_path / f"{name}.pt")
    loaded = load_mtcnn(str(tmp_path))
    for (key, a), (_, b) in zip(built.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), key
    image = np.random.default_rng(0).integers(0, 256, (50, 50, 3), dtype=np.uint8)
    np.testing.assert_allclose(loaded.detect(image)[1], built.detect(image)[1])
    with pytest.raises(WeightsError, match="identity.landmark_weights: give the folder holding MTCNN's pnet.pt"):
        load_mtcnn(str(tmp_path / "nowhere"), option="identity.landmark_weights")
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "rnet.pt")
    with pytest.raises(WeightsError, match="does not fit the network"):
        load_mtcnn(str(tmp_path))


def test_identity_with_align_face_needs_landmark_weights():
    from gan3d.evaluators.metrics.identity import IdentityEvaluator

    evaluator = IdentityEvaluator(arcface_weights="", align_face=True)
    with pytest.raises(WeightsError, match="identity.landmark_weights"):
        evaluator.evaluate(None)
