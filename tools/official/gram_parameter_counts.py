"""Count the parameters of the official GRAM networks at their released configurations.

Not part of gan3d: this script imports an official checkout of microsoft/GRAM that the user points
to (counted at commit 5a5ac8e11306f976ac5a85e23344d0cdba0125ca) and builds its generator and
discriminator on the CPU exactly as ``training_loop.py`` ``set_generator`` / ``set_discriminator``
do, so the totals asserted in ``tests/methods/test_gram.py`` can be re-derived::

    python tools/official/gram_parameter_counts.py --official /path/to/GRAM

Prints one line per configuration of ``configs.py`` with the generator total, its two parts
(``representation.sample_network``: the manifold predictor; ``representation.rf_network``: the
radiance generator with its mapping network) and the discriminator total, and, with
``--names``, every parameter name and shape.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def count(module, prefix: str = "") -> int:
    return sum(p.numel() for n, p in module.named_parameters() if n.startswith(prefix))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official", required=True, type=Path, help="a checkout of microsoft/GRAM")
    parser.add_argument("--names", action="store_true", help="also print every parameter name and shape")
    args = parser.parse_args()
    if not (args.official / "configs.py").is_file():
        raise SystemExit(f"--official {args.official}: no configs.py there; point it at a GRAM checkout")
    sys.path.insert(0, str(args.official))
    import configs  # noqa: PLC0415  (the official module, from --official)
    from discriminators import discriminators  # noqa: PLC0415
    from generators import generators  # noqa: PLC0415

    for name in ("FFHQ_default", "CATS_default", "CARLA_default"):
        config = getattr(configs, name)
        generator = getattr(generators, config["generator"]["class"])(
            representation_kwargs=config["generator"]["representation"]["kwargs"],
            renderer_kwargs=config["generator"]["renderer"]["kwargs"],
            **config["generator"]["kwargs"],
        )
        discriminator = getattr(discriminators, config["discriminator"]["class"])(**config["discriminator"]["kwargs"])
        print(f"{name}: G {count(generator)} (sample_network {count(generator, 'representation.sample_network')}, "
              f"rf_network {count(generator, 'representation.rf_network')}, of which mapping_network "
              f"{count(generator, 'representation.rf_network.mapping_network')}); D {count(discriminator)}")
        if args.names:
            for module_name, module in (("G", generator), ("D", discriminator)):
                for n, p in module.named_parameters():
                    print(f"  {module_name} {n} {tuple(p.shape)}")


if __name__ == "__main__":
    main()
