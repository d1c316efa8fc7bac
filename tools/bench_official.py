"""Side-by-side timing against the official implementations (``tools/bench.py --official-src``).

    python tools/bench.py --method eg3d pigan --official-src eg3d=/src/eg3d pigan=/src/pi-GAN

For each method with an adapter here, in the child process that measures the method:

1. the official generator (and, when training is timed, its discriminator, loss and optimizers) is
   built from the user's checkout at the configuration of the recipe the benchmark built for gan3d
   (the official constructor options derived from the recipe; a recipe the official code cannot
   express, such as EG3D at 64 px with the identity upsampler, is a clear error for that row);
2. the official weights are copied into gan3d's generator, EMA generator and discriminator through
   the importers' name maps (``gan3d.methods.<method>.official``), so both do the same work on the
   same weights, and their images are compared with deterministic sampling (no jitter,
   deterministic importance quantiles, constant noise) on the same latents and cameras;
3. inference calls alternate between the two (gan3d, official, official, gan3d, ...) on the same
   latents and cameras, same threads, each side under its precision rule; medians per image;
4. training steps alternate the same way: gan3d's ``Trainer.train_step`` and the official step
   (EG3D: ``training_loop.py``'s phases ``Gmain``/``Greg``/``Dmain``/``Dreg`` through the official
   ``StyleGAN2Loss.accumulate_gradients``, the flattened-gradient optimizer step and the ``G_ema``
   update; pi-GAN: ``train.py``'s discriminator and generator updates with its ``GradScaler``,
   gradient clipping, top-k and EMA), each kind of step weighted by how often it occurs in one
   lazy-regularization cycle.

Nothing of the official code is copied here: the checkout is put on ``sys.path`` and imported, and
the training steps are driven through its modules the way its training script drives them (the
lines followed are named in the comments). The official repositories and the commits the adapters
were written against: NVlabs/eg3d 7cf1fd1e99e1061e8b6ba850f91c94fe56e7afe4, marcoamonteiro/pi-GAN
0800af72b8a9371b2b62fec2ae69c32994bb802f (another commit is measured with a warning).

Precision (``--official-precision``): ``default`` runs the official code as its scripts do (EG3D:
fp16 in the super-resolution's and the discriminator's ``num_fp16_res`` blocks on CUDA, float32 on a
CPU, where the official blocks force fp32; pi-GAN: float32 inference and ``torch.cuda.amp`` fp16
training on CUDA); ``fp32`` switches the official fp16 paths off (EG3D's ``use_fp16`` flags, pi-GAN's
autocast), so both sides run the same float32 arithmetic. gan3d runs under ``--precision``.

New methods get a row by registering an :class:`OfficialAdapter` subclass with :func:`register`.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import importlib
import logging
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

logger = logging.getLogger("gan3d.bench")

#: Adapters by gan3d method name (see :func:`register`).
ADAPTERS: dict[str, type[OfficialAdapter]] = {}

Progress = Callable[[str, int, int], None]


def register(cls: type[OfficialAdapter]) -> type[OfficialAdapter]:
    """Class decorator: make ``cls`` the official adapter of ``cls.method``."""
    ADAPTERS[cls.method] = cls
    return cls


class OfficialSourceError(ValueError):
    """A bad ``--official-src`` value or a checkout the adapter cannot use."""


def parse_sources(values: list[str] | None, methods: list[str]) -> dict[str, Path]:
    """``--official-src`` values -> ``{method: checkout}``.

    Each value is ``METHOD=PATH`` or a bare ``PATH``; a bare path is given to the one requested
    method whose adapter recognizes the checkout's layout (an error when none or several do).
    """
    sources: dict[str, Path] = {}
    for value in values or []:
        head, sep, rest = value.partition("=")
        if sep and head in ADAPTERS:
            method, path = head, Path(rest).expanduser()
        elif sep and not Path(value).exists():
            known = ", ".join(sorted(ADAPTERS)) or "none"
            raise OfficialSourceError(f"--official-src {value}: no official adapter for {head!r} (adapters: {known})")
        else:
            path = Path(value).expanduser()
            matches = [m for m in methods if m in ADAPTERS and ADAPTERS[m].code_dir(path) is not None]
            if len(matches) != 1:
                what = "no requested method's" if not matches else f"several methods' ({', '.join(matches)})"
                raise OfficialSourceError(f"--official-src {value}: {what} official code is laid out there; "
                                          "write METHOD=PATH")
            method = matches[0]
        if not path.is_dir():
            raise OfficialSourceError(f"--official-src {value}: {path} is not a directory")
        if ADAPTERS[method].code_dir(path) is None:
            raise OfficialSourceError(f"--official-src {value}: {path} does not hold {ADAPTERS[method].repository} "
                                      f"(expected {ADAPTERS[method].layout})")
        if method not in methods:
            raise OfficialSourceError(f"--official-src {value}: {method} is not among the measured methods "
                                      f"({', '.join(methods)})")
        sources[method] = path
    return sources


def git_commit(path: Path) -> str | None:
    """HEAD of the git work tree at ``path``, or ``None`` (a plain copy)."""
    try:
        out = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _stub_module(name: str) -> None:
    """An empty module ``name`` when it cannot be imported (EG3D's dnnlib imports ``requests`` for
    URL downloads the benchmark never makes)."""
    import types

    try:
        importlib.import_module(name)
    except ImportError:
        sys.modules[name] = types.ModuleType(name)


def _shim_distutils_strtobool() -> None:
    """``distutils.util.strtobool`` where ``distutils`` cannot be imported (Python 3.12 without
    setuptools' shim): EG3D's dnnlib/util.py imports it at module level; the networks never call it."""
    import types

    try:
        importlib.import_module("distutils.util")
        return
    except ImportError:
        pass

    def strtobool(value: str) -> int:
        value = value.lower()
        if value in ("y", "yes", "t", "true", "on", "1"):
            return 1
        if value in ("n", "no", "f", "false", "off", "0"):
            return 0
        raise ValueError(f"invalid truth value {value!r}")

    package = sys.modules.get("distutils") or types.ModuleType("distutils")
    util = types.ModuleType("distutils.util")
    util.strtobool = strtobool
    package.util = util
    sys.modules["distutils"], sys.modules["distutils.util"] = package, util


@contextlib.contextmanager
def patched(owner: Any, name: str, value: Any) -> Iterator[None]:
    """Temporarily set ``owner.name = value``."""
    old = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, old)


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def image_comparison(ours, theirs) -> dict[str, float]:
    """Max abs difference and PSNR (images in [-1, 1], peak-to-peak 2) of two image batches."""
    diff = (ours.float() - theirs.float()).abs()
    mse = float(diff.square().mean())
    return {"max_abs_diff": float(diff.max()), "psnr_db": 10 * math.log10(4 / mse) if mse > 0 else float("inf")}


# ---------------------------------------------------------------------------- adapters
class OfficialAdapter:
    """How to build, feed and train one method's official code beside gan3d's.

    Subclasses set the class attributes and implement the methods that raise here.
    """

    method: ClassVar[str]
    repository: ClassVar[str]
    commit: ClassVar[str]
    #: what a checkout holds (for error messages)
    layout: ClassVar[str]

    def __init__(self, root: Path, recipe, device, *, precision: str = "default") -> None:
        self.root = Path(root)
        code = self.code_dir(self.root)
        if code is None:
            raise OfficialSourceError(f"{root} does not hold {self.repository} (expected {self.layout})")
        self.code = code
        self.recipe = recipe
        self.device = device
        if precision not in ("default", "fp32"):
            raise ValueError(f"official precision must be 'default' or 'fp32', got {precision!r}")
        self.precision = precision
        self.found_commit = git_commit(self.root)
        if self.found_commit is not None and self.found_commit != self.commit:
            logger.warning("%s is at %s; the adapter was written against %s %s", root, self.found_commit,
                           self.repository, self.commit)
        if str(code) not in sys.path:
            sys.path.insert(0, str(code))

    @classmethod
    def code_dir(cls, root: Path) -> Path | None:
        """The folder to put on ``sys.path`` when ``root`` is a checkout of this repository, else None."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """The official options of the recipe; ``OfficialSourceError`` for what the official code cannot run."""
        raise NotImplementedError

    @functools.cached_property
    def cfg(self) -> dict[str, Any]:
        return self.config()

    def info(self) -> dict[str, Any]:
        return {"repository": self.repository, "path": str(self.root), "commit": self.found_commit,
                "adapter_commit": self.commit, "precision": self.precision}

    def build(self, train: bool) -> None:
        """Build the official generator (and the training objects when ``train``)."""
        raise NotImplementedError

    def share_weights(self, trainer) -> None:
        """Copy the official weights into ``trainer.G``, ``trainer.G_ema`` (and ``trainer.D``);
        raises ``CheckpointError`` when they do not fit."""
        raise NotImplementedError

    def infer(self, z, cameras):
        """The official generator's image ``[B, 3, H, W]`` for latents ``z`` and gan3d ``cameras``."""
        raise NotImplementedError

    @contextlib.contextmanager
    def deterministic(self, G) -> Iterator[None]:
        """Both sides without random draws (for the image comparison)."""
        raise NotImplementedError

    def step_kinds(self) -> dict[tuple[bool, bool], int]:
        """``{(d_reg_due, g_reg_due): count}`` over one lazy-regularization cycle."""
        return {(True, False): 1}

    def kind_of(self, step: int) -> tuple[bool, bool]:
        """The kind of training iteration ``step``."""
        return next(iter(self.step_kinds()))

    def train_step(self, kind: tuple[bool, bool], real, labels, gen_labels, step: int) -> None:
        """One official training iteration of ``kind`` at training ``step``: ``real`` images
        ``[B, 3, H, W]`` in [-1, 1] with camera ``labels`` ``[B, 25]``, ``gen_labels`` ``[4 B, 25]``
        camera labels of other training images (for methods that condition the generator on them)."""
        raise NotImplementedError


def _fit(module, state, what: str) -> None:
    from gan3d.core.official.importer import fit_state_dict

    module.load_state_dict(fit_state_dict(module, state, what=what))


@register
class EG3DOfficial(OfficialAdapter):
    """NVlabs/eg3d's ``TriPlaneGenerator``, ``DualDiscriminator`` and ``StyleGAN2Loss``."""

    method = "eg3d"
    repository = "NVlabs/eg3d"
    commit = "7cf1fd1e99e1061e8b6ba850f91c94fe56e7afe4"
    layout = "eg3d/training/triplane.py"

    @classmethod
    def code_dir(cls, root: Path) -> Path | None:
        for code in (root / "eg3d", root):
            if (code / "training" / "triplane.py").is_file():
                return code
        return None

    # -- configuration
    def config(self) -> dict[str, Any]:
        """The official constructor options of the recipe (train.py's ``c.G_kwargs``, ``c.D_kwargs``,
        ``c.loss_kwargs`` and intervals); ``OfficialSourceError`` for what the official code cannot express."""
        r = self.recipe
        m = {k: (spec.name, dict(spec.kwargs)) for k, spec in r.modules.items()}

        def need(cond: bool, what: str) -> None:
            if not cond:
                raise OfficialSourceError(f"eg3d: the official TriPlaneGenerator cannot run this recipe: {what}")

        sr_name, sr = m["upsampler"]
        res = int(sr.get("image_resolution", 0))
        sr_modules = {128: "SuperresolutionHybrid2X", 256: "SuperresolutionHybrid4X", 512: "SuperresolutionHybrid8XDC"}
        need(sr_name == "eg3d_superres" and res in sr_modules,
             f"upsampler {sr_name} at {res or '?'} px (train.py has the super-resolution at 128, 256, 512 px)")
        # triplane.py: StyleGAN2Backbone(img_resolution=256, img_channels=32*3), OSGDecoder(32, 64 hidden, 32 out),
        # superresolution.py: widths and w_dim=512 fixed.
        mapper, embedder, decoder = m["stochasticity_mapper"][1], m["point_embedder"][1], m["feature_decoder"][1]
        need(m["point_embedder"][0] == "triplane" and embedder.get("resolution") == 256
             and embedder.get("channels") == 32, "tri-planes must be 256 x 256 x 32 (triplane.py)")
        need(m["feature_decoder"][0] == "eg3d_osg" and decoder.get("hidden_dim", 64) == 64
             and decoder.get("output_dim", 32) == 32, "the OSG decoder is 32 -> 64 -> 1 + 32 (triplane.py)")
        need(int(mapper["w_dim"]) == 512, "w_dim must be 512 (the super-resolution's is fixed)")
        need(not sr.get("block0_channels") and not sr.get("block1_channels"), "the super-resolution widths are fixed")
        sampler = m["point_sampler"][1]
        loss = m["loss"][1]
        disc = m["discriminator"][1]
        gen_pose_cond = bool(loss.get("gen_pose_cond", True))
        rendering = {
            # train.py rendering_options and its --cfg block
            "image_resolution": res, "disparity_space_sampling": bool(sampler.get("disparity_space_sampling", False)),
            "clamp_mode": "softplus", "superresolution_module": f"training.superresolution.{sr_modules[res]}",
            "c_gen_conditioning_zero": not gen_pose_cond,
            "gpc_reg_prob": float(loss.get("gpc_reg_prob", 0.5)) if gen_pose_cond else None,
            "c_scale": float(mapper.get("c_scale", 1.0)),
            "superresolution_noise_mode": str(sr.get("noise_mode", "none")),
            "density_reg": float(loss.get("density_reg", 0.25)),
            "density_reg_p_dist": float(loss.get("density_reg_p_dist", 0.004)), "reg_type": "l1",
            "decoder_lr_mul": float(decoder.get("lr_multiplier", 1.0)), "sr_antialias": bool(sr.get("antialias", True)),
            "depth_resolution": int(sampler["num_samples"]),
            "depth_resolution_importance": int(r.generator.get("num_importance", 0)),
            "ray_start": float(sampler["ray_start"]), "ray_end": float(sampler["ray_end"]),
            "box_warp": float(embedder.get("box_warp", 1.0)),
            "white_back": bool(m["volume_renderer"][1].get("white_back", False)),
            "avg_camera_radius": 2.7, "avg_camera_pivot": list(m["pose_sampler"][1].get("orbit_center", [0, 0, 0.2])),
        }
        mapping = {"num_layers": int(mapper.get("num_layers", 2))}
        for key in ("embed_features", "layer_features"):
            if mapper.get(key):
                mapping[key] = int(mapper[key])
        conv_clamp = embedder.get("conv_clamp")
        sr_clamped = float(sr.get("conv_clamp", 256.0)) > 0
        base, cmax = int(embedder.get("channel_base", 32768)), int(embedder.get("channel_max", 512))
        G_kwargs = {
            "z_dim": int(mapper["z_dim"]), "c_dim": int(mapper.get("c_dim", 25)), "w_dim": 512,
            "img_resolution": res, "img_channels": 3, "mapping_kwargs": mapping, "rendering_kwargs": rendering,
            "channel_base": base, "channel_max": cmax,
            # train.py: num_fp16_res=0 (conv_clamp None) for the backbone; the super-resolution's 4 fp16
            # blocks are what gives it conv_clamp=256 (superresolution.py).
            "num_fp16_res": 0, "conv_clamp": None if conv_clamp is None else float(conv_clamp),
            "sr_num_fp16_res": 4 if sr_clamped else 0,
            "sr_kwargs": {"channel_base": base, "channel_max": cmax, "fused_modconv_default": "inference_only"},
            "fused_modconv_default": "inference_only",
        }
        d_clamp = float(disc.get("conv_clamp", 256.0))
        D_kwargs = {
            "c_dim": int(disc.get("c_dim", 25)), "img_resolution": int(disc.get("img_resolution", res)),
            "img_channels": 3, "architecture": str(disc.get("architecture", "resnet")),
            "channel_base": int(disc.get("channel_base", 32768)),
            "channel_max": int(disc.get("channel_max", 512)),
            "num_fp16_res": 4 if d_clamp > 0 else 0, "conv_clamp": d_clamp if d_clamp > 0 else None,
            "disc_c_noise": float(disc.get("disc_c_noise", 0.0)),
            "mapping_kwargs": {"num_layers": int(disc.get("mapping_num_layers", 8))},
            "epilogue_kwargs": {"mbstd_group_size": int(disc.get("mbstd_group_size", 4))},
            "block_kwargs": {"freeze_layers": int(disc.get("freeze_layers", 0))},
        }
        batch = int(r.training["batch_size"])
        loss_kwargs = {
            "r1_gamma": float(loss.get("r1_gamma", 1.0)), "style_mixing_prob": 0.0,
            "blur_init_sigma": float(loss.get("blur_init_sigma", 10.0)),
            "blur_fade_kimg": float(loss.get("blur_fade_kimg", 0)),
            "neural_rendering_resolution_initial": int(r.generator["render_resolution"]),
            "gpc_reg_fade_kimg": float(loss.get("gpc_reg_fade_kimg", 1000.0)),
            "gpc_reg_prob": float(loss.get("gpc_reg_prob", 0.5)) if gen_pose_cond else None,
            "dual_discrimination": True, "filter_mode": str(loss.get("filter_mode", "antialiased")),
        }
        t = r.training
        return {"G_kwargs": G_kwargs, "D_kwargs": D_kwargs, "loss_kwargs": loss_kwargs,
                "G_reg_interval": int(loss.get("density_reg_every", 4)) if rendering["density_reg"] > 0 else None,
                "D_reg_interval": int(loss.get("r1_interval", 16)), "batch": batch,
                "G_opt": {"lr": float(t["g_lr"]), "betas": list(t.get("g_betas", [0, 0.99]))},
                "D_opt": {"lr": float(t["d_lr"]), "betas": list(t.get("d_betas", [0, 0.99]))},
                "ema_kimg": float(t.get("ema_kimg", batch * 10 / 32)), "ema_rampup": t.get("ema_rampup", 0.05)}

    # -- building
    def build(self, train: bool) -> None:
        import torch

        _stub_module("requests")
        _shim_distutils_strtobool()
        from training.triplane import TriPlaneGenerator

        cfg = self.cfg
        if self.device.type == "cuda":
            # The official default the issue compares against: the PyTorch reference ops (the CUDA
            # plugins are compiled at first use with nvcc; their build fails on CUDA 13 toolchains
            # and would take minutes where it does not). bias_act.py/upfirdn2d.py: the CUDA path
            # runs only `if impl == 'cuda' and x.device.type == 'cuda' and _init()`.
            for name in ("bias_act", "upfirdn2d", "filtered_lrelu"):
                with contextlib.suppress(ImportError):
                    importlib.import_module(f"torch_utils.ops.{name}")._init = lambda: False
        torch.manual_seed(0)
        self.G = TriPlaneGenerator(**cfg["G_kwargs"]).train().requires_grad_(False).to(self.device)
        self.G.neural_rendering_resolution = int(self.recipe.generator["render_resolution"])
        if self.precision == "fp32":
            self._no_fp16(self.G)
        self.G_ema = copy.deepcopy(self.G).eval()
        self.trains = train
        if not train:
            return
        from training.dual_discriminator import DualDiscriminator
        from training.loss import StyleGAN2Loss

        self.D = DualDiscriminator(**cfg["D_kwargs"]).train().requires_grad_(False).to(self.device)
        if self.precision == "fp32":
            self._no_fp16(self.D)
        self.loss = StyleGAN2Loss(device=self.device, G=self.G, D=self.D, augment_pipe=None, **cfg["loss_kwargs"])
        # training_loop.py, "Setup training phases": lazy regularization scales lr and betas by
        # interval / (interval + 1) for both networks' optimizers.
        self.phases = []
        for name, module, opt, interval in (("G", self.G, cfg["G_opt"], cfg["G_reg_interval"]),
                                            ("D", self.D, cfg["D_opt"], cfg["D_reg_interval"])):
            ratio = interval / (interval + 1) if interval else 1.0
            optimizer = torch.optim.Adam(module.parameters(), lr=opt["lr"] * ratio,
                                         betas=[b ** ratio for b in opt["betas"]], eps=1e-8)
            if interval is None:
                self.phases.append((name + "both", module, optimizer, 1))
            else:
                self.phases += [(name + "main", module, optimizer, 1), (name + "reg", module, optimizer, interval)]

    @staticmethod
    def _no_fp16(net) -> None:
        """The official blocks' fp16 switch off (``use_fp16`` is read in their forward); the conv
        clamps stay, so the function is the default's in float32."""
        for module in net.modules():
            if hasattr(module, "use_fp16"):
                module.use_fp16 = False

    def share_weights(self, trainer) -> None:
        from gan3d.core.official.importer import rename_keys
        from gan3d.methods.eg3d.official import GENERATOR_RENAMES

        state = rename_keys(self.G.state_dict(), GENERATOR_RENAMES)
        _fit(trainer.G, state, "eg3d generator")
        _fit(trainer.G_ema, state, "eg3d EMA generator")
        if getattr(self, "D", None) is not None:
            _fit(trainer.D, self.D.state_dict(), "eg3d discriminator")

    # -- running
    def infer(self, z, cameras):
        c = cameras.label.to(z.device)
        out = self.G_ema(z, c, neural_rendering_resolution=self.G.neural_rendering_resolution)
        return out["image"]

    @contextlib.contextmanager
    def deterministic(self, G) -> Iterator[None]:
        import torch
        from training.volumetric_rendering.renderer import ImportanceRenderer

        stratified, pdf = ImportanceRenderer.sample_stratified, ImportanceRenderer.sample_pdf

        # renderer.py: sample_stratified jitters with torch.rand_like; sample_pdf(det=False) draws its
        # quantiles. Zero jitter and det=True is gan3d's sampler in eval mode without perturb_in_eval
        # (tools/fixtures/make_eg3d_fixture.py: deterministic_renderer).
        def sample_stratified(renderer, *args, **kwargs):
            with patched(torch, "rand_like", torch.zeros_like):
                return stratified(renderer, *args, **kwargs)

        def sample_pdf(renderer, bins, weights, n_importance, det=False, eps=1e-5):
            return pdf(renderer, bins, weights, n_importance, det=True, eps=eps)

        sampler, embedder = G.point_sampler, G.embedder
        saved = sampler.perturb_in_eval, embedder.noise_mode
        forward = self.G_ema.forward

        def const_noise(*args, **kwargs):
            kwargs["noise_mode"] = "const"
            return forward(*args, **kwargs)

        sampler.perturb_in_eval, embedder.noise_mode = False, "const"
        try:
            with patched(ImportanceRenderer, "sample_stratified", sample_stratified), \
                    patched(ImportanceRenderer, "sample_pdf", sample_pdf), patched(self.G_ema, "forward", const_noise):
                yield
        finally:
            sampler.perturb_in_eval, embedder.noise_mode = saved

    def kind_of(self, step: int) -> tuple[bool, bool]:
        # training_loop.py: a phase runs when batch_idx % phase.interval == 0
        d, g = self.cfg["D_reg_interval"], self.cfg["G_reg_interval"]
        return (d is not None and step % d == 0, g is not None and step % g == 0)

    def step_kinds(self) -> dict[tuple[bool, bool], int]:
        kinds: dict[tuple[bool, bool], int] = {}
        for i in range(math.lcm(self.cfg["D_reg_interval"] or 1, self.cfg["G_reg_interval"] or 1)):
            kinds[self.kind_of(i)] = kinds.get(self.kind_of(i), 0) + 1
        return kinds

    @contextlib.contextmanager
    def _training_globals(self) -> Iterator[None]:
        """training_loop.py's global switches: cudnn.benchmark (train.py default), no TF32, the
        conv2d and grid_sample gradfix ops; restored afterwards so gan3d's steps run as they would."""
        import torch
        from torch_utils.ops import conv2d_gradfix, grid_sample_gradfix

        backends = torch.backends
        saved = (backends.cudnn.benchmark, backends.cuda.matmul.allow_tf32, backends.cudnn.allow_tf32,
                 conv2d_gradfix.enabled, grid_sample_gradfix.enabled)
        backends.cudnn.benchmark = True
        backends.cuda.matmul.allow_tf32 = backends.cudnn.allow_tf32 = False
        conv2d_gradfix.enabled = grid_sample_gradfix.enabled = True
        try:
            yield
        finally:
            (backends.cudnn.benchmark, backends.cuda.matmul.allow_tf32, backends.cudnn.allow_tf32,
             conv2d_gradfix.enabled, grid_sample_gradfix.enabled) = saved

    def train_step(self, kind: tuple[bool, bool], real, labels, gen_labels, step: int) -> None:
        """One iteration of training_loop.py's loop body at ``batch_idx`` of ``kind``."""
        import torch

        d_due, g_due = kind
        batch = real.shape[0]
        cur_nimg = step * batch
        gen_z = torch.randn(len(self.phases) * batch, self.G.z_dim, device=self.device).split(batch)
        # all_gen_c: labels of random training images
        gen_c = gen_labels[:len(self.phases) * batch].split(batch)
        with self._training_globals():
            for (name, module, opt, interval), z, c in zip(self.phases, gen_z, gen_c, strict=True):
                if name.endswith("reg") and not (d_due if name[0] == "D" else g_due):
                    continue
                opt.zero_grad(set_to_none=True)
                module.requires_grad_(True)
                self.loss.accumulate_gradients(phase=name, real_img=real, real_c=labels,
                                               gen_z=z, gen_c=c, gain=interval, cur_nimg=cur_nimg)
                module.requires_grad_(False)
                # "Update weights": the gradients flattened, nan_to_num'd and split back, then the step.
                params = [p for p in module.parameters() if p.numel() > 0 and p.grad is not None]
                if params:
                    flat = torch.cat([p.grad.flatten() for p in params])
                    torch.nan_to_num(flat, nan=0, posinf=1e5, neginf=-1e5, out=flat)
                    for p, g in zip(params, flat.split([p.numel() for p in params]), strict=True):
                        p.grad = g.reshape(p.shape)
                opt.step()
            # "Update G_ema": half-life ema_kimg with ramp-up, parameters lerped, buffers copied.
            ema_nimg = self.cfg["ema_kimg"] * 1000
            if self.cfg["ema_rampup"] is not None:
                ema_nimg = min(ema_nimg, cur_nimg * self.cfg["ema_rampup"])
            beta = 0.5 ** (batch / max(ema_nimg, 1e-8))
            with torch.no_grad():
                for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters(), strict=True):
                    p_ema.copy_(p.lerp(p_ema, beta))
                for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers(), strict=True):
                    b_ema.copy_(b)


@register
class PiGANOfficial(OfficialAdapter):
    """marcoamonteiro/pi-GAN's ``ImplicitGenerator3d`` around ``SPATIALSIRENBASELINE`` (CelebA, Cats)
    or ``TALLSIREN`` (CARLA), its discriminators and train.py's step."""

    method = "pigan"
    repository = "marcoamonteiro/pi-GAN"
    commit = "0800af72b8a9371b2b62fec2ae69c32994bb802f"
    layout = "generators/generators.py and siren/siren.py"

    _DISCRIMINATORS = {"celeba": "CCSEncoderDiscriminator", "cats": "StridedDiscriminator",
                       "carla": "ProgressiveEncoderDiscriminator"}

    @classmethod
    def code_dir(cls, root: Path) -> Path | None:
        ok = (root / "generators" / "generators.py").is_file() and (root / "siren" / "siren.py").is_file()
        return root if ok else None

    def config(self) -> dict[str, Any]:
        """curriculums.py's metadata of the recipe (sizes, sampling, poses, loss weights)."""
        r = self.recipe
        m = {k: (spec.name, dict(spec.kwargs)) for k, spec in r.modules.items()}

        def need(cond: bool, what: str) -> None:
            if not cond:
                raise OfficialSourceError(f"pigan: the official ImplicitGenerator3d cannot run this recipe: {what}")

        variant = r.variant if r.variant in self._DISCRIMINATORS else None
        need(variant is not None,
             f"variant {r.variant!r} is not one of curriculums.py's ({', '.join(self._DISCRIMINATORS)})")
        mapper, decoder, sampler = m["stochasticity_mapper"][1], m["feature_decoder"][1], m["point_sampler"][1]
        pose = m["pose_sampler"][1]
        need(m["upsampler"][0] == "identity", "pi-GAN renders its image directly (no upsampler)")
        need(int(decoder.get("num_layers", 8)) == 8, "SPATIALSIRENBASELINE and TALLSIREN have 8 FiLM layers")
        need(int(mapper.get("hidden_dim", 256)) == 256, "the mapping network's hidden width is 256 (siren.py)")
        steps = int(sampler["num_samples"])
        need(int(r.generator.get("num_importance", steps)) == steps,
             "hierarchical sampling draws as many fine samples as coarse ones (generators.py)")
        # curriculums.py sample_dist (volumetric_rendering.py sample_camera_positions), its yaw theta
        # being our pi - yaw (tests/methods/test_official_pigan.py)
        strategy = pose.get("yaw_strategy")
        need(strategy in ("normal", "uniform") and pose.get("polar_strategy") == strategy,
             f"pose sampler {strategy!r}: curriculums.py draws 'gaussian', 'uniform' or 'spherical_uniform' poses")
        if strategy == "normal":
            poses = {"sample_dist": "gaussian", "h_mean": math.pi - float(pose["yaw_mean"]),
                     "h_stddev": float(pose["yaw_stddev"]), "v_mean": float(pose["polar_mean"]),
                     "v_stddev": float(pose["polar_stddev"])}
        else:
            (a, b), (c, d) = pose["yaw_range"], pose["polar_range"]
            poses = {"sample_dist": "spherical_uniform" if pose.get("polar_parametrization") == "arccos" else "uniform",
                     "h_mean": math.pi - (a + b) / 2, "h_stddev": (b - a) / 2, "v_mean": (c + d) / 2,
                     "v_stddev": (d - c) / 2}
        loss = m["loss"][1]
        renderer = m["volume_renderer"][1]
        film = int(decoder.get("hidden_dim") or mapper.get("film_dim") or 256)
        stage = r.training.get("stages", [{}])[0] if r.training.get("stages") else {}
        return {
            "siren": "TALLSIREN" if variant == "carla" else "SPATIALSIRENBASELINE", "hidden_dim": film,
            "z_dim": int(mapper.get("z_dim", 256)), "discriminator": self._DISCRIMINATORS[variant],
            "metadata": {
                "img_size": int(r.generator["render_resolution"]), "fov": float(pose.get("fov", 12.0)),
                "ray_start": float(sampler["ray_start"]), "ray_end": float(sampler["ray_end"]), "num_steps": steps,
                "hierarchical_sample": True, "clamp_mode": "relu", "sample_dist": poses.pop("sample_dist"),
                "white_back": bool(renderer.get("white_back", False)),
                "last_back": bool(renderer.get("last_back", False)),
                "eval_last_back": bool(renderer.get("eval_last_back", False)),
                "lock_view_dependence": False,
            },
            "r1_lambda": float(loss.get("r1_gamma", 0.2)), "pos_lambda": float(loss.get("pos_lambda", 15.0)),
            "z_lambda": float(loss.get("z_lambda", 0.0)), "topk_interval": int(loss.get("topk_interval", 2000)),
            "topk_v": float(loss.get("topk_v", 0.6)), "batch_split": int(loss.get("batch_split", 1)),
            "grad_clip": float(r.training.get("g_grad_clip") or r.training.get("grad_clip") or 10.0),
            "d_grad_clip": float(r.training.get("d_grad_clip") or r.training.get("grad_clip") or 10.0),
            "gen_lr": float(stage.get("g_lr", r.training.get("g_lr", 6e-5))),
            "disc_lr": float(stage.get("d_lr", r.training.get("d_lr", 2e-4))),
            "betas": tuple(r.training.get("g_betas", (0.0, 0.9))), "fade_steps": int(stage.get("fade_steps", 10000)),
            "poses": poses,
        }

    def build(self, train: bool) -> None:
        import functools

        import torch

        _stub_module("matplotlib")  # imported by pi-GAN modules, unused by the networks
        _stub_module("matplotlib.pyplot")
        siren = importlib.import_module("siren.siren")
        generators = importlib.import_module("generators.generators")
        cfg = self.cfg
        torch.manual_seed(0)
        self.G = generators.ImplicitGenerator3d(functools.partial(getattr(siren, cfg["siren"]),
                                                                  hidden_dim=cfg["hidden_dim"]), cfg["z_dim"])
        self.G = self.G.to(self.device)
        self.G.set_device(self.device)
        self.trains = train
        if not train:
            return
        if cfg["z_dim"] != 256:
            # train.py: MSELoss()(g_pred_latent, z) with the discriminators' fixed 256-wide latent head
            raise OfficialSourceError(f"pigan: the official training step needs z_dim 256 (its discriminators' latent "
                                      f"head), the recipe has {cfg['z_dim']}; time inference only (--no-train)")
        discriminators = importlib.import_module("discriminators.discriminators" if cfg["discriminator"].startswith(
            "Progressive") else "discriminators.sgdiscriminators")
        self.D = getattr(discriminators, cfg["discriminator"])().to(self.device)
        # train.py: Adam(lr, betas, weight_decay=0) for both networks, GradScaler (enabled on CUDA),
        # torch_ema EMAs of decay 0.999 and 0.9999.
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=cfg["gen_lr"], betas=cfg["betas"], weight_decay=0)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=cfg["disc_lr"], betas=cfg["betas"], weight_decay=0)
        amp = self.device.type == "cuda" and self.precision == "default"
        self.scaler = torch.amp.GradScaler("cuda", enabled=amp)
        self.amp = amp
        self.emas = [_EMA(self.G.parameters(), decay) for decay in (0.999, 0.9999)]

    def share_weights(self, trainer) -> None:
        from gan3d.core.official.importer import rename_keys
        from gan3d.methods.pigan.official import DISCRIMINATOR_RENAMES, GENERATOR_RENAMES

        for ours, what in ((trainer.G, "pigan generator"), (trainer.G_ema, "pigan EMA generator")):
            state = rename_keys(self.G.state_dict(), GENERATOR_RENAMES)
            # gan3d keeps the truncation centre as a buffer; pi-GAN re-estimates it per call (unused at psi=1).
            state["mapper.w_avg"] = ours.state_dict()["mapper.w_avg"]
            _fit(ours, state, what)
        if getattr(self, "D", None) is not None:
            _fit(trainer.D, rename_keys(self.D.state_dict(), DISCRIMINATOR_RENAMES), "pigan discriminator")

    def _poses(self, cameras):
        """pi-GAN's (h_mean, v_mean) ``[B, 1]`` of gan3d cameras: its yaw theta is our pi - yaw
        (tests/methods/test_official_pigan.py), its pitch our polar angle."""
        if cameras.angles is None:
            raise ValueError("pigan: the cameras carry no angles for the official generator")
        angles = cameras.angles.to(self.device)
        return math.pi - angles[:, :1], angles[:, 1:2]

    def _metadata(self, training: bool, step: int = 0) -> dict[str, Any]:
        meta = dict(self.cfg["metadata"])
        if not training:  # the render scripts: metadata['last_back'] = eval_last_back, no density noise
            meta["last_back"] = meta["eval_last_back"]
        meta.pop("eval_last_back")
        meta["nerf_noise"] = max(0.0, 1.0 - step / 5000.0) if training else 0.0  # train.py
        return meta

    def infer(self, z, cameras):
        h, v = self._poses(cameras)
        self.G.eval()
        image, _ = self.G(z, h_stddev=0.0, v_stddev=0.0, h_mean=h, v_mean=v, **self._metadata(False))
        return image

    @contextlib.contextmanager
    def deterministic(self, G) -> Iterator[None]:
        import torch

        rendering = importlib.import_module("generators.volumetric_rendering")
        generators = importlib.import_module("generators.generators")
        perturb, sample_pdf = rendering.perturb_points, generators.sample_pdf

        # tools/fixtures/make_pigan_fixture.py deterministic_sampling: perturb_points' jitter at 0.5 of
        # an interval (its torch.rand), sample_pdf(det=True).
        def no_jitter(points, z_vals, ray_directions, device):
            half = lambda *shape, **kw: torch.full(shape[0] if len(shape) == 1 else shape, 0.5, device=device)  # noqa: E731
            with patched(torch, "rand", half):
                return perturb(points, z_vals, ray_directions, device)

        def det_pdf(bins, weights, n_importance, det=False, eps=1e-5):
            return sample_pdf(bins, weights, n_importance, det=True, eps=eps)

        sampler = G.point_sampler
        saved = sampler.perturb_in_eval
        sampler.perturb_in_eval = False
        try:
            with patched(rendering, "perturb_points", no_jitter), patched(generators, "sample_pdf", det_pdf):
                yield
        finally:
            sampler.perturb_in_eval = saved

    def train_step(self, kind: tuple[bool, bool], real, labels, gen_labels, step: int) -> None:
        """train.py's loop body (``# TRAIN DISCRIMINATOR`` and ``# TRAIN GENERATOR``)."""
        import torch
        import torch.nn.functional as F

        cfg, G, D = self.cfg, self.G, self.D
        meta = self._metadata(True, step)
        alpha = min(1.0, step / cfg["fade_steps"])
        autocast = torch.autocast("cuda", dtype=torch.float16, enabled=self.amp)
        G.train()
        D.train()
        split = cfg["batch_split"]
        batch = real.shape[0]
        poses = cfg["poses"]
        real = real.detach().clone()
        with autocast:
            with torch.no_grad():
                z = torch.randn(batch, cfg["z_dim"], device=self.device)
                images, positions = [], []
                for s in range(split):
                    sub = z[s * batch // split:(s + 1) * batch // split]
                    im, pos = G(sub, **poses, **meta)
                    images.append(im)
                    positions.append(pos)
                gen_imgs, gen_positions = torch.cat(images), torch.cat(positions)
            real.requires_grad = True
            r_preds, _, _ = D(real, alpha, **meta)
        if cfg["r1_lambda"] > 0:
            grad_real = torch.autograd.grad(outputs=self.scaler.scale(r_preds.sum()), inputs=real, create_graph=True)[0]
            grad_real = grad_real * (1.0 / self.scaler.get_scale())
        with autocast:
            penalty = 0.5 * cfg["r1_lambda"] * (grad_real.view(batch, -1).norm(2, dim=1) ** 2).mean() \
                if cfg["r1_lambda"] > 0 else 0
            g_preds, g_latent, g_position = D(gen_imgs, alpha, **meta)
            identity = 0
            if cfg["z_lambda"] > 0 or cfg["pos_lambda"] > 0:
                identity = (F.mse_loss(g_latent, z) * cfg["z_lambda"]
                            + F.mse_loss(g_position, gen_positions) * cfg["pos_lambda"])
            d_loss = F.softplus(g_preds).mean() + F.softplus(-r_preds).mean() + penalty + identity
            d_loss.item()  # train.py: discriminator_losses.append(d_loss.item())
        self.opt_D.zero_grad()
        self.scaler.scale(d_loss).backward()
        self.scaler.unscale_(self.opt_D)
        torch.nn.utils.clip_grad_norm_(D.parameters(), cfg["d_grad_clip"])
        self.scaler.step(self.opt_D)

        z = torch.randn(batch, cfg["z_dim"], device=self.device)
        for s in range(split):
            with autocast:
                sub = z[s * batch // split:(s + 1) * batch // split]
                gen_imgs, gen_positions = G(sub, **poses, **meta)
                g_preds, g_latent, g_position = D(gen_imgs, alpha, **meta)
                topk = max(0.99 ** (step / cfg["topk_interval"]), cfg["topk_v"])
                g_preds = torch.topk(g_preds, math.ceil(topk * g_preds.shape[0]), dim=0).values
                identity = 0
                if cfg["z_lambda"] > 0 or cfg["pos_lambda"] > 0:
                    identity = (F.mse_loss(g_latent, sub) * cfg["z_lambda"]
                                + F.mse_loss(g_position, gen_positions) * cfg["pos_lambda"])
                g_loss = F.softplus(-g_preds).mean() + identity
                g_loss.item()  # train.py: generator_losses.append(g_loss.item())
            self.scaler.scale(g_loss).backward()
        self.scaler.unscale_(self.opt_G)
        torch.nn.utils.clip_grad_norm_(G.parameters(), cfg["grad_clip"])
        self.scaler.step(self.opt_G)
        self.scaler.update()
        self.opt_G.zero_grad()
        for ema in self.emas:
            ema.update(G.parameters())


class _EMA:
    """torch_ema 0.2's ``ExponentialMovingAverage.update`` (the EMA pi-GAN's train.py keeps), so
    that the official step can be driven without installing torch_ema: with ``use_num_updates``
    the decay is ``min(decay, (1 + n) / (10 + n))``, and each shadow moves by
    ``(1 - decay) (shadow - param)``."""

    def __init__(self, parameters, decay: float) -> None:
        self.decay = decay
        self.num_updates = 0
        self.shadow = [p.detach().clone() for p in parameters if p.requires_grad]

    def update(self, parameters) -> None:
        import torch

        self.num_updates += 1
        decay = min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))
        with torch.no_grad():
            params = [p for p in parameters if p.requires_grad]
            for s, p in zip(self.shadow, params, strict=True):
                s.sub_((s - p).mul_(1 - decay))


# ---------------------------------------------------------------------------- measuring
def _median_per_image(seconds: list[float], batch: int) -> float:
    return statistics.median(seconds) / batch


def compare(adapter: OfficialAdapter, trainer, *, batch: int, warmup: int, repeats: int, train_warmup: int,
            train_repeats: int, train: bool, device, precision: str, autocast: Callable[[str], Any],
            progress: Progress, ours_kinds: dict | None = None, ours_steps: dict | None = None) -> dict[str, Any]:
    """Build the official side, share weights, compare images, then time both sides interleaved
    (``ours_kinds``, ``ours_steps``: see :func:`_compare_training`, needed when ``train``)."""
    import torch

    from gan3d.core.checkpoint import CheckpointError

    method = adapter.method
    result: dict[str, Any] = {"official": adapter.info()}
    progress("official: build", 0, 1)
    adapter.build(train)
    # gan3d under --precision; the official side under its own rule (see the module doc): bf16 autocast
    # only where gan3d is under it and the official code runs under it (pi-GAN inference).
    official_autocast = precision if (precision == "bf16" and method == "pigan") else "fp32"
    result["official_autocast"] = official_autocast
    G = trainer.G_ema
    try:
        adapter.share_weights(trainer)
        result["weights_shared"] = True
    except CheckpointError as e:
        result["weights_shared"] = False
        result["weights_error"] = str(e)
        logger.warning("%s: official weights not shared (%s); images not compared", method, e)
    g = torch.Generator().manual_seed(5)
    if result["weights_shared"]:
        progress("official: images", 0, 1)
        z = torch.randn(batch, G.z_dim, generator=g).to(device)
        cams = G.pose_sampler(batch, device="cpu", generator=g).to(device)
        with torch.no_grad(), adapter.deterministic(G):
            torch.manual_seed(3)
            ours = G(z, cams).image
            torch.manual_seed(3)
            theirs = adapter.infer(z, cams)
            result["image_vs_official"] = image_comparison(ours, theirs)
            if precision != "fp32" or official_autocast != "fp32":
                with autocast(precision):
                    ours_p = G(z, cams).image
                with autocast(official_autocast):
                    theirs_p = adapter.infer(z, cams)
                result["image_vs_official_at_precision"] = image_comparison(ours_p, theirs_p)
                result["image_vs_official_fp32_at_precision"] = image_comparison(ours_p, theirs)

    times: dict[str, list[float]] = {"gan3d": [], "official": []}
    cpu_times: dict[str, list[float]] = {"gan3d": [], "official": []}
    sides = {"gan3d": lambda z, c: G(z, c), "official": adapter.infer}
    rule = {"gan3d": precision, "official": official_autocast}
    n = warmup + repeats
    for i in range(n):
        z = torch.randn(batch, G.z_dim, generator=g).to(device)
        cams = G.pose_sampler(batch, device="cpu", generator=g).to(device)
        order = ("gan3d", "official") if i % 2 == 0 else ("official", "gan3d")
        for side in order:
            progress(f"infer {side}", i + 1, n)
            _sync(device)
            t0, c0 = time.perf_counter(), time.process_time()
            with torch.no_grad(), autocast(rule[side]):
                sides[side](z, cams)
            _sync(device)
            if i >= warmup:
                times[side].append(time.perf_counter() - t0)
                cpu_times[side].append(time.process_time() - c0)
    per_image = {k: _median_per_image(v, batch) for k, v in times.items()}
    cpu_per_image = {k: _median_per_image(v, batch) for k, v in cpu_times.items()}
    result["inference"] = {
        "batch_size": batch, "seconds": times, "gan3d_s_per_image": per_image["gan3d"],
        "official_s_per_image": per_image["official"], "ratio": per_image["official"] / per_image["gan3d"],
        # process CPU seconds (all threads): steadier than wall time on a machine shared with other jobs
        "cpu_seconds": cpu_times, "gan3d_cpu_s_per_image": cpu_per_image["gan3d"],
        "official_cpu_s_per_image": cpu_per_image["official"],
        "cpu_ratio": cpu_per_image["official"] / max(cpu_per_image["gan3d"], 1e-12),
    }
    if train:
        result["training"] = _compare_training(adapter, trainer, warmup=train_warmup, repeats=train_repeats,
                                               device=device, precision=precision, autocast=autocast,
                                               progress=progress, ours_kinds=ours_kinds, ours_steps=ours_steps)
    return result


def _compare_training(adapter: OfficialAdapter, trainer, *, warmup: int, repeats: int, device, precision: str,
                      autocast, progress: Progress, ours_kinds: dict, ours_steps: dict) -> dict[str, Any]:
    """Seconds per kimg of both training steps, interleaved, cycle-averaged over the lazy regularizers.

    ``ours_kinds``/``ours_steps``: gan3d's step kinds with their counts per cycle and a training step
    index of each kind (tools/bench.py ``step_kinds``, ``representative_steps``). ``warmup`` steps of
    each side's most frequent kind come first, then ``repeats`` of every kind, alternating sides.
    """
    import torch

    theirs_kinds = adapter.step_kinds()
    batch = trainer.cfg.batch_size
    data = trainer.dataset
    base = 16 * 1000  # a multiple of every interval, far from step 0 (as tools/bench.py)
    theirs_steps = {key: next(i for i in range(base, base + 256) if adapter.kind_of(i) == key) for key in theirs_kinds}
    ours_first = max(ours_kinds, key=ours_kinds.get)
    theirs_first = max(theirs_kinds, key=theirs_kinds.get)
    rounds = [[("gan3d", ours_first, ours_steps[ours_first]), ("official", theirs_first, theirs_steps[theirs_first])]
              for _ in range(warmup)]
    rounds += [[("gan3d", k, s) for k, s in ours_steps.items()] + [("official", k, s) for k, s in theirs_steps.items()]
               for _ in range(repeats)]
    seconds: dict[str, dict[str, list[float]]] = {"gan3d": {}, "official": {}}
    g = torch.Generator().manual_seed(7)
    n_calls, call = sum(len(r) for r in rounds), 0
    for i, jobs in enumerate(rounds):
        index = torch.randint(len(data), (batch,), generator=g)
        real, labels = data.images[index].to(device), data.labels[index].to(device)
        gen_labels = data.labels[torch.randint(len(data), (4 * batch,), generator=g)].to(device)
        if i % 2:
            jobs = jobs[::-1]
        for side, key, step in jobs:
            call += 1
            progress(f"train {side} {_kind_name(key)}", call, n_calls)
            _sync(device)
            t0 = time.perf_counter()
            if side == "gan3d":
                trainer.step = step
                with autocast(precision):
                    trainer.train_step()
            else:
                adapter.train_step(key, real, labels, gen_labels, step)
            _sync(device)
            if i >= warmup:
                seconds[side].setdefault(_kind_name(key), []).append(time.perf_counter() - t0)
    out: dict[str, Any] = {"batch_size": batch}
    for side, kinds in (("gan3d", ours_kinds), ("official", theirs_kinds)):
        cycle = sum(kinds.values())
        weights = {_kind_name(k): c / cycle for k, c in kinds.items()}
        per_step = sum(statistics.median(seconds[side][k]) * w for k, w in weights.items())
        out[side] = {"seconds_per_kimg": per_step * 1000 / batch, "seconds_per_step": per_step,
                     "step_kinds": {k: {"weight": weights[k], "seconds": seconds[side][k]} for k in weights}}
    out["ratio"] = out["official"]["seconds_per_kimg"] / out["gan3d"]["seconds_per_kimg"]
    return out


def _kind_name(key: tuple[bool, bool]) -> str:
    return f"r1={key[0]},g_reg={key[1]}"
