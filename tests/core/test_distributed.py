"""Two CPU ranks under torchrun (gloo) train exactly as one process with the same global batch.

The test launches this file under ``python -m torch.distributed.run --standalone --nproc_per_node 2``
with ``tests/core`` on ``PYTHONPATH`` (so the ranks import the tiny modules of ``conftest.py``); each
rank trains a few steps of the tiny recipe and writes its networks, and rank 0 its log and
checkpoints. The same run in one process must give the same parameters, EMA and logged losses.

Randomness lines up because the trainer draws z and the cameras of the whole global batch on every
rank from one seeded generator and slices them, and the data stream gives rank ``r`` the ``r``-th
contiguous slice of each global batch. The tiny modules draw nothing from the global RNG and the
tiny discriminator has no minibatch-std layer (which groups within a rank's batch).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
STEPS = 6  # batch 4 -> 0.024 kimg; R1 (interval 2) at steps 0, 2, 4; checkpoints every 2 steps
SEED = 3


def _recipe(tiny_recipe):
    return tiny_recipe().override("training.snapshot_kimg=0.008").override("training.image_snapshot_kimg=0.024")


def _networks(trainer) -> dict[str, torch.Tensor]:
    out = {}
    for name in ("G", "D", "G_ema"):
        for key, value in getattr(trainer, name).state_dict().items():
            out[f"{name}.{key}"] = value.detach().clone()
    return out


def _rank_main(job: Path) -> None:
    """One rank: join the gloo group torchrun set up, train, write this rank's networks."""
    import torch.distributed as dist
    from conftest import TinyDataset, TinyPlugin, tiny_recipe  # tests/core is on PYTHONPATH

    import gan3d.core.plugin as core_plugin
    from gan3d.core.registry import Registry
    from gan3d.core.trainer import Trainer

    dist.init_process_group(backend="gloo")
    registry = Registry(autoload=False)
    registry.register(core_plugin, name="core", distribution="gan3d-core")
    registry.register(TinyPlugin(), name="tiny", distribution="tests")
    trainer = Trainer(_recipe(tiny_recipe), TinyDataset(), job, registry=registry, seed=SEED, progress=False,
                      tensorboard=False)
    assert trainer.world == 2
    trainer.train(kimg=STEPS * 4 / 1000)
    torch.save({"networks": _networks(trainer), "step": trainer.step},
               job.parent / f"rank{dist.get_rank()}.pt")
    dist.barrier()
    dist.destroy_process_group()


def test_two_gloo_ranks_match_one_process(tiny_recipe, tiny_registry, tiny_dataset, tmp_path):
    from gan3d.core.checkpoint import list_checkpoints
    from gan3d.core.trainer import Trainer

    job = tmp_path / "ddp" / "job"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(Path(__file__).resolve()), str(job)],
        env=env, capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    single = Trainer(_recipe(tiny_recipe), tiny_dataset, tmp_path / "single", registry=tiny_registry, seed=SEED,
                     progress=False, tensorboard=False)
    single.train(kimg=STEPS * 4 / 1000)
    expected = _networks(single)

    ranks = [torch.load(job.parent / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert ranks[0]["step"] == ranks[1]["step"] == single.step == STEPS
    max_diff = 0.0
    for key, value in expected.items():
        a, b = ranks[0]["networks"][key], ranks[1]["networks"][key]
        assert torch.equal(a, b), f"{key} differs between the ranks"
        torch.testing.assert_close(a, value, rtol=1e-5, atol=1e-6, msg=key)
        if value.is_floating_point():
            max_diff = max(max_diff, (a - value).abs().max().item())
    print(f"max |two ranks - one process| over G, D, G_ema: {max_diff:.3e}")
    # Training moved the networks: the match is not between two untouched initialisations.
    fresh = Trainer(_recipe(tiny_recipe), tiny_dataset, tmp_path / "fresh", registry=tiny_registry, seed=SEED,
                    progress=False, tensorboard=False)
    assert any(not torch.equal(v, expected[f"G.{k}"]) for k, v in fresh.G.state_dict().items())

    # Rank 0 alone wrote the log (one line per step, losses averaged over the ranks) and checkpoints.
    log = [json.loads(line) for line in (job / "log.json").read_text().splitlines()]
    single_log = [json.loads(line) for line in (tmp_path / "single" / "log.json").read_text().splitlines()]
    assert [e["step"] for e in log] == list(range(1, STEPS + 1))
    for mine, ref in zip(log, single_log):
        for key in ("D/loss", "G/loss", "d_real", "d_fake", "g_adv"):
            assert abs(mine[key] - ref[key]) <= 1e-4 * abs(ref[key]) + 1e-6, (mine["step"], key)
    checkpoints = list_checkpoints(job / "checkpoints")
    assert [p.name for p in checkpoints] == ["checkpoint-000000004.pt", "checkpoint-000000006.pt"]
    # Each rank's own RNG state is in the checkpoint, so a resumed run continues every rank's noise.
    ranks_rng = torch.load(checkpoints[-1], weights_only=True)["rng"]["ranks"]
    assert len(ranks_rng) == 2 and not torch.equal(ranks_rng[0]["cpu"], ranks_rng[1]["cpu"])


if __name__ == "__main__":
    _rank_main(Path(sys.argv[1]))
