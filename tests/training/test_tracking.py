"""--report-to: loss, lr and eval metrics reach accelerate's trackers (TensorBoard here),
while the progress events the store keeps are unchanged."""

from __future__ import annotations

import pytest
import torch

from engine.errors import ConfigError
from engine.training.config import TrainSettings
from engine.training.loop import run_loop
from engine.training.tracking import check_report_to

pytest.importorskip("tensorboard")


def _scalars(logdir) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out: dict[str, list[tuple[int, float]]] = {}
    for events in logdir.rglob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events.parent))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            out.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
    return out


def test_loop_logs_loss_lr_and_eval_to_tensorboard(tmp_path):
    torch.manual_seed(0)
    x, y = torch.randn(16, 3), torch.randn(16, 1)
    model = torch.nn.Linear(3, 1)
    events: list[dict] = []
    evals = iter(range(100))
    res = run_loop(
        module=model,
        params=dict(model.named_parameters()),
        n_items=16,
        make_batch=lambda idx: {"x": x[idx], "y": y[idx], "attention_mask": torch.ones(len(idx), 1)},
        loss_fn=lambda b: torch.nn.functional.mse_loss(model(b["x"]), b["y"]),
        settings=TrainSettings(epochs=3, batch_size=8, lr=1e-2, report_to=("tensorboard",)),
        ckpt_dir=tmp_path / "adapter" / "checkpoint",
        progress=events.append,
        evaluate=lambda: {"val_accuracy": 0.5 + next(evals) / 10},
    )
    assert res.status == "done" and res.step == 6
    # what the store records is still every progress event, plus one eval event per epoch
    assert [e["step"] for e in events if e["event"] == "progress"] == [1, 2, 3, 4, 5, 6]
    assert [(e["step"], e["val_accuracy"]) for e in events if e["event"] == "eval"] == [(2, 0.5), (4, 0.6), (6, 0.7)]
    logged = _scalars(tmp_path / "adapter" / "logs")
    assert [s for s, _ in logged["train/loss"]] == [1, 2, 3, 4, 5, 6]
    assert [v for _, v in logged["train/loss"]] == pytest.approx(res.losses)
    assert [s for s, _ in logged["train/lr"]] == [1, 2, 3, 4, 5, 6]
    assert logged["eval/val_accuracy"] == [(2, 0.5), (4, pytest.approx(0.6)), (6, pytest.approx(0.7))]


def test_report_to_names_are_checked_in_one_line():
    assert check_report_to(["none"]) == [] and check_report_to(["TensorBoard"]) == ["tensorboard"]
    with pytest.raises(ConfigError, match="--report-to tensorbored: unknown tracker; choose from"):
        check_report_to(["tensorbored"])
    from accelerate.tracking import get_available_trackers

    absent = [
        n for n in ("aim", "clearml", "dvclive", "swanlab") if n not in {str(t) for t in get_available_trackers()}
    ]
    if absent:
        with pytest.raises(ConfigError, match=f"the {absent[0]} package is not installed"):
            check_report_to([absent[0]])


def test_eval_report_to_logs_pr_and_ac(tiny_base, tmp_path, bdc_home):
    from click.testing import CliRunner

    from engine.cli import cli

    logs = tmp_path / "logs"
    res = CliRunner().invoke(
        cli,
        [
            "--db",
            str(tmp_path / "bdc.db"),
            "eval",
            "--solver",
            "base",
            "--base",
            tiny_base,
            "--limit",
            "1",
            "--max-new-tokens",
            "2",
            "--report-to",
            "tensorboard",
            "--logging-dir",
            str(logs),
        ],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    logged = _scalars(logs)
    assert logged["eval/w/o tuning/humaneval/overall/pr"] == [(0, 0.0)]  # two random tokens pass nothing
    assert "eval/w/o tuning/humaneval/overall/ac" in logged
    bad = CliRunner().invoke(cli, ["--db", str(tmp_path / "bdc.db"), "eval", "--report-to", "tensorbored"])
    assert bad.exit_code != 0 and "unknown tracker" in str(bad.exception)  # before any job starts
