"""Installing only the plugins you need: gan3d-core and gan3d-samplers alone (the nox `minimal`
session installs exactly these, from wheels, and sets GAN3D_EXPECT_MINIMAL=1)."""

from __future__ import annotations

import os

import pytest

from gan3d.core.registry import Registry, RegistryError

pytestmark = pytest.mark.skipif(not os.environ.get("GAN3D_EXPECT_MINIMAL"),
                                reason="runs in the nox 'minimal' session only")


def test_only_the_installed_plugins_are_found():
    registry = Registry(autoload=True)
    assert set(registry.plugins().values()) == {"gan3d-core", "gan3d-samplers"}
    assert registry.failures == []
    assert registry.names("point_sampler")  # samplers work alone
    assert registry.names("point_embedder") == []


def test_a_missing_family_names_the_distribution_to_install():
    registry = Registry(autoload=True)
    with pytest.raises(RegistryError) as err:
        registry.get("point_embedder", "triplane")
    msg = str(err.value)
    assert "point embedder 'triplane' is not installed; installed point embedders: none." in msg
    assert "It is provided by gan3d-embedders: pip install gan3d-embedders." in msg


def test_installed_from_a_wheel_not_an_editable_checkout():
    import gan3d.core

    assert "site-packages" in gan3d.core.__file__
