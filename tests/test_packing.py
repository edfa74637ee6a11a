"""Padding-free packing and the fused head+loss compute exactly what the plain, padded path computes."""

from __future__ import annotations

import copy

import pytest
import torch

from tunesmith.data.batch import collate, collate_packed, real_tokens
from tunesmith.data.tokenize import IGNORE, Encoded, encode_chat
from tunesmith.models.attention import SEGMENTS, use_padding_free
from tunesmith.models.heads import CausalLMLoss, _LinearCrossEntropy


def _items(tokenizer, n=5):
    convs = [
        [
            {"role": "user", "content": f"question {i} " * (3 * i + 1)},
            {"role": "assistant", "content": f"answer number {i} " * (i + 1)},
        ]
        for i in range(n)
    ]
    return [Encoded(*encode_chat(tokenizer, c), line=i) for i, c in enumerate(convs)]


def _model(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


def test_packed_logits_equal_each_example_alone(tiny_llama, tokenizer):
    items = _items(tokenizer)
    model = _model(tiny_llama)
    with torch.no_grad():
        alone = [model(input_ids=torch.tensor([x.input_ids])).logits[0] for x in items]
        assert use_padding_free(model) == SEGMENTS
        batch = collate_packed(items)
        packed = model(
            input_ids=batch["input_ids"], position_ids=batch["position_ids"], cu_seq_lens_q=batch["cu_seq_lens_q"]
        ).logits[0]
    bounds = batch["cu_seq_lens_q"].tolist()
    assert batch["input_ids"].shape == (1, sum(len(x.input_ids) for x in items)) == (1, bounds[-1])
    assert real_tokens(batch) == bounds[-1]
    for x, ref, a, b in zip(items, alone, bounds[:-1], bounds[1:]):
        assert (b - a) == len(x.input_ids)
        assert torch.allclose(packed[a:b], ref, atol=1e-5, rtol=0), (packed[a:b] - ref).abs().max()
    # without the segment boundaries examples would see each other: the check above can fail
    with torch.no_grad():
        leaky = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits[0]
    a, b = bounds[1], bounds[2]
    assert not torch.allclose(leaky[a:b], alone[1], atol=1e-3)


def test_packed_loss_and_grads_equal_padded(tiny_llama, tokenizer):
    from peft import LoraConfig, get_peft_model

    items = _items(tokenizer)
    torch.manual_seed(0)
    lora = get_peft_model(
        _model(tiny_llama), LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
    )
    other = copy.deepcopy(lora)
    padded = collate(items, tokenizer.pad_token_id)
    loss_a, n_a, c_a = CausalLMLoss(lora, chunk=7)(**padded)
    use_padding_free(other)
    loss_b, n_b, c_b = CausalLMLoss(other, chunk=7)(**collate_packed(items))
    assert n_a == n_b == sum(sum(1 for y in x.labels[1:] if y != IGNORE) for x in items)
    assert int(c_a) == int(c_b)
    assert torch.allclose(loss_a / n_a, loss_b / n_b, atol=1e-5, rtol=0)
    loss_a.backward()
    loss_b.backward()
    grads = [(p.grad, q.grad) for p, q in zip(lora.parameters(), other.parameters()) if p.requires_grad]
    assert len(grads) > 10
    for ga, gb in grads:
        # Relative to the tensor's scale: gradients reach ~30 here, and the two layouts sum in another order
        # (fp32 noise ~1e-6 of the scale; with transformers 5.24 one element differed by 4.6e-5 absolute).
        # A leak between examples moves gradients by far more (see the leak check above).
        scale = gb.abs().max().clamp(min=1.0)
        assert (ga - gb).abs().max() <= 1e-5 * scale, ((ga - gb).abs().max(), scale)


@pytest.mark.parametrize("weight_grad", [False, True])
def test_fused_cross_entropy_matches_autograd(weight_grad):
    torch.manual_seed(0)
    h = torch.randn(37, 16, requires_grad=True)
    w = torch.randn(50, 16, requires_grad=weight_grad)
    y = torch.randint(0, 50, (37,))
    loss, correct = _LinearCrossEntropy.apply(h, w, y, 8)
    (loss * 0.5).backward()
    h2, w2 = h.detach().clone().requires_grad_(), w.detach().clone().requires_grad_(weight_grad)
    logits = h2 @ w2.t()
    ref = torch.nn.functional.cross_entropy(logits, y, reduction="sum")
    (ref * 0.5).backward()
    assert torch.allclose(loss, ref, atol=1e-4) and int(correct) == int((logits.argmax(-1) == y).sum())
    assert torch.allclose(h.grad, h2.grad, atol=1e-6)
    if weight_grad:
        assert torch.allclose(w.grad, w2.grad, atol=1e-5)


def _losses(run):
    import json

    rows = [json.loads(x) for x in (run.path / "metrics.jsonl").read_text().splitlines()]
    return [r["train_loss"] for r in rows if "train_loss" in r], [r["eval_loss"] for r in rows if "eval_loss" in r]


def test_training_curves_match_across_speed_settings(tiny_llama, tmp_path):
    """Padding-free, padded and gradient-checkpointed runs see the same batches and compute the same thing:
    their loss curves agree to float noise while the weights move (the loss falls)."""
    from conftest import qa_rows, write_jsonl

    import tunesmith

    data = write_jsonl(tmp_path / "train.jsonl", qa_rows(40))
    curves = {}
    for name, extra in {
        "packed": {},
        "padded": {"padding_free": False},
        "ckpt": {"gradient_checkpointing": True},
    }.items():
        run = tunesmith.train(
            dict(
                model=str(tiny_llama),
                data=str(data),
                output=str(tmp_path / name),
                max_steps=12,
                lr=1e-2,
                batch_size=4,
                eval_every=6,
                seed=3,
                tensorboard=False,
                **extra,
            )
        )
        curves[name] = _losses(run)
    train, evals = curves["packed"]
    assert train[-1] < train[0] - 0.5 and evals[-1] < evals[0]
    for other in ("padded", "ckpt"):
        t2, e2 = curves[other]
        assert max(abs(a - b) for a, b in zip(train, t2)) < 1e-3, (other, train, t2)
        assert max(abs(a - b) for a, b in zip(evals, e2)) < 1e-3, (other, evals, e2)
