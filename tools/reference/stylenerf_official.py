"""Build the official StyleNeRF networks on a CPU and report their parameter counts.

This script is research tooling, outside gan3d's code path: it imports a checkout of
facebookresearch/StyleNeRF that the user points to (checked against commit ``7f5610a``, "fix unknown
DDP bug for training on A100/A6000") and never copies its code. It reads the released Hydra configs
(``conf/model/<model>.yaml`` and ``conf/spec/<spec>.yaml``) with a small reader for the YAML subset
they use, builds ``G`` and ``D`` exactly as ``run_train.py`` / ``training/training_loop.py`` do
(``c_dim=0`` for the unconditional FFHQ runs, ``img_channels=3``, ``img_resolution`` from the data
set), and prints the counts per top-level module, which gan3d's tests assert as numbers.

The official code imports CUDA ops and a few modules newer NumPy removed; on a CPU its ops fall back
to their reference implementations, so only import shims are needed (``numpy.lib.arraysetops``,
``numpy.lib.function_base``, ``requests``) plus ``einops`` on the path.

Usage::

    python tools/reference/stylenerf_official.py --official /path/to/StyleNeRF \\
        [--pythonpath /path/with/einops] [--model stylenerf_ffhq] [--spec paper256 paper512 paper1024]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import types
from pathlib import Path
from typing import Any

#: Image resolution of each released configuration (README's checkpoint table; the spec names say it).
SPEC_RESOLUTION = {"paper256": 256, "paper512": 512, "paper1024": 1024}


def _scalar(text: str) -> Any:
    text = text.strip()
    if text in ("~", "null", ""):
        return None
    if text in ("True", "true"):
        return True
    if text in ("False", "false"):
        return False
    if text.startswith("[") and text.endswith("]"):
        inner = text[1:-1].strip()
        return [_scalar(t) for t in inner.split(",")] if inner else []
    if (text.startswith('"') and text.endswith('"')) or (text.startswith("'") and text.endswith("'")):
        return text[1:-1]
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def read_yaml_subset(path: Path) -> dict[str, Any]:
    """Nested block mappings of scalars and flow lists, ``#`` comments: all the released configs use."""
    root: dict[str, Any] = {}
    stack: list[tuple[int, dict[str, Any]]] = [(-1, root)]
    for raw in path.read_text().splitlines():
        line = re.sub(r"\s+#.*$", "", raw) if not raw.lstrip().startswith("#") else ""
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        key, _, value = line.strip().partition(":")
        while stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1]
        if value.strip():
            parent[key.strip()] = _scalar(value)
        else:
            parent[key.strip()] = {}
            stack.append((indent, parent[key.strip()]))
    return root


def resolve(node: Any, context: dict[str, Any]) -> Any:
    """Replace ``${a.b.c}`` interpolations (Hydra/OmegaConf) by their values in ``context``."""
    if isinstance(node, dict):
        return {k: resolve(v, context) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve(v, context) for v in node]
    if isinstance(node, str):
        match = re.fullmatch(r"\$\{([^}]+)\}", node)
        if match:
            value: Any = context
            for part in match.group(1).split("."):
                value = value[part]
            return resolve(value, context)
    return node


def install_import_shims() -> None:
    import numpy as np

    def shim(name: str, **attrs: Any) -> None:
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        sys.modules.setdefault(name, module)

    shim("numpy.lib.arraysetops", isin=np.isin)  # removed in NumPy 2; networks.py imports it
    shim("numpy.lib.function_base", angle=np.angle)  # removed in NumPy 2; dnnlib/camera.py imports it
    shim("requests")  # dnnlib/util.py imports it for downloads only


def build(official: Path, model: str, spec: str) -> tuple[Any, Any, dict[str, Any]]:
    """G and D of ``model`` at ``spec``, constructed as training_loop.py does."""
    import dnnlib

    config = read_yaml_subset(official / "conf" / "config.yaml")
    context = {"model": read_yaml_subset(official / "conf" / "model" / f"{model}.yaml"),
               "spec": read_yaml_subset(official / "conf" / "spec" / f"{spec}.yaml"),
               "num_fp16_res": config["num_fp16_res"]}
    context = resolve(context, context)
    common = {"c_dim": 0, "img_resolution": SPEC_RESOLUTION[spec], "img_channels": 3}
    g_kwargs = dict(context["model"]["G_kwargs"])
    d_kwargs = dict(context["model"]["D_kwargs"])
    G = dnnlib.util.construct_class_by_name(**g_kwargs, **common)
    D = dnnlib.util.construct_class_by_name(**d_kwargs, **common)
    return G, D, context


def counts(module: Any) -> dict[str, int]:
    out = {name: sum(p.numel() for p in child.parameters()) for name, child in module.named_children()}
    out["total"] = sum(p.numel() for p in module.parameters())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, required=True, help="facebookresearch/StyleNeRF checkout")
    parser.add_argument("--pythonpath", type=Path, action="append", default=[],
                        help="extra import path (e.g. where einops is installed)")
    parser.add_argument("--model", default="stylenerf_ffhq")
    parser.add_argument("--spec", nargs="+", default=list(SPEC_RESOLUTION))
    args = parser.parse_args(argv)
    if not (args.official / "training" / "stylenerf.py").is_file():
        parser.error(f"--official {args.official}: no training/stylenerf.py there; point it at a StyleNeRF checkout")
    sys.path[:0] = [str(args.official), *map(str, args.pythonpath)]
    install_import_shims()

    report = {}
    for spec in args.spec:
        G, D, _ = build(args.official, args.model, spec)
        synthesis = G.synthesis
        report[spec] = {
            "G": counts(G), "G.synthesis": counts(synthesis), "D": counts(D),
            "num_ws": G.num_ws, "fg_nerf.num_ws": synthesis.fg_nerf.num_ws,
            "bg_nerf.num_ws": synthesis.bg_nerf.num_ws if synthesis.bg_nerf is not None else 0,
            "upsampler.num_ws": synthesis.U.num_ws, "upsampler_blocks": synthesis.U.block_resolutions,
        }
    json.dump(report, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
