"""The dataset pose sampler: draws only bound labels, reproducibly, and says when it has none."""

from __future__ import annotations

import math

import pytest
import torch

from gan3d.samplers.camera_angles import spherical_angles
from gan3d.samplers.dataset_pose_sampler import DatasetPoseSampler
from gan3d.samplers.spherical_pose_sampler import SphericalPoseSampler


def dataset_labels(n: int = 5) -> torch.Tensor:
    sampler = SphericalPoseSampler(yaw_strategy="uniform", yaw_range=[0.6, 2.5], polar_strategy="uniform",
                                   polar_range=[1.2, 1.9], pivot=[0.0, 0.0, 0.0])
    return sampler(n, generator=torch.Generator().manual_seed(7)).label


def test_unbound_sampler_says_what_to_do():
    with pytest.raises(RuntimeError, match=r"bind_dataset_poses\(labels \[N, 25\]\)"):
        DatasetPoseSampler()(2)


def test_draws_only_bound_labels_and_all_of_them():
    labels = dataset_labels()
    sampler = DatasetPoseSampler()
    sampler.bind_dataset_poses(labels)
    drawn = sampler(200, generator=torch.Generator().manual_seed(0)).label
    matches = (drawn[:, None, :] == labels[None, :, :]).all(-1)  # [200, 5]
    assert (matches.sum(1) == 1).all()  # every draw is exactly one bound label
    assert (matches.sum(0) > 0).all()  # and every label is drawn


def test_angles_are_those_the_cameras_were_placed_with():
    sampler = SphericalPoseSampler(yaw_strategy="uniform", yaw_range=[0.3, 2.8], polar_strategy="uniform",
                                   polar_range=[0.5, 2.5])
    cams = sampler(64, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(spherical_angles(cams.origins), cams.angles, atol=1e-5, rtol=0)
    dataset = DatasetPoseSampler()
    dataset.bind_dataset_poses(cams.label)
    drawn = dataset(16, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(spherical_angles(drawn.origins), drawn.angles)
    assert drawn.angles[:, 0].min() >= 0.3 - 1e-5 and drawn.angles[:, 0].max() <= 2.8 + 1e-5


def test_angles_about_an_orbit_center():
    origins = torch.tensor([[0.0, 0.5, 3.0], [2.0, 0.5, 0.0]])
    angles = spherical_angles(origins, orbit_center=[0.0, 0.5, 0.0])
    torch.testing.assert_close(angles, torch.tensor([[math.pi / 2, math.pi / 2], [math.pi, math.pi / 2]]))


def test_seeded_generator_reproduces():
    sampler = DatasetPoseSampler()
    sampler.bind_dataset_poses(dataset_labels(50))
    a = sampler(8, generator=torch.Generator().manual_seed(3)).label
    b = sampler(8, generator=torch.Generator().manual_seed(3)).label
    c = sampler(8, generator=torch.Generator().manual_seed(4)).label
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_labels_stay_out_of_the_state_dict():
    sampler = DatasetPoseSampler()
    sampler.bind_dataset_poses(dataset_labels())
    assert "labels" not in sampler.state_dict()
    DatasetPoseSampler().load_state_dict(sampler.state_dict())  # a fresh sampler loads the checkpoint


@pytest.mark.parametrize("labels", [torch.zeros(3, 16), torch.zeros(0, 25), torch.zeros(25)])
def test_bad_labels_are_refused(labels):
    with pytest.raises(ValueError, match=r"\[N, 25\]"):
        DatasetPoseSampler().bind_dataset_poses(labels)


def test_non_finite_labels_are_refused():
    labels = dataset_labels()
    labels[0, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        DatasetPoseSampler().bind_dataset_poses(labels)


def test_declared_rig_stands_in_until_labels_are_bound():
    # EpiGRAF's FFHQ camera: radius 1 about the origin, fov 12 at 512 px.
    sampler = DatasetPoseSampler(rig={"pivot": [0.0, 0.0, 0.0], "radius": 1.0, "focal": 4.7477,
                                      "yaw_range": [1.2, 1.9]})
    rig = sampler.camera_rig()
    assert (rig.pivot, rig.radius, rig.focal, rig.yaw_range) == ((0.0, 0.0, 0.0), 1.0, 4.7477, (1.2, 1.9))
    sampler.bind_dataset_poses(DatasetPoseSampler(rig=None).camera_rig().mean_cameras(3).label)
    assert sampler.camera_rig().radius == pytest.approx(2.7, abs=1e-4)  # the data's own cameras win
    with pytest.raises(ValueError, match="missing \\['focal'\\]"):
        DatasetPoseSampler(rig={"pivot": [0, 0, 0], "radius": 1.0})
    with pytest.raises(ValueError, match="unknown \\['fov'\\]"):
        DatasetPoseSampler(rig={"pivot": [0, 0, 0], "radius": 1.0, "focal": 2.0, "fov": 12})
    with pytest.raises(ValueError, match="positive radius"):
        DatasetPoseSampler(rig={"pivot": [0, 0, 0], "radius": -1.0, "focal": 2.0})
