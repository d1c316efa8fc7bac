"""tools/bench.py --official-src: the side-by-side comparison with the official code.

The real checkouts are not in the repository, so the code path is driven against tiny stand-in
official trees the tests write (the same module paths, class names and call signatures as
NVlabs/eg3d and marcoamonteiro/pi-GAN, small networks of their own): the comparison builds them from
the recipe's configuration, times both sides interleaved at inference and over each kind of training
step, and reports that the stand-in's weights do not fit gan3d's networks (so no image comparison).
With ``GAN3D_OFFICIAL_EG3D`` / ``GAN3D_OFFICIAL_PIGAN`` pointing at real checkouts, the last tests
run the real official code at a reduced width and check that the weights are shared and the images
agree.

GRAF, GRAM, EpiGRAF, StyleNeRF, VolumeGAN, GIRAFFE and StyleSDF are compared at inference only: their
stand-in trees carry the official module paths, constructor signatures and state-dict names (all but
GRAF's with gan3d's own modules inside, registered under the official names), so the
tests check the adapters' plumbing (configuration, weight sharing, camera conversion, deterministic
sampling, timing rows, the refusal of ``--train``) and fail when a weight is not shared or changed.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import bench_official  # noqa: E402

#: EG3D at the official tri-plane size (256 x 256 x 32: the official TriPlaneGenerator fixes it), its
#: widths turned down, a 128-px output from 16-px renders (tools/fixtures/make_eg3d_fixture.py's sizes).
EG3D_TINY = [
    "--resolution", "128", "--set", "eg3d:point_embedder.channel_base=512",
    "--set", "eg3d:point_embedder.channel_max=2",
    "--set", "eg3d:stochasticity_mapper.z_dim=8", "--set", "eg3d:stochasticity_mapper.layer_features=8",
    "--set", "eg3d:stochasticity_mapper.embed_features=8", "--set", "eg3d:point_sampler.num_samples=4",
    "--set", "eg3d:generator.num_importance=4", "--set", "eg3d:generator.render_resolution=16",
    "--set", "eg3d:discriminator.channel_base=128", "--set", "eg3d:discriminator.channel_max=4",
    "--set", "eg3d:discriminator.mapping_num_layers=1", "--set", "eg3d:discriminator.mbstd_group_size=2",
    "--set", "eg3d:loss.density_reg_num_points=16",
]
#: pi-GAN (CelebA) at 16 px with 4 + 4 samples and 16-wide FiLM layers (z stays 256: the official
#: training step compares the discriminator's 256-wide latent head with z).
PIGAN_TINY = [
    "--set", "pigan:generator.render_resolution=16", "--set", "pigan:stochasticity_mapper.film_dim=16",
    "--set", "pigan:feature_decoder.hidden_dim=16",
    "--set", "pigan:point_sampler.num_samples=4", "--set", "pigan:generator.num_importance=4",
    "--set", "pigan:loss.batch_split=1",
]

STANDIN_EG3D = {
    "eg3d/training/__init__.py": "",
    "eg3d/training/triplane.py": '''
        import torch

        class TriPlaneGenerator(torch.nn.Module):
            """Stand-in: the official constructor signature, a small network of its own."""
            def __init__(self, z_dim, c_dim, w_dim, img_resolution, img_channels, sr_num_fp16_res=0,
                         mapping_kwargs={}, rendering_kwargs={}, sr_kwargs={}, **synthesis_kwargs):
                super().__init__()
                self.z_dim, self.c_dim, self.img_resolution = z_dim, c_dim, img_resolution
                self.rendering_kwargs = rendering_kwargs
                self.neural_rendering_resolution = 64
                self.net = torch.nn.Linear(z_dim + c_dim, 3 * 8 * 8)
                self.density = torch.nn.Linear(3, 1)

            def mapping(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False):
                return torch.cat([z, c], 1)

            def synthesis(self, ws, c, neural_rendering_resolution=None, update_emas=False, **kwargs):
                r = neural_rendering_resolution or self.neural_rendering_resolution
                small = self.net(ws).view(-1, 3, 8, 8)
                image = torch.nn.functional.interpolate(small, size=self.img_resolution)
                raw = torch.nn.functional.interpolate(small, size=r)
                return {"image": image, "image_raw": raw, "image_depth": raw[:, :1]}

            def sample_mixed(self, coordinates, directions, ws, **kwargs):
                return {"sigma": self.density(coordinates) * ws.mean()}

            def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, neural_rendering_resolution=None,
                        update_emas=False, **kwargs):
                return self.synthesis(self.mapping(z, c), c, neural_rendering_resolution)
    ''',
    "eg3d/training/dual_discriminator.py": '''
        import torch

        class DualDiscriminator(torch.nn.Module):
            def __init__(self, c_dim, img_resolution, img_channels, **kwargs):
                super().__init__()
                self.fc = torch.nn.Linear(6, 1)

            def forward(self, img, c, update_emas=False, **kwargs):
                x = torch.cat([img["image"].mean((2, 3)), img["image_raw"].mean((2, 3))], 1)
                return self.fc(x)
    ''',
    "eg3d/training/loss.py": '''
        import torch

        class StyleGAN2Loss:
            """Stand-in of the official loss: the phases' names and arguments, simple terms."""
            def __init__(self, device, G, D, augment_pipe=None, **kwargs):
                self.G, self.D, self.phases = G, D, []

            def accumulate_gradients(self, phase, real_img, real_c, gen_z, gen_c, gain, cur_nimg):
                assert phase in ("Gmain", "Greg", "Dmain", "Dreg"), phase
                self.phases.append(phase)
                if phase == "Greg":
                    ws = self.G.mapping(gen_z, gen_c)
                    self.G.sample_mixed(torch.rand(len(ws), 8, 3), None, ws)["sigma"].abs().mean().mul(gain).backward()
                    return
                if phase == "Dreg":
                    real = real_img.detach().requires_grad_(True)
                    raw = torch.nn.functional.interpolate(real, size=self.G.neural_rendering_resolution)
                    logits = self.D({"image": real, "image_raw": raw}, real_c)
                    grad, = torch.autograd.grad(logits.sum(), real, create_graph=True)
                    grad.square().sum().mul(gain).backward()
                    return
                logits = self.D(self.G(gen_z, gen_c), gen_c)
                (torch.nn.functional.softplus(-logits if phase == "Gmain" else logits)).mean().mul(gain).backward()
    ''',
    "eg3d/training/volumetric_rendering/__init__.py": "",
    "eg3d/training/volumetric_rendering/renderer.py": '''
        class ImportanceRenderer:
            def sample_stratified(self, *args, **kwargs):
                raise AssertionError("not called by the stand-in generator")

            def sample_pdf(self, bins, weights, n_importance, det=False, eps=1e-5):
                raise AssertionError("not called by the stand-in generator")
    ''',
    "eg3d/torch_utils/__init__.py": "",
    "eg3d/torch_utils/ops/__init__.py": "",
    "eg3d/torch_utils/ops/conv2d_gradfix.py": "enabled = False\n",
    "eg3d/torch_utils/ops/grid_sample_gradfix.py": "enabled = False\n",
}

STANDIN_PIGAN = {
    "generators/__init__.py": "",
    "generators/volumetric_rendering.py": '''
        def perturb_points(points, z_vals, ray_directions, device):
            return points, z_vals

        def sample_pdf(bins, weights, n_importance, det=False, eps=1e-5):
            return bins
    ''',
    "generators/generators.py": '''
        import torch
        from .volumetric_rendering import *

        class ImplicitGenerator3d(torch.nn.Module):
            def __init__(self, siren, z_dim, **kwargs):
                super().__init__()
                self.z_dim = z_dim
                self.siren = siren(output_dim=4, z_dim=z_dim, input_dim=3, device=None)

            def set_device(self, device):
                self.device = device

            def forward(self, z, img_size, fov, ray_start, ray_end, num_steps, h_stddev, v_stddev, h_mean, v_mean,
                        hierarchical_sample, sample_dist=None, lock_view_dependence=False, **kwargs):
                assert {"clamp_mode", "nerf_noise", "last_back", "white_back"} <= set(kwargs), kwargs
                h = torch.randn(len(z), 1) * h_stddev + h_mean
                v = torch.randn(len(z), 1) * v_stddev + v_mean
                colour = self.siren(z).view(-1, 3, 1, 1).expand(-1, -1, img_size, img_size)
                return colour * 2 - 1, torch.cat([v, h], -1)
    ''',
    "siren/__init__.py": "",
    "siren/siren.py": '''
        import torch

        class SPATIALSIRENBASELINE(torch.nn.Module):
            def __init__(self, input_dim=2, z_dim=100, hidden_dim=256, output_dim=1, device=None):
                super().__init__()
                self.net = torch.nn.Linear(z_dim, 3)

            def forward(self, z):
                return torch.sigmoid(self.net(z))

        TALLSIREN = SPATIALSIRENBASELINE
    ''',
    "discriminators/__init__.py": "",
    "discriminators/sgdiscriminators.py": '''
        import torch

        class CCSEncoderDiscriminator(torch.nn.Module):
            def __init__(self, **kwargs):
                super().__init__()
                self.fc = torch.nn.Linear(3, 1 + 256 + 2)

            def forward(self, input, alpha, options=None, **kwargs):
                out = self.fc(input.mean((2, 3)))
                return out[:, :1], out[:, 1:257], out[:, 257:]
    ''',
}


#: GRAF (carla at 16 px) with 8 samples, a 6-layer NeRF of 16 (the least depth with create_nerf's skip
#: after layer 4), z 8 = 4 shape + 4 appearance and 4 + 2 octaves; the principal point at pixel W/2.
GRAF_TINY = [
    "generator.render_resolution=16", "pose_sampler.principal_point=[0.53125,0.53125]", "point_sampler.num_samples=8",
    "feature_decoder.hidden_dim=16", "feature_decoder.num_layers=6", "feature_decoder.appearance_dim=4",
    "stochasticity_mapper.z_dim=8", "point_embedder.num_frequencies=4", "feature_decoder.num_view_frequencies=2",
]

#: autonomousvision/graf's layout (graf/models/generator.py, graf/transforms.py and nerf-pytorch's
#: run_nerf_mod.py and run_nerf_helpers_mod.py under submodules/nerf_pytorch) around a small NeRF of the
#: stand-in's own that follows nerf-pytorch's conventions: the same parameter names, the encoding
#: [p, sin(2^k p), cos(2^k p)], rays through pixel indices, linspace depths, ReLU alpha with a last interval
#: of 1e10, the colour as rgb * 2 - 1. ``RGB_SHIFT`` (0 here) moves its colours, for the failing case.
STANDIN_GRAF = {
    "graf/models/generator.py": """
        import torch

        from submodules.nerf_pytorch.run_nerf_mod import render


        class Generator:
            def __init__(self, H, W, focal, radius, ray_sampler, render_kwargs_train, render_kwargs_test,
                         parameters, named_parameters, range_u=(0, 1), range_v=(0.01, 0.49), chunk=None,
                         device="cuda", orthographic=False):
                self.H, self.W, self.radius, self.chunk = int(H), int(W), radius, chunk
                self.render_kwargs_train, self.render_kwargs_test = render_kwargs_train, render_kwargs_test
                self.use_test_kwargs = False

            def to(self, device):
                self.render_kwargs_train["network_fn"].to(device)
                return self

            def eval(self):
                self.use_test_kwargs = True
                self.render_kwargs_train["network_fn"].eval()

            def __call__(self, z, y=None, rays=None):
                kwargs = dict(self.render_kwargs_test if self.use_test_kwargs else self.render_kwargs_train)
                if isinstance(self.radius, tuple):  # near/far relative to the largest radius
                    shift = (self.radius[1] - rays[0].norm(dim=-1)).view(-1, 1)
                    kwargs["near"], kwargs["far"] = kwargs["near"] - shift, kwargs["far"] - shift
                rgb, acc = render(rays, z, chunk=self.chunk, **kwargs)
                return rgb * 2 - 1, None, acc * 2 - 1, {}
    """,
    "graf/transforms.py": """
        class FullRaySampler:
            def __init__(self, **kwargs):
                pass
    """,
    "submodules/nerf_pytorch/run_nerf_helpers_mod.py": """
        import torch


        def get_rays(H, W, focal, c2w):
            j, i = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32),
                                  indexing="ij")
            dirs = torch.stack([(i - W * 0.5) / focal, -(j - H * 0.5) / focal, -torch.ones_like(i)], -1)
            rays_d = (dirs[..., None, :] * c2w[:3, :3]).sum(-1)
            return c2w[:3, -1].expand(rays_d.shape), rays_d


        def encode(x, octaves):
            return torch.cat([x] + [f(2.0 ** k * x) for k in range(octaves) for f in (torch.sin, torch.cos)], -1)


        class NeRF(torch.nn.Module):
            def __init__(self, D, W, input_ch, input_ch_views):
                super().__init__()
                self.input_ch = input_ch
                self.pts_linears = torch.nn.ModuleList(
                    [torch.nn.Linear(input_ch, W)]
                    + [torch.nn.Linear(W + (input_ch if i == 4 else 0), W) for i in range(D - 1)])
                self.views_linears = torch.nn.ModuleList([torch.nn.Linear(input_ch_views + W, W // 2)])
                self.feature_linear = torch.nn.Linear(W, W)
                self.alpha_linear = torch.nn.Linear(W, 1)
                self.rgb_linear = torch.nn.Linear(W // 2, 3)

            def forward(self, x):
                points, views = x[:, :self.input_ch], x[:, self.input_ch:]
                h = points
                for i, layer in enumerate(self.pts_linears):
                    h = torch.relu(layer(h))
                    if i == 4:
                        h = torch.cat([points, h], -1)
                alpha = self.alpha_linear(h)
                h = torch.relu(self.views_linears[0](torch.cat([self.feature_linear(h), views], -1)))
                return torch.cat([self.rgb_linear(h), alpha], -1)
    """,
    "submodules/nerf_pytorch/run_nerf_mod.py": """
        import torch
        from tqdm import tqdm  # noqa: F401  (nerf-pytorch's imports, stubbed by the adapter where missing)
        import matplotlib.pyplot  # noqa: F401

        from .run_nerf_helpers_mod import NeRF, encode

        RGB_SHIFT = 0.0


        def create_nerf(args):
            app = args.feat_dim_appearance
            model = NeRF(args.netdepth, args.netwidth, 3 * (1 + 2 * args.multires) + args.feat_dim - app,
                         3 * (1 + 2 * args.multires_views) + app)
            train = {"network_fn": model, "N_samples": args.N_samples, "perturb": args.perturb,
                     "raw_noise_std": args.raw_noise_std, "white_bkgd": args.white_bkgd,
                     "multires": args.multires, "multires_views": args.multires_views, "app": app}
            test = dict(train, perturb=False, raw_noise_std=0.0)
            return train, test, list(model.parameters()), list(model.named_parameters())


        def render(rays, z, chunk, network_fn, N_samples, perturb, raw_noise_std, white_bkgd, multires,
                   multires_views, app, near, far, **kwargs):
            assert not perturb and raw_noise_std == 0, "the stand-in renders deterministically only"
            rays_o, rays_d = rays
            n = rays_o.shape[0]
            codes = z.repeat_interleave(n // len(z), 0)
            t = torch.linspace(0.0, 1.0, N_samples)
            z_vals = near * (1 - t) + far * t
            z_vals = z_vals.expand(n, N_samples) if z_vals.ndim == 1 else z_vals
            points = rays_o[:, None] + rays_d[:, None] * z_vals[..., None]
            views = (rays_d / rays_d.norm(dim=-1, keepdim=True))[:, None].expand_as(points)
            shape, appearance = codes[:, :codes.shape[1] - app], codes[:, codes.shape[1] - app:]
            x = torch.cat([encode(points, multires), shape[:, None].expand(-1, N_samples, -1),
                           encode(views, multires_views), appearance[:, None].expand(-1, N_samples, -1)], -1)
            raw = network_fn(x.reshape(n * N_samples, -1)).reshape(n, N_samples, 4)
            dists = torch.cat([z_vals[:, 1:] - z_vals[:, :-1], torch.full_like(z_vals[:, :1], 1e10)], -1)
            alpha = 1 - torch.exp(-torch.relu(raw[..., 3]) * dists * rays_d.norm(dim=-1, keepdim=True))
            transmittance = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1 - alpha + 1e-10], -1), -1)
            weights = alpha * transmittance[:, :-1]
            rgb = (weights[..., None] * torch.sigmoid(raw[..., :3] + RGB_SHIFT)).sum(1)
            acc = weights.sum(-1)
            if white_bkgd:
                rgb = rgb + (1 - acc[:, None])
            return rgb, acc
    """,
}

def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def run_bench(tmp_path, *args, timeout=600):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "bench.py"), "--batch_size", "2", "--warmup", "1", "--repeats", "1",
         "--train-warmup", "0", "--train-repeats", "1", "--device", "cpu", "--threads", "1", "--json", str(out),
         *args],
        capture_output=True, text=True, timeout=timeout,
    )
    return proc, (json.loads(out.read_text()) if out.exists() else None)


def inference_only_row(tmp_path, method: str, root, sets, *, tolerance: float) -> dict:
    """Bench ``method`` (``--set METHOD:S`` for each of ``sets``) against the stand-in tree ``root`` at
    inference only, with the checks every inference-only adapter shares: the run succeeded, the official
    row names the stand-in tree, shared the weights, rendered images within ``tolerance`` of gan3d's, timed
    one interleaved call a side (after the warm-up) and no training; returns the row."""
    proc, report = run_bench(tmp_path, "--method", method, "--official-only", "--no-train",
                             "--official-src", f"{method}={root}",
                             *[a for s in sets for a in ("--set", f"{method}:{s}")])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    o = report["results"][0]["official"]
    assert o["official"]["path"] == str(root) and o["weights_shared"] is True, o
    assert o["image_vs_official"]["max_abs_diff"] < tolerance, o["image_vs_official"]
    inference = o["inference"]
    assert len(inference["seconds"]["gan3d"]) == len(inference["seconds"]["official"]) == 1
    assert inference["ratio"] == pytest.approx(inference["official_s_per_image"] / inference["gan3d_s_per_image"])
    assert "training" not in o
    assert f"[bench] {method} b2: infer official 2/2" in proc.stderr and "max |diff|" in proc.stdout
    return o


def test_standin_official_trees_are_built_timed_and_trained_side_by_side(tmp_path):
    eg3d = write_tree(tmp_path / "eg3d-checkout", STANDIN_EG3D)
    pigan = write_tree(tmp_path / "pigan-checkout", STANDIN_PIGAN)
    # pi-GAN with its training step; EG3D (a 128-px super-resolution) at inference only, to stay quick:
    # its training kinds are checked below without building gan3d's networks.
    proc, report = run_bench(tmp_path, "--method", "pigan", "--official-only", "--official-src", str(pigan),
                             *PIGAN_TINY)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc_eg3d, report_eg3d = run_bench(tmp_path, "--method", "eg3d", "--official-only", "--no-train",
                                       "--official-src", f"eg3d={eg3d}", *EG3D_TINY)
    assert proc_eg3d.returncode == 0, proc_eg3d.stdout + proc_eg3d.stderr
    rows = {r["method"]: r for r in report["results"] + report_eg3d["results"]}
    for method in ("eg3d", "pigan"):
        o = rows[method]["official"]
        assert o["official"]["path"] == str(eg3d if method == "eg3d" else pigan)
        inference = o["inference"]
        assert len(inference["seconds"]["gan3d"]) == len(inference["seconds"]["official"]) == 1
        assert inference["ratio"] == pytest.approx(inference["official_s_per_image"] / inference["gan3d_s_per_image"])
        assert len(inference["cpu_seconds"]["gan3d"]) == len(inference["cpu_seconds"]["official"]) == 1
        assert inference["official_cpu_s_per_image"] > 0 and inference["gan3d_cpu_s_per_image"] > 0
        assert inference["cpu_ratio"] == pytest.approx(inference["official_cpu_s_per_image"]
                                                       / inference["gan3d_cpu_s_per_image"])
        # The stand-ins' weights are not the official networks': reported, images not compared.
        assert o["weights_shared"] is False and "do not fit" in o["weights_error"]
        assert "image_vs_official" not in o
        assert "inference" not in rows[method] and "training" not in rows[method]  # --official-only
    training = rows["pigan"]["official"]["training"]
    assert set(training["gan3d"]["step_kinds"]) == set(training["official"]["step_kinds"]) == {"r1=True,g_reg=False"}
    assert training["ratio"] == pytest.approx(training["official"]["seconds_per_kimg"]
                                              / training["gan3d"]["seconds_per_kimg"])
    assert "training" not in rows["eg3d"]["official"]
    # progress while measuring: method, phase, call i of n
    assert "[bench] eg3d b2: infer official 2/2" in proc_eg3d.stderr
    assert "[bench] pigan b2: train official r1=True,g_reg=False 2/2" in proc.stderr
    assert "against the official code" in proc.stdout and "weights not shared" in proc.stdout


def _adapter(method: str, root: Path, resolution: int | None = None, sets=()):
    import bench
    import torch

    recipe, _ = bench.build_recipe(method, None, list(sets), resolution, 4)
    return bench_official.ADAPTERS[method](root, recipe, torch.device("cpu"))


def test_eg3d_official_steps_follow_the_training_loop_phases(tmp_path):
    """training_loop.py runs Greg every 4 and Dreg every 16 iterations (ffhq: density_reg_every 4, lazy
    R1 every 16): one cycle of 16 has 1 with both, 3 with Greg only, 12 plain -- gan3d's kinds."""
    adapter = _adapter("eg3d", write_tree(tmp_path / "eg3d", STANDIN_EG3D))
    cfg = adapter.config()
    assert (cfg["D_reg_interval"], cfg["G_reg_interval"]) == (16, 4)
    assert adapter.step_kinds() == {(True, True): 1, (False, True): 3, (False, False): 12}
    assert adapter.kind_of(16000) == (True, True) and adapter.kind_of(16004) == (False, True)
    # train.py's ffhq options, as the recipe states them
    G = cfg["G_kwargs"]
    assert G["rendering_kwargs"]["superresolution_module"] == "training.superresolution.SuperresolutionHybrid8XDC"
    assert (G["rendering_kwargs"]["depth_resolution"], G["rendering_kwargs"]["depth_resolution_importance"]) == (48, 48)
    assert G["sr_num_fp16_res"] == 4 and G["num_fp16_res"] == 0 and G["conv_clamp"] is None
    assert cfg["D_kwargs"]["num_fp16_res"] == 4 and cfg["D_kwargs"]["conv_clamp"] == 256
    assert cfg["loss_kwargs"]["gpc_reg_prob"] == 0.5 and cfg["G_opt"]["lr"] == 0.0025


def test_a_configuration_the_official_code_cannot_run_is_a_clear_error(tmp_path):
    eg3d = write_tree(tmp_path / "eg3d", STANDIN_EG3D)
    # 64 px: EG3D's super-resolution has no 64-px form, so the benchmark renders with the identity upsampler.
    with pytest.raises(bench_official.OfficialSourceError, match="cannot run this recipe: upsampler identity"):
        _adapter("eg3d", eg3d, 64).config()
    with pytest.raises(bench_official.OfficialSourceError, match="tri-planes must be 256"):
        _adapter("eg3d", eg3d, sets=["point_embedder.resolution=64"]).config()
    pigan = write_tree(tmp_path / "pigan", STANDIN_PIGAN)
    with pytest.raises(bench_official.OfficialSourceError, match="8 FiLM layers"):
        _adapter("pigan", pigan, sets=["feature_decoder.num_layers=3"]).config()


@pytest.mark.parametrize("value, message", [
    ("nosuch=/tmp", "no official adapter for 'nosuch'"),
    ("eg3d={missing}", "is not a directory"),
    ("eg3d={empty}", "does not hold NVlabs/eg3d"),
    ("{empty}", "write METHOD=PATH"),
])
def test_bad_official_sources_are_rejected_before_measuring(tmp_path, value, message):
    (tmp_path / "empty").mkdir()
    value = value.format(missing=tmp_path / "missing", empty=tmp_path / "empty")
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "bench.py"), "--method", "eg3d", "pigan",
                           "--official-src", value, "--json", str(tmp_path / "b.json")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr
    assert not (tmp_path / "b.json").exists()


def test_sources_by_layout_and_by_name(tmp_path):
    eg3d = write_tree(tmp_path / "a", STANDIN_EG3D)
    pigan = write_tree(tmp_path / "b", STANDIN_PIGAN)
    methods = ["eg3d", "pigan"]
    assert bench_official.parse_sources([str(eg3d), f"pigan={pigan}"], methods) == {"eg3d": eg3d, "pigan": pigan}
    assert bench_official.ADAPTERS["eg3d"].code_dir(eg3d) == eg3d / "eg3d"
    with pytest.raises(bench_official.OfficialSourceError, match="not among the measured methods"):
        bench_official.parse_sources([f"pigan={pigan}"], ["eg3d"])


def test_ema_follows_torch_ema_update_rule():
    """pi-GAN's EMA (torch_ema 0.2 with use_num_updates): decay min(d, (1 + n) / (10 + n))."""
    import torch

    p = torch.nn.Parameter(torch.zeros(3))
    ema = bench_official._EMA([p], 0.999)
    with torch.no_grad():
        p.fill_(1.0)
    ema.update([p])  # n = 1: decay 2 / 11
    assert torch.allclose(ema.shadow[0], torch.full((3,), 1 - 2 / 11))
    ema.update([p])  # n = 2: decay 3 / 12 of the remaining distance 2 / 11
    assert torch.allclose(ema.shadow[0], torch.full((3,), 1 - (2 / 11) * (3 / 12)))


@pytest.mark.skipif(not (os.environ.get("GAN3D_OFFICIAL_EG3D") and os.environ.get("GAN3D_OFFICIAL_PIGAN")),
                    reason="GAN3D_OFFICIAL_EG3D and GAN3D_OFFICIAL_PIGAN name no official checkouts")
def test_real_official_code_shares_weights_and_renders_the_same_images(tmp_path):
    proc, report = run_bench(tmp_path, "--method", "eg3d", "pigan", "--official-only", "--no-train",
                             "--official-src", f"eg3d={os.environ['GAN3D_OFFICIAL_EG3D']}",
                             f"pigan={os.environ['GAN3D_OFFICIAL_PIGAN']}", *EG3D_TINY, *PIGAN_TINY, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for row in report["results"]:
        o = row["official"]
        assert o["weights_shared"], o
        # the same function on the same weights: float32 rounding apart (the fidelity tests' scale)
        assert o["image_vs_official"]["max_abs_diff"] < 1e-4, (row["method"], o["image_vs_official"])


def test_distutils_strtobool_shim_where_distutils_is_gone(monkeypatch):
    """EG3D's dnnlib imports distutils.util.strtobool, which Python 3.12 removed: the adapter supplies it
    when the import fails, and leaves a working distutils alone."""
    official = bench_official
    monkeypatch.setitem(sys.modules, "distutils", None)  # import distutils -> ImportError
    monkeypatch.setitem(sys.modules, "distutils.util", None)
    official._shim_distutils_strtobool()
    from distutils.util import strtobool

    assert strtobool("True") == 1 and strtobool("off") == 0
    with pytest.raises(ValueError, match="invalid truth value"):
        strtobool("maybe")
    shim = sys.modules["distutils.util"]
    official._shim_distutils_strtobool()  # importable now: left as it is
    assert sys.modules["distutils.util"] is shim


#: EpiGRAF at a CPU size (tools/fixtures/make_epigraf_fixture.py's widths): a 32-px tri-plane of 8 channels,
#: z 16, w 32, 12 + 12 samples per ray, a 16-wide MLP, 32-px images.
EPIGRAF_TINY = [
    "point_embedder.resolution=32", "point_embedder.channels=8", "point_embedder.channel_base=512",
    "point_embedder.channel_max=16", "stochasticity_mapper.z_dim=16", "stochasticity_mapper.w_dim=32",
    "point_sampler.num_samples=12", "generator.num_importance=12", "generator.render_resolution=32",
    "feature_decoder.hidden_dim=16",
]

#: universome/epigraf's layout (src/training/networks_epigraf.py: ``Generator(cfg, z_dim, c_dim, w_dim, ...)``,
#: ``forward(z, c, camera_angles, noise_mode=...)``, the module-level ``transform_points`` and ``sample_pdf``
#: the adapter patches). Its networks are gan3d's own epigraf modules rebuilt from the configuration the
#: adapter derives, registered under the official state-dict names (mapping, synthesis.tri_plane_decoder,
#: synthesis.tri_plane_mlp.model.0/1) and moved off their initial values: the images agree only when the
#: adapter copies every weight across and converts the cameras right.
STANDIN_EPIGRAF = {
    "src/__init__.py": "",
    "src/training/__init__.py": "",
    "src/training/networks_epigraf.py": '''
        import torch
        from omegaconf import DictConfig

        from gan3d.core.generator import build_generator
        from gan3d.methods.epigraf.camera_angles import epigraf_cameras
        from gan3d.methods.epigraf.recipe import epigraf_recipe


        def transform_points(z_vals, ray_directions, c2w, perturb=True):
            return perturb  # the stand-in forward asks whether the coarse depths are jittered


        def sample_pdf(bins, weights, N_importance, det=False, eps=1e-5):
            return det


        class Generator(torch.nn.Module):
            def __init__(self, cfg: DictConfig, z_dim, c_dim, w_dim, img_resolution, img_channels,
                         mapping_kwargs={}, **synthesis_kwargs):
                super().__init__()
                assert c_dim == 0 and img_channels == 3 and cfg.bg_model.type is None, (c_dim, img_channels)
                tri, data = cfg.tri_plane, cfg.dataset
                recipe = epigraf_recipe().overrides([
                    f"stochasticity_mapper.z_dim={z_dim}", f"stochasticity_mapper.w_dim={w_dim}",
                    f"stochasticity_mapper.num_layers={mapping_kwargs['num_layers']}",
                    f"point_embedder.resolution={tri.res}", f"point_embedder.channels={tri.feat_dim}",
                    f"point_embedder.channel_base={synthesis_kwargs['channel_base']}",
                    f"point_embedder.channel_max={synthesis_kwargs['channel_max']}",
                    f"point_embedder.box_warp={2 * data.cube_scale}", f"feature_decoder.hidden_dim={tri.mlp.hid_dim}",
                    f"point_sampler.num_samples={cfg.num_ray_steps}", f"generator.num_importance={cfg.num_ray_steps}",
                    f"point_sampler.ray_start={data.camera.ray_start}", f"point_sampler.ray_end={data.camera.ray_end}",
                    f"generator.render_resolution={img_resolution}"])
                g = build_generator(recipe).eval()
                self.parts = [g]  # not a submodule: the state dict has the official names only
                self.cfg, self.img_resolution = cfg, img_resolution
                self.mapping = g.mapper.network
                self.synthesis = torch.nn.Module()
                self.synthesis.tri_plane_decoder = g.embedder.backbone
                self.synthesis.tri_plane_mlp = torch.nn.Module()
                self.synthesis.tri_plane_mlp.model = torch.nn.Sequential(g.decoder.hidden, g.decoder.output)
                with torch.no_grad():
                    for p in self.parameters():
                        p.mul_(1.25).add_(0.05)

            def forward(self, z, c, camera_angles, noise_mode="random", **kwargs):
                g = self.parts[0]
                jitter, det = transform_points(None, None, None), sample_pdf(None, None, 0)
                assert jitter != det, "transform_points and sample_pdf are patched together"
                g.point_sampler.perturb_in_eval, g.embedder.noise_mode = jitter, noise_mode
                camera = self.cfg.dataset.camera
                cameras = epigraf_cameras(camera_angles, radius=camera.radius, fov=camera.fov,
                                          image_resolution=self.img_resolution)
                return g(z, cameras).image
    ''',
}


def test_epigraf_standin_is_compared_and_timed_at_inference_only(tmp_path):
    root = write_tree(tmp_path / "epigraf-checkout", STANDIN_EPIGRAF)
    inference_only_row(tmp_path, "epigraf", root, EPIGRAF_TINY, tolerance=1e-5)


def test_epigraf_adapter_images_differ_without_shared_weights_and_training_is_refused(tmp_path, monkeypatch):
    with _imports_undone(monkeypatch, "src", "omegaconf", "requests"):
        adapter = _adapter("epigraf", write_tree(tmp_path / "epigraf", STANDIN_EPIGRAF), sets=EPIGRAF_TINY)
        # one weight off: the density
        _images_differ_unless_shared(adapter, lambda G: G.decoder.output.bias[3:4].add_(0.5))
        assert adapter.cfg["G_kwargs"]["img_resolution"] == 32



# ---------------------------------------------------------------------------- GRAM (inference only)
#: GRAM (FFHQ) at 16 px: z 8, a radiance network of 16, a manifold predictor of 16.
GRAM_TINY = [
    "generator.render_resolution=16", "stochasticity_mapper.z_dim=8", "stochasticity_mapper.film_dim=16",
    "point_sampler.hidden_dim=16", "discriminator.img_resolution=16",
]
#: The stand-in renders from cameras it re-derives from GRAM's (phi, theta): their float32 rounding (~1e-7)
#: moves the SIREN's sines (first-layer frequencies ~30) by up to ~1e-5; a weight not shared moves it by > 1e-2.
GRAM_TOLERANCE = 5e-5

#: microsoft/GRAM's layout (generators/generators.py ``GramGenerator(z_dim, img_size, h_stddev, v_stddev, h_mean,
#: v_mean, sample_dist, representation_kwargs, renderer_kwargs)``, ``forward(z, fov, ray_start, ray_end,
#: img_size, camera_pos=(phi, theta))``). Its network is gan3d's own gram generator rebuilt from those options,
#: registered under the official state-dict names (representation.sample_network, rf_network.*) and moved off
#: its initial values; it renders from GRAM's (phi, theta) through gan3d's pose sampler (our polar phi, yaw
#: pi - theta): the images agree only when the adapter copies every weight across and converts the cameras.
STANDIN_GRAM = {
    # GRAM's generators/ has no __init__.py; the stand-in's has one, so that it wins over the pi-GAN stand-in's
    # regular package of the same name when an earlier test left that tree on sys.path.
    "generators/__init__.py": "",
    "generators/representations/gram.py": "",
    "generators/generators.py": """
        import json
        import math

        import torch

        from gan3d.core.generator import build_generator
        from gan3d.core.types import Cameras
        from gan3d.methods.gram.recipe import gram_recipe
        from gan3d.samplers.spherical_pose_sampler import SphericalPoseSampler


        class GramGenerator(torch.nn.Module):
            def __init__(self, z_dim, img_size, h_stddev, v_stddev, h_mean, v_mean, sample_dist,
                         representation_kwargs, renderer_kwargs, partial_grad=False):
                super().__init__()
                rep, ren = representation_kwargs, renderer_kwargs
                recipe = gram_recipe().overrides([
                    f"stochasticity_mapper.z_dim={z_dim}", f"stochasticity_mapper.film_dim={rep['hidden_dim']}",
                    f"point_embedder.box_warp={rep['normalize']}",
                    f"volume_renderer.density_activation={rep['sigma_clamp_mode']}",
                    f"feature_decoder.rgb_activation={rep['rgb_clamp_mode']}",
                    f"point_sampler.hidden_dim={rep['hidden_dim_sample']}",
                    f"point_sampler.num_layers={rep['layer_num_sample']}",
                    f"point_sampler.center={json.dumps(list(rep['center']))}",
                    f"point_sampler.init_radius={rep['init_radius']}",
                    f"point_sampler.num_samples={ren['num_samples']}",
                    f"point_sampler.num_manifolds={ren['num_manifolds']}",
                    f"point_sampler.levels_start={ren['levels_start']}",
                    f"point_sampler.levels_end={ren['levels_end']}",
                    f"point_sampler.delta={ren['delta_alpha']}", f"point_sampler.delta_final={ren['delta_final']}",
                    f"point_sampler.background={json.dumps(ren['background'])}",
                    f"volume_renderer.white_back={json.dumps(ren['white_back'])}",
                    f"generator.render_resolution={img_size}"])
                g = build_generator(recipe).eval()
                self.parts, self.pose = [g], dict(recipe.modules["pose_sampler"].kwargs)
                self.representation = torch.nn.Module()
                self.representation.sample_network = g.point_sampler.scalar_field
                rf = self.representation.rf_network = torch.nn.Module()
                rf.mapping_network = torch.nn.Module()
                rf.mapping_network.network = g.mapper.network
                rf.network = g.decoder.film_layers
                rf.color_layer = torch.nn.ModuleList([g.decoder.color_film])
                rf.output_sigma, rf.output_color = g.decoder.density_heads, g.decoder.color_heads
                with torch.no_grad():  # the radiance heads off their initial values
                    for p in [*rf.output_sigma.parameters(), *rf.output_color.parameters()]:
                        p.mul_(1.25).add_(0.05)

            def forward(self, z, fov, ray_start, ray_end, img_size=None, camera_origin=None, camera_pos=None,
                        truncation_psi=1, patch=None):
                g = self.parts[0]
                assert (ray_start, ray_end) == (g.point_sampler.ray_start, g.point_sampler.ray_end)
                cams = []
                for phi, theta in camera_pos.tolist():
                    options = dict(self.pose, fov=fov, yaw_strategy="fix", yaw_mean=math.pi - theta,
                                   polar_strategy="fix", polar_mean=phi)
                    cams.append(SphericalPoseSampler(**options)(1))
                cameras = Cameras(torch.cat([c.cam2world for c in cams]), torch.cat([c.intrinsics for c in cams]))
                return g(z, cameras, resolution=img_size).image, camera_pos
    """,
}


def test_gram_standin_shares_weights_renders_the_same_images_and_is_timed(tmp_path):
    gram = write_tree(tmp_path / "gram", STANDIN_GRAM)
    inference_only_row(tmp_path, "gram", gram, GRAM_TINY, tolerance=GRAM_TOLERANCE)


def test_gram_adapter_images_differ_without_shared_weights_and_training_is_refused(tmp_path, monkeypatch):
    with _imports_undone(monkeypatch, "generators"):
        adapter = _adapter("gram", write_tree(tmp_path / "gram", STANDIN_GRAM), sets=GRAM_TINY)
        assert adapter.cfg["representation"]["hidden_dim"] == 16 and adapter.cfg["renderer"]["num_samples"] == 64
        _images_differ_unless_shared(adapter, lambda G: G.decoder.density_heads[0].bias.add_(1.0), GRAM_TOLERANCE)


# ---------------------------------------------------------------------------- VolumeGAN (inference only)
#: VolumeGAN at 8 px rendered, 16 px out, 4 + 4 samples, narrow layers (w stays 512: the official point
#: MLP's styles are 512 wide).
VOLUMEGAN_TINY = [
    "stochasticity_mapper.z_dim=8", "stochasticity_mapper.layer_features=8", "stochasticity_mapper.num_layers=2",
    "point_embedder.feat_res=8", "point_embedder.base_channels=8", "point_embedder.output_channels=4",
    "point_embedder.num_frequencies=2", "feature_decoder.hidden_dim=8", "feature_decoder.num_layers=2",
    "feature_decoder.output_dim=8", "upsampler.in_resolution=8", "upsampler.out_resolution=16",
    "upsampler.channel_base=64", "upsampler.channel_max=8", "generator.render_resolution=8",
    "point_sampler.num_samples=4", "generator.num_importance=4", "discriminator.img_resolution=16",
    "discriminator.channel_base=64", "discriminator.channel_max=8", "discriminator.init_lod=1.0",
]

#: Stand-in of genforce/volumegan: ``VolumeGANGenerator`` takes the official constructor options and
#: gives the official state-dict names (the inverse of the importer's map), and renders with gan3d's
#: network built from those options (``recipe_from_kwargs``) from the official (yaw, pitch) of each
#: sample, its weights moved off gan3d's initial ones. It draws at random unless
#: ``HierarchicalSampling.sample_pdf`` is made deterministic, as the official inference does.
STANDIN_VOLUMEGAN = {
    "models/__init__.py": 'raise ImportError("stand-in: models/__init__.py imports every model of the repository")\n',
    "models/rendering/__init__.py": '''
        class HierarchicalSampling:
            def sample_pdf(self, bins, weights, N_importance, det=False, eps=1e-5):
                return det
    ''',
    "models/volumegan_generator.py": '''
        import math
        import re

        import torch

        from gan3d.core.generator import build_generator
        from gan3d.core.types import Cameras
        from gan3d.methods.volumegan.official import recipe_from_kwargs
        from gan3d.samplers.spherical_pose_sampler import SphericalPoseSampler

        from .rendering import HierarchicalSampling

        RULES = [(r"mapper\\.network\\.w_avg", "w_avg"),
                 (r"mapper\\.network\\.fc(\\d+)\\.(.+)", r"mapping.dense\\1.\\2"),
                 (r"embedder\\.network\\.const", "nerfmlp.fv.const"),
                 (r"embedder\\.network\\.convs\\.(\\d+)\\.(.+)", r"nerfmlp.fv.layer\\1.\\2"),
                 (r"embedder\\.network\\.style\\.(.+)", r"nerfmlp.fv.mapping_network.\\1"),
                 (r"decoder\\.layers\\.(\\d+)\\.affine\\.(.+)", r"nerfmlp.fg_mlps.\\1.style.\\2"),
                 (r"decoder\\.layers\\.(\\d+)\\.(.+)", r"nerfmlp.fg_mlps.\\1.\\2"),
                 (r"decoder\\.density_head\\.(.+)", r"nerfmlp.fg_density.\\1"),
                 (r"decoder\\.feature_head\\.(.+)", r"nerfmlp.fg_color.\\1"),
                 (r"upsampler\\.lod", "synthesis.lod"),
                 (r"upsampler\\.torgb_init\\.(.+)", r"synthesis.rgb_init_res.\\1")]

        class VolumeGANGenerator(torch.nn.Module):
            def __init__(self, resolution=-1, nerf_res=32, ps_cfg=dict(), **kwargs):
                super().__init__()
                self.recipe = recipe_from_kwargs(dict(kwargs, resolution=resolution, nerf_res=nerf_res, ps_cfg=ps_cfg),
                                                 None)
                self.net, self.nerf_res, self.ps_cfg = build_generator(self.recipe), nerf_res, dict(ps_cfg)
                g = torch.Generator().manual_seed(11)
                with torch.no_grad():
                    for name, p in self.net.named_parameters():
                        p.add_(torch.randn(p.shape, generator=g) * 0.2)
                    self.net.decoder.density_head.bias.fill_(2.0)  # opaque points: the image depends on the camera
                    self.net.upsampler.lod.fill_(0.0)
                self.hierachicalsampler = HierarchicalSampling()

            def official_name(self, name):
                for pattern, target in RULES:
                    if re.fullmatch(pattern, name):
                        return re.sub(pattern, target, name)
                m = re.fullmatch(r"upsampler\\.b(\\d+)\\.(conv0|conv1|torgb)\\.(.+)", name)
                if m is None or m[3] == "resample_filter":
                    return None
                b = int(math.log2(int(m[1]) // self.nerf_res))
                layer = {"conv0": f"layer{2 * b - 1}", "conv1": f"layer{2 * b}", "torgb": f"output{b}"}[m[2]]
                tail = {"noise_const": "noise"}.get(m[3], m[3].replace("affine.", "style."))
                return f"synthesis.{layer}.{tail}"

            def state_dict(self, *args, **kwargs):
                out = {}
                for name, value in self.net.state_dict().items():
                    key = self.official_name(name)
                    if key is not None:
                        out[key] = value.reshape(1, 1, *value.shape) if key.endswith(".noise") else value
                return out

            def forward(self, z, label=None, noise_mode="const", fused_modulate=False, impl="cuda", ps_kwargs=dict()):
                ps = {**self.ps_cfg, **ps_kwargs}
                yaw = torch.randn(len(z), 1) * ps["horizontal_stddev"] + ps["horizontal_mean"]
                pitch = torch.randn(len(z), 1) * ps["vertical_stddev"] + ps["vertical_mean"]
                options, cams = dict(self.recipe.modules["pose_sampler"].kwargs), []
                for y, p in zip(yaw.flatten().tolist(), pitch.flatten().tolist()):
                    options.update(yaw_strategy="fix", yaw_mean=math.pi - y, polar_strategy="fix", polar_mean=p)
                    cams.append(SphericalPoseSampler(**options)(1))
                cameras = Cameras(torch.cat([c.cam2world for c in cams]), torch.cat([c.intrinsics for c in cams]))
                image = self.net(z, cameras).image
                if not self.hierachicalsampler.sample_pdf(None, None, 0):  # the official fine samples are random
                    image = image + 0.1 * torch.randn_like(image)
                return {"image": image}
    ''',
}


def write_volumegan_tree(root: Path) -> Path:
    return write_tree(root, STANDIN_VOLUMEGAN)


def test_volumegan_standin_is_compared_and_timed_at_inference_only(tmp_path):
    root = write_volumegan_tree(tmp_path / "volumegan-checkout")
    # float32 rounding (the stand-in rebuilds each camera from its official angles) on images of ~10
    inference_only_row(tmp_path, "volumegan", root, VOLUMEGAN_TINY, tolerance=1e-4)


def test_volumegan_adapter_images_differ_without_shared_weights_and_training_is_refused(tmp_path, monkeypatch):
    import contextlib
    import math
    import types

    import torch

    from gan3d.core.generator import build_generator

    with _imports_undone(monkeypatch, "models", "easydict", "einops"):
        adapter = _adapter("volumegan", write_volumegan_tree(tmp_path / "volumegan"), sets=VOLUMEGAN_TINY)
        with pytest.raises(bench_official.OfficialSourceError, match="inference only.*--no-train"):
            adapter.build(True)
        adapter.build(False)
        cfg = adapter.cfg["G_kwargs"]
        assert (cfg["resolution"], cfg["nerf_res"], cfg["ps_cfg"]["num_steps"]) == (16, 8, 4)
        torch.manual_seed(0)
        G = build_generator(adapter.recipe).eval()
        g = torch.Generator().manual_seed(1)
        z, cams = torch.randn(2, 8, generator=g), G.pose_sampler(2, device="cpu", generator=g)

        def difference(deterministic: bool = True) -> float:
            with torch.no_grad(), adapter.deterministic(G) if deterministic else contextlib.nullcontext():
                return bench_official.image_comparison(G(z, cams).image, adapter.infer(z, cams))["max_abs_diff"]

        assert difference() > 1e-2  # the stand-in's weights are not gan3d's initial ones
        adapter.share_weights(types.SimpleNamespace(G=build_generator(adapter.recipe), G_ema=G))
        assert difference() < 1e-4
        assert difference(deterministic=False) > 1e-2  # the official fine samples are drawn at random
        yaw = cams.angles[:, 0].clone()
        cams.angles[:, 0] = math.pi - yaw  # the adapter's yaw conversion undone: another camera
        assert difference() > 1e-2
        cams.angles[:, 0] = yaw
        with torch.no_grad():
            G.upsampler.b16.torgb.bias[0] += 0.5  # one weight off
        assert difference() > 1e-3


def test_graf_standin_shares_weights_renders_the_same_images_and_is_timed(tmp_path):
    """GRAF at inference: the stand-in's NeRF weights go into gan3d's generator through the importer's map
    (z-up columns permuted), gan3d's cameras become GRAF's rays, and the images agree to float32 rounding."""
    graf = write_tree(tmp_path / "graf", STANDIN_GRAF)
    inference_only_row(tmp_path, "graf", graf, GRAF_TINY, tolerance=1e-5)


def _images_differ_unless_shared(adapter, perturb, tolerance: float = 1e-5) -> None:
    """The adapter's image difference: large before the official weights are copied in, below ``tolerance``
    (float32 rounding) after, large again with ``perturb(G)`` changing one of gan3d's weights; ``--train``
    refused."""
    import types

    import torch

    from gan3d.core.generator import build_generator

    with pytest.raises(bench_official.OfficialSourceError, match="inference only.*--no-train"):
        adapter.build(True)
    adapter.build(False)
    torch.manual_seed(0)
    G = build_generator(adapter.recipe).eval()
    g = torch.Generator().manual_seed(1)
    z, cams = torch.randn(2, G.z_dim, generator=g), adapter.cameras(G, 2, g)  # the pose sampler's, or the adapter's

    def difference() -> float:
        with torch.no_grad(), adapter.deterministic(G):
            return bench_official.image_comparison(G(z, cams).image, adapter.infer(z, cams))["max_abs_diff"]

    assert difference() > 1e-2  # gan3d's initial weights are not the official ones
    adapter.share_weights(types.SimpleNamespace(G=build_generator(adapter.recipe), G_ema=G))
    assert difference() < tolerance
    with torch.no_grad():
        perturb(G)
    assert difference() > 1e-3


@contextlib.contextmanager
def _imports_undone(monkeypatch, *packages: str, stubs: tuple[str, ...] = ()):
    """sys.path and the stand-in's modules (and the stubs the adapter installed) as they were; modules of
    those packages imported by earlier tests (pi-GAN's stand-in is also ``generators``) set aside meanwhile.
    ``stubs``: name prefixes of modules inside other packages the adapter may add (removed afterwards)."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    for name in [n for n in sys.modules if n.split(".")[0] in packages]:
        monkeypatch.delitem(sys.modules, name)
    before = set(sys.modules)
    try:
        yield
    finally:
        for name in set(sys.modules) - before:
            if name.split(".")[0] in packages or name.startswith(stubs):
                del sys.modules[name]


def test_graf_adapter_images_differ_without_shared_weights_and_training_is_refused(tmp_path, monkeypatch):
    with _imports_undone(monkeypatch, "graf", "submodules", "tqdm", "matplotlib", "imageio", "torchsearchsorted"):
        adapter = _adapter("graf", write_tree(tmp_path / "graf", STANDIN_GRAF), sets=GRAF_TINY)
        assert adapter.cfg["radius"] == 10.0 and adapter.cfg["nerf"]["feat_dim_appearance"] == 4
        _images_differ_unless_shared(adapter, lambda G: G.decoder.alpha_linear.bias.add_(2.0))


# ---------------------------------------------------------------------------- StyleNeRF (inference only)
#: StyleNeRF at the sizes of tools/fixtures/make_stylenerf_fixture.py: z 8, w 16, 2 mapping layers, foreground
#: NeRF 16 wide x 3, background 8 wide x 2 on a 4-d latent, 8 features, 8-px renders (6 + 6 and 4 samples)
#: upsampled to 32 px.
STYLENERF_TINY = [
    "stochasticity_mapper.z_dim=8", "stochasticity_mapper.w_dim=16", "stochasticity_mapper.num_layers=2",
    "point_sampler.num_samples=6", "generator.num_importance=6", "feature_decoder.hidden_dim=16",
    "feature_decoder.depth=3", "feature_decoder.output_dim=8", "background/feature_decoder.hidden_dim=8",
    "background/feature_decoder.depth=2", "background/feature_decoder.output_dim=8",
    "background/point_embedder.latent_dim=4", "background/point_sampler.num_samples=4",
    "upsampler.in_resolution=8", "upsampler.image_resolution=32", "upsampler.channel_base=512",
    "generator.render_resolution=8", "discriminator.img_resolution=32", "discriminator.lowres_head=8",
    "discriminator.channel_base=128", "discriminator.channel_max=16", "discriminator.mbstd_group_size=2",
]

#: facebookresearch/StyleNeRF's layout (training/networks.py ``Generator(z_dim, c_dim, w_dim, img_resolution,
#: img_channels, mapping_kwargs, synthesis_kwargs)``, ``forward(z, c, camera_matrices=(camera_mat, world_mat,
#: ...), latent_codes=..., noise_mode=...)`` returning ``{'img': ...}``). Its networks are gan3d's own stylenerf
#: modules rebuilt from the official options the adapter derives, registered under the official state-dict
#: names (mapping, synthesis.fg_nerf, synthesis.bg_nerf, synthesis.b16/b32, synthesis.alpha), their first
#: layers' inputs exported in the official z-up axes, and moved off their initial values; the forward turns the
#: official camera matrices (OpenGL axes, z-up world, inverse intrinsics over [-1, 1] pixels) back into gan3d
#: cameras. The images agree only when the adapter copies every weight across, rotates the frame and converts
#: the cameras and the background latent right.
STANDIN_STYLENERF = {
    "dnnlib/__init__.py": "",
    "dnnlib/camera.py": "",
    "training/__init__.py": "",
    "training/stylenerf.py": "",
    "training/networks.py": '''
        import torch

        from gan3d.core.generator import build_generator
        from gan3d.core.types import Cameras
        from gan3d.methods.stylenerf.official import recipe_from_official

        #: for each official world axis, gan3d's (gan3d (x, y, z) = official (y, z, x))
        GAN3D_OF = (2, 0, 1)


        class _Kwargs:
            def __init__(self, kwargs):
                self.kwargs = kwargs

            def require(self, name):
                return self.kwargs

            def get(self, name, default=None):
                return default


        def _official_axes(weight, dim, coordinates, octaves):
            index = []
            for group in range(2 * octaves):
                index += [group * coordinates + (GAN3D_OF[c] if c < 3 else c) for c in range(coordinates)]
            index += list(range(len(index), weight.shape[dim]))
            return weight.index_select(dim, torch.tensor(index))


        class Generator(torch.nn.Module):
            def __init__(self, z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs={},
                         synthesis_kwargs={}):
                super().__init__()
                kwargs = dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution,
                              img_channels=img_channels, mapping_kwargs=mapping_kwargs,
                              synthesis_kwargs=synthesis_kwargs)
                g = build_generator(recipe_from_official(_Kwargs(kwargs), None, None, "stand-in")).eval()
                self.parts, self.octaves = [g], (synthesis_kwargs["foreground_kwargs"]["n_freq_posenc"],
                                                 synthesis_kwargs["background_kwargs"]["n_freq_posenc"])
                self.mapping = g.mapper.network
                self.synthesis = torch.nn.Module()
                self.synthesis.fg_nerf = g.decoder
                self.synthesis.bg_nerf = g.groups["background"].decoder
                self.synthesis.block_names = []
                for name, block in g.upsampler.named_children():
                    setattr(self.synthesis, name, block)
                self.synthesis.register_buffer("alpha", g.upsampler.alpha)
                self.synthesis.set_alpha = g.upsampler.alpha.fill_
                with torch.no_grad():
                    for p in self.parameters():
                        p.mul_(1.25).add_(0.05)

            def state_dict(self, *args, **kwargs):
                state = super().state_dict(*args, **kwargs)
                fg, bg = self.octaves
                for key, dim, coordinates, octaves in (
                        ("synthesis.fg_nerf.fc_in.weight", 1, 3, fg),
                        ("synthesis.fg_nerf.fc_in.affine.weight", 0, 3, fg),
                        ("synthesis.fg_nerf.fc_in.affine.bias", 0, 3, fg),
                        ("synthesis.bg_nerf.fc_in.weight", 1, 4, bg)):
                    state[key] = _official_axes(state[key], dim, coordinates, octaves)
                return state

            def forward(self, z, c, camera_matrices, latent_codes=None, noise_mode="random", **kwargs):
                g = self.parts[0]
                camera_mat, world = camera_matrices[:2]
                c2w = torch.zeros_like(world)
                rows = [GAN3D_OF.index(axis) for axis in range(3)]  # gan3d's axes from the official ones
                c2w[:, :3, :3] = world[:, rows, :3] * torch.tensor([1.0, -1.0, -1.0])  # OpenGL -> OpenCV axes
                c2w[:, :3, 3] = world[:, rows, 3]
                c2w[:, 3, 3] = 1.0
                K = torch.zeros(len(z), 3, 3)
                K[:, 0, 0], K[:, 1, 1] = 0.5 / camera_mat[:, 0, 0], 0.5 / camera_mat[:, 1, 1]
                K[:, 0, 2] = K[:, 1, 2] = 0.5
                K[:, 2, 2] = 1.0
                embedder = g.groups["background"].embedder
                if latent_codes is not None:
                    embedder.scene = lambda ws, generator=None: latent_codes[2]
                try:
                    return {"img": g(z, Cameras(c2w, K)).image}
                finally:
                    embedder.__dict__.pop("scene", None)
    ''',
}


def test_stylenerf_standin_is_compared_and_timed_at_inference_only(tmp_path):
    root = write_tree(tmp_path / "stylenerf-checkout", STANDIN_STYLENERF)
    inference_only_row(tmp_path, "stylenerf", root, STYLENERF_TINY, tolerance=1e-5)


def test_stylenerf_adapter_images_differ_without_shared_weights_and_training_is_refused(tmp_path, monkeypatch):
    with _imports_undone(monkeypatch, "training", "dnnlib", "requests", stubs=("numpy.lib.",)):
        adapter = _adapter("stylenerf", write_tree(tmp_path / "stylenerf", STANDIN_STYLENERF), sets=STYLENERF_TINY)
        # one weight off: the background's first layer
        _images_differ_unless_shared(adapter, lambda G: G.groups["background"].decoder.fc_in.bias[0:1].add_(0.5))
        synthesis = adapter.cfg["G_kwargs"]["synthesis_kwargs"]
        assert (synthesis["resolution_vol"], synthesis["channel_base"], synthesis["z_dim_bg"]) == (8, 512 / 32768, 4)
        assert synthesis["camera_kwargs"]["fov"] == 12 and synthesis["renderer_kwargs"]["hierarchical"]


# ---------------------------------------------------------------------------- GIRAFFE (inference only)
#: GIRAFFE (cars 64 boxes and cameras) with codes of 8 and 4, fields 16 and 8 wide on 4 and 2 octaves,
#: 8 features, 8 samples per ray, a 16-px feature image to 32 px.
GIRAFFE_TINY = [
    "stochasticity_mapper.object_z_dim=8", "stochasticity_mapper.background_z_dim=4",
    "feature_decoder.hidden_dim=16", "feature_decoder.n_blocks=3", "feature_decoder.skips=[1]",
    "feature_decoder.num_frequencies=4", "feature_decoder.num_view_frequencies=2", "feature_decoder.feature_dim=8",
    "background/feature_decoder.hidden_dim=8", "background/feature_decoder.n_blocks=2",
    "background/feature_decoder.num_frequencies=4", "background/feature_decoder.num_view_frequencies=2",
    "background/feature_decoder.feature_dim=8", "point_sampler.num_samples=8", "upsampler.n_feat=8",
    "upsampler.min_feat=4", "upsampler.out_resolution=32", "discriminator.img_size=32", "discriminator.n_feat=16",
]

#: autonomousvision/giraffe's layout (im2scene/giraffe/models: ``Decoder(hidden_size, n_blocks, skips,
#: n_freq_posenc, n_freq_posenc_views, z_dim, rgb_out_dim, downscale_p_by)``, ``BoundingBoxGenerator``,
#: ``NeuralRenderer(n_feat, input_dim, min_feat, img_size, ...)``, ``Generator(device, z_dim, z_dim_bg, decoder,
#: ..., background_generator, bounding_box_generator, resolution_vol, neural_renderer, fov, ...)`` with
#: ``forward(batch_size, latent_codes, camera_matrices, transformations, bg_rotation, mode)`` giving images in
#: [0, 1]). Its fields are gan3d's GIRAFFE MLP, which reads the points it is given: called by the official
#: code on z-up points, their weights are in the official layout. The forward turns the official codes,
#: transformations and camera matrices back into gan3d's (gan3d.methods.giraffe.official ``scene_latent``,
#: ``cameras``) and renders through a gan3d generator loaded with its fields' weights moved to our axes. The
#: fields' weights are moved off their initial values (an opaque object, a visible background) and
#: ``kornia.filters`` is a stub (im2scene/layers.py's import). The images agree only when the adapter copies
#: every weight across, rotates the encodings and converts the scenes and cameras right.
STANDIN_GIRAFFE = {
    "kornia/__init__.py": "",
    "kornia/filters.py": "filter2D = None\n",
    "im2scene/camera.py": "",
    "im2scene/giraffe/models/__init__.py": """
        from im2scene.giraffe.models import bounding_box_generator, decoder, generator, neural_renderer
    """,
    "im2scene/giraffe/models/bounding_box_generator.py": """
        import torch


        class BoundingBoxGenerator(torch.nn.Module):
            def __init__(self, n_boxes=1, scale_range_min=(0.5,) * 3, scale_range_max=(0.5,) * 3,
                         translation_range_min=(-0.75, -0.75, 0.0), translation_range_max=(0.75, 0.75, 0.0),
                         z_level_plane=0.0, rotation_range=(0.0, 1.0), fix_scale_ratio=True, **kwargs):
                super().__init__()
                self.n_boxes = n_boxes
    """,
    "im2scene/giraffe/models/decoder.py": """
        import torch

        from gan3d.embedders.feature_decoders.giraffe_field import GiraffeFieldMLP


        class Decoder(GiraffeFieldMLP):
            def __init__(self, hidden_size=128, n_blocks=8, n_blocks_view=1, skips=(4,), use_viewdirs=True,
                         n_freq_posenc=10, n_freq_posenc_views=4, z_dim=64, rgb_out_dim=128,
                         final_sigmoid_activation=False, downscale_p_by=2.0, **kwargs):
                super().__init__(hidden_dim=hidden_size, n_blocks=n_blocks, skips=skips, num_frequencies=n_freq_posenc,
                                 num_view_frequencies=n_freq_posenc_views, z_dim=z_dim, feature_dim=rgb_out_dim,
                                 downscale=downscale_p_by)
                self.options = dict(hidden_dim=hidden_size, n_blocks=n_blocks, skips=list(skips),
                                    num_frequencies=n_freq_posenc, num_view_frequencies=n_freq_posenc_views,
                                    feature_dim=rgb_out_dim, downscale=downscale_p_by)
                gen = torch.Generator().manual_seed(n_blocks)
                with torch.no_grad():
                    for name, p in self.named_parameters():
                        std = (2.0 / p.shape[1]) ** 0.5 if p.ndim == 2 else 0.2
                        p.copy_(torch.randn(p.shape, generator=gen) * std)
                    self.sigma_out.weight.mul_(4.0 if n_blocks > 2 else 1.0)
    """,
    "im2scene/giraffe/models/neural_renderer.py": """
        import math

        from gan3d.renderers.neural_renderer import GiraffeNeuralRenderer


        class NeuralRenderer(GiraffeNeuralRenderer):
            def __init__(self, n_feat=128, input_dim=128, out_dim=3, final_actvn=True, min_feat=32, img_size=64,
                         use_rgb_skip=True, upsample_feat="nn", upsample_rgb="bilinear", use_norm=False, **kwargs):
                super().__init__(in_channels=input_dim, n_feat=n_feat, min_feat=min_feat, out_resolution=img_size,
                                 in_resolution=16, use_rgb_skip=use_rgb_skip, upsample_feat=upsample_feat,
                                 upsample_rgb=upsample_rgb, use_norm=use_norm, final_sigmoid=final_actvn)
                self.options = dict(n_feat=n_feat, min_feat=min_feat, out_resolution=img_size)
                assert int(math.log2(img_size)) - 4 == len(self.conv_layers)
    """,
    "im2scene/giraffe/models/generator.py": """
        import json
        import re

        import torch

        from gan3d.core.generator import build_generator
        from gan3d.core.official.importer import rename_keys
        from gan3d.methods.giraffe.official import GENERATOR_RENAMES, cameras, scene_latent, to_our_axes
        from gan3d.methods.giraffe.recipe import giraffe_recipe

        ENCODED = re.compile(r"(decoder|groups\\.background\\.decoder)\\.(fc_in|fc_p_skips\\.\\d+|fc_view)\\.weight")


        class Generator(torch.nn.Module):
            def __init__(self, device, z_dim=256, z_dim_bg=128, decoder=None, range_u=(0, 0), range_v=(0.25, 0.25),
                         n_ray_samples=64, range_radius=(2.732, 2.732), depth_range=(0.5, 6.0),
                         background_generator=None, bounding_box_generator=None, resolution_vol=16,
                         neural_renderer=None, fov=49.13, backround_rotation_range=(0.0, 0.0), **kwargs):
                super().__init__()
                self.device = device
                self.decoder, self.background_generator = decoder, background_generator
                self.bounding_box_generator, self.neural_renderer = bounding_box_generator, neural_renderer
                sets = [f"stochasticity_mapper.object_z_dim={z_dim}",
                        f"stochasticity_mapper.background_z_dim={z_dim_bg}",
                        f"stochasticity_mapper.n_objects={bounding_box_generator.n_boxes}",
                        f"point_sampler.num_samples={n_ray_samples}", f"point_sampler.ray_start={depth_range[0]}",
                        f"point_sampler.ray_end={depth_range[1]}", f"generator.render_resolution={resolution_vol}"]
                for slot, net in (("feature_decoder", decoder), ("background/feature_decoder", background_generator),
                                  ("upsampler", neural_renderer)):
                    sets += [f"{slot}.{k}={json.dumps(v)}" for k, v in net.options.items()]
                self.parts = [build_generator(giraffe_recipe().overrides(sets)).eval()]

            def forward(self, batch_size=32, latent_codes=None, camera_matrices=None, transformations=None,
                        bg_rotation=None, mode="training", it=0, return_alpha_map=False, **kwargs):
                assert mode != "training" and latent_codes[0].shape[0] == batch_size
                g = self.parts[0]
                state = rename_keys(self.state_dict(), GENERATOR_RENAMES)
                state = {k: to_our_axes(v) if ENCODED.fullmatch(k) else v for k, v in state.items()}
                g.load_state_dict({**g.state_dict(), **state})
                with torch.no_grad():
                    image = g.synthesis(scene_latent(latent_codes, transformations, bg_rotation),
                                        cameras(*camera_matrices)).image
                return (image + 1) / 2
    """,
}


def test_giraffe_standin_shares_weights_renders_the_same_images_and_is_timed(tmp_path):
    root = write_tree(tmp_path / "giraffe", STANDIN_GIRAFFE)
    inference_only_row(tmp_path, "giraffe", root, GIRAFFE_TINY, tolerance=1e-5)


def test_giraffe_adapter_images_differ_without_shared_weights_and_training_is_refused(tmp_path, monkeypatch):
    root = write_tree(tmp_path / "giraffe", STANDIN_GIRAFFE)
    with _imports_undone(monkeypatch, "im2scene", "kornia"):
        adapter = _adapter("giraffe", root, sets=GIRAFFE_TINY)
        cfg = adapter.cfg
        assert cfg["decoder"]["skips"] == [1] and cfg["neural_renderer"]["img_size"] == 32
        # the cars 64 boxes back in GIRAFFE's z-up axes (configs/64res/cars_64.yaml)
        assert cfg["bounding_box_generator"]["translation_range_min"] == pytest.approx([-0.22, -0.12, 0.0])
        assert cfg["bounding_box_generator"]["scale_range_max"] == pytest.approx([0.25, 0.2, 0.2])
        assert cfg["generator"]["range_v"] == pytest.approx([0.41667, 0.5])
        # one weight off: the background field's view layer (the encoding columns are rotated too)
        _images_differ_unless_shared(adapter, lambda G: G.groups["background"].decoder.fc_view.weight[:, 1].add_(0.5))


def test_giraffe_adapter_names_a_missing_kornia(tmp_path, monkeypatch):
    files = {k: v for k, v in STANDIN_GIRAFFE.items() if not k.startswith("kornia/")}
    with _imports_undone(monkeypatch, "im2scene", "kornia"):
        monkeypatch.setitem(sys.modules, "kornia", None)  # not installed
        adapter = _adapter("giraffe", write_tree(tmp_path / "giraffe", files), sets=GIRAFFE_TINY)
        with pytest.raises(bench_official.OfficialSourceError, match="needs the package 'kornia'.*kornia==0.3.0"):
            adapter.build(False)


# ---------------------------------------------------------------------------- StyleSDF (inference only)
#: StyleSDF's full pipeline at 8-px renders (24 samples, a SIREN 2 x 16 on an 8-d latent) decoded to 16 px.
STYLESDF_TINY = [
    "stochasticity_mapper.z_dim=8", "feature_decoder.width=16", "feature_decoder.depth=2",
    "feature_decoder.style_dim=8",
    "generator.render_resolution=8", "upsampler.in_resolution=8", "upsampler.out_resolution=16",
    "upsampler.in_channels=16", "upsampler.style_dim=8", "upsampler.channel_multiplier=1",
    "discriminator.resolution=16", "discriminator.channel_base=128", "discriminator.channel_max=16",
]

#: royorel/StyleSDF's layout (model.py ``Generator(model_opt, renderer_opt, ema, full_pipeline)``,
#: ``forward([z], cam_poses, focals, near, far, truncation, randomize_noise)`` returning ``(image, thumb)``;
#: op/ compiles CUDA kernels when imported, so the stand-in's refuses to be imported: the adapter must put the
#: reference ops in its place). Its network is gan3d's own stylesdf generator rebuilt from the official options
#: and moved off its initial values; ``state_dict()`` gives it under the official names and shapes (the
#: importer's map inverted), and the forward turns the official cameras (OpenGL axes, focal in render pixels,
#: near/far of the offset sampling, points normalised by far - near) back into gan3d's. The images agree only
#: when the adapter copies every weight across, converts the cameras and asks for the stored noise.
STANDIN_STYLESDF = {
    "volume_renderer.py": "",
    "op/__init__.py": "raise ImportError('stand-in: op/ compiles its CUDA kernels when imported')\n",
    "model.py": '''
        import re

        import torch
        import trimesh  # noqa: F401  (the adapter stubs it)
        from op import FusedLeakyReLU, fused_leaky_relu, upfirdn2d  # noqa: F401
        from pytorch3d.renderer import TexturesUV  # noqa: F401

        from gan3d.core.generator import build_generator
        from gan3d.core.types import Cameras
        from gan3d.methods.stylesdf.recipe import stylesdf_recipe

        #: gan3d name -> official name (the inverse of gan3d.methods.stylesdf.official's map)
        RENAMES = [
            (r"mapper\\.layers\\.(\\d+)\\.(weight|bias)", r"style.\\1.\\2"),
            (r"renderer\\.sigmoid_beta", r"renderer.sigmoid_beta"),
            (r"decoder\\.layers\\.(\\d+)\\.linear\\.(weight|bias)", r"renderer.network.pts_linears.\\1.\\2"),
            (r"decoder\\.layers\\.(\\d+)\\.(gamma|beta)\\.(weight|bias)", r"renderer.network.pts_linears.\\1.\\2.\\3"),
            (r"decoder\\.view_layer\\.linear\\.(weight|bias)", r"renderer.network.views_linears.\\1"),
            (r"decoder\\.view_layer\\.(gamma|beta)\\.(weight|bias)", r"renderer.network.views_linears.\\1.\\2"),
            (r"decoder\\.rgb_head\\.(weight|bias)", r"renderer.network.rgb_linear.\\1"),
            (r"decoder\\.sdf_head\\.(weight|bias)", r"renderer.network.sigma_linear.\\1"),
            (r"upsampler\\.mapping\\.fc(\\d+)\\.(weight|bias)", None),
        ]


        class Generator(torch.nn.Module):
            def __init__(self, model_opt, renderer_opt, blur_kernel=[1, 3, 3, 1], ema=False, full_pipeline=True):
                super().__init__()
                m, r = model_opt, renderer_opt
                self.full, self.res, self.samples = full_pipeline, m.renderer_spatial_output_dim, r.N_samples
                self.z_normalize = not r.no_z_normalize
                sets = [f"stochasticity_mapper.z_dim={m.style_dim}", f"feature_decoder.width={r.width}",
                        f"feature_decoder.depth={r.depth}", f"feature_decoder.style_dim={m.style_dim}",
                        f"point_sampler.num_samples={r.N_samples}", f"generator.render_resolution={self.res}",
                        f"point_sampler.static_view_directions_in_eval={str(r.static_viewdirs).lower()}",
                        f"volume_renderer.eval_last_back={str(r.force_background).lower()}"]
                if full_pipeline:
                    sets += [f"upsampler.in_resolution={self.res}", f"upsampler.out_resolution={m.size}",
                             f"upsampler.in_channels={r.width}", f"upsampler.style_dim={m.style_dim}",
                             f"upsampler.channel_multiplier={m.channel_multiplier}",
                             f"upsampler.mapping_lr_multiplier={m.lr_mapping}", f"discriminator.resolution={m.size}"]
                g = build_generator(stylesdf_recipe("ffhq_full" if full_pipeline else "ffhq_volume").overrides(sets))
                self.g = g.eval()
                with torch.no_grad():
                    for p in g.parameters():
                        p.mul_(1.25).add_(0.05)

            def state_dict(self, *args, **kwargs):
                out = {}
                for key, value in self.g.state_dict().items():
                    for pattern, official in RENAMES:
                        match = re.fullmatch(pattern, key)
                        if match and official is None:
                            out[f"decoder.style.{int(match.group(1)) + 1}.{match.group(2)}"] = value
                        elif match:
                            out[match.expand(official)] = value
                        if match:
                            break
                if not self.full:
                    return out
                up, noise = self.g.upsampler, 0
                for k, (ours, theirs, rgb) in enumerate(
                        [("conv_in", "conv1", False), ("torgb_in", "to_rgb1", True)]
                        + [(f"b{res}.{layer}", name, layer == "torgb") for i, res in enumerate(up.block_resolutions)
                           for layer, name in (("conv0", f"convs.{2 * i}"), ("conv1", f"convs.{2 * i + 1}"),
                                               ("torgb", f"to_rgbs.{i}"))]):
                    layer = up.get_submodule(ours)
                    out[f"decoder.{theirs}.conv.weight"] = layer.weight[None]
                    out[f"decoder.{theirs}.conv.modulation.weight"] = layer.affine.weight
                    out[f"decoder.{theirs}.conv.modulation.bias"] = layer.affine.bias
                    if rgb:
                        out[f"decoder.{theirs}.bias"] = layer.bias.view(1, -1, 1, 1)
                    else:
                        out[f"decoder.{theirs}.activate.bias"] = layer.bias
                        out[f"decoder.{theirs}.noise.weight"] = layer.noise_strength.reshape(1)
                        out[f"decoder.noises.noise_{noise}"] = layer.noise_const[None, None]
                        noise += 1
                return out

            def forward(self, styles, cam_poses, focals, near, far, truncation=1, randomize_noise=True, **kwargs):
                g = self.g
                batch = cam_poses.shape[0]
                c2w = torch.eye(4).repeat(batch, 1, 1)
                c2w[:, :3, :3] = cam_poses[:, :, :3] * torch.tensor([1.0, -1.0, -1.0])  # OpenGL -> OpenCV axes
                c2w[:, :3, 3] = cam_poses[:, :, 3]
                K = torch.eye(3).repeat(batch, 1, 1)
                K[:, 0, 0] = K[:, 1, 1] = focals.flatten() / self.res
                K[:, 0, 2] = K[:, 1, 2] = 0.5
                n, f = float(near.flatten()[0]), float(far.flatten()[0])
                g.point_sampler.ray_start, g.point_sampler.ray_end = n, n + (f - n) * (1 - 1 / self.samples)
                g.embedder.box_warp = f - n if self.z_normalize else 2.0
                if self.full:
                    g.upsampler.noise_mode = "random" if randomize_noise else "const"
                out = g(styles[0], Cameras(c2w, K))
                return (out.image, out.image_raw) if self.full else (None, out.image)
    ''',
}


def test_stylesdf_standin_is_compared_and_timed_at_inference_only(tmp_path):
    root = write_tree(tmp_path / "stylesdf-checkout", STANDIN_STYLESDF)
    o = inference_only_row(tmp_path, "stylesdf", root, STYLESDF_TINY, tolerance=1e-5)
    assert o["official"]["ops"].startswith("reference")


def test_stylesdf_adapter_images_differ_without_shared_weights_and_training_is_refused(tmp_path, monkeypatch):
    with _imports_undone(monkeypatch, "model", "op", "volume_renderer", "trimesh", "pytorch3d"):
        adapter = _adapter("stylesdf", write_tree(tmp_path / "stylesdf", STANDIN_STYLESDF), sets=STYLESDF_TINY)
        cfg = adapter.cfg
        model, rendering = cfg["model"], cfg["rendering"]
        assert (model["size"], model["renderer_spatial_output_dim"], rendering["width"]) == (16, 8, 16)
        assert cfg["near"] == pytest.approx(0.88) and cfg["far"] == pytest.approx(1.12)
        assert rendering["static_viewdirs"] and rendering["force_background"]
        # a noise strength off: the official side must render with its stored noise, as ours does
        _images_differ_unless_shared(adapter, lambda G: G.upsampler.b16.conv1.noise_strength.add_(0.5))
