"""The metric networks: module names of the published files, and loading through the real code path."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gan3d.evaluators.networks.face_reconstruction import ReconNet, coefficient_slices, face_angles_to_view
from gan3d.evaluators.networks.inception import FIDInceptionV3, load_fid_inception
from gan3d.evaluators.networks.iresnet import IResNet, load_iresnet
from gan3d.evaluators.networks.weights import WeightsError, load_weights


def test_inception_state_dict_has_pytorch_fid_names_and_shapes():
    state = FIDInceptionV3().state_dict()
    assert state["Conv2d_1a_3x3.conv.weight"].shape == (32, 3, 3, 3)
    assert state["Mixed_6b.branch7x7_2.conv.weight"].shape == (128, 128, 1, 7)
    assert state["Mixed_7c.branch3x3dbl_3b.conv.weight"].shape == (384, 384, 3, 1)
    assert state["fc.weight"].shape == (1008, 2048)
    assert not any(k.startswith("AuxLogits") for k in state)  # built with aux_logits=False


def test_inception_round_trip_through_the_loader(tmp_path):
    torch.manual_seed(0)
    net = FIDInceptionV3().eval()
    # Files from before BatchNorm counted batches have no num_batches_tracked: still accepted.
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "inception.pth")
    loaded = load_fid_inception(str(tmp_path / "inception.pth"))
    images = torch.rand(1, 3, 12, 12) * 2 - 1
    with torch.no_grad():
        features = loaded(images)
        torch.testing.assert_close(features, net(images))
    assert features.shape == (1, 2048)


def test_wrong_key_and_wrong_shape_are_clear_errors(tmp_path):
    net = nn.Sequential(nn.Linear(3, 4))
    state = net.state_dict()
    state["0.wieght"] = state.pop("0.weight")
    torch.save(state, tmp_path / "renamed.pth")
    with pytest.raises(WeightsError, match=r"missing key\(s\) \['0.weight'\].*unexpected key\(s\) \['0.wieght'\]"):
        load_weights(nn.Sequential(nn.Linear(3, 4)), tmp_path / "renamed.pth", what="test net", option="opt",
                     expected_name="x.pth", source="here")
    torch.save(nn.Sequential(nn.Linear(3, 5)).state_dict(), tmp_path / "wide.pth")
    with pytest.raises(WeightsError, match=r"'0.weight' is \(5, 3\), the network needs \(4, 3\)"):
        load_weights(nn.Sequential(nn.Linear(3, 4)), tmp_path / "wide.pth", what="test net", option="opt",
                     expected_name="x.pth", source="here")
    torch.save({"not": "tensors"}, tmp_path / "junk.pth")
    with pytest.raises(WeightsError, match="not a state dict"):
        load_weights(net, tmp_path / "junk.pth", what="test net", option="opt", expected_name="x.pth", source="here")


def test_nested_checkpoints_and_data_parallel_prefixes_are_unwrapped(tmp_path):
    src = nn.Sequential(nn.Linear(3, 4))
    wrapped = {"net_recon": {f"module.{k}": v for k, v in src.state_dict().items()}, "epoch": 20}
    torch.save(wrapped, tmp_path / "epoch_20.pth")
    dst = load_weights(nn.Sequential(nn.Linear(3, 4)), tmp_path / "epoch_20.pth", what="t", option="o",
                       expected_name="epoch_20.pth", source="s", nested_keys=("net_recon",))
    torch.testing.assert_close(dst[0].weight, src[0].weight)


def test_pickled_objects_are_refused(tmp_path):
    torch.save({"model": nn.Linear(2, 2)}, tmp_path / "pickled.pth")  # a module object, not a state dict
    with pytest.raises(WeightsError, match="weights_only=True"):
        load_weights(nn.Linear(2, 2), tmp_path / "pickled.pth", what="t", option="o", expected_name="x", source="s")


def test_iresnet_names_shapes_and_round_trip(tmp_path):
    state = IResNet("r100").state_dict()
    assert state["fc.weight"].shape == (512, 512 * 7 * 7)
    assert "layer3.29.prelu.weight" in state and "layer3.30.bn1.weight" not in state
    assert state["features.running_mean"].shape == (512,)
    torch.manual_seed(0)
    small = IResNet("r18", input_size=32).eval()
    torch.save(small.state_dict(), tmp_path / "backbone.pth")
    loaded = load_iresnet(str(tmp_path / "backbone.pth"), arch="r18", input_size=32)
    faces = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(loaded(faces), small(faces))
    with pytest.raises(WeightsError, match="wrong shape"):
        load_iresnet(str(tmp_path / "backbone.pth"), arch="r18", input_size=48)


def test_recon_net_layout_and_face_angle_conversion():
    state = ReconNet().state_dict()
    assert state["backbone.layer4.2.conv3.weight"].shape == (2048, 512, 1, 1)
    assert state["final_layers.3.weight"].shape == (3, 2048, 1, 1)  # the angle layer
    assert coefficient_slices()["angle"] == slice(224, 227)
    assert sum(s.stop - s.start for s in coefficient_slices().values()) == 257
    views = face_angles_to_view(torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.3, 0.1], [0.2, 0.0, 0.0]]))
    torch.testing.assert_close(views[0], torch.tensor([math.pi / 2, math.pi / 2]))
    # Head turned by +y about the vertical axis = camera moved by -y in yaw; polar unchanged.
    torch.testing.assert_close(views[1], torch.tensor([math.pi / 2 - 0.3, math.pi / 2]), atol=1e-6, rtol=0)
    # Head pitched by +x = camera seen from above (polar below pi/2).
    torch.testing.assert_close(views[2], torch.tensor([math.pi / 2, math.pi / 2 - 0.2]), atol=1e-6, rtol=0)
