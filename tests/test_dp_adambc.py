"""DP-AdamBC (train.optimizer = dp-adambc): Adam's arithmetic without noise, the noise variance taken out under DP."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from client.branch_data import prepare_branch
from client.dp_adambc import DPAdamBC
from client.training import local_optimizer, round_plan, train_round
from common.config.run import RunConfig, branch_settings
from common.errors import ConfigError
from common.model.adapter import adapter_arrays
from common.model.build import build_peft_model, load_tokenizer


def test_without_noise_it_is_adam():
    """phi = 0: the same trajectory as torch's Adam (whose eps sits outside the root; negligible here)."""
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(50))
    b = torch.nn.Parameter(a.detach().clone())
    ours, ref = DPAdamBC([a], lr=0.01, noise_variance=0.0, gamma=1e-30), torch.optim.Adam([b], lr=0.01, eps=1e-15)
    for _ in range(20):
        g = torch.randn(50)
        a.grad, b.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_the_second_moment_loses_the_noise_variance():
    """Gradients = small signal + DP noise of known variance: plain Adam's second moment is the noise's, so it
    steps like SGD (in proportion to the signal); DP-AdamBC's is the signal's, so each coordinate is normalized."""
    torch.manual_seed(1)
    signal = torch.linspace(0.02, 0.2, 100)
    phi = 0.25 ** 2
    a = torch.nn.Parameter(torch.zeros(100))
    b = torch.nn.Parameter(torch.zeros(100))
    ours, plain = DPAdamBC([a], lr=1e-3, noise_variance=phi, betas=(0.9, 0.999)), DPAdamBC([b], lr=1e-3, noise_variance=0.0)
    for _ in range(3000):
        g = signal + 0.25 * torch.randn(100)
        a.grad, b.grad = g.clone(), g.clone()
        ours.step()
        plain.step()
    v_ours = ours.state[a]["v"] / (1 - 0.999 ** 3000) - phi
    assert float((v_ours - signal ** 2).abs().mean()) < 0.01  # the signal's second moment, noise removed
    assert float((plain.state[b]["v"] / (1 - 0.999 ** 3000) - phi - signal ** 2).abs().mean()) < 0.01
    ratio_ours = float(a[-10:].detach().mean() / a[:10].detach().mean())
    ratio_plain = float(b[-10:].detach().mean() / b[:10].detach().mean())
    assert ratio_plain > 4  # noise-dominated plain Adam is SGD: steps in proportion to the signal (10x here)
    assert ratio_ours < 1  # corrected: weak coordinates are no longer held back (here, with gamma 1e-8, pushed harder)


def test_local_optimizer_derives_the_noise_variance_from_the_round_plan():
    cfg = RunConfig.from_flower({"train.optimizer": "dp-adambc", "dp.max-grad-norm": 0.5, "train.learning-rate": 1e-3})
    plan = round_plan(cfg, 400, noise_multiplier=1.2)
    opt = local_optimizer([torch.nn.Parameter(torch.zeros(3))], cfg, plan, 400)
    expected_batch = plan.sample_rate * 400
    assert opt.param_groups[0]["noise_variance"] == pytest.approx((1.2 * 0.5 / expected_batch) ** 2)
    no_dp = RunConfig.from_flower({"train.optimizer": "dp-adambc", "dp.enabled": False})
    assert local_optimizer([torch.nn.Parameter(torch.zeros(3))], no_dp, plan, 400).param_groups[0]["noise_variance"] == 0.0


def test_a_dp_round_with_dp_adambc_moves_the_adapter():
    """Opacus's DP optimizer wraps DP-AdamBC: the trainable parameters move after a DP round."""
    cfg = RunConfig.from_flower({"num-branches": 1, "model.max-length": 32, "data.records-per-branch": 48,
                                 "train.batch-size": 16, "train.optimizer": "dp-adambc", "train.learning-rate": 1e-3})
    tok = load_tokenizer(cfg.model)
    data = prepare_branch(cfg, branch_settings({"partition-id": 0, "num-partitions": 1}, cfg), tok)
    model = build_peft_model(cfg.model, len(data.labels), vocab_size=len(tok))
    before = adapter_arrays(model)
    outcome = train_round(model, data.train, cfg, round_plan(cfg, len(data.train), 1.0), [], seed=0)
    assert outcome.steps >= 1 and outcome.noise_multiplier == 1.0
    assert all(not np.array_equal(outcome.arrays[k], before[k]) for k in before)


def test_bad_gamma_is_a_one_line_error():
    with pytest.raises(ConfigError, match="train.adambc-gamma"):
        RunConfig.from_flower({"train.optimizer": "dp-adambc", "train.adambc-gamma": 0})


def test_the_floor_follows_the_noise_variance():
    """train.adambc-floor: the second moment's floor is a fraction of the round's phi (and never below gamma)."""
    cfg = RunConfig.from_flower({"train.optimizer": "dp-adambc", "dp.max-grad-norm": 1.0, "train.adambc-floor": 0.1})
    plan = round_plan(cfg, 400, noise_multiplier=1.5)
    opt = local_optimizer([torch.nn.Parameter(torch.zeros(3))], cfg, plan, 400)
    phi = opt.param_groups[0]["noise_variance"]
    assert phi > 0 and opt.param_groups[0]["gamma"] == pytest.approx(0.1 * phi)
    off = RunConfig.from_flower({"train.optimizer": "dp-adambc", "dp.max-grad-norm": 1.0})
    assert local_optimizer([torch.nn.Parameter(torch.zeros(3))], off, plan, 400).param_groups[0]["gamma"] == 1e-8
    # A pure-noise coordinate (signal 0): its first step is capped at lr x |g| / sqrt(0.1 phi), not lr x |g| / 1e-4.
    p = torch.nn.Parameter(torch.zeros(1000))
    opt = local_optimizer([p], cfg, plan, 400)
    torch.manual_seed(0)
    p.grad = phi ** 0.5 * torch.randn(1000)
    opt.step()
    assert float(p.detach().abs().max()) <= cfg.train.learning_rate * float(p.grad.abs().max()) / (0.1 * phi) ** 0.5 * 1.0001


def test_bad_floor_is_a_one_line_error():
    with pytest.raises(ConfigError, match="train.adambc-floor"):
        RunConfig.from_flower({"train.optimizer": "dp-adambc", "train.adambc-floor": -0.5})
