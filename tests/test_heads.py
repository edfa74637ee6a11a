"""The labelled-positions-only loss computes exactly what the model's own full-logits loss computes."""

from __future__ import annotations

import torch

from tunesmith.data.batch import collate
from tunesmith.data.formats import with_system
from tunesmith.data.tokenize import IGNORE, Encoded, encode_chat
from tunesmith.models.heads import CausalLMLoss


def test_matches_hf_loss_and_accuracy(tiny_llama, tokenizer):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32).eval()
    convs = [
        [{"role": "user", "content": f"question {i} " * (i + 1)}, {"role": "assistant", "content": f"answer {i}"}]
        for i in range(4)
    ]
    items = [Encoded(*encode_chat(tokenizer, c), line=i) for i, c in enumerate(convs)]
    batch = collate(items, tokenizer.pad_token_id)
    with torch.no_grad():
        loss_sum, n, correct = CausalLMLoss(model, chunk=3)(**batch)  # tiny chunks: the chunk loop is exercised
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    logits, target = out.logits[:, :-1], batch["labels"][:, 1:]
    keep = target != IGNORE
    ref = torch.nn.functional.cross_entropy(logits[keep], target[keep], reduction="sum")
    assert n == int(keep.sum()) and n > 10
    assert torch.allclose(loss_sum, ref, rtol=1e-5, atol=1e-4)
    assert int(correct) == int((logits[keep].argmax(-1) == target[keep]).sum())


def test_system_prompt_is_added_only_where_missing():
    conv = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert with_system(conv, None) is conv
    added = with_system(conv, "Be brief.")
    assert added[0] == {"role": "system", "content": "Be brief.", "weight": 0} and added[1:] == conv
    own = [{"role": "system", "content": "Mine."}, *conv]
    assert with_system(own, "Be brief.") == own
