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
0800af72b8a9371b2b62fec2ae69c32994bb802f, and, at inference only (their training loops are not driven;
``--train`` with their source is an error for that row), autonomousvision/graf
c50d342fb567aec335b92e3f867c54b4dc4e1d09, microsoft/GRAM 5a5ac8e11306f976ac5a85e23344d0cdba0125ca,
universome/epigraf bda8d4770209e87d7df4dac2528533b3872aa2d2, facebookresearch/StyleNeRF
7f5610a058f27fcc360c6b972181983d7df794cb, genforce/volumegan 34bca216f7d16c600982422f0268bd896a68b759,
autonomousvision/giraffe fc8d4503538fde8654785c90ec4d6191fa5d11e5, royorel/StyleSDF
1c995101b80bf43f74fd2a047d239da85c9d2375 (its CUDA ops replaced by the reference ops of
tools/fixtures/stylesdf_ops.py) (another commit is measured with a warning).

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


def _stub_module(name: str, **attributes: Any) -> None:
    """An empty module ``name`` (holding ``attributes``) when it cannot be imported (EG3D's dnnlib
    imports ``requests`` for URL downloads the benchmark never makes; nerf-pytorch imports ``tqdm``
    for progress bars and ``torchsearchsorted`` for an importance pass GRAF never runs)."""
    import types

    try:
        importlib.import_module(name)
    except ImportError:
        module = types.ModuleType(name)
        module.__dict__.update(attributes)
        sys.modules[name] = module


def _bare_package(name: str, folder: Path) -> None:
    """``name`` as the package at ``folder`` without running its ``__init__.py`` (official package
    initialisers that import the whole repository: VolumeGAN's ``models``, GIRAFFE's ``im2scene``);
    modules of a ``name`` package from elsewhere are dropped first."""
    import types

    if list(getattr(sys.modules.get(name), "__path__", None) or []) == [str(folder)]:
        return
    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        del sys.modules[key]
    package = types.ModuleType(name)
    package.__path__ = [str(folder)]
    sys.modules[name] = package


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


def without_eval_jitter(G) -> contextlib.AbstractContextManager:
    """``G``'s point sampler with its eval-mode jitter (``perturb_in_eval``, where it has one) off: gan3d's eval
    mode then draws nothing in the sampler and adds no density noise."""
    sampler = G.point_sampler
    if not hasattr(sampler, "perturb_in_eval"):
        return contextlib.nullcontext()
    return patched(sampler, "perturb_in_eval", False)


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def image_comparison(ours, theirs) -> dict[str, float]:
    """Max abs difference and PSNR (images in [-1, 1], peak-to-peak 2) of two image batches."""
    diff = (ours.float() - theirs.float()).abs()
    mse = float(diff.square().mean())
    return {"max_abs_diff": float(diff.max()), "psnr_db": 10 * math.log10(4 / mse) if mse > 0 else float("inf")}


class AttrDict(dict):
    """A dict whose keys are also attributes: the part of OmegaConf's ``DictConfig`` (EpiGRAF's configs) and
    of ``munch.Munch`` (StyleSDF's options) the official networks use."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value


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
    #: the official network the adapter builds (for error messages)
    official_class: ClassVar[str]

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

    #: files (relative to the checkout) that make a folder a checkout of the repository
    required_files: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def code_dir(cls, root: Path) -> Path | None:
        """The folder to put on ``sys.path`` when ``root`` is a checkout of this repository, else None: by
        default ``root`` itself when it holds every one of ``required_files``."""
        if not cls.required_files:
            raise NotImplementedError
        return root if all((root / p).is_file() for p in cls.required_files) else None

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

    def cameras(self, G, batch: int, generator):
        """The gan3d cameras (on the CPU) both sides render in the image comparison and the timed
        calls: by default draws of gan3d's pose sampler; an adapter whose official code renders only
        from cameras of its own kind draws those (EpiGRAF)."""
        return G.pose_sampler(batch, device="cpu", generator=generator)

    def modules(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """The recipe's slots: ``{slot: (implementation, a copy of its options)}``."""
        return {k: (spec.name, dict(spec.kwargs)) for k, spec in self.recipe.modules.items()}

    def need(self, cond: bool, what: str) -> None:
        """``OfficialSourceError`` unless ``cond``: the official network cannot run the recipe, ``what`` says why."""
        if not cond:
            raise OfficialSourceError(f"{self.method}: the official {self.official_class} cannot run this recipe: "
                                      f"{what}")

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
    official_class = "TriPlaneGenerator"
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
        m = self.modules()
        need = self.need

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
    official_class = "ImplicitGenerator3d"
    repository = "marcoamonteiro/pi-GAN"
    commit = "0800af72b8a9371b2b62fec2ae69c32994bb802f"
    layout = "generators/generators.py and siren/siren.py"

    _DISCRIMINATORS = {"celeba": "CCSEncoderDiscriminator", "cats": "StridedDiscriminator",
                       "carla": "ProgressiveEncoderDiscriminator"}

    required_files = ("generators/generators.py", "siren/siren.py")

    def config(self) -> dict[str, Any]:
        """curriculums.py's metadata of the recipe (sizes, sampling, poses, loss weights)."""
        r = self.recipe
        m = self.modules()
        need = self.need

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

        with patched(G.point_sampler, "perturb_in_eval", False), patched(rendering, "perturb_points", no_jitter), \
                patched(generators, "sample_pdf", det_pdf):
            yield

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


@register
class GRAFOfficial(OfficialAdapter):
    """autonomousvision/graf's ``Generator`` (graf/models/generator.py) around nerf-pytorch's NeRF
    (submodules/nerf_pytorch/run_nerf_mod.py ``create_nerf``), at inference only: the image comparison
    and the interleaved inference timing (the official training step is not driven; ``--train`` with
    a GRAF source is an error for that row)."""

    method = "graf"
    official_class = "Generator"
    repository = "autonomousvision/graf"
    commit = "c50d342fb567aec335b92e3f867c54b4dc4e1d09"
    layout = "graf/models/generator.py and submodules/nerf_pytorch/run_nerf_mod.py"


    required_files = ("graf/models/generator.py", "submodules/nerf_pytorch/run_nerf_mod.py")

    def config(self) -> dict[str, Any]:
        """configs/default.yaml's ``nerf``, ``data`` and ``training`` options of the recipe, completed
        as graf/config.py ``build_models`` does."""
        r = self.recipe
        m = self.modules()
        need = self.need

        need(m["stochasticity_mapper"][0] == "identity", "GRAF feeds z to the NeRF directly (no mapping network)")
        need(m["upsampler"][0] == "identity", "GRAF renders its image directly (no upsampler)")
        decoder, embedder = m["feature_decoder"][1], m["point_embedder"][1]
        need(m["feature_decoder"][0] == "graf_nerf",
             f"feature decoder {m['feature_decoder'][0]} (GRAF's is NeRF's MLP)")
        need(bool(decoder.get("use_viewdirs", True)), "every GRAF config reads view directions (use_viewdirs)")
        depth = int(decoder["num_layers"])
        need(list(decoder.get("skips", [4])) == [4] and depth > 5,
             "create_nerf hard-codes the skip after layer 4 (num_layers > 5, skips [4])")
        need(m["point_embedder"][0] == "coordinate" and float(embedder.get("box_warp", 2.0)) == 2.0
             and embedder.get("include_input", True) and not embedder.get("multiply_by_pi", False),
             "nerf-pytorch's get_embedder encodes the unscaled points with the input (coordinate, box_warp 2)")
        sampler_name, sampler = m["point_sampler"]
        need(sampler_name == "uniform" and sampler.get("axis_depths", False)
             and not sampler.get("disparity_space_sampling", False),
             "render_rays samples linspace(near, far) depths along the optical axis (uniform, axis_depths)")
        need(int(r.generator.get("num_importance", 0)) == 0, "GRAF's configs have no hierarchical pass "
             "(N_importance 0; its sample_pdf needs the torchsearchsorted extension)")
        vr = m["volume_renderer"][1]
        need(m["volume_renderer"][0] == "volume" and vr.get("density_activation") == "relu"
             and vr.get("quadrature") == "last_delta" and float(vr.get("last_delta", 1e10)) == 1e10,
             "raw2outputs: ReLU density, last interval 1e10")
        res = int(r.generator["render_resolution"])
        pose = m["pose_sampler"][1]
        # get_rays: directions (i - W/2) / focal through pixel indices -> principal point 0.5 + 0.5 / W
        pp = [float(v) for v in pose.get("principal_point", [0.5, 0.5])]
        need(all(abs(v - (0.5 + 0.5 / res)) < 1e-9 for v in pp),
             f"get_rays puts the principal point at pixel W/2 (pose_sampler.principal_point "
             f"[{0.5 + 0.5 / res}, {0.5 + 0.5 / res}] at {res} px, the recipe has {pp})")
        reference = float(sampler.get("range_reference_radius", 0.0))
        # generator.py __call__: a radius range shifts near/far by radius[1] - |ray origin|
        radius: float | tuple[float, float] = float(pose.get("radius", 1.0))
        if reference > 0:
            radius = (min([reference, *[float(v) for v in pose.get("radius_range") or []]]), reference)
        z_dim, appearance = int(m["stochasticity_mapper"][1]["z_dim"]), int(decoder.get("appearance_dim", 0))
        width = int(decoder["hidden_dim"])
        chunk = min(32768, 1024 * int(r.training["batch_size"]))  # build_models: training.chunk, batch_size
        nerf = {"i_embed": 0, "use_viewdirs": True, "multires": int(embedder["num_frequencies"]),
                "multires_views": int(decoder.get("num_view_frequencies", 4)),
                "N_samples": int(sampler["num_samples"]), "N_importance": 0, "netdepth": depth, "netwidth": width,
                "netdepth_fine": depth, "netwidth_fine": width, "perturb": 1.0,
                "raw_noise_std": float(vr.get("noise_std", 1.0)), "decrease_noise": True, "chunk": chunk,
                "netchunk": 65536, "white_bkgd": bool(vr.get("white_back", False)), "feat_dim": z_dim,
                "feat_dim_appearance": appearance}
        return {"nerf": nerf, "imsize": res, "radius": radius, "near": float(sampler["ray_start"]),
                "far": float(sampler["ray_end"]), "chunk": chunk}

    def build(self, train: bool) -> None:
        import argparse

        import torch

        if train:
            raise OfficialSourceError("graf: the official side is timed at inference only (the GAN_stability "
                                      "training step is not driven); run with --no-train")
        import torch._dynamo  # noqa: F401  (it scans sys.modules: before the stubs)

        _stub_module("tqdm", tqdm=lambda iterable, *args, **kwargs: iterable)  # progress bars
        _stub_module("matplotlib")  # plots, unused by the networks
        _stub_module("matplotlib.pyplot")
        _stub_module("imageio")  # image files, unused by the networks
        _stub_module("torchsearchsorted", searchsorted=None)  # only sample_pdf (N_importance > 0)
        run_nerf = importlib.import_module("submodules.nerf_pytorch.run_nerf_mod")
        self._helpers = importlib.import_module("submodules.nerf_pytorch.run_nerf_helpers_mod")
        generator = importlib.import_module("graf.models.generator")
        transforms = importlib.import_module("graf.transforms")
        cfg = self.cfg
        torch.manual_seed(0)
        render_train, render_test, params, named = run_nerf.create_nerf(argparse.Namespace(**cfg["nerf"]))
        for kwargs in (render_train, render_test):
            kwargs.update(near=cfg["near"], far=cfg["far"])
        self.nerf = render_train["network_fn"]
        self._visible_scene(self.nerf)
        size = cfg["imsize"]
        self.G = generator.Generator(size, size, size / 2, cfg["radius"], ray_sampler=transforms.FullRaySampler(),
                                     render_kwargs_train=render_train, render_kwargs_test=render_test,
                                     parameters=params, named_parameters=named, chunk=cfg["chunk"],
                                     device=str(self.device))
        self.G.to(self.device)
        self.G.eval()  # render_kwargs_test: no jitter, no density noise (eval.py)
        self.trains = False

    def _visible_scene(self, nerf) -> None:
        """Seeded weights that render a scene, in place of the official initialisation.

        Under PyTorch's default initialisation the NeRF's density is nearly the same negative value
        everywhere: both sides would render the bare background and agree trivially. Here the weights
        are He-scaled normal draws (biases of std 0.2), the density head tripled with bias -1 (opaque
        where its input is well above average), and the columns of the encodings' octave ``k`` scaled by
        ``2^-k``, so that float32 rounding of the points (gan3d computes them from its own rays) is not
        magnified by ``sin(2^9 x)`` into differences above rounding. The work per image is unchanged.
        """
        import torch

        nerf_cfg = self.cfg["nerf"]
        gen = torch.Generator().manual_seed(0)

        def gains(columns: int, octaves: int, start: int) -> torch.Tensor:
            out = torch.ones(columns)
            for k in range(octaves):  # get_embedder: [p, sin(2^0 p), cos(2^0 p), sin(2^1 p), ...], 3 columns each
                out[start + 3 + 6 * k:start + 9 + 6 * k] = 2.0 ** -k
            return out

        skip_layer = "pts_linears.5.weight"  # create_nerf: skips [4] -> layer 5 reads [points, z_shape, h]
        with torch.no_grad():
            for name, p in nerf.named_parameters():
                if name.endswith("weight"):
                    p.copy_(torch.randn(p.shape, generator=gen) * math.sqrt(2.0 / p.shape[1]))
                    if name in ("pts_linears.0.weight", skip_layer):
                        p.mul_(gains(p.shape[1], nerf_cfg["multires"], 0))
                    elif name == "views_linears.0.weight":  # reads [feature, gamma(d), z_appearance]
                        p.mul_(gains(p.shape[1], nerf_cfg["multires_views"], nerf_cfg["netwidth"]))
                else:
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
            nerf.alpha_linear.weight.mul_(3.0)
            nerf.alpha_linear.bias.fill_(-1.0)

    def share_weights(self, trainer) -> None:
        from gan3d.methods.graf.official import generator_state

        nerf = self.cfg["nerf"]
        options = {"hidden_dim": nerf["netwidth"], "skips": [4], "use_viewdirs": True}
        # the importer's map: the same names, the z-up point and view columns permuted into our y-up world
        state = generator_state(self.nerf.state_dict(), options, nerf["multires"], nerf["multires_views"])
        _fit(trainer.G, state, "graf generator")
        _fit(trainer.G_ema, state, "graf EMA generator")

    def _rays(self, cameras):
        """GRAF's ``[2, B * H * W, 3]`` ray batch (val_ray_sampler: ``get_rays`` of the whole image) of
        gan3d cameras: their cam2world in GRAF's z-up world with OpenGL camera axes, the focal from the
        intrinsics (get_rays' principal point is checked by :meth:`config`)."""
        import torch

        size = self.cfg["imsize"]
        c2w = cameras.cam2world.to(self.device, torch.float32)
        K = cameras.intrinsics.to(self.device, torch.float32)
        from gan3d.methods.graf.official import graf_pose

        poses = graf_pose(c2w)
        rays = []
        for pose, k in zip(poses, K, strict=True):
            origins, directions = self._helpers.get_rays(size, size, float(k[0, 0]) * size, pose)
            rays.append(torch.stack([origins.reshape(-1, 3), directions.reshape(-1, 3)]))
        return torch.cat(rays, 1)

    @contextlib.contextmanager
    def _device_tensors(self) -> Iterator[None]:
        """eval.py's ``torch.set_default_tensor_type('torch.cuda.FloatTensor')`` on CUDA (nerf-pytorch
        makes tensors without a device), for the official call only."""
        import torch

        if self.device.type != "cuda":
            yield
            return
        torch.set_default_tensor_type("torch.cuda.FloatTensor")
        try:
            with torch.device(self.device):
                yield
        finally:
            torch.set_default_tensor_type("torch.FloatTensor")

    def infer(self, z, cameras):
        size = self.cfg["imsize"]
        with self._device_tensors():
            rgb, _, _, _ = self.G(z, rays=self._rays(cameras))  # eval mode: rgb * 2 - 1, [B * H * W, 3]
        return rgb.reshape(len(z), size, size, 3).permute(0, 3, 1, 2)

    def deterministic(self, G) -> contextlib.AbstractContextManager:
        # The official eval mode is deterministic (render_kwargs_test: perturb False, raw_noise_std 0).
        return without_eval_jitter(G)


@register
class VolumeGANOfficial(OfficialAdapter):
    """genforce/volumegan's ``VolumeGANGenerator`` (models/volumegan_generator.py), at inference only:
    the image comparison and the interleaved inference timing (the official runner's training step is
    not driven; ``--train`` with a VolumeGAN source is an error for that row)."""

    method = "volumegan"
    official_class = "VolumeGANGenerator"
    repository = "genforce/volumegan"
    commit = "34bca216f7d16c600982422f0268bd896a68b759"
    layout = "models/volumegan_generator.py and models/rendering/"

    #: points_sampling.py ``perturb_points`` modes of the point sampler's ``perturbation``.
    _PERTURB_MODES = {"stratified": None, "middle_uniform": "mid", "none": "none"}

    required_files = ("models/volumegan_generator.py", "models/rendering/__init__.py")

    def config(self) -> dict[str, Any]:
        """``VolumeGANGenerator``'s constructor options of the recipe (configs/volumegan_ffhq_config.py's
        generator ``model`` dict; the inverse of gan3d.methods.volumegan.official.recipe_from_kwargs), and
        the inference call's ``noise_mode`` and ``perturb_mode``."""
        r = self.recipe
        m = self.modules()
        need = self.need

        mapper, pose, sampler = m["stochasticity_mapper"][1], m["pose_sampler"][1], m["point_sampler"][1]
        embedder, decoder, renderer = m["point_embedder"][1], m["feature_decoder"][1], m["volume_renderer"][1]
        up = m["upsampler"][1]
        names = {k: m[k][0] for k in ("stochasticity_mapper", "pose_sampler", "point_sampler", "point_embedder",
                                      "feature_decoder", "volume_renderer", "upsampler")}
        need(names == {"stochasticity_mapper": "stylegan2", "pose_sampler": "spherical", "point_sampler": "uniform",
                       "point_embedder": "volume", "feature_decoder": "volumegan_mlp", "volume_renderer": "volume",
                       "upsampler": "volumegan_neural_renderer"}, f"modules {names}")
        need(int(mapper.get("c_dim", 0)) == 0, "a conditional mapping (label_size > 0 is not adapted)")
        # NeRFSynthesisNetwork.build_mlp gives the point MLP's layers 512-wide styles whatever w_dim says.
        need(int(mapper["w_dim"]) == 512, "w_dim must be 512 (build_mlp fixes the point MLP's w_dim)")
        # points_sampling.py: a camera on the sphere of `radius` about the origin, looking at it, the
        # corner-aligned grid linspace(-1, 1) spanning `fov` degrees.
        need(not pose.get("focal") and float(pose.get("fov", 0)) > 0,
             "the camera's field of view is given in degrees (fov), not as a focal length")
        need(all(float(v) == 0 for k in ("pivot", "orbit_center") for v in pose.get(k, [0, 0, 0])),
             "the cameras orbit and look at the origin")
        need(pose.get("yaw_strategy") == pose.get("polar_strategy") == "normal",
             "ps_cfg camera_dist 'gaussian' is the configs' pose distribution")
        need(bool(sampler.get("align_corners", False)), "rays through a corner-aligned grid (align_corners)")
        need(not sampler.get("disparity_space_sampling", False), "depths linear in distance")
        steps = int(sampler["num_samples"])
        need(int(r.generator.get("num_importance", steps)) == steps,
             "the hierarchical pass draws as many fine samples as coarse ones (num_steps)")
        need(sampler.get("importance_pdf", "pigan") == "pigan" and not sampler.get("smooth_importance_weights"),
             "hierarchicle_sampling.py's PDF (weights + 1e-5, unsmoothed)")
        perturbation = str(sampler.get("perturbation", "stratified"))
        need(perturbation in self._PERTURB_MODES, f"point perturbation {perturbation!r}")
        need(embedder.get("include_input", True), "the positional encoding includes the input (embed_cfg)")
        clamp = str(renderer.get("density_activation", "relu"))
        need(clamp in ("relu", "softplus") and renderer.get("quadrature", "last_delta") == "last_delta"
             and float(renderer.get("last_delta", 1e10)) == 1e10, "renderer.py: relu/softplus density, last 1e10")
        need(not any(renderer.get(k) for k in ("white_back", "last_back", "eval_last_back")),
             "no white or last-sample background")
        nerf_res = int(r.generator["render_resolution"])
        need(int(up["in_resolution"]) == nerf_res, "the neural renderer starts at the render resolution (nerf_res)")
        need(bool(up.get("use_noise", True)), "the neural renderer's layers take noise (noise_type 'spatial')")
        noise_mode = str(up.get("eval_noise_mode", "const"))
        need(noise_mode in ("const", "random", "none"), f"eval noise mode {noise_mode!r}")
        frequencies = int(embedder["num_frequencies"])
        w_dim = int(mapper["w_dim"])
        ps_cfg = {"num_steps": steps, "ray_start": float(sampler["ray_start"]), "ray_end": float(sampler["ray_end"]),
                  "radius": float(pose.get("radius", 1.0)), "horizontal_mean": math.pi - float(pose["yaw_mean"]),
                  "horizontal_stddev": float(pose["yaw_stddev"]), "vertical_mean": float(pose["polar_mean"]),
                  "vertical_stddev": float(pose["polar_stddev"]), "camera_dist": "gaussian",
                  "fov": float(pose["fov"]), "perturb_mode": self._PERTURB_MODES[perturbation]}
        conv_clamp = up.get("conv_clamp")
        G_kwargs = {
            "resolution": int(up["out_resolution"]), "nerf_res": nerf_res, "z_dim": int(mapper["z_dim"]),
            "w_dim": w_dim, "mapping_layers": int(mapper.get("num_layers", 8)),
            "mapping_fmaps": int(mapper.get("layer_features") or w_dim),
            "mapping_lr_mul": float(mapper.get("lr_multiplier", 0.01)),
            "fmaps_base": int(up.get("channel_base", 32768)), "fmaps_max": int(up.get("channel_max", 512)),
            "conv_clamp": None if conv_clamp is None else float(conv_clamp),
            "rgb_init_res_out": bool(up.get("rgb_init_res_out", True)),
            "fv_cfg": {"feat_res": int(embedder["feat_res"]), "init_res": int(embedder["init_res"]),
                       "base_channels": int(embedder["base_channels"]),
                       "output_channels": int(embedder["output_channels"]), "w_dim": w_dim,
                       "bounds": [[float(v) for v in corner] for corner in embedder["bounds"]]},
            "embed_cfg": {"input_dim": 3, "max_freq_log2": frequencies - 1, "N_freqs": frequencies},
            "fg_cfg": {"num_layers": int(decoder["num_layers"]), "hidden_dim": int(decoder["hidden_dim"]),
                       "activation_type": "lrelu"},
            "bg_cfg": None, "out_dim": int(decoder["output_dim"]), "ps_cfg": ps_cfg,
            "hs_cfg": {"clamp_mode": clamp}, "vr_cfg": {"clamp_mode": clamp},
        }
        # Inference as render.py and the README's FID command run it: noise_mode 'const', no truncation,
        # the jitter off (ps_kwargs perturb_mode 'none') unless ours jitters in eval too.
        eval_perturb = ps_cfg["perturb_mode"] if sampler.get("perturb_in_eval", False) else "none"
        return {"G_kwargs": G_kwargs, "noise_mode": noise_mode, "perturb_mode": eval_perturb}

    def build(self, train: bool) -> None:

        import torch

        if train:
            raise OfficialSourceError("volumegan: the official side is timed at inference only (the runner's "
                                      "training step is not driven); run with --no-train")

        class EasyDict(dict):  # the ops' activation table reads its entries as attributes
            __getattr__ = dict.__getitem__

        _stub_module("easydict", EasyDict=EasyDict)
        # models/__init__.py imports every model of the repository; only the generator's modules are needed.
        _bare_package("models", self.code / "models")
        try:
            generator = importlib.import_module("models.volumegan_generator")
        except ModuleNotFoundError as e:
            if e.name != "einops":
                raise
            raise OfficialSourceError("volumegan: the official generator imports einops (its requirements); "
                                      "install it in this environment") from e
        self._rendering = importlib.import_module("models.rendering")
        if self.device.type == "cuda":
            # The PyTorch reference ops, as for EG3D (the CUDA plugins would be compiled at first use);
            # bias_act.py/upfirdn2d.py run the plugin only `if impl == 'cuda' and ... and _init()`.
            for name in ("bias_act", "upfirdn2d"):
                with contextlib.suppress(ImportError):
                    importlib.import_module(f"third_party.stylegan2_official_ops.{name}")._init = lambda: False
        torch.manual_seed(0)
        # The constructor leaves synthesis.lod at 0 (fully grown, as a finished run and the released
        # checkpoint); sharing the weights copies it into ours.
        self.G = generator.VolumeGANGenerator(**self.cfg["G_kwargs"]).eval().requires_grad_(False).to(self.device)
        self._perturb_mode = self.cfg["perturb_mode"]
        self.trains = False

    def share_weights(self, trainer) -> None:
        from gan3d.core.checkpoint import CheckpointError
        from gan3d.methods.volumegan.official import convert_official_state_dict

        try:  # the importer's map (VolumeGANImporter.load): renames, noise buffers reshaped, filters rebuilt
            slots = convert_official_state_dict(self.G.state_dict(),
                                                nerf_resolution=int(self.recipe.generator["render_resolution"]))
        except KeyError as e:
            raise CheckpointError(f"volumegan: {e.args[0]}") from None
        for ours, what in ((trainer.G, "volumegan generator"), (trainer.G_ema, "volumegan EMA generator")):
            prefixes = ours.slot_prefixes()
            state = {prefixes[slot] + name: value for slot, names in slots.items() if slot in prefixes
                     for name, value in names.items()}
            state.update({k: v for k, v in ours.state_dict().items() if k.endswith("resample_filter")})
            _fit(ours, state, what)

    def infer(self, z, cameras):
        if cameras.angles is None:
            raise ValueError("volumegan: the cameras carry no angles for the official generator")
        angles = cameras.angles.to(z.device, z.dtype)
        # points_sampling.py sample_cam_positions puts the camera at r (sin p cos y, cos p, sin p sin y),
        # gan3d's spherical sampler at r (-sin p cos y, cos p, sin p sin y): its yaw is our pi - yaw
        # (tests/methods/test_official_volumegan.py), its pitch our polar angle. One camera per sample: the
        # 'gaussian' draw at zero spread about [B, 1] means (render.py's ps_kwargs).
        ps_kwargs = {"horizontal_mean": math.pi - angles[:, :1], "vertical_mean": angles[:, 1:2],
                     "horizontal_stddev": 0.0, "vertical_stddev": 0.0, "perturb_mode": self._perturb_mode}
        out = self.G(z, noise_mode=self.cfg["noise_mode"], fused_modulate=False, impl="cuda", ps_kwargs=ps_kwargs)
        return out["image"]

    @contextlib.contextmanager
    def deterministic(self, G) -> Iterator[None]:
        hierarchical = self._rendering.HierarchicalSampling
        sample_pdf = hierarchical.sample_pdf

        # tools/fixtures/make_volumegan_fixture.py: the fine samples' quantiles linspace(0, 1)
        # (sample_pdf(det=True), what gan3d's eval mode draws; the official inference draws them), no jitter.
        def det_pdf(sampler, bins, weights, n_importance, det=False, eps=1e-5):
            return sample_pdf(sampler, bins, weights, n_importance, det=True, eps=eps)

        point_sampler = G.point_sampler
        saved = point_sampler.perturb_in_eval, self._perturb_mode
        point_sampler.perturb_in_eval, self._perturb_mode = False, "none"
        try:
            with patched(hierarchical, "sample_pdf", det_pdf):
                yield
        finally:
            point_sampler.perturb_in_eval, self._perturb_mode = saved


@register
class EpiGRAFOfficial(OfficialAdapter):
    """universome/epigraf's tri-plane ``Generator`` (src/training/networks_epigraf.py) at inference only:
    the image comparison and the interleaved inference timing (the official training loop is not
    driven; ``--train`` with an EpiGRAF source is an error for that row).

    The official networks take the OmegaConf ``DictConfig`` of the Hydra configuration and read it by
    attribute; a dict with attribute access stands in for it (omegaconf is not a gan3d dependency and
    is stubbed when missing: the modules import it for type hints). EpiGRAF renders only from camera
    angles ``(yaw, pitch, roll)`` on a sphere of the configuration's radius about the origin, up +y,
    with the configuration's field of view, so :meth:`cameras` draws such cameras (gan3d's
    :func:`~gan3d.methods.epigraf.camera_angles.epigraf_cameras` of the rig's view ranges) and
    :meth:`infer` hands their angles to the official forward (gan3d's world is EpiGRAF's turned a
    quarter about y: EpiGRAF's yaw is ``pi / 2 -`` ours, its pitch our polar angle)."""

    method = "epigraf"
    official_class = "Generator"
    repository = "universome/epigraf"
    commit = "bda8d4770209e87d7df4dac2528533b3872aa2d2"
    layout = "src/training/networks_epigraf.py"

    # The official code imports itself as the package ``src``: the checkout's root goes on sys.path.
    required_files = ("src/training/networks_epigraf.py",)

    def config(self) -> dict[str, Any]:
        """``model.generator`` of configs/config.yaml (model/epigraf.yaml with its ``dataset`` and
        ``patch`` interpolations) and src/train.py's ``G_kwargs`` for the recipe."""
        r = self.recipe
        m = self.modules()
        need = self.need

        mapper, embedder, decoder = m["stochasticity_mapper"][1], m["point_embedder"][1], m["feature_decoder"][1]
        sampler, renderer, pose = m["point_sampler"][1], m["volume_renderer"][1], m["pose_sampler"][1]
        need(m["stochasticity_mapper"][0] == "stylegan2" and int(mapper.get("c_dim", 0)) == 0,
             "the mapping is StyleGAN2's without a condition (layers.py MappingNetwork, c_dim 0)")
        need(m["point_embedder"][0] == "triplane" and embedder.get("plane_axes") == "epigraf"
             and bool(embedder.get("align_corners")), "tri-planes read as tri_plane_renderer does "
             "(triplane, plane_axes 'epigraf', align_corners)")
        need(m["feature_decoder"][0] == "eg3d_osg" and int(decoder.get("output_dim", 3)) == 3
             and decoder.get("hidden_activation") == "lrelu" and decoder.get("feature_activation") == "linear"
             and decoder.get("density_channel") == "last" and float(decoder.get("lr_multiplier", 1.0)) == 1.0,
             "TriPlaneMLP is feat_dim -> hid_dim (lrelu) -> 3 colour + density, linear")
        steps = int(sampler["num_samples"])
        need(m["point_sampler"][0] == "uniform" and not sampler.get("disparity_space_sampling", False)
             and sampler.get("importance_pdf") == "pigan" and not sampler.get("smooth_importance_weights", False)
             and sampler.get("perturbation") == "middle_uniform",
             "linspace depths jittered between midpoints, sample_pdf of weights + 1e-5 (rendering.py)")
        need(int(r.generator.get("num_importance", 0)) == steps,
             "the fine pass draws num_ray_steps samples, as many as the coarse one")
        need(m["volume_renderer"][0] == "volume" and renderer.get("density_activation") == "softplus"
             and renderer.get("quadrature") == "last_delta" and float(renderer.get("last_delta", 1e10)) == 1e10
             and not renderer.get("last_back", False), "fancy_integration: softplus density, last interval 1e10")
        need(m["upsampler"][0] == "identity", "EpiGRAF renders its image directly (no upsampler)")
        rig = pose.get("rig") or {}
        need(m["pose_sampler"][0] == "dataset" and list(pose.get("orbit_center", [0, 0, 0])) == [0, 0, 0]
             and list(rig.get("pivot", [0, 0, 0])) == [0, 0, 0] and "radius" in rig and "focal" in rig,
             "the camera orbits and looks at the origin (compute_cam2world_matrix)")
        res = int(r.generator["render_resolution"])
        # get_initial_rays_trig: linspace(-1, 1, W) * tan(fov / 2), a pinhole of focal (W - 1) / (2 W tan(fov / 2))
        fov = math.degrees(2 * math.atan((res - 1) / (2 * res * float(rig["focal"]))))
        conv_clamp = embedder.get("conv_clamp", 256.0)
        patch = int(m["loss"][1].get("patch_size", 64)) if "loss" in m else 64
        dataset = {"resolution": res, "cube_scale": float(embedder["box_warp"]) / 2,
                   "white_back": bool(renderer.get("white_back", False)), "last_back": False,
                   "camera": {"fov": fov, "ray_start": float(sampler["ray_start"]),
                              "ray_end": float(sampler["ray_end"]), "radius": float(rig["radius"]), "dist": "custom"}}
        generator = {
            "backbone": "stylegan2", "num_ray_steps": steps, "clamp_mode": "softplus",
            "nerf_noise_std_init": float(renderer.get("noise_std", 1.0)),
            "nerf_noise_kimg_growth": float(renderer.get("noise_anneal_kimg", 5000)), "density_shift": 0.0,
            "use_noise": bool(embedder.get("use_noise", True)), "camera_cond": False,
            "tri_plane": {"res": int(embedder["resolution"]), "feat_dim": int(embedder["channels"]), "fp32": True,
                          "has_view_cond": False, "posenc_period_len": 0,
                          "mlp": {"n_layers": 2, "hid_dim": int(decoder.get("hidden_dim", 64))}},
            "bg_model": {"type": None}, "patch": {"enabled": True, "resolution": patch}, "dataset": dataset,
        }
        G_kwargs = {
            "z_dim": int(mapper["z_dim"]), "c_dim": 0, "w_dim": int(mapper["w_dim"]), "img_resolution": res,
            "img_channels": 3, "channel_base": int(embedder.get("channel_base", 32768)),
            "channel_max": int(embedder.get("channel_max", 512)), "fused_modconv_default": "inference_only",
            # src/train.py: conv_clamp None with training.fp32, else the SynthesisBlock default 256
            "conv_clamp": None if conv_clamp is None else float(conv_clamp),
            "mapping_kwargs": {"num_layers": int(mapper.get("num_layers", 2)), "camera_cond": False,
                               "camera_cond_drop_p": 0.0, "camera_cond_noise_std": 0.0},
        }
        return {"generator": generator, "G_kwargs": G_kwargs,
                "yaw_range": [float(v) for v in rig.get("yaw_range") or [math.pi / 2 - 0.5, math.pi / 2 + 0.5]],
                "polar_range": [float(v) for v in rig.get("polar_range") or [math.pi / 2 - 0.3, math.pi / 2 + 0.3]]}

    @classmethod
    def _attributes(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return AttrDict({k: cls._attributes(v) for k, v in value.items()})
        return value

    def build(self, train: bool) -> None:
        import torch

        if train:
            raise OfficialSourceError("epigraf: the official side is timed at inference only (its training loop "
                                      "is not driven); run with --no-train")
        _stub_module("requests")  # dnnlib.util: URL downloads the benchmark never makes
        _stub_module("omegaconf", DictConfig=AttrDict, OmegaConf=None)  # type hints of the networks
        if self.device.type == "cuda":
            # The PyTorch reference ops, as EG3DOfficial (the CUDA plugins compile with nvcc at first use).
            for name in ("bias_act", "upfirdn2d", "filtered_lrelu"):
                with contextlib.suppress(ImportError):
                    importlib.import_module(f"src.torch_utils.ops.{name}")._init = lambda: False
        self._networks = importlib.import_module("src.training.networks_epigraf")
        cfg = self.cfg
        torch.manual_seed(0)
        # src/train.py: Generator(cfg=cfg.model.generator, **G_kwargs); G_ema renders (eval: the test resolution)
        self.G = self._networks.Generator(cfg=self._attributes(cfg["generator"]), **cfg["G_kwargs"])
        self.G = self.G.eval().requires_grad_(False).to(self.device)
        self.noise_mode = "random"
        self.trains = False

    def share_weights(self, trainer) -> None:
        from gan3d.core.official.importer import rename_keys
        from gan3d.methods.epigraf.official import GENERATOR_RENAMES

        state = rename_keys(self.G.state_dict(), GENERATOR_RENAMES)
        _fit(trainer.G, state, "epigraf generator")
        _fit(trainer.G_ema, state, "epigraf EMA generator")

    def cameras(self, G, batch: int, generator):
        """EpiGRAF cameras (radius and field of view of the configuration, looking at the origin) at
        angles drawn uniformly in the recipe rig's yaw and polar ranges."""
        import torch

        from gan3d.methods.epigraf.camera_angles import epigraf_cameras, to_epigraf_angles

        cfg = self.cfg
        (y0, y1), (p0, p1) = cfg["yaw_range"], cfg["polar_range"]
        u = torch.rand(batch, 2, generator=generator)
        ours = torch.stack([y0 + (y1 - y0) * u[:, 0], p0 + (p1 - p0) * u[:, 1]], 1)
        camera = cfg["generator"]["dataset"]["camera"]
        return epigraf_cameras(to_epigraf_angles(ours), radius=camera["radius"], fov=camera["fov"],
                               image_resolution=cfg["G_kwargs"]["img_resolution"])

    def infer(self, z, cameras):
        import torch

        from gan3d.methods.epigraf.camera_angles import to_epigraf_angles

        if cameras.angles is None:
            raise ValueError("epigraf: the cameras carry no angles for the official generator")
        camera = self.cfg["generator"]["dataset"]["camera"]
        radius = cameras.origins.norm(dim=-1)
        if not torch.allclose(radius, torch.full_like(radius, camera["radius"]), rtol=1e-4):
            raise ValueError(f"epigraf: the official generator renders from radius {camera['radius']}, "
                             f"the cameras are at {radius.tolist()}")
        angles = to_epigraf_angles(cameras.angles.to(self.device, torch.float32))  # a copy: the forward clamps it
        c = torch.zeros(len(z), 0, device=self.device)
        return self.G(z, c, angles, noise_mode=self.noise_mode)  # [B, 3, H, W], the MLP's linear colour

    @contextlib.contextmanager
    def deterministic(self, G) -> Iterator[None]:
        # tools/fixtures/make_epigraf_fixture.py deterministic(): the coarse depths without jitter
        # (transform_points(perturb=False)) and the importance quantiles on a linspace (sample_pdf(det=True)),
        # which is gan3d's sampler in eval mode without perturb_in_eval; constant noise on both sides.
        networks = self._networks
        transform, pdf = networks.transform_points, networks.sample_pdf

        def fixed_points(*args, **kwargs):
            return transform(*args, **{**kwargs, "perturb": False})

        def det_pdf(*args, **kwargs):
            return pdf(*args, **{**kwargs, "det": True})

        sampler, embedder = G.point_sampler, G.embedder
        saved = sampler.perturb_in_eval, embedder.noise_mode, self.noise_mode
        sampler.perturb_in_eval, embedder.noise_mode, self.noise_mode = False, "const", "const"
        try:
            with patched(networks, "transform_points", fixed_points), patched(networks, "sample_pdf", det_pdf):
                yield
        finally:
            sampler.perturb_in_eval, embedder.noise_mode, self.noise_mode = saved


@register
class StyleNeRFOfficial(OfficialAdapter):
    """facebookresearch/StyleNeRF's ``Generator`` (training/networks.py) around its
    ``NeRFSynthesisNetwork`` (training/stylenerf.py), at inference only: the image comparison and the
    interleaved inference timing (the official training step is not driven; ``--train`` with a StyleNeRF
    source is an error for that row, as for GRAF).

    The official network is built as ``conf/model/stylenerf_ffhq.yaml`` builds it, at the recipe's sizes,
    fully grown (``set_alpha(1)``, as every released network: a network at its initial ``alpha = -1``
    renders 20 foreground samples, ``VolumeRenderer.forward_volume_rendering``'s "memory safe" branch).
    Its upsampler hard-codes float16 for every block after the first (``Upsampler.build_network``, on any
    device: ``SynthesisBlock`` casts without looking at it); ``default`` precision times it so,
    ``fp32`` switches those blocks off, and the image comparison is in float32 either way (the function
    gan3d computes; tools/fixtures/make_stylenerf_fixture.py does the same).
    """

    method = "stylenerf"
    official_class = "NeRFSynthesisNetwork"
    repository = "facebookresearch/StyleNeRF"
    commit = "7f5610a058f27fcc360c6b972181983d7df794cb"
    layout = "training/stylenerf.py, training/networks.py and dnnlib/camera.py"

    #: official world point = TO_OFFICIAL @ ours (gan3d (x, y, z) = official (y, z, x):
    #: gan3d.methods.stylenerf.official, the *frame* paragraph).
    TO_OFFICIAL = ((0.0, 0.0, 1.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0))
    #: the background latent of the image comparison (the official forward draws its own otherwise)
    BACKGROUND_SEED = 11

    required_files = ("training/stylenerf.py", "training/networks.py", "dnnlib/camera.py")

    def config(self) -> dict[str, Any]:
        """``Generator``'s constructor options of the recipe (``stylenerf_ffhq.yaml``'s ``G_kwargs`` at the
        recipe's sizes); ``OfficialSourceError`` for what the official code cannot express."""
        r = self.recipe
        m = self.modules()
        need = self.need

        expected = {"stochasticity_mapper": "stylegan2", "pose_sampler": "spherical", "point_sampler": "uniform",
                    "point_embedder": "coordinate", "feature_decoder": "stylenerf_mlp",
                    "background/point_sampler": "inverted_sphere", "background/point_embedder": "inverted_sphere",
                    "background/feature_decoder": "stylenerf_mlp", "volume_renderer": "volume",
                    "upsampler": "stylenerf"}
        for slot, name in expected.items():
            need(slot in m and m[slot][0] == name, f"{slot} must be {name!r} (got {m.get(slot, ('none',))[0]!r})")
        mapper, pose, sampler = m["stochasticity_mapper"][1], m["pose_sampler"][1], m["point_sampler"][1]
        embedder, decoder = m["point_embedder"][1], m["feature_decoder"][1]
        bg_sampler, bg_embedder = m["background/point_sampler"][1], m["background/point_embedder"][1]
        bg_decoder, renderer, up = m["background/feature_decoder"][1], m["volume_renderer"][1], m["upsampler"][1]
        need(int(mapper.get("c_dim", 0)) == 0, "the official FFHQ generator is unconditional (c_dim 0)")
        need(bool(sampler.get("axis_depths", False)), "depths along the viewing axis (camera_kwargs.depth_range)")
        need(float(embedder.get("box_warp", 2.0)) == 2.0 and not embedder.get("include_input", False)
             and embedder.get("multiply_by_pi", True), "the foreground encoding is PE(x) of unscaled points")
        need(float(bg_sampler.get("sphere_radius", 1.0)) == 1.0 and float(bg_embedder.get("sphere_radius", 1.0)) == 1.0,
             "NeRF++'s background lies outside the unit sphere (dnnlib/camera.py depth2pts_outside)")
        need(not bg_embedder.get("include_input", False) and bg_embedder.get("multiply_by_pi", True),
             "the background encoding is PE of NeRF++'s 4D point")
        need(decoder.get("modulated", True) and decoder.get("predict_rgb", True),
             "the foreground NeRF is modulated, with an RGB head")
        need(not bg_decoder.get("modulated", False) and bg_decoder.get("predict_rgb", True),
             "the background NeRF is a plain MLP with an RGB head")
        need(int(decoder["output_dim"]) == int(bg_decoder["output_dim"]), "both NeRFs give rgb_out_dim features")
        need(renderer.get("density_activation") == "relu" and renderer.get("quadrature") == "last_delta"
             and float(renderer.get("last_delta", 0.0)) == 0.0 and renderer.get("last_back", False),
             "the official volume weights (ReLU, 0-long last foreground interval, opaque last background sample)")
        need(int(r.generator["render_resolution"]) == int(up["in_resolution"]),
             "the NeRF renders at the upsampler's input size (resolution_vol)")
        importance = int(r.generator.get("num_importance", 0))
        need(importance in (0, int(sampler["num_samples"])),
             "the importance pass draws as many samples as the coarse one (hierarchical)")
        need(up.get("upsample_mode", "nn_cat") in ("nn_cat", "pixelshuffle"), "upsample_mode nn_cat or pixelshuffle")
        need([float(v) for v in pose.get("principal_point", (0.5, 0.5))] == [0.5, 0.5],
             "the principal point at the image centre (get_camera_mat)")
        fov = float(pose.get("fov", 0.0)) or math.degrees(2 * math.atan(0.5 / float(pose["focal"])))
        u_mean, u_half = float(pose.get("yaw_mean", math.pi / 2)) - math.pi / 2, float(pose.get("yaw_stddev", 0.0))
        v_mean, v_half = float(pose.get("polar_mean", math.pi / 2)), float(pose.get("polar_stddev", 0.0))
        radius = float(pose.get("radius", 1.0))
        base = float(up.get("channel_base", 32768)) / 32768  # Upsampler.build_network: channel_base * 32768
        camera = {"range_v": [v_mean - v_half, v_mean + v_half], "range_u": [u_mean - u_half, u_mean + u_half],
                  "range_radius": [radius, radius],
                  "depth_range": [float(sampler["ray_start"]), float(sampler["ray_end"])],
                  "fov": fov, "gaussian_camera": True, "angular_camera": True, "depth_transform": None,
                  "dists_normalized": False, "ray_align_corner": False,
                  "bg_start": float(bg_sampler.get("inverse_radius_start", 0.5))}
        synthesis = {
            "module_name": "training.stylenerf.NeRFSynthesisNetwork", "num_fp16_res": 4, "channel_base": base,
            "channel_max": int(up.get("channel_max", 1024)),
            "conv_clamp": None if up.get("conv_clamp") is None else float(up["conv_clamp"]), "kernel_size": 1,
            "architecture": "skip", "upsample_mode": up.get("upsample_mode", "nn_cat"),
            "z_dim_bg": int(bg_embedder.get("latent_dim", 32)), "z_dim": 0,
            "resolution_vol": int(up["in_resolution"]), "resolution_start": int(up["in_resolution"]),
            "rgb_out_dim": int(decoder["output_dim"]), "use_noise": False, "no_bbox": True, "margin": 0,
            "magnitude_ema_beta": float(up.get("magnitude_ema_beta", 0.999)), "camera_kwargs": camera,
            "renderer_kwargs": {"n_bg_samples": int(bg_sampler["num_samples"]),
                                "n_ray_samples": int(sampler["num_samples"]), "abs_sigma": False,
                                "hierarchical": importance > 0, "no_background": False},
            "foreground_kwargs": {"positional_encoding": "normal", "downscale_p_by": 1, "use_style": "StyleGAN2",
                                  "predict_rgb": True, "use_viewdirs": False, "hidden_size": int(decoder["hidden_dim"]),
                                  "n_blocks": int(decoder["depth"]),
                                  "n_freq_posenc": int(embedder.get("num_frequencies", 10))},
            "background_kwargs": {"positional_encoding": "normal", "hidden_size": int(bg_decoder["hidden_dim"]),
                                  "n_blocks": int(bg_decoder["depth"]), "downscale_p_by": 1, "skips": [],
                                  "inverse_sphere": True, "use_style": "StyleGAN2", "predict_rgb": True,
                                  "use_viewdirs": False, "n_freq_posenc": int(bg_embedder.get("num_frequencies", 10))},
            "upsampler_kwargs": {"channel_base": base, "channel_max": int(up.get("channel_max", 1024)),
                                 "no_2d_renderer": False, "no_residual_img": False, "block_reses": None,
                                 "shared_rgb_style": False, "upsample_type": "bilinear"},
            "progressive": True, "n_reg_samples": 16, "reg_full": True,
        }
        mapping = {"num_layers": int(mapper.get("num_layers", 8)),
                   "lr_multiplier": float(mapper.get("lr_multiplier", 0.01)),
                   "w_avg_beta": float(mapper.get("w_avg_beta", 0.995))}
        return {"G_kwargs": {"z_dim": int(mapper["z_dim"]), "c_dim": 0, "w_dim": int(mapper["w_dim"]),
                             "img_resolution": int(up["image_resolution"]), "img_channels": 3,
                             "mapping_kwargs": mapping, "synthesis_kwargs": synthesis},
                "z_dim_bg": synthesis["z_dim_bg"]}

    def build(self, train: bool) -> None:
        import numpy as np
        import torch

        if train:
            raise OfficialSourceError("stylenerf: the official side is timed at inference only (its training step "
                                      "is not driven); run with --no-train")
        import torch._dynamo  # noqa: F401  (it scans sys.modules: before the stubs)

        _stub_module("requests")  # dnnlib/util.py: downloads only
        _stub_module("numpy.lib.arraysetops", isin=np.isin)  # training/networks.py; gone in NumPy 2
        _stub_module("numpy.lib.function_base", angle=np.angle)  # dnnlib/camera.py; gone in NumPy 2
        if self.device.type == "cuda":  # the PyTorch reference ops, as for EG3D (no nvcc plugin builds)
            for name in ("bias_act", "upfirdn2d", "filtered_lrelu"):
                with contextlib.suppress(ImportError):
                    importlib.import_module(f"torch_utils.ops.{name}")._init = lambda: False
        try:
            networks = importlib.import_module("training.networks")
            importlib.import_module("training.stylenerf")
        except ModuleNotFoundError as e:
            if e.name != "einops":
                raise
            raise OfficialSourceError("stylenerf: the official code imports einops (its requirements.txt); "
                                      "install it in this environment") from e
        torch.manual_seed(0)
        self.G = networks.Generator(**copy.deepcopy(self.cfg["G_kwargs"])).eval().requires_grad_(False)
        self.G.synthesis.set_alpha(1.0)  # fully grown, as a released network
        self.G.to(self.device)
        self._half_blocks = [block for block in self._upsampler_blocks() if block.use_fp16]
        if self.precision == "fp32":
            self._fp16(False)
        self._background: Callable[[int], Any] | None = None
        self.trains = False

    def _upsampler_blocks(self) -> list:
        synthesis = self.G.synthesis
        return [getattr(synthesis, name) for name in synthesis.block_names]

    def _fp16(self, enabled: bool) -> None:
        for block in self._half_blocks:
            block.use_fp16 = enabled

    def share_weights(self, trainer) -> None:
        from gan3d.methods.stylenerf.official import generator_state

        # the importer's map: the same names under gan3d's prefixes, the NeRF MLPs' inputs in gan3d's y-up world
        state = generator_state(self.G.state_dict(), self.recipe)
        _fit(trainer.G, state, "stylenerf generator")
        _fit(trainer.G_ema, state, "stylenerf EMA generator")

    def _camera_matrices(self, cameras):
        """The official ``(camera_mat, world_mat, mode, reg_loss)`` of gan3d cameras: ``world_mat`` the
        cam2world in the official z-up world with OpenGL camera axes (``image_points_to_world`` casts
        through ``(x, y, -1)``), ``camera_mat`` the inverse intrinsics over pixels in [-1, 1]
        (``get_camera_mat``: focal ``2 fx / W``)."""
        import torch

        c2w = cameras.cam2world.to(self.device, torch.float32)
        K = cameras.intrinsics.to(self.device, torch.float32)
        batch = c2w.shape[0]
        to_official = torch.tensor(self.TO_OFFICIAL, device=self.device)
        flip = torch.tensor([1.0, -1.0, -1.0], device=self.device)  # OpenCV -> OpenGL camera axes
        world = torch.zeros(batch, 4, 4, device=self.device)
        world[:, :3, :3] = to_official @ c2w[:, :3, :3] * flip
        world[:, :3, 3] = c2w[:, :3, 3] @ to_official.T
        world[:, 3, 3] = 1.0
        camera_mat = torch.zeros(batch, 4, 4, device=self.device)
        camera_mat[:, 0, 0] = 1 / (2 * K[:, 0, 0])
        camera_mat[:, 1, 1] = 1 / (2 * K[:, 1, 1])
        camera_mat[:, 2, 2] = camera_mat[:, 3, 3] = 1.0
        return camera_mat, world, torch.zeros(batch, 3, device=self.device), None

    def infer(self, z, cameras):
        batch = len(z)
        kwargs: dict[str, Any] = {}
        if self._background is not None:  # the comparison's background latent (get_latent_codes' layout)
            z_bg = self._background(batch).to(z.device)
            empty = z.new_zeros(batch, 0)
            kwargs["latent_codes"] = (empty, empty, z_bg, z_bg)
        out = self.G(z=z, c=z.new_zeros(batch, 0), camera_matrices=self._camera_matrices(cameras),
                     noise_mode="const", **kwargs)
        return out["img"]

    @contextlib.contextmanager
    def deterministic(self, G) -> Iterator[None]:
        import torch

        # The official eval mode is deterministic (no interval jitter, no density noise, sample_pdf(det=True));
        # ours in eval mode draws nothing without perturb_in_eval. The background latent, which both sides draw
        # afresh, is one fixed draw given to both; the official fp16 upsampler blocks compute in float32.
        dim = int(self.cfg["z_dim_bg"])

        def background(batch: int):
            return torch.randn(batch, dim, generator=torch.Generator().manual_seed(self.BACKGROUND_SEED))

        samplers = [mod for mod in G.modules() if hasattr(mod, "perturb_in_eval")]
        saved = [mod.perturb_in_eval for mod in samplers]
        embedder = G.groups["background"].embedder
        own_scene = embedder.__dict__.get("scene")
        halves = [block.use_fp16 for block in self._half_blocks]
        for mod in samplers:
            mod.perturb_in_eval = False
        embedder.scene = lambda ws, generator=None: background(ws.shape[0]).to(ws.device, torch.float32)
        self._background = background
        self._fp16(False)
        try:
            yield
        finally:
            for mod, value in zip(samplers, saved, strict=True):
                mod.perturb_in_eval = value
            del embedder.scene
            if own_scene is not None:
                embedder.scene = own_scene
            self._background = None
            for block, value in zip(self._half_blocks, halves, strict=True):
                block.use_fp16 = value


@register
class GRAMOfficial(OfficialAdapter):
    """microsoft/GRAM's ``GramGenerator`` (generators/generators.py: the ``Gram`` representation and the
    ``ManifoldRenderer``), at inference only: the image comparison and the interleaved inference timing
    (the official training step is not driven; ``--train`` with a GRAM source is an error for that row)."""

    method = "gram"
    official_class = "GramGenerator"
    repository = "microsoft/GRAM"
    commit = "5a5ac8e11306f976ac5a85e23344d0cdba0125ca"
    layout = "generators/generators.py and generators/representations/gram.py"

    required_files = ("generators/generators.py", "generators/representations/gram.py")

    def config(self) -> dict[str, Any]:
        """configs.py's ``generator`` and ``camera`` entries of the recipe."""
        r = self.recipe
        m = self.modules()
        need = self.need

        mapper, decoder, sampler = m["stochasticity_mapper"][1], m["feature_decoder"][1], m["point_sampler"][1]
        vr, pose = m["volume_renderer"][1], m["pose_sampler"][1]
        need(m["stochasticity_mapper"][0] == "pigan" and int(mapper.get("hidden_dim", 256)) == 256,
             "the mapping network is CustomMappingNetwork(z_dim, 256, ...) (gram.py)")
        need(m["feature_decoder"][0] == "gram_radiance" and int(decoder.get("num_layers", 8)) == 8,
             "GramRF has 8 FiLM layers")
        rgb = str(decoder.get("rgb_activation", "widen_sigmoid"))
        density = str(vr.get("density_activation", "softplus"))
        need(rgb in ("widen_sigmoid", "sigmoid") and density in ("softplus", "relu"),
             f"rgb {rgb} / density {density}: GramRF clamps rgb with (widen_)sigmoid and sigma with softplus or relu")
        need(m["point_sampler"][0] == "manifold" and bool(sampler.get("align_corners", True)),
             "get_initial_rays_trig casts rays on the corner-aligned linspace(-1, 1) grid (manifold sampler)")
        need(float(sampler.get("background_z", -0.12)) == -0.12, "the background plane is at z = -0.12 (renderer)")
        need(m["volume_renderer"][0] == "volume" and float(vr.get("noise_std", 0.0)) == 0.0,
             "fancy_integration adds no density noise")
        need(m["point_embedder"][0] == "coordinate", "GramRF warps the points with UniformBoxWarp(normalize)")
        need(m["upsampler"][0] == "identity", "GRAM renders its image directly (no upsampler)")
        need(int(r.generator.get("num_importance", 0)) == 0, "the manifold renderer has no hierarchical pass")
        fov = float(pose.get("fov") or 0.0)
        need(fov > 0 and not pose.get("focal"), "the camera is given by its field of view (configs.py 'fov')")
        need(float(pose.get("radius", 1.0)) == 1.0 and not any(pose.get("orbit_center") or [])
             and not any(pose.get("pivot") or []),
             "sample_camera_positions puts the camera on the unit sphere looking at the origin")
        representation = {
            "hidden_dim": int(mapper.get("film_dim", 256)), "normalize": float(m["point_embedder"][1]["box_warp"]),
            "sigma_clamp_mode": density, "rgb_clamp_mode": rgb,
            "hidden_dim_sample": int(sampler["hidden_dim"]), "layer_num_sample": int(sampler["num_layers"]),
            "center": tuple(float(c) for c in sampler.get("center", (0.0, 0.0, 0.0))),
            "init_radius": float(sampler.get("init_radius", 0.0)),
        }
        renderer = {
            "num_samples": int(sampler["num_samples"]), "num_manifolds": int(sampler["num_manifolds"]),
            "levels_start": float(sampler["levels_start"]), "levels_end": float(sampler["levels_end"]),
            "delta_alpha": float(sampler.get("delta", 0.04)), "delta_final": float(sampler.get("delta_final", 1e10)),
            "last_back": bool(vr.get("eval_last_back", False)), "white_back": bool(vr.get("white_back", False)),
            "background": bool(sampler.get("background", True)),
        }
        return {"z_dim": int(mapper["z_dim"]), "img_size": int(r.generator["render_resolution"]),
                "representation": representation, "renderer": renderer,
                "camera": {"fov": fov, "ray_start": float(sampler["ray_start"]), "ray_end": float(sampler["ray_end"])}}

    def build(self, train: bool) -> None:
        import torch

        if train:
            raise OfficialSourceError("gram: the official side is timed at inference only (the training process "
                                      "is not driven); run with --no-train")
        generators = importlib.import_module("generators.generators")
        cfg = self.cfg
        torch.manual_seed(0)
        # the angles of sample_camera_positions are unused: every call passes the cameras' camera_pos
        self.G = generators.GramGenerator(cfg["z_dim"], cfg["img_size"], 0.0, 0.0, math.pi / 2, math.pi / 2, "fix",
                                          dict(cfg["representation"]), dict(cfg["renderer"]))
        self.G = self.G.to(self.device).eval()
        self.trains = False

    def share_weights(self, trainer) -> None:
        from gan3d.core.official.importer import rename_keys
        from gan3d.methods.gram.official import GENERATOR_RENAMES

        for ours, what in ((trainer.G, "gram generator"), (trainer.G_ema, "gram EMA generator")):
            state = rename_keys(self.G.state_dict(), GENERATOR_RENAMES)
            # gan3d keeps the truncation centre as a buffer; GramRF estimates it on demand (unused at psi 1).
            state["mapper.w_avg"] = ours.state_dict()["mapper.w_avg"]
            _fit(ours, state, what)

    def _camera_pos(self, cameras):
        """GRAM's ``camera_pos`` ``[B, 2]`` = (phi, theta) of gan3d cameras: phi is our polar angle and theta
        ``pi - yaw`` (tests/methods/test_official_gram.py); without angles, read from the camera centres
        (``get_camera_origins``: ``(sin phi cos theta, cos phi, sin phi sin theta)``, the same y-up world)."""
        import torch

        if cameras.angles is not None:
            angles = cameras.angles.to(self.device, torch.float32)
            return torch.cat([angles[:, 1:2], math.pi - angles[:, :1]], -1)
        origin = cameras.cam2world[:, :3, 3].to(self.device, torch.float32)
        origin = origin / origin.norm(dim=-1, keepdim=True)
        return torch.stack([origin[:, 1].clamp(-1, 1).acos(), torch.atan2(origin[:, 2], origin[:, 0])], -1)

    def infer(self, z, cameras):
        cfg = self.cfg
        image, _ = self.G(z, img_size=cfg["img_size"], camera_pos=self._camera_pos(cameras), truncation_psi=1,
                          **cfg["camera"])
        return image  # pixels * 2 - 1 (manifold_renderer.py)

    def deterministic(self, G) -> contextlib.AbstractContextManager:
        # The official render draws nothing (get_initial_rays_trig(randomize=False), no partial_grad at
        # eval); ours neither, once the sampler's eval-mode jitter (if it has one) is off.
        return without_eval_jitter(G)


@register
class GIRAFFEOfficial(OfficialAdapter):
    """autonomousvision/giraffe's ``Generator`` (im2scene/giraffe/models/generator.py, with its ``Decoder``
    fields, ``BoundingBoxGenerator`` and ``NeuralRenderer``), at inference only: the image comparison and
    the interleaved inference timing (the official training step is not driven; ``--train`` with a GIRAFFE
    source is an error for that row).

    Only the model modules are imported (``im2scene.giraffe.models``), not the packages' ``__init__``,
    which pull in the training and evaluation code (torchvision, the Inception network): ``im2scene`` and
    ``im2scene.giraffe`` are registered as bare packages of the checkout's folders. im2scene/layers.py
    imports kornia's ``filter2D`` (GIRAFFE pins kornia 0.3.0).

    Both sides render the same scenes: the official forward is given, explicitly, the codes, object
    transformations and background rotation of gan3d's ``giraffe`` mapper for the same ``z`` (the mapper
    is a deterministic function of ``z``), and camera matrices made from gan3d's cameras, all turned into
    GIRAFFE's z-up frames (the inverse of ``gan3d.methods.giraffe.official.scene_latent``/``cameras``).
    """

    method = "giraffe"
    official_class = "Generator"
    repository = "autonomousvision/giraffe"
    commit = "fc8d4503538fde8654785c90ec4d6191fa5d11e5"
    layout = "im2scene/giraffe/models/generator.py and im2scene/camera.py"

    required_files = ("im2scene/giraffe/models/generator.py", "im2scene/camera.py")

    def config(self) -> dict[str, Any]:
        """config.py ``get_model``'s constructor options (configs/default.yaml ``model``) of the recipe."""
        r = self.recipe
        m = self.modules()
        need = self.need

        need(m["stochasticity_mapper"][0] == "giraffe", "GIRAFFE draws codes and boxes (the giraffe mapper)")
        mapper = m["stochasticity_mapper"][1]
        need(float(mapper.get("box_padding", 0.1)) == 0.1, "volume_render_image masks objects at |p| <= 1.1")
        fields = {}
        for slot in ("feature_decoder", "background/feature_decoder"):
            name, kw = m[slot]
            need(name == "giraffe_field", f"{slot} {name} (GIRAFFE's fields are its Decoder)")
            need(bool(kw.get("use_viewdirs", True)), "every GIRAFFE Decoder reads view directions")
            embedder = m[slot.replace("feature_decoder", "point_embedder")]
            need(embedder[0] == "coordinate" and float(embedder[1].get("box_warp", 2.0)) == 2.0,
                 "the Decoder encodes the points itself (coordinate embedder, box_warp 2)")
            fields[slot] = {"hidden_size": int(kw.get("hidden_dim", 128)), "n_blocks": int(kw.get("n_blocks", 8)),
                            "skips": [int(s) for s in kw.get("skips", [4])],
                            "n_freq_posenc": int(kw.get("num_frequencies", 10)),
                            "n_freq_posenc_views": int(kw.get("num_view_frequencies", 4)),
                            "rgb_out_dim": int(kw.get("feature_dim", 128)),
                            "downscale_p_by": float(kw.get("downscale", 2.0))}
        features = fields["feature_decoder"]["rgb_out_dim"]
        need(fields["background/feature_decoder"]["rgb_out_dim"] == features,
             "objects and background compose features of one width (rgb_out_dim)")
        sampler_name, sampler = m["point_sampler"]
        need(sampler_name == "uniform" and bool(sampler.get("align_corners")) and bool(sampler.get("axis_depths"))
             and not sampler.get("disparity_space_sampling", False),
             "arange_pixels' corner-aligned rays with linspace depths along the optical axis (uniform sampler, "
             "align_corners, axis_depths)")
        need(int(r.generator.get("num_importance", 0)) == 0, "GIRAFFE has no hierarchical pass")
        vr_name, vr = m["volume_renderer"]
        need(vr_name == "volume" and vr.get("density_activation") == "relu" and vr.get("quadrature") == "last_delta"
             and float(vr.get("last_delta", 1e10)) == 1e10 and not vr.get("white_back", False),
             "calc_volume_weights: ReLU density, last interval 1e10, no white background")
        res = int(r.generator["render_resolution"])
        up_name, up = m["upsampler"]
        need(up_name == "giraffe_neural_renderer" and bool(up.get("final_sigmoid", True)),
             f"upsampler {up_name} (GIRAFFE's is its NeuralRenderer, ending in a sigmoid)")
        out = int(up.get("out_resolution", 64))
        need(res == 16 and int(up.get("in_resolution", 16)) == 16 and out >= 32 and out & (out - 1) == 0,
             f"NeuralRenderer upsamples a 16x16 feature image (log2(img_size) - 4 blocks); the recipe renders {res} px "
             f"to {out} px")
        pose_name, pose = m["pose_sampler"]
        need(pose_name == "spherical" and float(pose.get("fov") or 0.0) > 0 and not pose.get("focal"),
             "get_camera_mat: a field of view (the spherical sampler's fov)")
        need(not any(pose.get("pivot") or []) and not any(pose.get("orbit_center") or []),
             "get_random_pose looks at the origin")
        need([float(v) for v in pose.get("principal_point", [0.5, 0.5])] == [0.5, 0.5],
             "the image plane is centred on the optical axis (principal point 0.5)")
        # The inverse of gan3d.embedders.giraffe_scene.giraffe_box_ranges (ours y-up -> GIRAFFE z-up).
        s0, s1 = mapper.get("scale_min", [0.2, 0.16, 0.16]), mapper.get("scale_max", [0.25, 0.2, 0.2])
        t0, t1 = mapper.get("translation_min", [-0.22, 0.0, -0.12]), mapper.get("translation_max", [0.22, 0.0, 0.12])
        boxes = {"n_boxes": int(mapper.get("n_objects", 1)), "scale_range_min": [s0[0], s0[2], s0[1]],
                 "scale_range_max": [s1[0], s1[2], s1[1]], "translation_range_min": [t0[0], -t1[2], t0[1]],
                 "translation_range_max": [t1[0], -t0[2], t1[1]],
                 "rotation_range": list(mapper.get("rotation_range", [0.0, 1.0])),
                 "fix_scale_ratio": bool(mapper.get("fix_scale_ratio", True))}
        polar = pose.get("polar_range") or [pose.get("polar_mean", math.pi / 2)] * 2
        radius = float(pose.get("radius", 2.732))
        generator = {"z_dim": int(mapper.get("object_z_dim", 256)),
                     "z_dim_bg": int(mapper.get("background_z_dim", 128)), "range_u": (0.0, 0.0),
                     "range_v": [(1 - math.cos(float(p))) / 2 for p in polar],
                     "n_ray_samples": int(sampler["num_samples"]), "range_radius": (radius, radius),
                     "depth_range": [float(sampler["ray_start"]), float(sampler["ray_end"])], "resolution_vol": res,
                     "fov": float(pose["fov"]),
                     "backround_rotation_range": [float(v) for v in mapper.get("background_rotation_range", [0, 0])]}
        renderer = {"n_feat": int(up.get("n_feat", 128)), "input_dim": features,
                    "min_feat": int(up.get("min_feat", 32)), "img_size": out,
                    "use_rgb_skip": bool(up.get("use_rgb_skip", True)),
                    "upsample_feat": str(up.get("upsample_feat", "nn")),
                    "upsample_rgb": str(up.get("upsample_rgb", "bilinear")),
                    "use_norm": bool(up.get("use_norm", False)), "final_actvn": bool(up.get("final_sigmoid", True))}
        return {"decoder": fields["feature_decoder"], "background_generator": fields["background/feature_decoder"],
                "bounding_box_generator": boxes, "neural_renderer": renderer, "generator": generator}

    def _import_models(self):
        """``im2scene.giraffe.models`` without the packages' ``__init__`` (see the class doc)."""

        try:
            importlib.import_module("kornia.filters")
        except ImportError as e:
            raise OfficialSourceError(
                "giraffe: the official code needs the package 'kornia' (im2scene/layers.py imports "
                "kornia.filters.filter2D; GIRAFFE pins kornia==0.3.0: pip install --no-deps kornia==0.3.0), "
                f"which cannot be imported here ({e})") from e
        from scipy.spatial.transform import Rotation

        if not hasattr(Rotation, "as_dcm"):  # scipy >= 1.6 renamed it as_matrix (the same matrix)
            Rotation.as_dcm = Rotation.as_matrix
        _bare_package("im2scene", self.code / "im2scene")
        _bare_package("im2scene.giraffe", self.code / "im2scene" / "giraffe")
        return importlib.import_module("im2scene.giraffe.models")

    def build(self, train: bool) -> None:
        import torch

        from gan3d.core.generator import build_module

        if train:
            raise OfficialSourceError("giraffe: the official side is timed at inference only (the training step "
                                      "is not driven); run with --no-train")
        models = self._import_models()
        cfg = self.cfg
        gen = cfg["generator"]
        torch.manual_seed(0)
        decoder = models.decoder.Decoder(z_dim=gen["z_dim"], **cfg["decoder"])
        background = models.decoder.Decoder(z_dim=gen["z_dim_bg"], **cfg["background_generator"])
        boxes = models.bounding_box_generator.BoundingBoxGenerator(z_dim=gen["z_dim"], **cfg["bounding_box_generator"])
        renderer = models.neural_renderer.NeuralRenderer(z_dim=gen["z_dim"], **cfg["neural_renderer"])
        self.G = models.generator.Generator(self.device, decoder=decoder, background_generator=background,
                                            bounding_box_generator=boxes, neural_renderer=renderer, **gen)
        self.G = self.G.to(self.device).eval()
        # gan3d's mapper for the scene latent of z (no parameters): the official forward gets the same scenes.
        self.mapper = build_module(self.recipe, "stochasticity_mapper").to(self.device)
        self.trains = False

    def share_weights(self, trainer) -> None:
        from gan3d.methods.giraffe.official import generator_state

        # The importer's map: decoder.* and background_generator.* (encoding columns to our axes),
        # neural_renderer.* -> upsampler.*, the Blur kernels dropped.
        state = generator_state(self.G.state_dict())
        _fit(trainer.G, state, "giraffe generator")
        _fit(trainer.G_ema, state, "giraffe EMA generator")

    def _scene(self, z):
        """The official ``latent_codes``, ``transformations`` and ``bg_rotation`` of gan3d's scene latent for
        ``z`` (our y-up frames back to GIRAFFE's z-up: scales permuted, translations by ``A^T``, rotations
        ``A^T R A``)."""
        import torch

        from gan3d.methods.giraffe.official import AXES

        latent = self.mapper(z)
        a = AXES.to(z.device, torch.float32)
        codes, bg = latent.codes["main"], latent.codes["background"]
        main, background = latent.frames["main"], latent.frames["background"]
        transformations = (main.scale[..., [0, 2, 1]].contiguous(), main.translation @ a,
                           a.T @ main.rotation @ a)
        return ((codes[:, :, 0], codes[:, :, 1], bg[:, 0, 0], bg[:, 0, 1]), transformations,
                a.T @ background.rotation[:, 0] @ a)

    def _camera_matrices(self, cameras):
        """GIRAFFE's ``(camera_mat, world_mat)`` of gan3d cameras: the inverse intrinsics ``diag(1/f, 1/f, 1,
        1)`` over the image's ``[-1, 1]`` (``f = 2 fx``) and cam2world with OpenGL axes in the z-up world."""
        import torch

        from gan3d.methods.giraffe.official import AXES

        c2w = cameras.cam2world.to(self.device, torch.float32)
        K = cameras.intrinsics.to(self.device, torch.float32)
        a = AXES.to(self.device)
        flip = torch.tensor([1.0, -1.0, -1.0], device=self.device)  # OpenCV -> OpenGL camera axes
        world = torch.eye(4, device=self.device).repeat(len(c2w), 1, 1)
        world[:, :3, :3] = a.T @ c2w[:, :3, :3] * flip
        world[:, :3, 3] = c2w[:, :3, 3] @ a
        camera = torch.eye(4, device=self.device).repeat(len(c2w), 1, 1)
        camera[:, 0, 0] = 1 / (2 * K[:, 0, 0])
        camera[:, 1, 1] = 1 / (2 * K[:, 1, 1])
        return camera, world

    def infer(self, z, cameras):
        codes, transformations, bg_rotation = self._scene(z)
        image = self.G(len(z), codes, self._camera_matrices(cameras), transformations, bg_rotation, mode="val")
        return image * 2 - 1  # NeuralRenderer's final sigmoid: [0, 1]

    def deterministic(self, G) -> contextlib.AbstractContextManager:
        # mode='val': no interval jitter, no density noise.
        return without_eval_jitter(G)


@register
class StyleSDFOfficial(OfficialAdapter):
    """royorel/StyleSDF's ``Generator`` (model.py: the mapping network, the SDF ``VolumeFeatureRenderer`` of
    volume_renderer.py and, for the full pipeline, rosinality's StyleGAN2 ``Decoder``), at inference only:
    the image comparison and the interleaved inference timing (the official training steps are not driven;
    ``--train`` with a StyleSDF source is an error for that row).

    The official network is built with generate_shapes_and_images.py's inference options (``is_test``,
    ``static_viewdirs``, ``force_background``, ``perturb 0``, offset sampling) at the recipe's sizes: the full
    pipeline (the published ``ffhq_full`` / ``afhq_full``) or the volume renderer alone (``*_volume``: its
    thumbnail is the image). It renders from gan3d's cameras turned into the official ``(cam_poses, focals,
    near, far)`` (OpenGL camera axes, focal in render pixels, near and far of the offset sampling).

    The official CUDA ops (``op/``: fused leaky ReLU and upfirdn2d, compiled with ninja by
    ``torch.utils.cpp_extension.load`` when ``op`` is imported) are replaced, on a CPU and on CUDA alike,
    by the pure-PyTorch reference ops of tools/fixtures/stylesdf_ops.py (the same functions; a CPU cannot
    build them, and a JIT build of CUDA kernels cannot be relied on in the benchmark's process): on CUDA
    the official decoder is therefore timed without its fused kernels (``info()['ops']`` says so).
    ``trimesh`` and ``pytorch3d``, which model.py and utils.py import for mesh export and rendering only,
    are stubbed when missing.
    """

    method = "stylesdf"
    official_class = "Generator"
    repository = "royorel/StyleSDF"
    commit = "1c995101b80bf43f74fd2a047d239da85c9d2375"
    layout = "model.py, volume_renderer.py and op/"

    @classmethod
    def code_dir(cls, root: Path) -> Path | None:
        ok = all((root / p).is_file() for p in ("model.py", "volume_renderer.py")) and (root / "op").is_dir()
        return root if ok else None

    def info(self) -> dict[str, Any]:
        return {**super().info(), "ops": "reference (tools/fixtures/stylesdf_ops.py; the official CUDA op/ is "
                                         "not built)"}

    def config(self) -> dict[str, Any]:
        """options.py's ``model`` and ``rendering`` groups of the recipe (with the inference settings of
        generate_shapes_and_images.py), and the cameras' ``near``/``far``; ``OfficialSourceError`` for what
        the official Generator cannot express."""
        from gan3d.renderers.stylesdf_upsampler import stylesdf_channels

        r = self.recipe
        m = self.modules()
        need = self.need

        expected = {"stochasticity_mapper": "stylesdf", "point_sampler": "uniform", "point_embedder": "coordinate",
                    "feature_decoder": "stylesdf_siren", "volume_renderer": "sdf"}
        for slot, name in expected.items():
            need(slot in m and m[slot][0] == name, f"{slot} must be {name!r} (got {m.get(slot, ('none',))[0]!r})")
        need(not any("/" in slot for slot in m), "one field group (no background)")
        up_name = m.get("upsampler", ("identity", {}))[0]
        need(up_name in ("stylesdf", "identity"), f"the upsampler is StyleSDF's decoder or none (got {up_name!r})")
        full = up_name == "stylesdf"
        mapper, sampler, embedder = m["stochasticity_mapper"][1], m["point_sampler"][1], m["point_embedder"][1]
        siren, renderer = m["feature_decoder"][1], m["volume_renderer"][1]
        style_dim = int(mapper.get("z_dim", 256))
        need(int(mapper.get("num_layers", 3)) == 3, "the renderer's mapping network has 3 layers (Generator.style)")
        need(int(siren.get("style_dim", 256)) == style_dim and int(siren.get("in_channels", 3)) == 3,
             "the SIREN is modulated by the style_dim-wide latent and reads 3-d points")
        need(bool(siren.get("output_features", True)) == full,
             "the SIREN outputs features exactly when a decoder reads them (no_features_output)")
        need(int(r.generator.get("num_importance", 0)) == 0, "one pass of samples (no importance sampling)")
        need(sampler.get("perturbation", "forward") == "forward" and not sampler.get("disparity_space_sampling")
             and not sampler.get("align_corners") and bool(sampler.get("axis_depths"))
             and not float(sampler.get("range_reference_radius", 0.0)),
             "offset sampling at camera-space depths through pixel centres (VolumeFeatureRenderer.render_rays)")
        need(int(embedder.get("num_frequencies", 0)) == 0 and embedder.get("include_input", True)
             and not float(embedder.get("scene_extent", 0.0)), "the SIREN reads the (normalised) points themselves")
        need(renderer.get("quadrature", "last_delta") == "last_delta"
             and float(renderer.get("last_delta", 1e10)) == 1e10 and not renderer.get("white_back")
             and not renderer.get("last_back") and not renderer.get("unit_to_signed"),
             "the official SDF volume weights (a 1e10-long last interval, no white background)")
        need(r.generator.get("image_range", "tanh") == "unit", "the rendered RGB is sigmoid(rgb) in [0, 1]")
        samples = int(sampler["num_samples"])
        near, last = float(sampler["ray_start"]), float(sampler["ray_end"])
        far = near + (last - near) * samples / (samples - 1)  # t_vals = linspace(0, 1 - 1/N, N)
        warp = float(embedder.get("box_warp", 2.0))
        if math.isclose(warp, far - near, rel_tol=1e-6):
            z_normalize = True  # pts * 2 / (far - near)
        else:
            need(warp == 2.0, f"the points are normalised by far - near = {far - near:g} (z_normalize) or not "
                              f"at all (box_warp 2), not box_warp {warp:g}")
            z_normalize = False
        res = int(r.generator["render_resolution"])
        model = {"size": res, "style_dim": style_dim, "channel_multiplier": 2, "n_mlp": 8, "lr_mapping": 0.01,
                 "renderer_spatial_output_dim": res, "project_noise": False, "freeze_renderer": False,
                 "no_viewpoint_loss": False, "is_test": True}
        rendering = {"depth": int(siren.get("depth", 8)), "width": int(siren.get("width", 256)), "no_sdf": False,
                     "no_z_normalize": not z_normalize,
                     "static_viewdirs": bool(sampler.get("static_view_directions_in_eval", False)),
                     "N_samples": samples, "no_offset_sampling": False, "perturb": 0.0, "raw_noise_std": 0.0,
                     "force_background": bool(renderer.get("eval_last_back", False)), "return_xyz": False,
                     "return_sdf": False}
        if full:
            up = m["upsampler"][1]
            size, in_res = int(up.get("out_resolution", 1024)), int(up.get("in_resolution", 64))
            multiplier = int(up.get("channel_multiplier", 2))
            need(in_res == res, "the decoder reads the renderer's feature maps (renderer_spatial_output_dim)")
            need(int(up.get("skip_channels", 3)) == 3 and int(up.get("in_channels", 256)) == rendering["width"],
                 "the decoder reads the SIREN's width-wide features without the RGB (rgbd_in None)")
            need(int(up.get("style_dim", 256)) == style_dim and int(up.get("mapping_layers", 5)) == 5,
                 "the decoder's mapping network is PixelNorm + 5 layers on the renderer's latent")
            need(size <= 1024, "Decoder.channels goes up to 1024 px")
            table = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * multiplier, 128: 128 * multiplier,
                     256: 64 * multiplier, 512: 32 * multiplier, 1024: 16 * multiplier}
            need(all(table[2 ** k] == stylesdf_channels(2 ** k, multiplier)
                     for k in range(int(math.log2(in_res)), int(math.log2(size)) + 1)),
                 f"channel_multiplier {multiplier}: Decoder.channels (256 x m at 64 px) differs")
            model.update(size=size, channel_multiplier=multiplier,
                         lr_mapping=float(up.get("mapping_lr_multiplier", 0.01)))
        else:
            rendering["no_features_output"] = True  # train_volume_renderer.py
        return {"model": model, "rendering": rendering, "full": full, "near": near, "far": far,
                "render_resolution": res}

    @staticmethod
    def _stub_lenient(name: str) -> None:
        """A placeholder module ``name`` (every attribute a placeholder class) when it cannot be imported:
        model.py and utils.py import trimesh and pytorch3d names for meshes the benchmark never makes."""
        import types

        try:
            importlib.import_module(name)
        except ImportError:
            module = types.ModuleType(name)
            module.__path__ = []
            module.__getattr__ = lambda attribute: type(attribute, (), {"__module__": name})
            sys.modules[name] = module

    def build(self, train: bool) -> None:
        import importlib.util

        import torch

        if train:
            raise OfficialSourceError("stylesdf: the official side is timed at inference only (its training steps "
                                      "are not driven); run with --no-train")
        cfg = self.cfg
        spec = importlib.util.spec_from_file_location(
            "_gan3d_bench_stylesdf_ops", Path(__file__).resolve().parent / "fixtures" / "stylesdf_ops.py")
        ops = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(ops)
        ops.install()  # sys.modules["op"]: the reference ops (see the class doc)
        for name in ("trimesh", "pytorch3d", "pytorch3d.io", "pytorch3d.renderer", "pytorch3d.structures",
                     "pytorch3d.transforms", "pytorch3d.renderer.mesh", "skimage", "skimage.measure", "scipy",
                     "scipy.spatial"):
            self._stub_lenient(name)
        model = importlib.import_module("model")
        torch.manual_seed(0)
        self.G = model.Generator(AttrDict(cfg["model"]), AttrDict(cfg["rendering"]), ema=True,
                                 full_pipeline=cfg["full"])
        self.G = self.G.to(self.device).eval().requires_grad_(False)
        self._randomize_noise = True  # generate_shapes_and_images.py's default
        self.trains = False

    def share_weights(self, trainer) -> None:
        from gan3d.core.official.importer import rename_keys
        from gan3d.methods.stylesdf.official import RENDERER_RENAMES, decoder_state

        official = self.G.state_dict()
        renderer = {k: v for k, v in official.items() if not k.startswith("decoder.")}
        state = rename_keys(renderer, RENDERER_RENAMES)
        if self.cfg["full"]:
            state.update(decoder_state(official, self.cfg["render_resolution"]))
        for ours, what in ((trainer.G, "stylesdf generator"), (trainer.G_ema, "stylesdf EMA generator")):
            own = ours.state_dict()
            # the blur kernels are constants (ours: resample_filter); the truncation centre is ours (StyleSDF
            # estimates it by mean_latent on demand; unused at psi 1)
            constants = {k: v for k, v in own.items() if k.endswith("resample_filter") or k == "mapper.w_avg"}
            _fit(ours, {**state, **constants}, what)

    def _camera_inputs(self, cameras):
        """The official ``(cam_poses [B, 3, 4], focals, near, far [B, 1, 1])`` of gan3d cameras: the
        cam2world with OpenGL camera axes (``get_rays`` casts through ``(x, -y, -1)``), the focal length in
        render pixels (one for both axes, the principal point at the centre) and the offset sampling's range."""
        import torch

        c2w = cameras.cam2world.to(self.device, torch.float32)
        K = cameras.intrinsics.to(self.device, torch.float32)
        if not (torch.allclose(K[:, 0, 0], K[:, 1, 1])
                and torch.allclose(K[:, :2, 2], torch.full_like(K[:, :2, 2], 0.5))):
            raise OfficialSourceError("stylesdf: the official renderer has one focal length and the principal "
                                      "point at the image centre (VolumeFeatureRenderer.get_rays)")
        batch, res = c2w.shape[0], self.cfg["render_resolution"]
        flip = torch.tensor([1.0, -1.0, -1.0], device=self.device)  # OpenCV -> OpenGL camera axes
        poses = torch.cat([c2w[:, :3, :3] * flip, c2w[:, :3, 3:]], -1)
        focal = (K[:, 0, 0] * res).view(batch, 1, 1)
        near = torch.full((batch, 1, 1), self.cfg["near"], device=self.device)
        far = torch.full((batch, 1, 1), self.cfg["far"], device=self.device)
        return poses, focal, near, far

    def infer(self, z, cameras):
        image, thumb = self.G([z], *self._camera_inputs(cameras), truncation=1,
                              randomize_noise=self._randomize_noise)[:2]
        return image if self.cfg["full"] else thumb  # both in [-1, 1] (rgb_map = -1 + 2 sum w sigmoid(rgb))

    @contextlib.contextmanager
    def deterministic(self, G) -> Iterator[None]:
        # The official inference options draw nothing in the renderer (perturb 0, no density noise); its
        # decoder's noise is the stored one (randomize_noise=False), ours the same buffers (noise_mode const).
        upsampler = G.upsampler
        with without_eval_jitter(G), patched(self, "_randomize_noise", False), \
                (patched(upsampler, "noise_mode", "const") if hasattr(upsampler, "noise_mode")
                 else contextlib.nullcontext()):
            yield


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
        cams = adapter.cameras(G, batch, g).to(device)
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
        cams = adapter.cameras(G, batch, g).to(device)
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
