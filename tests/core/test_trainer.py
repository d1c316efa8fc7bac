"""The trainer on tiny modules: steps, schedules, checkpoints, resume, refusal to overwrite."""

from __future__ import annotations

import json

import pytest
import torch

from gan3d.core.checkpoint import CheckpointError, list_checkpoints, load_checkpoint, load_generator
from gan3d.core.recipe import RecipeError
from gan3d.core.trainer import StageSchedule, Trainer, TrainingConfig, TrainingError, WorkDirError


def make(tiny_recipe, tiny_registry, tiny_dataset, work_dir, **kw):
    return Trainer(tiny_recipe(), tiny_dataset, work_dir, registry=tiny_registry, progress=False,
                   tensorboard=kw.pop("tensorboard", False), **kw)


def test_one_step_updates_both_networks(tiny_recipe, tiny_registry, tiny_dataset, tmp_path):
    trainer = make(tiny_recipe, tiny_registry, tiny_dataset, tmp_path / "job")
    g0 = [p.clone() for p in trainer.G.parameters()]
    d0 = [p.clone() for p in trainer.D.parameters()]
    logs = trainer.train_step()
    assert trainer.step == 1 and trainer.nimg == 4
    assert {"G/loss", "D/loss", "g_adv", "d_real", "d_fake", "r1"} <= set(logs)
    assert all(not torch.equal(a, b) for a, b in zip(g0, trainer.G.parameters()))
    assert all(not torch.equal(a, b) for a, b in zip(d0, trainer.D.parameters()))


def test_full_run_writes_logs_samples_checkpoints(tiny_recipe, tiny_registry, tiny_dataset, tmp_path):
    trainer = make(tiny_recipe, tiny_registry, tiny_dataset, tmp_path / "job", tensorboard=True)
    trainer.train()
    job = tmp_path / "job"
    lines = [json.loads(line) for line in (job / "log.json").read_text().splitlines()]
    assert [entry["step"] for entry in lines] == [1, 2, 3, 4, 5]
    assert {"G/loss", "D/loss", "kimg", "iter_time", "data_time", "run_time", "g_lr", "d_lr"} <= set(lines[-1])
    assert (job / "recipe.json").is_file()
    assert list((job / "events").iterdir())
    assert (job / "samples" / "fakes-000000000.png").is_file()
    ckpts = list_checkpoints(job / "checkpoints")
    assert [p.name for p in ckpts] == ["checkpoint-000000004.pt", "checkpoint-000000005.pt"]  # keep=2


def test_checkpoint_round_trip_with_weights_only(tiny_recipe, tiny_registry, tiny_dataset, tmp_path):
    trainer = make(tiny_recipe, tiny_registry, tiny_dataset, tmp_path / "job")
    trainer.train_step()
    path = trainer.save()
    state = torch.load(path, weights_only=True)
    assert state["step"] == 1
    G, recipe = load_generator(path, registry=tiny_registry)
    assert recipe == trainer.recipe
    for (k, a), b in zip(G.state_dict().items(), trainer.G_ema.state_dict().values()):
        torch.testing.assert_close(a, b, msg=k)


def test_resume_continues_and_reproduces_the_next_losses(tiny_recipe, tiny_registry, tiny_dataset, tmp_path):
    reference = make(tiny_recipe, tiny_registry, tiny_dataset, tmp_path / "a")
    for _ in range(2):
        reference.train_step()
    reference.save()
    expected = [reference.train_step() for _ in range(2)]

    resumed = make(tiny_recipe, tiny_registry, tiny_dataset, tmp_path / "a", resume=True)
    assert resumed.step == 2 and resumed.nimg == 8
    got = [resumed.train_step() for _ in range(2)]
    for e, g in zip(expected, got):
        for key in ("G/loss", "D/loss", "r1"):
            if key in e:
                assert g[key] == pytest.approx(e[key], rel=1e-5, abs=1e-6), key


def test_refuses_to_overwrite_a_job(tiny_recipe, tiny_registry, tiny_dataset, tmp_path):
    job = tmp_path / "job"
    job.mkdir()
    (job / "precious.txt").write_text("keep me")
    with pytest.raises(WorkDirError, match="already exists; pass --resume"):
        make(tiny_recipe, tiny_registry, tiny_dataset, job)
    assert (job / "precious.txt").read_text() == "keep me"
    with pytest.raises(WorkDirError, match="no checkpoint"):
        make(tiny_recipe, tiny_registry, tiny_dataset, tmp_path / "other", resume=True)


def test_resume_truncates_log_lines_after_the_checkpoint(tiny_recipe, tiny_registry, tiny_dataset, tmp_path):
    job = tmp_path / "job"
    trainer = make(tiny_recipe, tiny_registry, tiny_dataset, job)
    trainer.train(kimg=0.008)  # two steps, checkpoint at step 2
    with open(job / "log.json", "a") as f:
        f.write(json.dumps({"step": 3}) + "\n" + '{"step": 4, "half')
    make(tiny_recipe, tiny_registry, tiny_dataset, job, resume=True)
    steps = [json.loads(line)["step"] for line in (job / "log.json").read_text().splitlines()]
    assert steps == [1, 2]


def test_non_finite_loss_stops_with_step_and_keeps_checkpoint(tiny_recipe, tiny_registry, tiny_dataset, tmp_path):
    trainer = make(tiny_recipe, tiny_registry, tiny_dataset, tmp_path / "job")
    trainer.train_step()
    good = trainer.save()
    with torch.no_grad():
        next(trainer.D.parameters()).fill_(float("nan"))
    with pytest.raises(TrainingError, match=r"non-finite discriminator loss at step 1 .*d_fake=nan"):
        trainer.train_step()
    assert load_checkpoint(good)["step"] == 1


def test_bad_steps_can_be_skipped(tiny_recipe, tiny_registry, tiny_dataset, tmp_path):
    recipe = tiny_recipe().override("training.max_bad_steps=1")
    trainer = Trainer(recipe, tiny_dataset, tmp_path / "job", registry=tiny_registry, progress=False,
                      tensorboard=False)
    with torch.no_grad():
        next(trainer.D.parameters()).fill_(float("nan"))
    trainer.train_step()  # skipped, not fatal
    assert trainer.bad_steps >= 1
    with pytest.raises(TrainingError):
        trainer.train_step()


def test_rmsprop_optimizer(tiny_recipe, tiny_registry, tiny_dataset, tmp_path):
    recipe = tiny_recipe().override("training.optimizer=rmsprop")
    trainer = Trainer(recipe, tiny_dataset, tmp_path / "job", registry=tiny_registry, progress=False,
                      tensorboard=False)
    assert isinstance(trainer.G_opt, torch.optim.RMSprop) and isinstance(trainer.D_opt, torch.optim.RMSprop)
    trainer.train_step()


def test_lr_multipliers_give_slots_their_own_learning_rate(tiny_recipe, tiny_registry, tiny_dataset, tmp_path):
    recipe = tiny_recipe().overrides([
        'training.lr_multipliers={"feature_decoder": 0.25}',
        'training.stages=[{"until_step": 1}, {"g_lr": 0.004}]',
    ])
    trainer = Trainer(recipe, tiny_dataset, tmp_path / "job", registry=tiny_registry, progress=False,
                      tensorboard=False)
    groups = trainer.G_opt.param_groups
    assert [g["lr_multiplier"] for g in groups] == [1.0, 0.25]
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in trainer.G.decoder.parameters()}
    assert not {id(p) for p in groups[0]["params"]} & {id(p) for p in groups[1]["params"]}
    before = {name: p.detach().clone() for name, p in trainer.G.named_parameters()}
    trainer.train_step()
    # Adam's first step with beta1 = 0 moves every parameter with a gradient by exactly lr.
    moved = {name: float((p.detach() - before[name]).abs().max()) for name, p in trainer.G.named_parameters()}
    assert moved["decoder.fc.weight"] == pytest.approx(0.002 * 0.25, rel=1e-3)
    assert moved["embedder.proj.weight"] == pytest.approx(0.002, rel=1e-3)
    trainer.train_step()  # the second stage raises g_lr; the factor stays
    assert [g["lr"] for g in trainer.G_opt.param_groups] == pytest.approx([0.004, 0.001])


def test_lr_multipliers_are_checked(tiny_recipe, tiny_registry, tiny_dataset, tmp_path):
    with pytest.raises(RecipeError, match=r"lr_multipliers: the generator has no slot\(s\) \['decodr'\]"):
        Trainer(tiny_recipe().override('training.lr_multipliers={"decodr": 0.1}'), tiny_dataset, tmp_path / "a",
                registry=tiny_registry, progress=False)
    with pytest.raises(RecipeError, match="positive factors"):
        Trainer(tiny_recipe().override('training.lr_multipliers={"feature_decoder": 0}'), tiny_dataset,
                tmp_path / "b", registry=tiny_registry, progress=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_stage_schedule():
    cfg = TrainingConfig(batch_size=8, stages=[
        {"until_step": 2, "resolution": 8, "batch_size": 4, "fade_steps": 2},
        {"until_kimg": 1.0, "resolution": 16},
        {"resolution": 32, "g_lr": 1e-4},
    ])
    schedule = StageSchedule(cfg)
    assert schedule.index(0, 0.0) == 0 and schedule.index(2, 0.5) == 1 and schedule.index(3, 1.0) == 2
    assert schedule.settings(0)["batch_size"] == 4
    assert schedule.settings(1)["batch_size"] == 8
    assert schedule.settings(2)["g_lr"] == 1e-4


def test_progressive_stage_changes_resolution(tiny_recipe, tiny_registry, tiny_dataset, tmp_path):
    recipe = tiny_recipe().override('training.stages=[{"until_step": 1, "resolution": 4, "batch_size": 2}, '
                                     '{"resolution": 8}]')
    trainer = Trainer(recipe, tiny_dataset, tmp_path / "job", registry=tiny_registry, progress=False,
                      tensorboard=False)
    first = trainer.train_step()
    second = trainer.train_step()
    assert (first["resolution"], first["batch_size"]) == (4, 2)
    assert (second["resolution"], second["batch_size"]) == (8, 4)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("training.batch_sizee=3", "unknown training option"),
        ("training.batch_size=0", "batch_size must be a positive"),
        ("training.g_betas=[0.5]", "g_betas must be two numbers"),
        ('training.stages=[{"resolution": 8}, {"resolution": 16}]', "needs until_step or until_kimg"),
        ('training.stages=[{"until_step": 3, "resolutoin": 8}]', "unknown key 'resolutoin'"),
        ('training.stages=[{"resolution": -8}]', "must be a positive integer"),
        ("training.optimizer=sgd", "must be 'adam' or 'rmsprop'"),
        ("training.batch_gpu=0", "batch_gpu must be a positive integer or null"),
        ("training.batch_gpu=3", r"batch_gpu 3 must divide every stage's batch per rank that is larger \(\[4\]"),
        (('training.stages=[{"until_step": 2, "batch_size": 8}, {"batch_size": 6}]', "training.batch_gpu=4"),
         r"batch per rank that is larger \(\[6, 8\]"),
    ],
)
def test_bad_training_options_fail_before_work_starts(tiny_recipe, tiny_registry, tiny_dataset, tmp_path,
                                                      override, message):
    overrides = [override] if isinstance(override, str) else list(override)
    with pytest.raises(RecipeError, match=message):
        Trainer(tiny_recipe().overrides(overrides), tiny_dataset, tmp_path / "job", registry=tiny_registry,
                progress=False)
    assert not (tmp_path / "job").exists()


def test_checkpoint_with_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"

    class Payload:
        def __reduce__(self):
            return (print, ("owned",))

    torch.save({"recipe": "{}", "format": 1, "x": Payload()}, path)
    with pytest.raises(CheckpointError, match="refused: the file carries pickled Python objects"):
        load_checkpoint(path)
    truncated = tmp_path / "short.pt"
    truncated.write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(CheckpointError, match="short.pt: not a readable checkpoint"):
        load_checkpoint(truncated)


@pytest.mark.parametrize("own_step", [False, True])
def test_lazy_regularizers_step_on_their_own_when_the_objective_says_so(own_step, tiny_recipe, tiny_registry,
                                                                         tiny_dataset, tmp_path):
    """StyleGAN2-ADA/EG3D run 'Dreg' and 'Greg' as phases with their own optimizer steps; methods
    that add R1 to the main loss (pi-GAN, StyleSDF's discriminator) step once."""
    from gan3d.core.objective import Objective

    class LazyObjective(Objective):
        d_reg_own_step = g_reg_own_step = own_step
        g_reg_interval = 2

        def generator_regularizer(self, G, inputs):
            penalty = G.mapping(inputs.z).square().mean()
            return {"g_penalty": penalty.detach(), "loss": penalty}

    tiny_registry.add("loss", "lazy", LazyObjective)
    recipe = tiny_recipe()
    recipe.modules["loss"] = type(recipe.modules["loss"])("lazy", {"r1_gamma": 1.0, "r1_interval": 2})
    trainer = Trainer(recipe, tiny_dataset, tmp_path / "job", registry=tiny_registry, progress=False,
                      tensorboard=False)
    trainer.train_step()  # step 0: R1 and the generator regularizer both fire
    steps = lambda opt: max(int(state["step"]) for state in opt.state.values())  # noqa: E731
    assert steps(trainer.D_opt) == (2 if own_step else 1)
    assert steps(trainer.G_opt) == (2 if own_step else 1)
    trainer.train_step()  # step 1: neither fires
    assert steps(trainer.D_opt) == (3 if own_step else 2)
    assert steps(trainer.G_opt) == (3 if own_step else 2)


@pytest.mark.parametrize("generator_first", [False, True])
def test_the_objective_orders_the_generator_and_discriminator_steps(generator_first, tiny_recipe, tiny_registry,
                                                                     tiny_dataset, tmp_path):
    from gan3d.core.objective import Objective

    order = []

    class Ordered(Objective):
        generator_step_first = generator_first

        def generator_loss(self, G, D, inputs):
            order.append("G")
            return super().generator_loss(G, D, inputs)

        def discriminator_loss(self, G, D, inputs):
            order.append("D")
            return super().discriminator_loss(G, D, inputs)

    tiny_registry.add("loss", "ordered", Ordered)
    recipe = tiny_recipe()
    recipe.modules["loss"] = type(recipe.modules["loss"])("ordered", {"r1_gamma": 1.0, "r1_interval": 2})
    trainer = Trainer(recipe, tiny_dataset, tmp_path / "job", registry=tiny_registry, progress=False,
                      tensorboard=False)
    logs = trainer.train_step()
    assert order == (["G", "D"] if generator_first else ["D", "G"])
    assert {"G/loss", "D/loss"} <= set(logs)
    # Between steps both networks are trainable again, whatever the order.
    assert all(p.requires_grad for p in trainer.G.parameters()) and all(p.requires_grad for p in trainer.D.parameters())


def test_the_objective_can_clear_the_optimizer_states_before_a_step(tiny_recipe, tiny_registry, tiny_dataset,
                                                                    tmp_path):
    """``Objective.reset_optimizers_now`` (VolumeGAN's level-of-detail phase changes): both optimizers'
    moments and step counts start afresh before the step it names; by default never."""
    from gan3d.core.objective import Objective

    asked = []

    class Resetting(Objective):
        def reset_optimizers_now(self, G, D, step, kimg):
            asked.append((step, kimg, type(G).__name__))
            return step == 2

    tiny_registry.add("loss", "resetting", Resetting)
    recipe = tiny_recipe()
    recipe.modules["loss"] = type(recipe.modules["loss"])("resetting", {"r1_gamma": 0.0, "r1_interval": 0})
    trainer = Trainer(recipe, tiny_dataset, tmp_path / "job", registry=tiny_registry, progress=False,
                      tensorboard=False)
    steps = lambda opt: {int(state["step"]) for state in opt.state.values()}  # noqa: E731
    for _ in range(2):
        trainer.train_step()
    assert steps(trainer.G_opt) == steps(trainer.D_opt) == {2}
    trainer.train_step()  # cleared first, then one step: Adam starts over (bias correction included)
    assert steps(trainer.G_opt) == steps(trainer.D_opt) == {1}
    trainer.train_step()
    assert steps(trainer.G_opt) == {2}
    assert asked == [(0, 0.0, "Generator"), (1, 0.004, "Generator"), (2, 0.008, "Generator"), (3, 0.012, "Generator")]
    # The base objective never asks for it.
    assert not Objective().reset_optimizers_now(trainer.G, trainer.D, 0, 0.0)


def test_rounds_of_batch_gpu_split_each_phase_and_sum_their_gradients(tiny_recipe, tiny_registry, tiny_dataset,
                                                                      tmp_path):
    """``training.batch_gpu``: every phase runs its share in rounds of that many samples, each a forward and a
    backward of its own mean loss, the gradients summed before one optimizer step (StyleGAN2-ADA's loop). With
    per-sample losses the rounds see exactly the full batch's reals and latents, and the summed gradient is the
    number of rounds times the one-round gradient."""
    from gan3d.core.objective import Objective

    seen: dict[str, list] = {}

    class PerSample(Objective):  # no batch coupling: a round's mean loss is the mean of its samples' losses
        def generator_loss(self, G, D, inputs):
            seen.setdefault("G", []).append(inputs.z.clone())
            loss = G.mapping(inputs.z).square().mean()
            return {"g_w": loss.detach(), "loss": loss}

        def discriminator_loss(self, G, D, inputs):
            seen.setdefault("D", []).append((inputs.real_images.clone(), inputs.z.clone()))
            logits = self.discriminate(D, self.real_input(inputs), inputs).logits
            return {"d_real": torch.nn.functional.softplus(-logits).mean(),
                    "loss": torch.nn.functional.softplus(-logits).mean()}

    tiny_registry.add("loss", "per_sample", PerSample)

    def one_step(batch_gpu, name):
        seen.clear()
        recipe = tiny_recipe().override(f"training.batch_gpu={batch_gpu}")
        recipe.modules["loss"] = type(recipe.modules["loss"])("per_sample", {"r1_gamma": 1.0, "r1_interval": 1})
        trainer = Trainer(recipe, tiny_dataset, tmp_path / name, registry=tiny_registry, progress=False,
                          tensorboard=False)
        grads = {}
        step = trainer._optimizer_step

        def capture(opt, module, clip):
            grads["D" if opt is trainer.D_opt else "G"] = [p.grad.clone() for p in module.parameters()
                                                           if p.grad is not None]
            step(opt, module, clip)

        trainer._optimizer_step = capture
        logs = trainer.train_step()
        return grads, {k: list(v) for k, v in seen.items()}, logs

    whole, whole_seen, whole_logs = one_step("null", "whole")
    rounds, rounds_seen, rounds_logs = one_step(2, "rounds")
    assert [z.shape[0] for z in whole_seen["G"]] == [4]
    assert [z.shape[0] for z in rounds_seen["G"]] == [2, 2]
    assert [real.shape[0] for real, _ in rounds_seen["D"]] == [2, 2]
    torch.testing.assert_close(torch.cat(rounds_seen["G"]), whole_seen["G"][0])
    torch.testing.assert_close(torch.cat([real for real, _ in rounds_seen["D"]]), whole_seen["D"][0][0])
    torch.testing.assert_close(torch.cat([z for _, z in rounds_seen["D"]]), whole_seen["D"][0][1])
    for net in ("D", "G"):  # R1 (every step here) rides in the D step: per-sample too
        assert len(rounds[net]) == len(whole[net]) > 0
        for a, b in zip(rounds[net], whole[net]):
            torch.testing.assert_close(a, 2 * b, rtol=1e-5, atol=1e-7)
    # A rank's batch smaller than batch_gpu runs as one round.
    _, larger_seen, _ = one_step(8, "larger")
    assert [z.shape[0] for z in larger_seen["G"]] == [4]
    # The logged terms are the rounds' means: the whole batch's values.
    for key in ("G/loss", "D/loss", "d_real", "r1"):
        assert rounds_logs[key] == pytest.approx(whole_logs[key], rel=1e-5), key


def test_a_non_finite_round_skips_its_phase_step(tiny_recipe, tiny_registry, tiny_dataset, tmp_path):
    """With rounds, the first round's gradients are already accumulated when a later round turns out non-finite:
    the phase's optimizer step is skipped all the same (and the step counts as bad once)."""
    from gan3d.core.objective import Objective

    calls = []

    class SecondRoundNaN(Objective):
        def discriminator_loss(self, G, D, inputs):
            terms = super().discriminator_loss(G, D, inputs)
            calls.append(inputs.z.shape[0])
            if len(calls) == 2:
                terms["d_real"] = terms["d_real"] * float("nan")
            return terms

    tiny_registry.add("loss", "second_nan", SecondRoundNaN)
    recipe = tiny_recipe().overrides(["training.batch_gpu=2", "training.max_bad_steps=1"])
    recipe.modules["loss"] = type(recipe.modules["loss"])("second_nan", {"r1_gamma": 1.0, "r1_interval": 1})
    trainer = Trainer(recipe, tiny_dataset, tmp_path / "job", registry=tiny_registry, progress=False,
                      tensorboard=False)
    d0 = [p.clone() for p in trainer.D.parameters()]
    g0 = [p.clone() for p in trainer.G.parameters()]
    logs = trainer.train_step()
    assert calls == [2, 2] and trainer.bad_steps == 1
    assert all(torch.equal(a, b) for a, b in zip(d0, trainer.D.parameters()))
    assert not trainer.D_opt.state  # no D step (nor R1, which comes after the main rounds)
    assert any(not torch.equal(a, b) for a, b in zip(g0, trainer.G.parameters()))
    assert "r1" not in logs and logs["d_real"] != logs["d_real"]  # the failed round's terms are logged
