"""DE and PE with the toolkit's own trained estimator, on exact synthetic ground truth."""

from __future__ import annotations

import math

import pytest
import torch

from gan3d.core.registry import RegistryError, get_registry
from gan3d.evaluators.metrics.depth_pose import angle_slopes, yaw_consistency
from gan3d.evaluators.metrics.estimators import (
    save_depth_pose_net,
    standardize_depth,
    train_depth_pose_net,
)
from gan3d.evaluators.metrics.reference_scene import ReferenceSphereGenerator
from gan3d.evaluators.metrics.sampling import view_angles, wrap_angle
from gan3d.evaluators.networks.depth_pose_net import DepthPoseNet
from gan3d.evaluators.networks.weights import WeightsError

RES = 16


def _posed_views(n: int, seed: int):
    """(image, label, depth) views of the analytic scene, exact depth and camera labels."""
    g = ReferenceSphereGenerator(resolution=RES)
    gen = torch.Generator().manual_seed(seed)
    out = g(torch.randn(n, g.z_dim, generator=gen), generator=gen)
    return list(zip(out.image, out.cameras.label, out.depth))


def _errors(net, views):
    images = torch.stack([v[0] for v in views])
    angles = view_angles(torch.stack([v[1] for v in views])[:, :16].reshape(-1, 4, 4))
    depth = torch.stack([v[2] for v in views])
    mask = depth > 0  # the synthetic data set marks "no surface" with 0
    depth = standardize_depth(depth, mask)
    with torch.no_grad():
        pred_depth, pred_angles = net.eval()(images)
    return ((pred_angles - angles) ** 2).mean().item(), ((pred_depth - depth) ** 2)[mask].mean().item()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    net = train_depth_pose_net(_posed_views(96, seed=0), steps=60, batch_size=16, lr=5e-3, resolution=RES,
                               channels=8, seed=0)
    folder = tmp_path_factory.mktemp("estimator")
    torch.manual_seed(1)
    untrained = DepthPoseNet(resolution=RES, channels=8)
    return net, save_depth_pose_net(net, folder / "depth_pose_net.pth"), save_depth_pose_net(untrained,
                                                                                          folder / "untrained.pth")


def test_training_reduces_depth_and_pose_error_on_held_out_views(trained):
    net, _, untrained_path = trained
    held_out = _posed_views(48, seed=1)
    untrained = get_registry().build("estimator", "trained", weights=str(untrained_path)).net
    pose_before, depth_before = _errors(untrained, held_out)
    pose_after, depth_after = _errors(net, held_out)
    assert pose_after < 0.7 * pose_before
    assert depth_after < 0.5 * depth_before


def test_training_on_the_core_synthetic_data_set(tmp_path):
    from gan3d.core.data import EG3DDataset, make_synthetic_dataset

    def synthetic(n, seed):
        path = make_synthetic_dataset(tmp_path, preset="head", num_images=n, resolution=RES, supersample=1, seed=seed)
        return EG3DDataset(path, load_depth=True)

    net = train_depth_pose_net(synthetic(64, 0), steps=40, batch_size=16, lr=5e-3, resolution=RES, channels=8)
    held_out = [tuple(item) for item in synthetic(16, 1)]
    torch.manual_seed(2)
    pose_before, depth_before = _errors(DepthPoseNet(resolution=RES, channels=8), held_out)
    pose_after, depth_after = _errors(net, held_out)
    assert pose_after < 0.5 * pose_before
    assert depth_after < depth_before


def test_saved_estimator_round_trips_through_the_registry_option(trained):
    net, path, _ = trained
    estimator = get_registry().build("estimator", "trained", weights=str(path))
    images = torch.stack([v[0] for v in _posed_views(2, seed=3)])
    out = estimator.predict(images)
    with torch.no_grad():
        depth, angles = net(images)
    torch.testing.assert_close(out.depth, depth)
    torch.testing.assert_close(out.angles, angles)


def test_de_and_pe_run_end_to_end_and_a_trained_estimator_agrees_better(trained):
    _, path, untrained_path = trained
    registry = get_registry()
    g = ReferenceSphereGenerator(resolution=RES)
    results = {}
    for name, weights in (("trained", path), ("untrained", untrained_path)):
        opts = {"estimator": "trained", "estimator_options": {"weights": str(weights)}, "num_samples": 24,
                "batch_size": 12}
        de = registry.build("evaluator", "depth", **opts).evaluate(g, seed=5)
        pe = registry.build("evaluator", "pose", **opts).evaluate(g, seed=5)
        results[name] = (de["de"], pe["pe"])
        assert set(pe) == {"pe", "pe_yaw_deg", "pe_polar_deg", "pe_yaw_slope", "pe_polar_slope",
                           "pe_yaw_consistency", "pe_yaw_offset_deg"}
    assert results["trained"][0] < results["untrained"][0]
    assert results["trained"][1] < results["untrained"][1]
    again = registry.build("evaluator", "pose", estimator_options={"weights": str(path)}, num_samples=24,
                           batch_size=12).evaluate(g, seed=5)
    assert again["pe"] == pytest.approx(results["trained"][1])


def test_estimator_errors_are_clear(tmp_path):
    with pytest.raises(WeightsError, match="estimator_options.weights"):
        get_registry().build("estimator", "trained", weights=str(tmp_path / "missing.pth"))
    with pytest.raises(WeightsError, match=r"epoch_20\.pth"):
        get_registry().build("estimator", "face_reconstruction", weights="")
    with pytest.raises(RegistryError, match="estimator 'midas' is not installed"):
        get_registry().build("evaluator", "depth", estimator="midas").evaluate(ReferenceSphereGenerator())
    with pytest.raises(ValueError, match="depth map"):
        train_depth_pose_net([(torch.zeros(3, 8, 8), torch.zeros(25))], steps=1, resolution=8)


def test_standardize_depth_is_zero_mean_unit_std_on_the_mask():
    depth = torch.tensor([[[[1.0, 2.0], [3.0, 100.0]]]])
    mask = torch.tensor([[[[True, True], [True, False]]]])
    out = standardize_depth(depth, mask)
    valid = out[mask]
    assert valid.mean().abs() < 1e-6 and (valid.pow(2).mean() - 1).abs() < 1e-6 and out[~mask].item() == 0


def test_yaw_consistency_against_hand_computed_cases():
    # One heading off the cameras by a constant: fully consistent, the offset is that constant, across the seam.
    assert yaw_consistency(torch.tensor([0.5, 0.5, 0.5])) == pytest.approx((1.0, 0.5))
    assert yaw_consistency(torch.tensor([3.1, -3.1])) == pytest.approx((math.cos(math.pi - 3.1), math.pi), abs=1e-6)
    # By hand: residuals 0 and pi/2 -> mean vector (1/2, 1/2), length sqrt(2)/2, direction pi/4.
    assert yaw_consistency(torch.tensor([0.0, math.pi / 2])) == pytest.approx((math.sqrt(0.5), math.pi / 4))
    # Opposite residuals cancel; residuals spread evenly round the circle too.
    assert yaw_consistency(torch.tensor([0.0, math.pi]))[0] == pytest.approx(0.0, abs=1e-7)
    assert yaw_consistency(torch.linspace(-math.pi, math.pi, 13)[:-1])[0] == pytest.approx(0.0, abs=1e-7)
    # A constant heading offset on a turntable: the slope reads 1 whatever the offset, the consistency tells
    # a rigid object (constant residual) from an unrelated one (random residuals).
    cams = torch.linspace(-math.pi, math.pi, 200)[:-1]
    rigid = wrap_angle(cams + 2.0)
    unrelated = torch.rand(199, generator=torch.Generator().manual_seed(0)) * 2 * math.pi - math.pi
    polar = torch.full_like(cams, 1.2)
    for estimate in (rigid, unrelated):
        slope = angle_slopes(torch.stack([cams, polar], 1), torch.stack([estimate, polar], 1))[0]
        assert abs(slope.item() - 1.0) < 0.3
    assert yaw_consistency(wrap_angle(rigid - cams))[0] == pytest.approx(1.0)
    assert yaw_consistency(wrap_angle(unrelated - cams))[0] < 0.2
    with pytest.raises(ValueError, match="at least one"):
        yaw_consistency(torch.tensor([]))


def test_angle_slopes_against_hand_computed_cases():
    cams = torch.tensor([[1.0, 1.4], [1.5, 1.5], [2.0, 1.7], [1.7, 1.6]])
    torch.testing.assert_close(angle_slopes(cams, 2 * cams + 0.1), torch.tensor([2.0, 2.0]))
    # A reflection through the mean view: what a depth-inverted head seen from mean +- delta shows.
    mean = cams.mean(0)
    torch.testing.assert_close(angle_slopes(cams, 2 * mean - cams), torch.tensor([-1.0, -1.0]))
    # By hand: yaw deviations (-0.55, -0.05, 0.45, 0.15) against estimates (0, 0, 1, 1): sum of products 0.6, of
    # squares 0.53.
    est = torch.tensor([[0.0, 1.5], [0.0, 1.5], [1.0, 1.5], [1.0, 1.5]])
    slopes = angle_slopes(cams, est)
    assert slopes[0].item() == pytest.approx(0.6 / 0.53) and slopes[1].item() == pytest.approx(0.0, abs=1e-6)
    # An estimate across the +-pi seam is unwrapped about the camera's angle, not read 2 pi away.
    seam = torch.tensor([[3.0, 1.0], [3.05, 1.2], [3.1, 1.4]])
    shifted = seam + 0.05
    shifted[2, 0] -= 2 * torch.pi  # 3.15 wraps to -3.133
    torch.testing.assert_close(angle_slopes(seam, shifted), torch.tensor([1.0, 1.0]))
    # A fixed angle has no slope.
    fixed = torch.tensor([[1.0, 1.5], [2.0, 1.5], [3.0, 1.5]])
    slopes = angle_slopes(fixed, fixed)
    assert slopes[0].item() == pytest.approx(1.0) and torch.isnan(slopes[1])
    with pytest.raises(ValueError, match=r"\[N, 2\]"):
        angle_slopes(cams, cams[:, :1])
