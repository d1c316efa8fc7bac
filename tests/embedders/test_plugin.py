"""The embedders plugin: every registered name builds from its defaults' types, and bad options are refused."""

import pytest
import torch

from gan3d.core.interfaces import FAMILY_BASES
from gan3d.core.registry import Registry, RegistryError
from gan3d.embedders import plugin

#: Small options per name so building stays fast.
SMALL = {
    ("stochasticity_mapper", "pigan"): {"z_dim": 8, "hidden_dim": 8, "num_ws": 2, "film_dim": 4, "w_avg_samples": 16},
    ("point_embedder", "coordinate"): {"num_frequencies": 2},
    ("stochasticity_mapper", "stylesdf"): {"z_dim": 8, "num_layers": 2, "num_ws": 2, "w_avg_samples": 16},
    ("point_embedder", "position_encoded"): {"base": "coordinate", "num_frequencies": 2},
    ("point_embedder", "inverted_sphere"): {"num_frequencies": 2, "latent_dim": 3},
    ("feature_decoder", "stylesdf_siren"): {"in_channels": 3, "width": 8, "depth": 2, "style_dim": 8},
    ("stochasticity_mapper", "giraffe"): {"n_objects": 2, "object_z_dim": 4, "background_z_dim": 2},
    ("feature_decoder", "giraffe_field"): {"w_dim": 4, "hidden_dim": 8, "n_blocks": 3, "skips": [1], "feature_dim": 5},
    ("point_embedder", "volume"): {"feat_res": 4, "init_res": 2, "base_channels": 4, "output_channels": 2, "w_dim": 8},
    ("feature_decoder", "siren_film"): {"hidden_dim": 8, "num_layers": 2},
    ("feature_decoder", "gram_radiance"): {"hidden_dim": 8, "num_layers": 2},
    ("stochasticity_mapper", "stylegan2"): {"z_dim": 8, "c_dim": 25, "w_dim": 8, "num_ws": 3, "num_layers": 2},
    ("point_embedder", "triplane"): {"resolution": 8, "channels": 2, "w_dim": 8, "channel_base": 64,
                                     "channel_max": 8},
    ("feature_decoder", "eg3d_osg"): {"in_channels": 4, "hidden_dim": 4, "output_dim": 3},
    ("feature_decoder", "stylenerf_mlp"): {"in_channels": 6, "hidden_dim": 4, "depth": 2, "output_dim": 4,
                                           "w_dim": 8},
    ("feature_decoder", "volumegan_mlp"): {"in_channels": 6, "hidden_dim": 4, "num_layers": 2, "output_dim": 4,
                                           "w_dim": 8},
    ("feature_decoder", "graf_nerf"): {"in_channels": 9, "w_dim": 8, "appearance_dim": 4, "hidden_dim": 8,
                                       "num_layers": 3, "skips": [0], "num_view_frequencies": 1},
    ("stochasticity_mapper", "identity"): {"z_dim": 8, "num_ws": 2},
}


@pytest.fixture()
def registry():
    reg = Registry(autoload=False)
    reg.register(plugin, name="embedders-under-test")
    return reg


def test_registered_names_build_as_their_family(registry):
    for (family, name), kwargs in SMALL.items():
        module = registry.build(family, name, **kwargs)
        assert isinstance(module, FAMILY_BASES[family]), (family, name)
        if family != "stochasticity_mapper":
            assert module.out_channels > 0, (family, name)


def test_every_registered_name_has_a_small_build(registry):
    registered = {(e.family, e.name) for e in registry.entries() if e.plugin == "embedders-under-test"}
    assert set(SMALL) <= registered
    missing = registered - set(SMALL)
    assert not missing, f"add small options for {sorted(missing)} to SMALL"


def test_option_types_are_checked(registry):
    with pytest.raises(RegistryError, match="must be int"):
        registry.build("stochasticity_mapper", "pigan", z_dim=8.5)
    with pytest.raises(RegistryError, match="has no option 'res'"):
        registry.build("point_embedder", "volume", res=8)
    # A float option accepts an int (box_warp 1 == 1.0).
    assert registry.build("point_embedder", "coordinate", box_warp=1).box_warp == 1.0


@pytest.mark.parametrize("family, name", sorted(SMALL))
def test_core_contract_holds_for_every_implementation(registry, family, name):
    from gan3d.core.testing import check_contract

    torch.manual_seed(0)
    check_contract(family, registry.build(family, name, **SMALL[(family, name)]))
