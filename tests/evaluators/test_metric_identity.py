"""ID: ArcFace cosine similarity of two views of one latent."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gan3d.core.registry import get_registry
from gan3d.evaluators.metrics.identity import crop_faces
from gan3d.evaluators.metrics.reference_scene import ReferenceSphereGenerator
from gan3d.evaluators.networks.iresnet import IResNet
from gan3d.evaluators.networks.weights import WeightsError


class _ViewIndependentGenerator(ReferenceSphereGenerator):
    """Images that depend on the latent only, never on the camera: a perfect identity keeper."""

    def synthesis(self, ws, cameras, **kwargs):
        out = super().synthesis(ws, cameras, **kwargs)
        front = self.pose_sampler.cameras(torch.full((ws.shape[0],), 1.5708), torch.full((ws.shape[0],), 1.5708))
        out.image = super().synthesis(ws, front, **kwargs).image
        return out


@pytest.fixture(scope="module")
def arcface_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "backbone.pth"
    net = IResNet("r18", input_size=32)
    with torch.no_grad():  # non-trivial running statistics so the embedding depends on the image
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_var.uniform_(0.5, 2.0)
    torch.save(net.state_dict(), path)
    return str(path)


def _identity(generator, weights, **options):
    evaluator = get_registry().build("evaluator", "identity", arcface_weights=weights, arch="r18", face_size=32,
                                     num_samples=4, batch_size=4, **options)
    return evaluator.evaluate(generator, seed=0)["id"]


def test_identity_is_one_for_view_independent_images_and_lower_otherwise(arcface_file):
    assert _identity(_ViewIndependentGenerator(resolution=32), arcface_file) == pytest.approx(1.0, abs=1e-5)
    assert _identity(ReferenceSphereGenerator(resolution=32), arcface_file) < 0.9999


def test_identity_is_reproducible_and_poses_can_come_from_a_dataset(arcface_file):
    g = ReferenceSphereGenerator(resolution=32)
    assert _identity(g, arcface_file) == _identity(g, arcface_file)
    gen = torch.Generator().manual_seed(0)
    labels = g.pose_sampler(3, generator=gen).label
    data = [(torch.zeros(3, 32, 32), label) for label in labels]
    evaluator = get_registry().build("evaluator", "identity", arcface_weights=arcface_file, arch="r18",
                                     face_size=32, num_samples=2, pose_source="dataset")
    assert -1.0 <= evaluator.evaluate(g, dataset=data)["id"] <= 1.0


def test_faces_are_resized_with_antialiasing_not_nearest():
    checker = (torch.arange(64)[:, None] + torch.arange(64)[None, :]) % 2 * 2.0 - 1  # +-1 pixel checkerboard
    faces = crop_faces(checker.expand(1, 3, 64, 64), size=16)
    assert faces.abs().max() < 0.05  # averaged to grey; nearest neighbour would keep +-1
    assert F.interpolate(checker.expand(1, 3, 64, 64), size=16, mode="nearest").abs().min() == 1
    cropped = crop_faces(torch.arange(16.0).expand(1, 3, 16, 16), size=8, crop_fraction=0.5)
    assert cropped.min() >= 4 and cropped.max() <= 12  # the central half of the columns


def test_missing_arcface_weights_name_the_option(tmp_path):
    evaluator = get_registry().build("evaluator", "identity", arcface_weights=str(tmp_path / "x.pth"))
    with pytest.raises(WeightsError, match=r"backbone\.pth.*identity\.arcface_weights"):
        evaluator.evaluate(ReferenceSphereGenerator(resolution=8))
