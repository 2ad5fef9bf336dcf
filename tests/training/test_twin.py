"""Twin-Merging: modularisation maths, per-row routing, router, persistence, job, solver."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.training.base import load_base_model
from engine.training.hypernet import load_experts
from engine.training.router import Router, RouterSettings, train_router
from engine.training.twin import (
    TwinModel,
    TwinSettings,
    build_twin_adapters,
    load_twin,
    load_twin_adapters,
    modularise,
)
from tests.training.conftest import make_random_adapters

K, R = 3, 4  # the tiny_experts fixture
FULL = R + K * R  # rank of dW_k - dW_shared is at most r + K*r


def _expert_deltas(base: str, experts: list[str]) -> tuple[dict[str, list[torch.Tensor]], dict]:
    """peft's dense s_k B_k A_k (fp32) of every expert in every LoRA layer, and that peft model."""
    from peft.tuners.lora import LoraLayer

    pm, names = load_experts(load_base_model(base, dtype=torch.float32), experts)
    dense = {
        n: [m.get_delta_weight(a).double() for a in names] for n, m in pm.named_modules() if isinstance(m, LoraLayer)
    }
    return dense, {"pm": pm, "names": names}


@pytest.fixture(scope="module")
def deltas(tiny_base, tiny_experts):
    return _expert_deltas(tiny_base, tiny_experts)


def _product(f: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    return f[0].double() @ f[1].double()


def test_shared_is_task_arithmetic_and_full_rank_exclusive_is_exact(deltas):
    dense, m = deltas
    parts, r_shared, r_ex = modularise(m["pm"], m["names"], TwinSettings(exclusive_rank=FULL))
    assert (r_shared, r_ex) == (K * R, FULL) and set(parts) == set(dense)
    for name, factors in parts.items():
        shared = 0.3 * sum(dense[name])
        torch.testing.assert_close(_product(factors[0]), shared, rtol=1e-4, atol=1e-7)
        for k in range(K):
            torch.testing.assert_close(_product(factors[1 + k]), dense[name][k] - shared, rtol=1e-4, atol=1e-7)


def test_truncated_exclusive_is_the_best_low_rank_approximation(deltas):
    """Default rank r: the residual is exactly the SVD tail (Eckart-Young), i.e. a truncated SVD."""
    dense, m = deltas
    parts, _, r_ex = modularise(m["pm"], m["names"], TwinSettings())
    assert r_ex == R
    for name, factors in parts.items():
        for k in range(K):
            v = dense[name][k] - _product(factors[0])
            tail = torch.linalg.svdvals(v)[R:]
            err = torch.linalg.matrix_norm(v - _product(factors[1 + k]))
            assert float(err) == pytest.approx(float(tail.norm()), rel=1e-4, abs=1e-7)
            assert factors[1 + k][0].shape[1] == R and factors[1 + k][1].shape[0] == R


def test_ties_shared_expert(deltas):
    from peft.utils.merge_utils import ties

    dense, m = deltas
    # shared rank = the layers' full rank (32): the stored shared expert is the TIES merge itself
    parts, r_shared, _ = modularise(
        m["pm"], m["names"], TwinSettings(shared="ties", shared_rank=32, exclusive_rank=R + 32)
    )
    name = next(n for n in parts if "q_proj" in n)
    merged = ties([d.float() for d in dense[name]], torch.ones(K), 0.5).double()
    torch.testing.assert_close(_product(parts[name][0]), merged, rtol=0, atol=1e-5)
    torch.testing.assert_close(_product(parts[name][1]), dense[name][0] - merged, rtol=0, atol=1e-5)
    with pytest.raises(Exception, match="shared expert merge"):
        TwinSettings(shared="dare")


def _twin_model(base: str, folder: Path, router: Router) -> TwinModel:
    pm, names = load_twin_adapters(load_base_model(base, dtype=torch.float32), folder, router.k)
    return TwinModel(pm, names, router).eval()


def _sharp_router(enc_dim: int = 8, seed: int = 0) -> Router:
    """An untrained router with large logits, so different inputs get clearly different routes."""
    torch.manual_seed(seed)
    router = Router(enc_dim, K, RouterSettings(hidden=16))
    with torch.no_grad():
        router.net[-1].weight.mul_(400.0)
    return router.eval()


@pytest.fixture(scope="module")
def full_twin(tiny_base, tiny_experts, tmp_path_factory):
    out = tmp_path_factory.mktemp("twin_full")
    build_twin_adapters(tiny_base, tiny_experts, out, TwinSettings(exclusive_rank=FULL))
    return out


def test_one_hot_route_is_shared_plus_exclusive_and_at_full_rank_the_expert(
    tiny_base, tiny_experts, deltas, full_twin, tmp_path
):
    dense, m = deltas
    model = _twin_model(tiny_base, full_twin, _sharp_router())
    assert model.ranks == [K * R] + [FULL] * K
    for k in range(K):
        gate = model.gate_for(torch.eye(K)[k : k + 1])[0]
        for name, layer in zip(model.layer_names, model.layers):
            torch.testing.assert_close(layer.delta_weight(gate).double(), dense[name][k], rtol=0, atol=1e-5)
    # at the default (truncated) rank the delta is dW_shared + v_k with v_k the stored rank-r part
    build_twin_adapters(tiny_base, tiny_experts, tmp_path, TwinSettings())
    small = _twin_model(tiny_base, tmp_path, _sharp_router())
    parts, _, _ = modularise(m["pm"], m["names"], TwinSettings())
    gate = small.gate_for(torch.eye(K)[1:2])[0]
    for name, layer in zip(small.layer_names, small.layers):
        want = _product(parts[name][0]) + _product(parts[name][2])
        torch.testing.assert_close(layer.delta_weight(gate).double(), want, rtol=0, atol=1e-5)


def test_mixed_batch_composes_each_row_with_its_own_route(tiny_base, full_twin):
    model = _twin_model(tiny_base, full_twin, _sharp_router())
    torch.manual_seed(1)
    emb = torch.randn(3, 8)
    routes = model.routing(emb).detach()
    assert float((routes[0] - routes[1]).abs().max()) > 0.3  # rows really are routed differently
    ids = torch.randint(3, 100, (3, 6))
    with torch.no_grad():
        batch = model(ids, emb).logits
        for i in range(3):
            torch.testing.assert_close(
                batch[i : i + 1], model(ids[i : i + 1], emb[i : i + 1]).logits, rtol=1e-4, atol=1e-5
            )
        gen = model.generate(ids, emb, max_new_tokens=4, do_sample=False, pad_token_id=0)
        for i in range(3):  # one input alone takes the folded path
            one = model.generate(ids[i : i + 1], emb[i : i + 1], max_new_tokens=4, do_sample=False, pad_token_id=0)
            assert torch.equal(gen[i : i + 1], one)


def test_router_learns_separable_clusters(tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(K, 16)) * 3
    labels = np.repeat(np.arange(K), 60)
    emb = torch.as_tensor(centres[labels] + rng.normal(size=(len(labels), 16)), dtype=torch.float32)
    router, result, metrics = train_router(emb, labels.tolist(), K, tmp_path / "ckpt")
    assert result.status == "done" and result.losses[-1] < result.losses[0]
    assert metrics["n_val"] == 36 and metrics["majority"] == pytest.approx(1 / 3)
    assert metrics["val_accuracy"] >= 0.9
    w = router.weights(emb[:5])
    torch.testing.assert_close(w.sum(-1), torch.ones(5))


def test_save_and_load_round_trip(tiny_base, tiny_experts, tmp_path):
    build_twin_adapters(tiny_base, tiny_experts, tmp_path, TwinSettings())
    model = _twin_model(tiny_base, tmp_path, _sharp_router())
    model.save(tmp_path, {"base": tiny_base, "encoder": "base"})
    loaded, _, cfg = load_twin(tmp_path, dtype=torch.float32)
    assert cfg["k"] == K and cfg["encoder"] == "base"
    emb, ids = torch.randn(2, 8), torch.randint(3, 100, (2, 5))
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids, emb).logits, model(ids, emb).logits, rtol=0, atol=0)


@pytest.fixture
def twin_artifacts(tmp_path, tiny_base):
    """Artefacts folder with two visibly different clusters, their labels and two experts."""
    rows, labels = [], []
    for i in range(10):
        rows.append(
            {
                "stage": "t2s",
                "input": f"Reverse the string number {i}.",
                "output": f"def f(s):\n    return s[::-{i % 2 + 1}]",
            }
        )
        rows.append(
            {"stage": "t2s", "input": f"Add {i} to a number and print it.", "output": f"print(int(input()) + {i})"}
        )
        labels += [0, 1]
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "art"
    (out / "experts").mkdir(parents=True)
    (out / "clusters.json").write_text(json.dumps({"k": 2, "labels": labels, "encoder": "base", "centroids": []}))
    make_random_adapters(tiny_base, out / "experts", k=2)
    return data, out


def test_train_twin_from_the_cli_then_eval_solver(twin_artifacts, tiny_base, bdc_home):
    from click.testing import CliRunner

    from engine.cli import cli
    from engine.evaluation.solvers import TwinSolver, make_solvers

    data, out = twin_artifacts
    db = bdc_home / "bdc.db"
    args = [
        "--db",
        str(db),
        "train",
        "twin",
        str(data),
        "--out",
        str(out),
        "--base",
        tiny_base,
        "--epochs",
        "4",
        "--batch-size",
        "4",
        "--shared",
        "ties",
        "--report-to",
        "tensorboard",
    ]
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "twin: done at step 16/16; router accuracy" in res.output
    twin = out / "twin"
    for f in (
        "twin.json",
        "router.safetensors",
        "shared/adapter_config.json",
        "exclusive_0/adapter_model.safetensors",
        "exclusive_1/adapter_config.json",
    ):
        assert (twin / f).is_file(), f
    assert list((twin / "logs" / "twin").glob("events.out.tfevents.*"))  # the router's loss/lr/accuracy
    cfg = json.loads((twin / "twin.json").read_text())
    assert cfg["twin"]["shared"] == "ties" and cfg["exclusive_rank"] == 4 and cfg["metrics"]["n_val"] == 4
    # run again: the build is reused and the finished router loop returns at once
    stamp = (twin / "shared" / "adapter_model.safetensors").stat().st_mtime_ns
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert res.exit_code == 0 and "done at step 16/16" in res.output
    assert (twin / "shared" / "adapter_model.safetensors").stat().st_mtime_ns == stamp

    solvers = make_solvers("twin", base=tiny_base, artifacts=out, max_new_tokens=3)
    assert len(solvers) == 1 and isinstance(solvers[0], TwinSolver) and solvers[0].name == "Twin-Merging"
    replies = solvers[0].generate(["Reverse the string number 3.", "Add 2 to a number and print it, please."])
    assert len(replies) == 2 and all(isinstance(r, str) for r in replies)


def test_eval_form_offers_twin_and_needs_artifacts():
    from bdc_tui.screens.new_eval import NEEDS_ARTIFACTS, SOLVERS, eval_config
    from engine.errors import BdcError

    assert ("twin", "Twin-Merging (artifacts/twin)") in SOLVERS and "twin" in NEEDS_ARTIFACTS
    kw = dict(
        adapters=[],
        datasets=["humaneval"],
        difficulty=None,
        limit=1,
        data_path=None,
        base=None,
        quant="none",
        max_new_tokens=8,
        batch_size=1,
    )
    with pytest.raises(BdcError, match="twin"):
        eval_config(solvers=["twin"], artifacts=None, **kw)
    assert eval_config(solvers=["twin"], artifacts="art", **kw)["solvers"] == ["twin"]
