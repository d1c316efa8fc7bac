"""The generator every method shares: the slots of a recipe, wired in data-flow order.

::

    z ─▶ mapper ─▶ ws                     pose sampler ─▶ cameras
    cameras ─▶ point sampler ─▶ coarse samples ─▶ embed ─▶ decode ─▶ render
          (num_importance > 0) importance(weights) ─▶ fine samples ─▶ embed ─▶ decode
          ─▶ merge coarse and fine by depth ─▶ render ─▶ feature image ─▶ upsampler ─▶ image

Rays are processed in chunks (``chunk`` rays at a time) so that high-resolution inference fits in
memory; the per-batch scene representation (tri-planes, feature volumes) is computed once.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .interfaces import (
    FeatureDecoder,
    PointEmbedder,
    PointSampler,
    PoseSampler,
    StochasticityMapper,
    Upsampler,
    VolumeRenderer,
)
from .recipe import GENERATOR_SLOTS, Recipe
from .types import Cameras, Field, GeneratorOutput, RaySamples, Render

__all__ = ["Generator", "build_generator", "merge_samples", "build_module", "surface_depth", "feature_image"]


def feature_image(per_ray: Tensor, side: int) -> Tensor:
    """Per-ray values ``[B, side * side, F]`` (rays in row-major pixel order) -> image ``[B, F, side, side]``.

    The result is the permuted view, no copy: its strides are channels_last, the layout a CPU's
    convolutions run fastest in. An upsampler that wants another layout converts it itself (the EG3D
    super-resolution does, as its ``memory_format`` says: contiguous on CUDA, where cuDNN's depthwise
    low-pass filters were slow on this view).
    """
    batch, _, channels = per_ray.shape
    return per_ray.permute(0, 2, 1).reshape(batch, channels, side, side)


def surface_depth(depth: Tensor, alpha: Tensor, depth_mode: str = "expected", alpha_threshold: float = 0.5) -> Tensor:
    """The depth of the surface a pixel sees, ``[B, 1, h, w]``, NaN on background (``alpha`` at or
    below ``alpha_threshold``). ``depth_mode`` ``'expected'`` means ``depth = sum_i w_i t_i`` and is
    divided by ``alpha = sum_i w_i``; any other mode is already normalized by the weights."""
    surface = depth / alpha.clamp_min(1e-6) if depth_mode == "expected" else depth
    return torch.where(alpha > alpha_threshold, surface, torch.full_like(surface, float("nan")))


def merge_samples(
    coarse: RaySamples, coarse_field: Field, fine: RaySamples, fine_field: Field
) -> tuple[RaySamples, Field]:
    """Concatenate two sample sets of the same rays along ``S`` and sort them by depth.

    Returns the merged samples and field, ``S = S_coarse + S_fine``, ascending in depth.
    """
    depths = torch.cat([coarse.depths, fine.depths], dim=-2)
    order = torch.argsort(depths.squeeze(-1), dim=-1)

    def take(t: Tensor) -> Tensor:
        return torch.gather(t, 2, order.unsqueeze(-1).expand(*order.shape, t.shape[-1]))

    deltas = None
    if coarse.deltas is not None and fine.deltas is not None:
        deltas = take(torch.cat([coarse.deltas, fine.deltas], dim=-2))
    samples = RaySamples(
        coarse.origins,
        coarse.directions,
        take(depths),
        take(torch.cat([coarse.points, fine.points], dim=-2)),
        deltas,
    )
    extras = {k: torch.cat([coarse_field.extras[k], fine_field.extras[k]], dim=-2)
              for k in coarse_field.extras if k in fine_field.extras}
    merged = Field(
        torch.cat([coarse_field.features, fine_field.features], dim=-2),
        **{coarse_field.kind: torch.cat([coarse_field.geometry, fine_field.geometry], dim=-2)},
        extras=extras,
    )
    return samples, merged.gather(order)


class Generator(nn.Module):
    """A 3D-aware generator assembled from one module per slot.

    Args:
        stochasticity_mapper, pose_sampler, point_sampler, point_embedder, feature_decoder,
        volume_renderer, upsampler: the modules (see :mod:`gan3d.core.interfaces`).
        render_resolution: side of the volume-rendered image ``h = w``.
        num_importance: fine samples per ray drawn from the coarse weights (0: no hierarchical pass).
        chunk: rays rendered at a time (``None``: all rays of the batch at once).
        image_range: ``'tanh'`` when the decoder's RGB lies in ``[-1, 1]`` already, ``'unit'`` when
            it lies in ``[0, 1]`` (mapped to ``[-1, 1]`` for the image).

    Example:
        >>> gen = build_generator(registry.get("method", "pigan")())       # doctest: +SKIP
        >>> out = gen(torch.randn(2, gen.z_dim))                            # doctest: +SKIP
        >>> out.image.shape, out.depth.shape                                # doctest: +SKIP
    """

    def __init__(
        self,
        stochasticity_mapper: StochasticityMapper,
        pose_sampler: PoseSampler,
        point_sampler: PointSampler,
        point_embedder: PointEmbedder,
        feature_decoder: FeatureDecoder,
        volume_renderer: VolumeRenderer,
        upsampler: Upsampler,
        *,
        render_resolution: int = 64,
        num_importance: int = 0,
        chunk: int | None = None,
        image_range: str = "tanh",
    ) -> None:
        super().__init__()
        if render_resolution <= 0:
            raise ValueError(f"render_resolution must be positive, got {render_resolution}")
        if num_importance < 0:
            raise ValueError(f"num_importance must be >= 0, got {num_importance}")
        if chunk is not None and chunk <= 0:
            raise ValueError(f"chunk must be positive or None, got {chunk}")
        if image_range not in ("tanh", "unit"):
            raise ValueError(f"image_range must be 'tanh' or 'unit', got {image_range!r}")
        if num_importance and not point_sampler.supports_importance:
            raise ValueError(
                f"num_importance={num_importance} needs a point sampler with importance sampling; "
                f"{type(point_sampler).__name__} has none"
            )
        self.mapper = stochasticity_mapper
        self.pose_sampler = pose_sampler
        self.point_sampler = point_sampler
        self.embedder = point_embedder
        self.decoder = feature_decoder
        self.renderer = volume_renderer
        self.upsampler = upsampler
        self.render_resolution = render_resolution
        self.num_importance = num_importance
        self.chunk = chunk
        self.image_range = image_range
        needed = [getattr(m, "num_ws", 0) or 0 for m in (point_embedder, feature_decoder, upsampler)]
        if max(needed) > stochasticity_mapper.num_ws:
            raise ValueError(
                f"the modules need {max(needed)} latents per sample but the stochasticity mapper "
                f"gives num_ws={stochasticity_mapper.num_ws}; raise stochasticity_mapper.num_ws"
            )

    @property
    def z_dim(self) -> int:
        return self.mapper.z_dim

    @property
    def c_dim(self) -> int:
        return self.mapper.c_dim

    # ------------------------------------------------------------ the stages
    def mapping(
        self,
        z: Tensor,
        c: Tensor | None = None,
        *,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_w_avg: bool = False,
    ) -> Tensor:
        """``z [B, z_dim]`` (and condition ``c [B, 25]``) -> ``ws [B, num_ws, w_dim]``."""
        if self.mapper.c_dim == 0:
            c = None
        return self.mapper(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                           update_w_avg=update_w_avg)

    def field(self, points: Tensor, directions: Tensor, ws: Tensor, scene: Any) -> Field:
        """Decode ``points [B, R, S, 3]`` seen along ``directions [B, R, S, 3]``.

        A decoder whose ``sdf_gradients`` attribute is true gets, whenever autograd is on,
        ``extras['sdf_gradients'] [B, R, S, 3]``: d sdf / d points in world coordinates, through the
        embedder whatever it is, with ``create_graph`` so losses on them (StyleSDF's eikonal) train.
        """
        want_gradients = getattr(self.decoder, "sdf_gradients", False) and torch.is_grad_enabled()
        if want_gradients and not points.requires_grad:
            points = points.detach().requires_grad_(True)
        field = self.decoder(self.embedder(points, scene), directions, ws)
        if want_gradients and field.sdf is not None:
            field.extras["sdf_gradients"] = torch.autograd.grad(field.sdf.sum(), points, create_graph=True)[0]
        return field

    def render_rays(
        self,
        samples: RaySamples,
        ws: Tensor,
        scene: Any,
        *,
        generator: torch.Generator | None = None,
        keep: dict[str, list] | None = None,
    ) -> Render:
        """Coarse pass, optional importance pass, compositing, for the rays of ``samples``."""
        coarse_field = self.field(samples.points, samples.sample_directions, ws, scene)
        if keep is not None:
            keep.setdefault("coarse_samples", []).append(samples)
            keep.setdefault("coarse_field", []).append(coarse_field)
        render = self.renderer(coarse_field, samples)
        if not self.num_importance:
            return render
        fine = self.point_sampler.importance(samples, render.weights.detach(), self.num_importance,
                                             generator=generator)
        fine_field = self.field(fine.points, fine.sample_directions, ws, scene)
        if keep is not None:
            keep.setdefault("fine_samples", []).append(fine)
            keep.setdefault("fine_field", []).append(fine_field)
        merged, merged_field = merge_samples(samples, coarse_field, fine, fine_field)
        return self.renderer(merged_field, merged)

    def synthesis(
        self,
        ws: Tensor,
        cameras: Cameras,
        *,
        resolution: int | None = None,
        generator: torch.Generator | None = None,
        return_aux: bool = False,
    ) -> GeneratorOutput:
        """Render ``ws`` from ``cameras`` at ``resolution`` (default ``render_resolution``)."""
        res = resolution or self.render_resolution
        samples = self.point_sampler(cameras, (res, res), generator=generator)
        scene = self.embedder.scene(ws)
        keep: dict[str, list] | None = {} if return_aux else None
        num_rays = samples.origins.shape[1]
        chunk = self.chunk or num_rays
        renders = [
            self.render_rays(samples.rays(slice(i, i + chunk)), ws, scene, generator=generator, keep=keep)
            for i in range(0, num_rays, chunk)
        ]
        render = renders[0] if len(renders) == 1 else Render(
            *(torch.cat([getattr(r, n) for r in renders], dim=1) for n in ("features", "depth", "weights", "alpha"))
        )

        features = feature_image(render.features, res)
        rgb = features[:, :3]
        if self.image_range == "unit":
            rgb = rgb * 2 - 1
            features = torch.cat([rgb, features[:, 3:]], dim=1)
        out_image = self.upsampler(features, ws)
        aux: dict[str, Any] = {}
        if keep is not None:
            aux = {k: v if len(v) > 1 else v[0] for k, v in keep.items()}
            aux["samples"] = samples
            aux["weights"] = render.weights
            aux["scene"] = scene
        depth, alpha = feature_image(render.depth, res), feature_image(render.alpha, res)
        return GeneratorOutput(
            image=out_image,
            image_raw=rgb,
            depth=depth,
            alpha=alpha,
            surface_depth=surface_depth(depth, alpha, getattr(self.renderer, "depth_mode", "expected")),
            features=features,
            cameras=cameras,
            ws=ws,
            aux=aux,
        )

    def forward(
        self,
        z: Tensor,
        cameras: Cameras | None = None,
        *,
        c: Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_w_avg: bool = False,
        resolution: int | None = None,
        generator: torch.Generator | None = None,
        return_aux: bool = False,
    ) -> GeneratorOutput:
        """Generate images for ``z [B, z_dim]``.

        ``cameras`` default to the pose sampler's draw; the mapper's condition ``c [B, 25]``
        defaults to the rendering cameras' labels (EG3D conditions on the pose it renders, except
        when the trainer swaps it).
        """
        if cameras is None:
            cameras = self.pose_sampler(z.shape[0], device=z.device, generator=generator)
        if c is None and self.mapper.c_dim:
            c = cameras.label
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_w_avg=update_w_avg)
        return self.synthesis(ws, cameras, resolution=resolution, generator=generator, return_aux=return_aux)


def build_module(recipe: Recipe, slot: str, registry=None) -> nn.Module:
    """Build the module of ``slot`` in ``recipe`` from the registry."""
    from .registry import get_registry

    registry = registry or get_registry()
    spec = recipe.modules[slot]
    return registry.build(slot, spec.name, **spec.kwargs)


def build_generator(recipe: Recipe, registry=None) -> Generator:
    """Assemble the generator a recipe describes (raises a clear error for anything missing)."""
    from .registry import check_kwargs, get_registry

    registry = registry or get_registry()
    modules = {slot: build_module(recipe, slot, registry) for slot in GENERATOR_SLOTS}
    check_kwargs(Generator, {**modules, **recipe.generator}, f"recipe {recipe.method!r} generator")
    return Generator(**modules, **recipe.generator)
