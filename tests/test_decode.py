"""Our decode loop (eval/decode.py) against HF generate, and LoRA merged only while generating."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def llama(tiny_llama):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32).eval()


@pytest.fixture(scope="module")
def lora_llama(tiny_llama):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear"))
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:  # PEFT starts B at zero; give the adapter an effect to merge
                p.normal_(0, 0.2)
    return model.eval()


PROMPTS = [[5, 17, 230, 9], [44], [301, 12, 7, 7, 88, 1024, 3, 60, 61], [2, 3], [900, 800, 700, 600, 500], [13] * 20]


def _hf(model, prompt, n, stops):
    out = model.generate(
        input_ids=torch.tensor([prompt]),
        attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
        max_new_tokens=n,
        do_sample=False,
        eos_token_id=stops,
        pad_token_id=0,
    )
    ids = out[0, len(prompt) :].tolist()
    return [t for t in ids if t not in stops]


def _ours(model, prompts, n, stops, **kw):
    from tunesmith.eval.decode import decode

    out = [[] for _ in prompts]
    ends = []
    for i, t in decode(model, prompts, max_new_tokens=n, stop_ids=stops, **kw):
        if t is None:
            ends.append(i)
        else:
            out[i].append(t)
    assert sorted(ends) == list(range(len(prompts)))  # every answer ends exactly once
    return out


@pytest.mark.parametrize("batch_size", [1, 2, 4, 32])
def test_greedy_decode_equals_hf_generate_per_prompt(llama, batch_size):
    # a stop token the random model does produce, so rows finish at different steps and others take their place
    stops = [_hf(llama, PROMPTS[0], 6, [])[3]]
    expected = [_hf(llama, p, 12, stops) for p in PROMPTS]
    assert len({len(e) for e in expected}) > 1  # answers of different lengths: rows leave mid-batch
    assert _ours(llama, PROMPTS, 12, stops, batch_size=batch_size, prefill_tokens=8) == expected


def test_max_new_tokens_and_immediate_stop(llama):
    first = _hf(llama, PROMPTS[1], 1, [])[0]
    out = _ours(llama, PROMPTS[:3], 5, [first])
    assert out[1] == [] and all(len(o) <= 5 for o in out)
    assert len(_ours(llama, PROMPTS[:3], 5, [])[0]) == 5


def test_seeded_sampling_does_not_depend_on_batching(llama):
    kw = dict(temperature=1.0, top_p=0.9, seed=7)
    together = _ours(llama, PROMPTS, 10, [], batch_size=32, **kw)
    apart = _ours(llama, PROMPTS, 10, [], batch_size=1, **kw)
    assert together == apart
    assert _ours(llama, PROMPTS, 10, [], batch_size=32, temperature=1.0, seed=8) != together  # the seed matters
    assert together != _ours(llama, PROMPTS, 10, [])  # and it is not greedy


def test_merged_generates_the_same_and_restores_weights_exactly(lora_llama):
    from tunesmith.models.merged import merged

    before = {k: v.clone() for k, v in lora_llama.state_dict().items()}
    ids = torch.tensor([PROMPTS[2]])
    with torch.no_grad():
        unmerged_logits = lora_llama(input_ids=ids).logits
        wrappers = [m for m in lora_llama.modules() if hasattr(m, "lora_A")]
        with merged(lora_llama):
            merged_logits = lora_llama(input_ids=ids).logits
            assert all(m.merged for m in wrappers)
            assert not any(hasattr(m, "lora_A") for m in lora_llama.modules())  # plain layers stand in meanwhile
        assert [m for m in lora_llama.modules() if hasattr(m, "lora_A")] == wrappers  # and the wrappers are back
        with lora_llama.disable_adapter():
            base_logits = lora_llama(input_ids=ids).logits
    assert (merged_logits - unmerged_logits).abs().max() < 1e-4
    assert (unmerged_logits - base_logits).abs().max() > 0.1  # the adapter does change the answer
    after = lora_llama.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # bit for bit, not merely close
    assert not any(m.merged for m in lora_llama.modules() if hasattr(m, "lora_A"))


def test_merged_leaves_a_disabled_adapter_alone(lora_llama):
    from tunesmith.models.merged import merged

    with lora_llama.disable_adapter(), merged(lora_llama):
        assert not any(m.merged for m in lora_llama.modules() if hasattr(m, "lora_A"))


def test_generate_batch_and_stream_agree_with_hf_on_a_lora_model(lora_llama, tokenizer):
    from tunesmith.data.tokenize import render
    from tunesmith.eval.generate import _stop_ids, generate_batch, stream

    chats = [[{"role": "user", "content": q}] for q in ("hello", "what time is it?", "a longer question, with words")]
    answers = generate_batch(lora_llama, tokenizer, chats, max_new_tokens=10, batch_size=2)
    stops = _stop_ids(lora_llama, tokenizer)
    for chat, answer in zip(chats, answers):
        prompt = render(tokenizer, chat, add_generation_prompt=True)
        ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        assert answer == tokenizer.decode(_hf(lora_llama, ids, 10, stops), skip_special_tokens=True).strip()
        assert "".join(stream(lora_llama, tokenizer, chat, max_new_tokens=10)).strip() == answer


def test_ctrl_c_during_an_answer_drops_that_turn_and_keeps_chatting(monkeypatch, capsys):
    from types import SimpleNamespace

    from tunesmith.run import Run

    lines = iter(["first", "second", "/exit"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(lines))
    seen = []

    def say(history, **kw):
        seen.append([m["content"] for m in history])
        if len(seen) == 1:
            raise KeyboardInterrupt
        return "an answer"

    stub = SimpleNamespace(path="run", say=say, model=torch.nn.Linear(1, 1))
    stub._chat_loop = lambda *a: Run._chat_loop(stub, *a)
    Run.chat(stub)
    assert seen == [["first"], ["second"]]  # the stopped question is not sent again
    assert "answer stopped" in capsys.readouterr().err


def test_folded_switches_adapters_and_restores_the_exact_weights(tiny_llama):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from tunesmith.models.merged import Folded
    from tunesmith.serve.pool import AdapterRouting

    model = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear"), adapter_name="a")
    model.add_adapter("b", LoraConfig(r=4, target_modules="all-linear"))
    torch.manual_seed(2)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.2)
    model.eval()
    routing = AdapterRouting(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ids = torch.tensor([PROMPTS[2]])
    with torch.no_grad():
        routed = {}
        for name in ("a", "b"):
            with routing([name]):
                routed[name] = model(input_ids=ids).logits
        folded = Folded(model)
        for name in ("a", "b", "a"):  # switching folds the other adapter out first
            folded.fold(name)
            assert (model(input_ids=ids).logits - routed[name]).abs().max() < 1e-4
        folded.fold(None)
    assert (routed["a"] - routed["b"]).abs().max() > 0.1
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
