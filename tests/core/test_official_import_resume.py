"""An imported official checkpoint (weights only, meta.imported) is what `train --resume` continues
from: its weights are loaded, the optimizers and step count start afresh, and the next checkpoint is
an ordinary one."""

from __future__ import annotations

import pytest
import torch

from gan3d.core.checkpoint import CheckpointError, list_checkpoints, load_checkpoint, load_generator
from gan3d.core.generator import build_generator, build_module
from gan3d.core.official.importer import ImportedCheckpoint, write_imported_checkpoint
from gan3d.core.trainer import Trainer


def imported(recipe, registry, *, with_d: bool) -> ImportedCheckpoint:
    torch.manual_seed(1)
    G = build_generator(recipe, registry)
    with torch.no_grad():
        for p in G.parameters():
            p.add_(0.25)
    G_ema = {k: v + 0.5 if v.is_floating_point() else v for k, v in G.state_dict().items()}
    D = build_module(recipe, "discriminator", registry).state_dict() if with_d else None
    return ImportedCheckpoint(recipe, G=G.state_dict(), G_ema=G_ema, D=D, meta={"source": "official.pkl"})


@pytest.mark.parametrize("with_d", [True, False])
def test_train_resume_continues_from_imported_weights(tiny_recipe, tiny_registry, tiny_dataset, tmp_path, with_d):
    recipe = tiny_recipe()
    job = tmp_path / "job"
    source = imported(recipe, tiny_registry, with_d=with_d)
    write_imported_checkpoint(source, job / "checkpoints" / "checkpoint-000000000.pt", registry=tiny_registry)
    G, _ = load_generator(job / "checkpoints" / "checkpoint-000000000.pt", registry=tiny_registry)
    for k, v in G.state_dict().items():  # load_generator gives the moving average
        assert torch.equal(v, source.G_ema[k]), k
    trainer = Trainer(recipe, tiny_dataset, job, resume=True, registry=tiny_registry, progress=False,
                      tensorboard=False)
    assert trainer.step == 0 and trainer.nimg == 0
    for k, v in trainer.G.state_dict().items():
        assert torch.equal(v, source.G[k]), k
    if with_d:
        for k, v in trainer.D.state_dict().items():
            assert torch.equal(v, source.D[k]), k
    trainer.train(kimg=0.008)
    newest = list_checkpoints(job / "checkpoints")[-1]
    state = load_checkpoint(newest)
    assert state["step"] == 2 and "G_opt" in state and not state.get("meta", {}).get("imported")


def test_weights_that_do_not_fit_the_recipe_are_refused_and_nothing_is_written(tiny_recipe, tiny_registry, tmp_path):
    source = imported(tiny_recipe(), tiny_registry, with_d=True)
    name = next(iter(source.G))
    source.G[name] = torch.zeros(7, 7)
    del source.G_ema[name]
    out = tmp_path / "x.pt"
    with pytest.raises(CheckpointError, match=rf"missing 1: {name}.*|shapes differ.*{name}"):
        write_imported_checkpoint(source, out, registry=tiny_registry)
    assert not out.exists()
