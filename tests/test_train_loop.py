"""The training loop in one process: schedule, atomic checkpoints, exact resume, BN modes, the final evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from edgevc.errors import EdgevcError
from edgevc.train import load_recipe, train
from edgevc.train.checkpoint import CHECKPOINT, atomic_save
from edgevc.train.distributed import state_sha256
from edgevc.train.optim import Schedule
from edgevc.train.progress import Progress

TINY = Path(__file__).resolve().parents[1] / "recipes" / "tiny_ci.yaml"


def tiny(*overrides: str):
    return load_recipe(TINY, list(overrides))


def test_schedule_warms_up_then_follows_the_cosine_of_the_worked_example():
    s = Schedule(100, 10, 0.01)
    assert s.factor(0) == pytest.approx(0.1) and s.factor(9) == pytest.approx(0.980, abs=1e-3)
    assert s.factor(50) == pytest.approx(0.505) and s.factor(99) == pytest.approx(0.0103, abs=1e-4)
    assert all(s.factor(k) >= s.factor(k + 1) for k in range(9, 100))
    assert Schedule(5, 0, 0.0).factor(0) == pytest.approx(1.0)


def test_a_time_budget_drives_the_cosine_and_ends_it():
    s = Schedule(1000, 0, 0.0, budget_s=60.0)
    assert s.progress(10, elapsed=30.0) == pytest.approx(0.5)  # time is ahead of the steps
    assert s.progress(900, elapsed=30.0) == pytest.approx(0.9)  # steps are ahead of time
    assert s.factor(10, elapsed=30.0) == pytest.approx(0.5) and s.progress(10, elapsed=61.0) == 1.0


def test_atomic_save_keeps_the_old_file_when_writing_fails(tmp_path):
    path = atomic_save({"epoch": 1}, tmp_path / "ck.pt")
    with pytest.raises(Exception):  # noqa: B017 - whatever pickling raises
        atomic_save({"bad": lambda: 0}, path)
    assert torch.load(path, weights_only=True) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]


def test_a_tiny_run_writes_weights_checkpoint_and_a_video_level_result(tmp_path):
    result = train(tiny(), out=tmp_path, show_progress=False)
    assert {p.name for p in tmp_path.iterdir()} >= {"checkpoint.pt", "model.pt", "labels.txt", "train.json"}
    saved = json.loads((tmp_path / "train.json").read_text())
    assert saved["final"]["videos"] == 8 and saved["final"]["clips"] == 16 and saved["final"]["clips_per_video"] == 2
    assert sum(map(sum, saved["final"]["confusion"])) == 8 and len(saved["history"]) == 2
    assert [h["steps"] for h in saved["history"]] == [4, 4] and saved["world_size"] == 1
    assert saved["wall_seconds"] >= saved["train_seconds"] + saved["eval_seconds"]  # the whole run, set-up included
    assert saved["labels"] == (tmp_path / "labels.txt").read_text().split()
    assert saved["rank_weights_sha256"] == [result.weights_sha256]
    from edgevc.models import create

    model = create("x3d_xs", pretrained=tmp_path / "model.pt", num_classes=8)
    assert state_sha256(model) == result.weights_sha256
    ckpt = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert ckpt["epoch"] == 2 and ckpt["step"] == 8 and ckpt["recipe"]["model"]["name"] == "x3d_xs"


def test_resume_repeats_the_uninterrupted_run_exactly(tmp_path):
    straight = train(tiny(), out=tmp_path / "a", show_progress=False)
    _run_epochs(tiny(), tmp_path / "b", stop_after=1)  # "crashes" after the checkpoint of epoch 1
    assert torch.load(tmp_path / "b" / CHECKPOINT, weights_only=True)["epoch"] == 1
    resumed = train(tiny(), out=tmp_path / "b", resume=True, show_progress=False)
    assert resumed.weights_sha256 == straight.weights_sha256
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in straight.history]


def _run_epochs(recipe, out: Path, stop_after: int) -> None:
    """Train, but crash (KeyboardInterrupt) right after the checkpoint of epoch ``stop_after``."""
    import edgevc.train.loop as loop

    real = loop.save_checkpoint

    def save_then_stop(*args, **kw):
        real(*args, **kw)
        if kw["epoch"] == stop_after:
            raise KeyboardInterrupt

    loop.save_checkpoint = save_then_stop
    try:
        with pytest.raises(KeyboardInterrupt):
            train(recipe, out=out, show_progress=False)
    finally:
        loop.save_checkpoint = real


def test_resume_refuses_a_checkpoint_of_another_model(tmp_path):
    _run_epochs(tiny(), tmp_path, stop_after=1)
    with pytest.raises(EdgevcError, match="trained as model 'x3d_xs'"):
        train(tiny("model.name=movinet_a0"), out=tmp_path, resume=True, show_progress=False)
    with pytest.raises(EdgevcError, match="no checkpoint"):
        train(tiny(), out=tmp_path / "empty", resume=True, show_progress=False)


def test_resume_refuses_a_truncated_checkpoint_with_a_message(tmp_path):
    """(A checkpoint carrying code: tests/test_reliability_artifacts.py.)"""
    from edgevc.train.checkpoint import load_checkpoint

    (tmp_path / "cut").mkdir()
    good = tmp_path / "good.pt"
    torch.save({"model": {"w": torch.zeros(1000)}}, good)
    (tmp_path / "cut" / CHECKPOINT).write_bytes(good.read_bytes()[:500])
    with pytest.raises(EdgevcError, match="cannot load"):
        load_checkpoint(tmp_path / "cut", "x3d_xs", ("a", "b"))


def test_training_stops_when_the_budget_is_spent_and_still_evaluates(tmp_path):
    result = train(tiny("train.budget_minutes=0.0001"), out=tmp_path, show_progress=False)
    assert len(result.history) == 1 and result.history[0]["stopped"] and result.history[0]["steps"] == 1
    assert result.final["videos"] == 8 and (tmp_path / "model.pt").is_file()


def test_zero_init_residual_starts_every_x3d_block_as_the_identity():
    from edgevc.models import create
    from edgevc.train.optim import zero_init_residual

    model = create("x3d_xs", num_classes=8)
    assert zero_init_residual(model) == 26
    assert all(not b.branch2.norm_c.weight.detach().any() for s in model.blocks[1:5] for b in s.res_blocks)
    with pytest.raises(EdgevcError, match="would erase the pretrained weights"):
        tiny("model.pretrained=true", "model.zero_init_residual=true")


def test_frozen_bn_keeps_the_running_statistics(tmp_path):
    train(tiny("train.bn=frozen", "train.epochs=1"), out=tmp_path, show_progress=False)
    state = torch.load(tmp_path / "model.pt", weights_only=True)
    means = [v for k, v in state.items() if k.endswith("running_mean")]
    assert means and all(torch.equal(m, torch.zeros_like(m)) for m in means)
    train(tiny("train.epochs=1"), out=tmp_path / "batch", show_progress=False)
    moved = torch.load(tmp_path / "batch" / "model.pt", weights_only=True)
    assert any(not torch.equal(v, torch.zeros_like(v)) for k, v in moved.items() if k.endswith("running_mean"))


def test_sync_bn_on_cpu_and_a_batch_larger_than_the_data_are_clear_errors(tmp_path):
    with pytest.raises(EdgevcError, match="sync needs GPUs"):
        train(tiny("train.bn=sync"), out=tmp_path, show_progress=False)
    with pytest.raises(EdgevcError, match="less than one batch"):
        train(tiny("train.batch_size=32"), out=tmp_path, show_progress=False)


def test_plain_progress_lines_show_loss_and_accuracy(capsys):
    import sys

    bar = Progress(4, "epoch 1/1", every=2, stream=sys.stdout)
    for i in range(4):
        bar.update(1, loss=2.0 - i * 0.1, acc=0.25)
    bar.close()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[-1].startswith("epoch 1/1 4/4 loss=1.7 acc=0.25")


def test_progressive_sizes_train_small_crops_first_and_end_on_the_recipes_crop(tmp_path, monkeypatch):
    """train.sizes (multigrid's long cycle): the clips of each epoch have the side the schedule gives."""
    from edgevc.train import loop

    seen: list[tuple[int, ...]] = []
    real = loop.ClipDataset.__getitem__

    def spy(self, i):
        x, y = real(self, i)
        if self.train:
            seen.append(tuple(x.shape[-2:]))
        return x, y

    monkeypatch.setattr(loop.ClipDataset, "__getitem__", spy)
    recipe = tiny("train.sizes=[[16, 0.5], [32, 0.5]]")
    assert recipe.crop_at(0.2).crop == (16, 16) and recipe.crop_at(0.2).resize_short == 16
    assert recipe.crop_at(0.5) == recipe.crop_at(0.99) == recipe.preproc
    result = train(recipe, out=tmp_path, show_progress=False)
    assert [h["crop"] for h in result.history] == [16, 32]
    assert seen == [(16, 16)] * 16 + [(32, 32)] * 16  # 4 steps x 4 clips per epoch
    assert result.final["clips_per_video"] == 2  # the evaluation is at the recipe's crop


@pytest.mark.parametrize("sizes,match", [("[[16, 0.5], [24, 0.5]]", "the last side is 24, the crop is"),
                                         ("[[16, 0.4], [32, 0.4]]", "shares sum to 0.8"),
                                         ("[[16]]", "sides 16..4096")])
def test_progressive_sizes_are_validated_with_the_field(sizes, match):
    from edgevc.errors import EdgevcError

    with pytest.raises(EdgevcError, match=match) as err:
        tiny(f"train.sizes={sizes}")
    assert "train.sizes" in err.value.message


def test_channels_last_feeds_the_model_channels_last_3d_clips_and_weights(tmp_path, monkeypatch):
    import edgevc.models as models  # the loop builds its model through edgevc.models.create

    seen: list[tuple[bool, bool]] = []

    build = models.create

    def spy_create(*a, **kw):
        model = build(*a, **kw)
        conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv3d))

        def hook(_mod, args):
            seen.append((args[0].is_contiguous(memory_format=torch.channels_last_3d),
                         conv.weight.is_contiguous(memory_format=torch.channels_last_3d)))
        conv.register_forward_pre_hook(hook)
        return model

    monkeypatch.setattr(models, "create", spy_create)
    train(tiny("train.channels_last=true", "train.epochs=1"), out=tmp_path, show_progress=False)
    assert seen[:4] == [(True, True)] * 4  # the 4 training steps; evaluation follows
