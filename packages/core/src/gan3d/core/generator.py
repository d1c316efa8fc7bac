"""The generator every method shares: the slots of a recipe, wired in data-flow order.

::

    z ─▶ mapper ─▶ ws [B, num_ws, w_dim] (or a SceneLatent)      pose sampler ─▶ cameras
                    │ rows allocated per consumer (ws_layout)      (a patch: cameras.crop)
    for every field group g (main, background, ...), every instance i of g:
       cameras ─▶ point sampler_g ─▶ samples_g        (groups without a sampler share main's samples)
       samples_g ─▶ (object frame_i) ─▶ embedder_g(scene_g(rows)) ─▶ decoder_g(rows) ─▶ field_gi
       (num_importance_g > 0) render field_g alone ─▶ importance(weights) ─▶ fine samples ─▶ merge
    volume renderer: compose fields on shared samples (sum of densities), merge sample sets by depth,
                     composite ─▶ feature image [B, F, h, w] ─▶ upsampler(rows, alpha) ─▶ image

Rays are processed in chunks (``chunk`` rays at a time) so that high-resolution inference fits in
memory; the per-batch scene representation (tri-planes, feature volumes) is computed once.

Build-time wiring (:func:`build_generator`): each module gets what its upstream declares (a decoder's
``in_channels`` is its embedder's ``out_channels``, ``w_dim`` the mapper's, the upsampler's
``in_channels`` the decoders' ``out_channels``), and the mapper's ``num_ws`` is the sum of the latent
rows its consumers declare, allocated as consecutive ranges (:attr:`Generator.ws_layout`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from .interfaces import (
    FeatureDecoder,
    PointEmbedder,
    PointSampler,
    PoseSampler,
    Scheduled,
    StochasticityMapper,
    Upsampler,
    VolumeRenderer,
    Wired,
)
from .recipe import GENERATOR_SLOTS, GROUP_FAMILIES, MAIN_GROUP, Recipe, RecipeError, group_slot, split_slot
from .types import Cameras, Field, FieldSamples, GeneratorOutput, RaySamples, Render, SceneLatent, UpsampledImages

__all__ = [
    "Generator",
    "FieldGroup",
    "build_generator",
    "build_module",
    "merge_samples",
    "surface_depth",
    "feature_image",
    "REQUESTS",
    "allocate_ws",
]

#: What a caller (an objective, a visualizer) may ask a forward pass for, in ``requests``:
#: ``samples``: the main group's samples and fields in ``aux`` (``coarse_samples``, ``coarse_field``,
#: ``fine_samples``, ``fine_field``, ``samples``); ``weights``: the main sample set's compositing weights;
#: ``scene``: the per-batch scene representations; ``sdf_gradients``: d sdf / d points in every SDF
#: field's ``extras`` (with ``create_graph``, for eikonal terms; needs autograd on); ``layers``: every
#: field-group instance rendered alone (:attr:`GeneratorOutput.layers`); ``intervals``: every quadrature
#: interval of the composited rays (all groups merged by depth) with its features, weight and depth
#: (:class:`~gan3d.core.types.Render`'s ``interval_*`` fields; ``aux['interval_features']``,
#: ``aux['interval_weights']``, ``aux['interval_depths']`` of a forward pass).
REQUESTS = frozenset({"samples", "weights", "scene", "sdf_gradients", "layers", "intervals"})


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

    def both(a: Tensor | None, b: Tensor | None, fill) -> Tensor | None:
        if a is None and b is None:
            return None
        a = fill(coarse) if a is None else a
        b = fill(fine) if b is None else b
        return take(torch.cat([a, b], dim=-2))

    deltas = None
    if coarse.deltas is not None and fine.deltas is not None:
        deltas = take(torch.cat([coarse.deltas, fine.deltas], dim=-2))
    mask = both(coarse.mask, fine.mask, lambda s: torch.ones_like(s.depths, dtype=torch.bool))
    directions = both(coarse.sample_directions_override, fine.sample_directions_override,
                      lambda s: s.sample_directions)
    samples = RaySamples(
        coarse.origins,
        coarse.directions,
        take(depths),
        take(torch.cat([coarse.points, fine.points], dim=-2)),
        deltas,
        mask,
        directions,
    )
    extras = {k: torch.cat([coarse_field.extras[k], fine_field.extras[k]], dim=-2)
              for k in coarse_field.extras if k in fine_field.extras}
    merged = Field(
        torch.cat([coarse_field.features, fine_field.features], dim=-2),
        **{coarse_field.kind: torch.cat([coarse_field.geometry, fine_field.geometry], dim=-2)},
        extras=extras,
    )
    return samples, merged.gather(order)


class FieldGroup(nn.Module):
    """The modules of one field group: its point sampler (``None``: it shares the main group's
    samples), embedder and decoder, and its hierarchical samples per ray."""

    def __init__(self, point_sampler: PointSampler | None, point_embedder: PointEmbedder,
                 feature_decoder: FeatureDecoder, *, num_importance: int = 0) -> None:
        super().__init__()
        if num_importance < 0:
            raise ValueError(f"num_importance must be >= 0, got {num_importance}")
        if num_importance and (point_sampler is None or not point_sampler.supports_importance):
            raise ValueError(f"num_importance={num_importance} needs a point sampler with importance sampling; "
                             f"{type(point_sampler).__name__} has none")
        self.point_sampler = point_sampler
        self.embedder = point_embedder
        self.decoder = feature_decoder
        self.num_importance = num_importance


def allocate_ws(consumers: Iterable[tuple[str, Any]]) -> tuple[dict[str, slice], int]:
    """Consecutive latent-row ranges for ``(slot, module)`` consumers in data-flow order.

    Each module declares ``num_ws`` (rows it reads) and ``ws_from_previous`` (how many of them are the
    last rows of the ranges before it, as many as there are). Returns ``(layout, total rows)``.

    Example:
        >>> class M:
        ...     def __init__(self, n, back=0): self.num_ws, self.ws_from_previous = n, back
        >>> layout, total = allocate_ws([("point_embedder", M(14)), ("feature_decoder", M(0)), ("upsampler", M(1, 1))])
        >>> layout["feature_decoder"], layout["upsampler"], total
        (slice(14, 14, None), slice(13, 14, None), 14)
    """
    layout: dict[str, slice] = {}
    rows = 0
    for slot, module in consumers:
        n, back = int(module.num_ws), int(module.ws_from_previous)
        if n < 0 or back < 0 or back > n:
            raise RecipeError(f"{slot}: num_ws={n} and ws_from_previous={back} must satisfy 0 <= ws_from_previous "
                              "<= num_ws")
        start = rows - min(back, rows)
        layout[slot] = slice(start, start + n)
        rows = max(rows, start + n)
    return layout, rows


class Generator(nn.Module):
    """A 3D-aware generator assembled from one module per slot.

    Args:
        stochasticity_mapper, pose_sampler, point_sampler, point_embedder, feature_decoder,
        volume_renderer, upsampler: the modules (see :mod:`gan3d.core.interfaces`); the point sampler,
            embedder and decoder form the main field group.
        render_resolution: side of the volume-rendered image ``h = w``.
        num_importance: fine samples per ray the main group draws from its coarse weights (0: none).
        chunk: rays rendered at a time (``None``: all rays of the batch at once).
        image_range: ``'tanh'`` when the decoder's RGB lies in ``[-1, 1]`` already, ``'unit'`` when
            it lies in ``[0, 1]`` (mapped to ``[-1, 1]`` for the image).
        groups: the other field groups by name (``background``, ...), in compositing order.
        ws_layout: latent rows of each consumer slot (:func:`allocate_ws`); :func:`build_generator`
            computes it, and by default it is computed here from the modules.

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
        groups: dict[str, FieldGroup] | None = None,
        ws_layout: dict[str, slice] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(render_resolution, int) or isinstance(render_resolution, bool) or render_resolution <= 0:
            raise ValueError(f"render_resolution must be a positive integer, got {render_resolution!r}")
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
        self.groups = nn.ModuleDict(groups or {})
        if MAIN_GROUP in self.groups:
            raise ValueError(f"the field group name {MAIN_GROUP!r} is the main group's")
        self.render_resolution = render_resolution
        self.num_importance = num_importance
        self.chunk = chunk
        self.image_range = image_range
        for name, decoder in self._decoders():
            if decoder.field_kind != volume_renderer.field_kind:
                raise ValueError(
                    f"{name} {type(decoder).__name__} outputs {decoder.field_kind} fields but the volume renderer "
                    f"{type(volume_renderer).__name__} reads {volume_renderer.field_kind} fields; use a renderer "
                    f"for {decoder.field_kind} fields or another decoder"
                )
        if ws_layout is None:
            ws_layout, total = allocate_ws(self.latent_consumers())
        else:
            total = max((s.stop for s in ws_layout.values()), default=0)
        self.ws_layout = dict(ws_layout)
        if stochasticity_mapper.latent_kind == "ws" and total > stochasticity_mapper.num_ws:
            raise ValueError(
                f"the modules read {total} latent rows but the stochasticity mapper gives num_ws="
                f"{stochasticity_mapper.num_ws}; build the generator with build_generator, which wires num_ws"
            )

    # ------------------------------------------------------------ structure
    @property
    def z_dim(self) -> int:
        return self.mapper.z_dim

    @property
    def c_dim(self) -> int:
        return self.mapper.c_dim

    @property
    def num_ws(self) -> int:
        return self.mapper.num_ws

    def field_groups(self) -> list[tuple[str, PointSampler | None, PointEmbedder, FeatureDecoder, int]]:
        """``(name, point sampler or None, embedder, decoder, num_importance)`` of every field group,
        the main group first."""
        out = [(MAIN_GROUP, self.point_sampler, self.embedder, self.decoder, self.num_importance)]
        for name, group in self.groups.items():
            out.append((name, group.point_sampler, group.embedder, group.decoder, group.num_importance))
        return out

    def _decoders(self) -> list[tuple[str, FeatureDecoder]]:
        return [(group_slot(g, "feature_decoder"), dec) for g, _, _, dec, _ in self.field_groups()]

    def latent_consumers(self) -> list[tuple[str, nn.Module]]:
        """The slots that read latent rows, in data-flow (allocation) order."""
        out: list[tuple[str, nn.Module]] = []
        for g, _, emb, dec, _ in self.field_groups():
            out += [(group_slot(g, "point_embedder"), emb), (group_slot(g, "feature_decoder"), dec)]
        out.append(("upsampler", self.upsampler))
        return out

    def slot_modules(self) -> dict[str, nn.Module]:
        """Every slot's module by slot name (``'point_embedder'``, ``'background/feature_decoder'``...)."""
        out: dict[str, nn.Module] = {"stochasticity_mapper": self.mapper, "pose_sampler": self.pose_sampler}
        for g, sampler, emb, dec, _ in self.field_groups():
            if sampler is not None:
                out[group_slot(g, "point_sampler")] = sampler
            out[group_slot(g, "point_embedder")] = emb
            out[group_slot(g, "feature_decoder")] = dec
        out["volume_renderer"] = self.renderer
        out["upsampler"] = self.upsampler
        return out

    #: Options a training stage may change (``training.stages[i]['generator.<option>']``).
    STAGE_OPTIONS = ("render_resolution", "num_importance", "chunk")

    def slot_prefixes(self) -> dict[str, str]:
        """Each slot's prefix in :meth:`state_dict` (``'embedder.'``, ``'groups.background.decoder.'``...)."""
        names = {id(m): name for name, m in self.named_modules()}
        return {slot: names[id(module)] + "." for slot, module in self.slot_modules().items()}

    def load_slots(self, state: dict[str, Tensor], slots: Iterable[str], source: str = "state") -> int:
        """Load the weights of ``slots`` from ``state`` (a generator state dict); returns how many tensors
        were loaded. Every tensor of those slots must be in ``state`` with the same shape."""
        prefixes = self.slot_prefixes()
        unknown = [s for s in slots if s not in prefixes]
        if unknown:
            raise ValueError(f"{source}: the generator has no slot(s) {unknown}; slots: {', '.join(prefixes)}")
        own = self.state_dict()
        wanted = {k for k in own if any(k.startswith(prefixes[s]) for s in slots)}
        missing = sorted(k for k in wanted if k not in state or state[k].shape != own[k].shape)
        if missing:
            raise ValueError(f"{source}: it has no tensor of the same name and shape for {len(missing)} weight(s) of "
                             f"slots {list(slots)}, e.g. {missing[:3]}")
        self.load_state_dict({k: state[k] for k in wanted}, strict=False)
        return len(wanted)

    def corner_aligned(self, cameras: Cameras) -> bool:
        """Whether the pixels of this generator's renders of ``cameras`` lie on the corner-aligned grid
        (``u = j / (w - 1)``) rather than at pixel centres: its main point sampler's
        :meth:`~gan3d.core.interfaces.PointSampler.corner_aligned`. Its final images are taken to lie on
        the same kind of grid at their own resolution (what the reprojection metric lifts and reads)."""
        return self.point_sampler.corner_aligned(cameras)

    def output_resolution(self, render_resolution: int | None = None) -> int:
        """The side of the final image for a ``render_resolution`` render (default the current one)."""
        return self.upsampler.out_resolution(render_resolution or self.render_resolution)

    def set_training_step(self, step: int, kimg: float) -> None:
        """Tell every module the training progress (see :class:`gan3d.core.interfaces.Scheduled`)."""
        for module in self.modules():
            if isinstance(module, Scheduled):
                module.set_training_step(step, kimg)

    # ------------------------------------------------------------ latents
    def mapping(
        self,
        z: Tensor,
        c: Tensor | None = None,
        *,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_w_avg: bool = False,
    ) -> Tensor | SceneLatent:
        """``z [B, z_dim]`` (and condition ``c [B, 25]``) -> ``ws [B, num_ws, w_dim]`` or a SceneLatent."""
        if self.mapper.c_dim == 0:
            c = None
        return self.mapper(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                           update_w_avg=update_w_avg)

    def rows(self, ws: Tensor | SceneLatent, slot: str, instance: int = 0) -> Tensor | None:
        """The latent rows module ``slot`` reads: its ``ws_layout`` range, or, for a scene latent, the
        codes of its group's instance ``instance`` (``None`` for a slot outside the scene's groups)."""
        if isinstance(ws, SceneLatent):
            group, _ = split_slot(slot)
            codes = ws.codes.get(group if slot != "upsampler" else "upsampler")
            return None if codes is None else codes[:, instance]
        return ws[:, self.ws_layout[slot]]

    def instances(self, ws: Tensor | SceneLatent, group: str) -> int:
        """How many instances of ``group`` the latent holds (1 for ``ws`` tensors)."""
        if isinstance(ws, SceneLatent):
            if group not in ws.codes:
                raise ValueError(f"the scene latent has no codes for field group {group!r}; it has "
                                 f"{', '.join(ws.codes)}")
            return ws.instances(group)
        return 1

    def scenes(self, ws: Tensor | SceneLatent, *, generator: torch.Generator | None = None
               ) -> dict[tuple[str, int], Any]:
        """The per-batch scene representation of every group instance, ``(group, instance) -> scene``;
        ``generator`` reaches the embedders whose scenes have random inputs (a seed reproduces them)."""
        out = {}
        for g, _, emb, _, _ in self.field_groups():
            for i in range(self.instances(ws, g)):
                out[(g, i)] = emb.scene(self.rows(ws, group_slot(g, "point_embedder"), i), generator=generator)
        return out

    # ------------------------------------------------------------ fields
    def field(self, points: Tensor, directions: Tensor, ws: Tensor | SceneLatent, scene: Any, *,
              group: str = MAIN_GROUP, instance: int = 0, sdf_gradients: bool = False) -> Field:
        """Decode ``points [B, R, S, 3]`` seen along ``directions [B, R, S, 3]`` with group ``group``'s
        embedder and decoder (points already in the instance's frame).

        With ``sdf_gradients`` (and autograd on) an SDF field gets ``extras['sdf_gradients']
        [B, R, S, 3]``: d sdf / d points, through the embedder whatever it is, with ``create_graph`` so
        losses on them (StyleSDF's eikonal) train.
        """
        emb, dec = self._group_modules(group)
        want = sdf_gradients and torch.is_grad_enabled() and dec.field_kind == "sdf"
        if want and not points.requires_grad:
            points = points.detach().requires_grad_(True)
        field = dec(emb(points, scene), directions, self.rows(ws, group_slot(group, "feature_decoder"), instance))
        if want and field.sdf is not None:
            field.extras["sdf_gradients"] = torch.autograd.grad(field.sdf.sum(), points, create_graph=True)[0]
        return field

    def _group_modules(self, group: str) -> tuple[PointEmbedder, FeatureDecoder]:
        if group == MAIN_GROUP:
            return self.embedder, self.decoder
        if group not in self.groups:
            raise ValueError(f"the generator has no field group {group!r}; groups: "
                             f"{', '.join(g for g, *_ in self.field_groups())}")
        return self.groups[group].embedder, self.groups[group].decoder

    def _instance_samples(self, samples: RaySamples, ws: Tensor | SceneLatent, group: str, instance: int) -> RaySamples:
        if isinstance(ws, SceneLatent) and group in ws.frames:
            return ws.frames[group].instance(samples, instance)
        return samples

    def query_field(self, points: Tensor, directions: Tensor, ws: Tensor | SceneLatent,
                    scenes: dict[tuple[str, int], Any], *, groups: Iterable[str] = (MAIN_GROUP,)) -> tuple[Field, bool]:
        """The field of ``groups`` at world ``points [B, R, S, 3]`` seen along ``directions``, for shape
        extraction. Returns ``(field, activated)``: one group instance gives the decoder's raw field
        (``activated`` False); several, or a group whose point sampler declares a
        :meth:`~gan3d.core.interfaces.PointSampler.support`, are composed as the renderer composes fields at
        shared samples (the sum of the densities the renderer's
        :meth:`~gan3d.core.interfaces.VolumeRenderer.density` gives, zero outside each instance's box and
        outside the sampler's support), an already activated ``density`` (``activated`` True)."""
        base = RaySamples(points.new_zeros(*points.shape[:2], 3), directions[..., 0, :], points.new_zeros(
            *points.shape[:-1], 1), points, sample_directions_override=directions)
        samplers = {g: s for g, s, *_ in self.field_groups()}
        parts = []
        for g in groups:
            sampler = samplers.get(g)
            sampler = self.point_sampler if sampler is None else sampler  # no sampler: main's samples
            support = sampler.support(points)
            for i in range(self.instances(ws, g)):
                local = self._instance_samples(base, ws, g, i)
                if support is not None:
                    local = dataclasses.replace(local, mask=support if local.mask is None else local.mask & support)
                field = self.field(local.points, local.sample_directions, ws, scenes[(g, i)], group=g, instance=i)
                parts.append((local, field))
        if len(parts) == 1 and parts[0][0].mask is None:
            return parts[0][1], False
        densities = []
        for local, field in parts:
            sigma = self.renderer.density(field.geometry)
            if local.mask is not None:
                sigma = torch.where(local.mask, sigma, torch.zeros_like(sigma))
            densities.append(sigma)
        stacked = torch.stack(densities)
        total = stacked.sum(0)
        weights = stacked / torch.where(total == 0, torch.full_like(total, 1e-4), total)
        features = sum(w * f.features for w, (_, f) in zip(weights, parts))
        return Field(features=features, density=total), True

    # ------------------------------------------------------------ rendering
    def _group_parts(self, samples: dict[str, RaySamples], ws, scenes, requests: frozenset[str], keep: dict | None,
                     generator: torch.Generator | None) -> list[FieldSamples]:
        """Every group instance's field on its samples (after its importance pass), for one chunk of rays."""
        parts: list[FieldSamples] = []
        want_sdf = "sdf_gradients" in requests
        for g, sampler, _, _, num_importance in self.field_groups():
            set_name = g if g in samples else MAIN_GROUP
            base = samples[set_name]
            for i in range(self.instances(ws, g)):
                local = self._instance_samples(base, ws, g, i)
                field = self.renderer.sample_noise(self.field(local.points, local.sample_directions, ws,
                                                              scenes[(g, i)], group=g, instance=i,
                                                              sdf_gradients=want_sdf))
                if keep is not None and g == MAIN_GROUP and i == 0:
                    keep.setdefault("coarse_samples", []).append(local)
                    keep.setdefault("coarse_field", []).append(field)
                if num_importance:
                    coarse = self.renderer.render([FieldSamples(local, field, set_name, f"{g}/{i}")])
                    fine = sampler.importance(local, coarse.weights.detach(), num_importance, generator=generator)
                    fine_field = self.renderer.sample_noise(self.field(
                        fine.points, fine.sample_directions, ws, scenes[(g, i)], group=g, instance=i,
                        sdf_gradients=want_sdf))
                    if keep is not None and g == MAIN_GROUP and i == 0:
                        keep.setdefault("fine_samples", []).append(fine)
                        keep.setdefault("fine_field", []).append(fine_field)
                    local, field = merge_samples(local, field, fine, fine_field)
                    set_name = f"{g}/{i}"  # merged samples are this instance's own
                parts.append(FieldSamples(local, field, set_name, f"{g}/{i}"))
        return parts

    def _sample(self, cameras: Cameras, resolution: tuple[int, int] | None, pixels: Tensor | None,
                generator: torch.Generator | None) -> dict[str, RaySamples]:
        out = {MAIN_GROUP: self.point_sampler(cameras, resolution, pixels=pixels, generator=generator)}
        for name, group in self.groups.items():
            if group.point_sampler is not None:
                out[name] = group.point_sampler(cameras, resolution, pixels=pixels, generator=generator)
        return out

    def render_rays(self, samples: dict[str, RaySamples], ws: Tensor | SceneLatent, scenes: dict, *,
                    requests: frozenset[str] = frozenset(), generator: torch.Generator | None = None,
                    keep: dict[str, list] | None = None) -> tuple[Render, dict[str, Render]]:
        """Every group's fields at ``samples`` (one chunk of rays), composited; and, with ``'layers'``
        requested, each group instance rendered alone."""
        parts = self._group_parts(samples, ws, scenes, requests, keep, generator)
        render = self.renderer.render(parts)
        layers = {p.name: self.renderer.render([p]) for p in parts} if "layers" in requests else {}
        if "intervals" not in requests:  # not kept beyond this chunk unless asked for
            for r in (render, *layers.values()):
                r.interval_features = r.interval_weights = r.interval_depths = None
        return render, layers

    def _render_all(self, samples: dict[str, RaySamples], ws, scenes, requests, generator, keep):
        num_rays = samples[MAIN_GROUP].origins.shape[1]
        chunk = self.chunk or num_rays
        renders, layer_chunks = [], []
        for i in range(0, num_rays, chunk):
            index = slice(i, i + chunk)
            part = {k: s.rays(index) for k, s in samples.items()}
            render, layers = self.render_rays(part, ws, scenes, requests=requests, generator=generator, keep=keep)
            renders.append(render)
            layer_chunks.append(layers)
        return _cat_renders(renders), {k: _cat_renders([lc[k] for lc in layer_chunks]) for k in layer_chunks[0]}

    def render_pixels(self, ws: Tensor | SceneLatent, cameras: Cameras, pixels: Tensor, *,
                      generator: torch.Generator | None = None, requests: Iterable[str] = (),
                      scenes: dict[tuple[str, int], Any] | None = None) -> Render:
        """The volume render of the rays through ``pixels [B, R, 2]`` (normalized image coordinates
        ``(u, v)``), e.g. StyleNeRF's NeRF path regularization at random pixels of the output grid.

        ``scenes``: the per-batch scenes of an image rendered before (its ``aux['scenes']``, with the
        ``'scene'`` request), so that these rays see the same scene, random inputs included (StyleNeRF's
        background latent); by default they are made anew from ``ws``. With the ``'intervals'`` request
        the render keeps every interval's features, weight and depth (``Render.interval_*``).
        """
        requests = _check_requests(requests)
        samples = self._sample(cameras, None, pixels, generator)
        if scenes is None:
            scenes = self.scenes(ws, generator=generator)
        render, _ = self._render_all(samples, ws, scenes, requests, generator, None)
        return render

    def synthesis(
        self,
        ws: Tensor | SceneLatent,
        cameras: Cameras,
        *,
        resolution: int | None = None,
        generator: torch.Generator | None = None,
        requests: Iterable[str] = (),
        alpha: float | None = None,
    ) -> GeneratorOutput:
        """Render ``ws`` from ``cameras`` at ``resolution`` (default ``render_resolution``).

        ``alpha`` is the upsampler's fade-in (progressive growing); ``None`` leaves it to the upsampler
        (its own schedule, e.g. a fade-in buffer set by ``set_training_step`` and kept in checkpoints; 1 for
        upsamplers without one). ``requests`` (see :data:`REQUESTS`) what to keep for the caller in ``aux``
        and ``layers``.
        """
        requests = _check_requests(requests)
        res = resolution or self.render_resolution
        samples = self._sample(cameras, (res, res), None, generator)
        scenes = self.scenes(ws, generator=generator)
        keep: dict[str, list] | None = {} if "samples" in requests else None
        render, layers = self._render_all(samples, ws, scenes, requests, generator, keep)

        features = feature_image(render.features, res)
        rgb = features[:, :3]
        if self.image_range == "unit":
            rgb = rgb * 2 - 1
            features = torch.cat([rgb, features[:, 3:]], dim=1)
        fade = {} if alpha is None else {"alpha": alpha}
        out_image = self.upsampler(features, self.rows(ws, "upsampler"), **fade)
        if isinstance(out_image, UpsampledImages):  # an upsampler that also changes the raw image (EG3D 2X/4X)
            out_image, rgb = out_image.image, out_image.image_raw
        aux: dict[str, Any] = {}
        if keep is not None:
            aux = {k: v if len(v) > 1 else v[0] for k, v in keep.items()}
            aux["samples"] = samples[MAIN_GROUP]
        if "weights" in requests:
            aux["weights"] = render.weights
        if "scene" in requests:
            aux["scene"] = scenes[(MAIN_GROUP, 0)]
            aux["scenes"] = scenes
        if "intervals" in requests:
            aux["interval_features"] = render.interval_features
            aux["interval_weights"] = render.interval_weights
            aux["interval_depths"] = render.interval_depths
        depth, alpha_img = feature_image(render.depth, res), feature_image(render.alpha, res)
        layer_images = {
            name: Render(features=feature_image(r.features, res), depth=feature_image(r.depth, res),
                         weights=r.weights, alpha=feature_image(r.alpha, res), transmittance=None)
            for name, r in layers.items()
        }
        return GeneratorOutput(
            image=out_image,
            image_raw=rgb,
            depth=depth,
            alpha=alpha_img,
            surface_depth=surface_depth(depth, alpha_img, self.renderer.depth_mode),
            features=features,
            cameras=cameras,
            ws=ws,
            aux=aux,
            layers=layer_images,
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
        requests: Iterable[str] = (),
        alpha: float | None = None,
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
        return self.synthesis(ws, cameras, resolution=resolution, generator=generator, requests=requests,
                              alpha=alpha)


def _check_requests(requests: Iterable[str]) -> frozenset[str]:
    requests = frozenset(requests)
    unknown = requests - REQUESTS
    if unknown:
        raise ValueError(f"unknown generator request(s) {sorted(unknown)}; known: {', '.join(sorted(REQUESTS))}")
    return requests


def _cat_renders(renders: list[Render]) -> Render:
    if len(renders) == 1:
        return renders[0]
    optional = {}
    for name in ("transmittance", "interval_features", "interval_weights", "interval_depths"):
        if all(getattr(r, name) is not None for r in renders):
            optional[name] = torch.cat([getattr(r, name) for r in renders], dim=1)
    names = ("features", "depth", "weights", "alpha")
    return Render(*(torch.cat([getattr(r, n) for r in renders], dim=1) for n in names), **optional)


# ---------------------------------------------------------------- building
def build_module(recipe: Recipe, slot: str, registry=None, **wired: Any) -> nn.Module:
    """Build the module of ``slot`` in ``recipe`` from the registry (with ``wired`` options added)."""
    from .registry import get_registry

    registry = registry or get_registry()
    spec = recipe.modules[slot]
    _, family = split_slot(slot)
    return registry.build(family, spec.name, **{**spec.kwargs, **wired})


def _wired_options(recipe: Recipe, slot: str, registry, upstream: dict[str, Any], check: bool = True) -> dict[str, Any]:
    """The options the generator fills in for ``slot`` from ``upstream``, checked against the recipe (unless
    ``check`` is off: the discovery pass's provisional values)."""
    spec = recipe.modules[slot]
    _, family = split_slot(slot)
    cls = registry.get(family, spec.name)
    if not (isinstance(cls, type) and issubclass(cls, Wired)):
        return {}
    options = cls.wire(dict(spec.kwargs), upstream)

    def contradicts(given: Any, value: Any) -> bool:
        if isinstance(given, dict) and isinstance(value, dict):  # nested options: keys set on both sides
            return any(contradicts(given[k], value[k]) for k in given.keys() & value.keys())
        return given != value

    for name, value in options.items():
        given = spec.kwargs.get(name)
        if check and name in spec.kwargs and contradicts(given, value):
            raise RecipeError(
                f"recipe {recipe.method!r}: {slot}.{name}={given!r} contradicts the generator's wiring, which "
                f"gives {value!r} from the upstream modules ({', '.join(f'{k}={v}' for k, v in upstream.items())}); "
                f"remove {slot}.{name} from the recipe (the generator sets it)"
            )
    return options


def _group_names(recipe: Recipe) -> list[str]:
    names: list[str] = []
    for slot in recipe.modules:
        group, family = split_slot(slot)
        if group != MAIN_GROUP and family in GROUP_FAMILIES and group not in names:
            names.append(group)
    return names


def _build_all(recipe: Recipe, registry, num_ws: int | None) -> tuple[dict[str, nn.Module], dict[str, dict], int]:
    """Build every generator slot in data-flow order with wiring; returns ``(modules, wired options, total
    latent rows)``. ``num_ws``: the mapper's rows (``None`` on the discovery pass: 1)."""
    mods: dict[str, nn.Module] = {}
    wired: dict[str, dict] = {}

    def build(slot: str, upstream: dict[str, Any], check: bool = True) -> nn.Module:
        wired[slot] = _wired_options(recipe, slot, registry, upstream, check)
        mods[slot] = build_module(recipe, slot, registry, **wired[slot])
        return mods[slot]

    mapper = build("stochasticity_mapper", {"num_ws": num_ws or 1}, check=num_ws is not None)
    build("pose_sampler", {})
    groups = [MAIN_GROUP] + _group_names(recipe)
    out_channels: dict[str, int] = {}
    for g in groups:
        for family in ("point_embedder", "feature_decoder"):
            if group_slot(g, family) not in recipe.modules:
                raise RecipeError(f"recipe {recipe.method!r}: field group {g!r} has no {group_slot(g, family)} slot")
        if group_slot(g, "point_sampler") in recipe.modules:
            build(group_slot(g, "point_sampler"), {})
        code_dim = mapper.code_dim(g)
        emb = build(group_slot(g, "point_embedder"), {"w_dim": code_dim})
        dec = build(group_slot(g, "feature_decoder"), {"in_channels": emb.out_channels, "w_dim": code_dim})
        out_channels[g] = dec.out_channels
    if len(set(out_channels.values())) > 1:
        raise RecipeError(f"recipe {recipe.method!r}: the field groups' decoders output different feature channels "
                          f"({out_channels}); they are composited into one feature image, so they must agree")
    build("volume_renderer", {})
    build("upsampler", {"in_channels": out_channels[MAIN_GROUP], "w_dim": mapper.code_dim("upsampler")})
    consumers = []
    for g in groups:
        consumers += [(s, mods[s]) for s in (group_slot(g, "point_embedder"), group_slot(g, "feature_decoder"))]
    consumers.append(("upsampler", mods["upsampler"]))
    _, total = allocate_ws(consumers)
    return mods, wired, total


def build_generator(recipe: Recipe, registry=None) -> Generator:
    """Assemble the generator a recipe describes (raises a clear error for anything missing).

    The modules are built in data-flow order, each with the options its upstream wires (see the module
    docstring); a first pass, which leaves the random state untouched, finds the latent rows the
    consumers read so the mapper is built once with the right ``num_ws``.
    """
    from .registry import check_kwargs, get_registry

    registry = registry or get_registry()
    generator_options = dict(recipe.generator)
    group_options = generator_options.pop("groups", {}) or {}
    if not isinstance(group_options, dict):
        raise RecipeError(f"recipe {recipe.method!r}: generator.groups must be a mapping of group name to options")
    for name, options in group_options.items():
        if name not in _group_names(recipe):
            raise RecipeError(f"recipe {recipe.method!r}: generator.groups names {name!r}, which has no slots "
                              f"({name}/point_embedder, {name}/feature_decoder)")
        unknown = set(options) - {"num_importance"}
        if unknown:
            raise RecipeError(f"recipe {recipe.method!r}: generator.groups.{name} has unknown option(s) "
                              f"{sorted(unknown)}; known: num_importance")
    with torch.random.fork_rng(devices=[]):
        probe, _, total = _build_all(recipe, registry, None)
    latent_kind = probe["stochasticity_mapper"].latent_kind
    del probe
    mods, _, _ = _build_all(recipe, registry, total if latent_kind == "ws" else None)
    groups = {}
    for name in _group_names(recipe):
        sampler = mods.get(group_slot(name, "point_sampler"))
        groups[name] = FieldGroup(sampler, mods[group_slot(name, "point_embedder")],
                                  mods[group_slot(name, "feature_decoder")],
                                  num_importance=int(group_options.get(name, {}).get("num_importance", 0)))
    main = {slot: mods[slot] for slot in GENERATOR_SLOTS}
    check_kwargs(Generator, {**main, **generator_options}, f"recipe {recipe.method!r} generator")
    return Generator(**main, **generator_options, groups=groups)
