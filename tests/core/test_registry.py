"""The registry: entry-point discovery, in-code registration, the autoload switch, errors."""

from __future__ import annotations

import sys
import types

import pytest

from gan3d.core import hookimpl
from gan3d.core.registry import Registry, RegistryError

FIRST_PARTY = ["gan3d-core", "gan3d-samplers", "gan3d-embedders", "gan3d-renderers", "gan3d-evaluators",
               "gan3d-methods"]


def test_entry_points_of_all_six_packages_are_discovered():
    registry = Registry(autoload=True)
    dists = set(registry.plugins().values())
    assert set(FIRST_PARTY) <= dists
    assert registry.failures == []
    assert registry.entry("loss", "logistic").distribution == "gan3d-core"


def test_every_first_party_package_registers_something():
    registry = Registry(autoload=True)
    providers = {e.distribution for e in registry.entries()}
    assert set(FIRST_PARTY) <= providers, f"registered nothing: {set(FIRST_PARTY) - providers}"


def test_loading_is_lazy():
    registry = Registry(autoload=True)
    assert registry._loaded is False
    registry.names("point_embedder")
    assert registry._loaded is True


def test_disable_autoload_switch(monkeypatch):
    monkeypatch.setenv("GAN3D_DISABLE_PLUGIN_AUTOLOAD", "1")
    registry = Registry()
    assert registry.plugins() == {}
    assert registry.entries() == []
    monkeypatch.setenv("GAN3D_DISABLE_PLUGIN_AUTOLOAD", "0")
    assert "gan3d-core" in Registry().plugins().values()


def test_in_code_registration_and_unregistration(tiny_registry):
    assert tiny_registry.entry("point_embedder", "tiny").distribution == "tests"
    embedder = tiny_registry.build("point_embedder", "tiny", channels=5)
    assert embedder.out_channels == 5
    tiny_registry.unregister("tiny")
    with pytest.raises(RegistryError):
        tiny_registry.get("point_embedder", "tiny")


def test_missing_name_message_lists_installed_and_provider(tiny_registry):
    from gan3d.core.catalogue import FIRST_PARTY as catalogue

    with pytest.raises(RegistryError) as err:
        tiny_registry.get("point_embedder", "hashgrid")
    msg = str(err.value)
    assert "point embedder 'hashgrid' is not installed" in msg
    assert "tiny (tests)" in msg
    assert "Install a plugin that provides it" in msg
    # A first-party name says which distribution to install.
    family, names = next((f, n) for f, n in catalogue.items() if n)
    name, dist = next(iter(names.items()))
    with pytest.raises(RegistryError, match=f"provided by {dist}: pip install {dist}"):
        tiny_registry.get(family, name)


def test_duplicate_registration_names_both_distributions(tiny_registry):
    class Clash:
        @hookimpl
        def gan3d_register(self, registry):
            registry.add("point_embedder", "tiny", object)

    with pytest.raises(RegistryError, match=r"registered twice: by tests .* and by other-dist"):
        tiny_registry.register(Clash(), name="clash", distribution="other-dist")
    # The failed plugin left nothing behind.
    assert "clash" not in tiny_registry.plugins()


def test_misspelled_hook_is_caught():
    class Misspelled:
        @hookimpl
        def gan3d_registr(self, registry):  # noqa: D401 - deliberately misspelled
            pass

    registry = Registry(autoload=False)
    with pytest.raises(Exception, match="gan3d_registr"):
        registry.register(Misspelled(), name="typo")


def test_build_checks_option_names_and_types(tiny_registry):
    with pytest.raises(RegistryError, match="has no option 'chanels'; its options: channels"):
        tiny_registry.build("point_embedder", "tiny", chanels=4)
    with pytest.raises(RegistryError, match="option 'channels' must be int, got float 4.5"):
        tiny_registry.build("point_embedder", "tiny", channels=4.5)
    with pytest.raises(RegistryError, match="must be int or float, got str"):
        tiny_registry.build("pose_sampler", "tiny", radius="far")
    # ints are fine where floats are expected
    assert tiny_registry.build("pose_sampler", "tiny", radius=3).radius == 3


def test_unknown_family(tiny_registry):
    with pytest.raises(RegistryError, match="unknown family 'point_embeder'"):
        tiny_registry.names("point_embeder")


def test_broken_plugin_does_not_take_the_host_down(monkeypatch):
    """An entry point whose import fails is reported; the others keep working; strict mode raises."""
    from importlib import metadata

    real = metadata.entry_points

    broken = metadata.EntryPoint(name="zz_broken", value="gan3d_nonexistent_module_xyz.plugin", group="gan3d")

    def fake_entry_points(**kwargs):
        eps = list(real(**kwargs))
        if kwargs.get("group") == "gan3d":
            eps.append(broken)
        return eps

    monkeypatch.setattr(metadata, "entry_points", fake_entry_points)
    monkeypatch.delenv("GAN3D_STRICT_PLUGINS", raising=False)  # the test session sets it
    registry = Registry(autoload=True)
    assert registry.get("loss", "logistic") is not None
    failures = registry.failures
    assert [f.plugin for f in failures] == ["zz_broken"]
    assert "import failed" in failures[0].error
    with pytest.raises(RegistryError, match="Plugins that failed to load: zz_broken"):
        registry.get("point_embedder", "nope")

    monkeypatch.setenv("GAN3D_STRICT_PLUGINS", "1")
    with pytest.raises(RegistryError, match="zz_broken"):
        Registry(autoload=True).names("loss")


def test_plugin_module_registered_by_hand():
    module = types.ModuleType("handmade_plugin")

    @hookimpl
    def gan3d_register(registry):
        registry.add("loss", "handmade", dict)

    module.gan3d_register = gan3d_register
    sys.modules["handmade_plugin"] = module
    try:
        registry = Registry(autoload=False)
        name = registry.register(module)
        assert name == "handmade_plugin"
        assert registry.names("loss") == ["handmade"]
    finally:
        del sys.modules["handmade_plugin"]


def _module(name: str, **hooks) -> types.ModuleType:
    module = types.ModuleType(name)
    for hook, fn in hooks.items():
        setattr(module, hook, hookimpl(fn))
    sys.modules[name] = module
    return module


def test_a_plugin_declares_a_family_that_another_plugin_fills_whatever_their_order(monkeypatch):
    """Entry points load families before registrations: 'aa_user' (sorted first) adds to the family that
    'zz_owner' declares. A class that does not subclass the family's base is refused."""
    from importlib import metadata

    from torch import nn

    class Encoder(nn.Module):
        pass

    class SineEncoder(Encoder):
        pass

    def declare(registry):
        registry.add_family("point_encoder", "point encodings for coordinate MLPs", base=Encoder)

    def register_user(registry):
        registry.add("point_encoder", "sine", SineEncoder)

    _module("zz_owner_plugin", gan3d_declare_families=declare)
    _module("aa_user_plugin", gan3d_register=register_user)
    real = metadata.entry_points
    extra = [metadata.EntryPoint(name="zz_owner", value="zz_owner_plugin", group="gan3d"),
             metadata.EntryPoint(name="aa_user", value="aa_user_plugin", group="gan3d")]

    def fake_entry_points(**kwargs):
        eps = list(real(**kwargs))
        return eps + extra if kwargs.get("group") == "gan3d" else eps

    monkeypatch.setattr(metadata, "entry_points", fake_entry_points)
    try:
        registry = Registry(autoload=True)
        assert registry.families()["point_encoder"] == "point encodings for coordinate MLPs"
        assert registry.get("point_encoder", "sine") is SineEncoder
        assert registry.family_base("point_encoder") is Encoder
        assert "point_encoder" in {e.family for e in registry.entries()}
        with pytest.raises(RegistryError, match="must subclass the family's base Encoder"):
            registry.add("point_encoder", "bad", nn.Linear)
        with pytest.raises(RegistryError, match="declared twice"):
            registry.register(_module("again_plugin", gan3d_declare_families=declare))
    finally:
        for name in ("zz_owner_plugin", "aa_user_plugin", "again_plugin"):
            sys.modules.pop(name, None)
