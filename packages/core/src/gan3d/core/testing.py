"""Fixtures for plugin authors: a registry of chosen plugins, and a contract check per family.

Example (in a plugin's own tests)::

    from gan3d.core.testing import check_contract, registry_with

    def test_my_embedder_honours_the_contract():
        registry = registry_with("core", "my_plugin")          # entry-point names, or plugin objects
        embedder = registry.build("point_embedder", "fourier", num_frequencies=8)
        check_contract("point_embedder", embedder)

``check_contract`` runs the implementation on tiny inputs and asserts the shapes documented in
:mod:`gan3d.core.interfaces`, that outputs are finite, and that gradients reach its parameters.
"""

from __future__ import annotations

import math
from importlib import metadata
from typing import Any

import torch
from torch import Tensor, nn

from .cameras import focal_to_intrinsics, look_at, pixel_rays, spherical_origin
from .interfaces import LatentConsumer
from .registry import ENTRY_POINT_GROUP, Registry, RegistryError
from .types import (
    Cameras,
    DiscriminatorInput,
    DiscriminatorOutput,
    Field,
    RaySamples,
    Render,
    SceneLatent,
    UpsampledImages,
)

__all__ = ["registry_with", "check_contract", "ContractError", "front_cameras"]


class ContractError(AssertionError):
    """An implementation does not honour its family's contract."""


def registry_with(*plugins: Any) -> Registry:
    """A registry holding only ``plugins``: installed entry-point names (``"core"``) or plugin
    objects/modules registered in code. Autoloading is off, whatever the environment says."""
    registry = Registry(autoload=False)
    installed = {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    for plugin in plugins:
        if isinstance(plugin, str):
            if plugin not in installed:
                raise RegistryError(f"no installed gan3d entry point named {plugin!r}; installed: "
                                    f"{', '.join(sorted(installed)) or 'none'}")
            ep = installed[plugin]
            registry.register(ep.load(), name=plugin, distribution=ep.dist.name if ep.dist else plugin)
        else:
            registry.register(plugin)
    return registry


def front_cameras(batch: int, radius: float = 2.0, focal: float = 1.5) -> Cameras:
    """``batch`` cameras on a small yaw arc in front of the origin, looking at it."""
    yaw = math.pi / 2 + torch.linspace(-0.3, 0.3, batch)
    polar = torch.full((batch,), math.pi / 2)
    return Cameras(look_at(spherical_origin(yaw, polar, radius)), focal_to_intrinsics(focal, batch),
                   torch.stack([yaw, polar], -1))


def _require(cond: bool, what: str) -> None:
    if not cond:
        raise ContractError(what)


def _shape(t: Tensor, shape: tuple, what: str) -> None:
    _require(tuple(t.shape) == tuple(shape), f"{what}: expected shape {tuple(shape)}, got {tuple(t.shape)}")
    _require(bool(torch.isfinite(t).all()), f"{what}: contains non-finite values")


def _grads_reach(module: nn.Module, loss: Tensor, what: str, exempt: tuple[str, ...]) -> None:
    params = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    if not params:
        return
    loss.backward()
    missing = [n for n, p in params if (p.grad is None or not torch.isfinite(p.grad).all())
               and not any(n.startswith(e) for e in exempt)]
    _require(not missing, f"{what}: no finite gradient reaches {missing}")


def check_contract(family: str, module: nn.Module, *, batch: int = 2, rays: int = 6, samples: int = 5,
                   in_channels: int | None = None, resolution: int = 8, exempt: tuple[str, ...] = ()) -> Any:
    """Run ``module`` of ``family`` on tiny inputs and assert its documented contract.

    Args:
        in_channels: input channels for feature decoders and upsamplers (default: the module's
            ``in_channels`` attribute).
        resolution: image side for upsamplers (input) and discriminators.
        exempt: parameter-name prefixes allowed to get no gradient.

    Returns the module's output, for further checks.
    """
    module.train()
    consumer = isinstance(module, LatentConsumer)
    ws = torch.randn(batch, module.num_ws if consumer else 1, (module.w_dim if consumer else 0) or 8)
    what = f"{family} {type(module).__name__}"
    if family == "stochasticity_mapper":
        z = torch.randn(batch, module.z_dim)
        c = torch.randn(batch, module.c_dim) if module.c_dim else None
        out = module(z, c)
        if module.latent_kind == "scene":
            _require(isinstance(out, SceneLatent), f"{what}: a scene mapper must return a SceneLatent")
            for group, codes in out.codes.items():
                _require(codes.ndim == 4 and codes.shape[0] == batch and codes.shape[-1] == module.code_dim(group),
                         f"{what}: codes of {group!r} must be [B, N, K, code_dim({group!r})], got {tuple(codes.shape)}")
            return out
        _shape(out, (batch, module.num_ws, module.w_dim), what)
        _grads_reach(module, out.square().mean(), what, exempt + ("w_avg",))
        return out
    if family == "pose_sampler":
        cams = module(batch, generator=torch.Generator().manual_seed(0))
        _require(isinstance(cams, Cameras) and cams.batch_size == batch, f"{what}: must return {batch} Cameras")
        rot = cams.cam2world[:, :3, :3]
        eye = torch.eye(3).expand_as(rot)
        _require(torch.allclose(rot.transpose(1, 2) @ rot, eye, atol=1e-4), f"{what}: rotation not orthonormal")
        _require(torch.allclose(torch.linalg.det(rot), torch.ones(batch), atol=1e-4), f"{what}: rotation det != 1")
        return cams
    if family == "point_sampler":
        out = module(front_cameras(batch), (2, 3))
        _require(isinstance(out, RaySamples), f"{what}: must return RaySamples")
        s = out.depths.shape[2]
        _shape(out.origins, (batch, 6, 3), f"{what} origins")
        _shape(out.points, (batch, 6, s, 3), f"{what} points")
        _require(bool((out.depths[:, :, 1:] >= out.depths[:, :, :-1]).all()), f"{what}: depths not sorted")
        _require(torch.allclose(out.directions.norm(dim=-1), torch.ones(batch, 6), atol=1e-4),
                 f"{what}: directions not unit length")
        cams = front_cameras(batch)
        _, grid = pixel_rays(cams.cam2world, cams.intrinsics, (2, 3), align_corners=module.corner_aligned(cams))
        _require(torch.allclose(out.directions, grid, atol=1e-5),
                 f"{what}: its rays are not on the pixel grid corner_aligned() declares (the evaluators lift "
                 "depth along that grid)")
        return out
    if family == "point_embedder":
        points = (torch.rand(batch, rays, samples, 3) * 2 - 1).mul(0.4).requires_grad_(True)
        out = module(points, module.scene(ws))
        _shape(out, (batch, rays, samples, module.out_channels), what)
        _grads_reach(module, out.square().mean(), what, exempt)
        return out
    if family == "feature_decoder":
        c = in_channels or module.in_channels or 3
        feats = torch.randn(batch, rays, samples, c)
        dirs = nn.functional.normalize(torch.randn(batch, rays, samples, 3), dim=-1)
        field = module(feats, dirs, ws)
        _require(isinstance(field, Field), f"{what}: must return a Field")
        _shape(field.features, (batch, rays, samples, module.out_channels), f"{what} features")
        _shape(field.geometry, (batch, rays, samples, 1), f"{what} {field.kind}")
        _grads_reach(module, field.features.square().mean() + field.geometry.square().mean(), what, exempt)
        return field
    if family == "volume_renderer":
        depths = torch.linspace(1.0, 2.0, samples).view(1, 1, samples, 1).expand(batch, rays, samples, 1)
        origins = torch.zeros(batch, rays, 3)
        dirs = torch.tensor([0.0, 0.0, 1.0]).expand(batch, rays, 3)
        field = Field(features=torch.rand(batch, rays, samples, 4, requires_grad=True),
                      density=torch.randn(batch, rays, samples, 1, requires_grad=True))
        out = module(field, RaySamples.along_rays(origins, dirs, depths))
        _require(isinstance(out, Render), f"{what}: must return a Render")
        _shape(out.features, (batch, rays, 4), f"{what} features")
        _shape(out.depth, (batch, rays, 1), f"{what} depth")
        _shape(out.alpha, (batch, rays, 1), f"{what} alpha")
        _require(bool((out.weights.sum(-2) <= 1 + 1e-4).all()), f"{what}: weights sum above 1")
        return out
    if family == "upsampler":
        c = in_channels or module.in_channels or 3
        feats = torch.randn(batch, c, resolution, resolution)
        out = module(feats, ws)
        raw = None
        if isinstance(out, UpsampledImages):
            out, raw = out.image, out.image_raw
            _require(raw.ndim == 4 and raw.shape[:2] == (batch, 3),
                     f"{what}: expected image_raw [B, 3, h, w], got {tuple(raw.shape)}")
        _require(isinstance(out, Tensor), f"{what}: must return a Tensor or UpsampledImages, got {type(out).__name__}")
        expected = module.out_resolution(resolution)
        _require(out.shape[-1] == expected, f"{what}: out_resolution({resolution}) says {expected}, got "
                                             f"{tuple(out.shape)}")
        _require(out.ndim == 4 and out.shape[:2] == (batch, 3),
                 f"{what}: expected [B, 3, H, W], got {tuple(out.shape)}")
        loss = out.square().mean() + (raw.square().mean() if raw is not None else 0)
        _grads_reach(module, loss, what, exempt)
        return out
    if family == "discriminator":
        image = torch.randn(batch, 3, resolution, resolution)
        cams = front_cameras(batch)
        out = module(DiscriminatorInput(image, image_raw=image, camera_label=cams.label, camera_angles=cams.angles))
        _require(isinstance(out, DiscriminatorOutput), f"{what}: must return a DiscriminatorOutput")
        _shape(out.logits, (batch, 1), f"{what} logits")
        _grads_reach(module, out.logits.sum(), what, exempt)
        return out
    raise ContractError(f"no contract check for family {family!r}")
