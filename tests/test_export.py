"""`tunesmith export`: adapter, merged model and GGUF, each loaded back with plain transformers / peft / gguf.

The tiny models are trained a few steps at a high learning rate so the LoRA deltas are far from zero (LoRA's B
starts at zero: an untrained adapter would make every comparison below pass vacuously); each test checks that
the exported model's logits differ from the base model's before checking they match the run's.
"""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
import torch
from conftest import qa_rows, sentiment_rows, write_csv, write_jsonl

import tunesmith
from tunesmith.export import export
from tunesmith.export.to_gguf import encode_tensor, gguf_file_name, rounded_copy

CHATS = [
    [{"role": "user", "content": "code 3?"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 12 + 30?"}],
    [
        {"role": "user", "content": "code 5?"},
        {"role": "assistant", "content": "The code is maple."},
        {"role": "user", "content": "And code 6? Tell me in detail, with examples: ü, é, 😀."},
    ],
]

# A GGUF holds the merged weights rounded to its type, nothing else. So the logits transformers computes from
# it must match, within float noise (1e-4), the merged model with its weights rounded the same way in PyTorch
# (`to_gguf.rounded_copy`); that is the exact check. Against the unrounded merged model the bound is the rounding's own
# effect, measured on this tiny random model (initializer_range 0.3, logits up to ~17, which magnifies it):
# f32 0, f16 0.06, q8_0 1.5 max |diff|; bounds ~2-3x that. On the real smollm2-135m the same rounding moved
# logits by about as much (docs/export.md: f16 0.055, q8_0 1.54 max |diff|), with the same next tokens.
GGUF_TOL = {"f32": 1e-4, "f16": 0.2, "q8_0": 4.0}
TOP1 = {"f32": 1.0, "f16": 1.0, "q8_0": 0.8}  # least share of positions whose top-1 token must agree


def _ids(tok, chat):
    return tok.apply_chat_template(chat, add_generation_prompt=True, return_dict=False)


def _logits(model, tok):
    with torch.no_grad():
        return [model(torch.tensor([_ids(tok, c)])).logits[0].float() for c in CHATS]


def _max_diff(a, b):
    return max((x - y).abs().max().item() for x, y in zip(a, b))


def _train_lora(model_dir, d):
    train = write_jsonl(d / "train.jsonl", qa_rows(32))
    run = tunesmith.train(
        dict(
            model=str(model_dir),
            data=str(train),
            output=str(d / "run"),
            method="lora",
            max_steps=8,
            lr=3e-2,
            warmup_ratio=0,
            eval_every=8,
            batch_size=8,
            max_seq_len=64,
            seed=0,
            tensorboard=False,
            lora={"r": 8, "alpha": 16},
            select_by="loss",
        )
    )
    assert run.summary["best_step"] == 8  # the trained weights were kept, not step 0's (B = 0)
    return run


@pytest.fixture(scope="module")
def lora_run(tiny_llama, tmp_path_factory):
    return _train_lora(tiny_llama, tmp_path_factory.mktemp("export-lora"))


@pytest.fixture(scope="module")
def reference(lora_run, tiny_llama):
    """Logits of the run's own (adapter) model and of the untouched base, on the same prompts."""
    from transformers import AutoModelForCausalLM

    tok = lora_run.tokenizer
    tuned = _logits(lora_run.model, tok)
    base = _logits(AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32).eval(), tok)
    assert _max_diff(tuned, base) > 1.0  # the adapter moved the logits: the comparisons below mean something
    return {"tuned": tuned, "base": base}


def test_adapter_export_loads_with_plain_peft(lora_run, reference, tiny_llama, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = export(lora_run, tmp_path / "adapter")
    names = {p.name for p in out.iterdir()}
    assert {
        "adapter_model.safetensors",
        "adapter_config.json",
        "tokenizer.json",
        "chat_template.jinja",
        "README.md",
    } <= names and "model.safetensors" not in names
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["base_model_name_or_path"] == str(tiny_llama.resolve())
    assert "PeftModel.from_pretrained" in (out / "README.md").read_text()
    base = AutoModelForCausalLM.from_pretrained(cfg["base_model_name_or_path"], dtype=torch.float32)
    model = PeftModel.from_pretrained(base, out).eval()
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.chat_template == lora_run.tokenizer.chat_template
    assert _max_diff(_logits(model, tok), reference["tuned"]) <= 1e-5


def test_merged_export_is_a_plain_transformers_model(lora_run, reference, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = export(lora_run, tmp_path / "merged", merge=True)
    names = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "chat_template.jinja", "README.md"} <= names
    assert "adapter_config.json" not in names
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    tok = AutoTokenizer.from_pretrained(out)
    merged = _logits(model, tok)
    assert _max_diff(merged, reference["tuned"]) <= 1e-4
    assert _max_diff(merged, reference["base"]) > 1.0
    # Merging worked on a fresh copy: the run's own adapter model is untouched.
    assert _max_diff(_logits(lora_run.model, lora_run.tokenizer), reference["tuned"]) == 0


# --- GGUF ---------------------------------------------------------------------------------------------------
# gguf.GGUFReader (which transformers' GGUF loader runs twice per model) parses each vocabulary entry in Python:
# ~5 s for SmolLM2's 49,152 tokens and 48,900 merges. The round trips therefore use tiny_llama's shape with
# SmolLM2's tokenizer cut to its first 1,024 tokens; the full vocabulary is checked on its own below, without
# a model, and on the real smollm2-135m in docs/export.md's figures.
SMALL_VOCAB = 1024


@pytest.fixture(scope="module")
def small_llama(tmp_path_factory, smol_dir, tokenizer):
    """SmolLM2's tokenizer trimmed to ids < 1024 (special tokens, every byte, the merges that build the rest;
    same chat template), and a 2-layer Llama over that vocabulary."""
    from tokenizers import Tokenizer
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tj = json.loads((smol_dir / "tokenizer.json").read_text())
    vocab = {t: i for t, i in tj["model"]["vocab"].items() if i < SMALL_VOCAB}
    pairs = [m.split(" ") if isinstance(m, str) else m for m in tj["model"]["merges"]]
    tj["model"]["vocab"] = vocab
    tj["model"]["merges"] = [m for m in pairs if m[0] in vocab and m[1] in vocab and m[0] + m[1] in vocab]
    small = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(json.dumps(tj)),
        bos_token=tokenizer.bos_token,
        eos_token=tokenizer.eos_token,
        unk_token=tokenizer.unk_token,
        pad_token=tokenizer.pad_token,
    )
    small.chat_template = tokenizer.chat_template
    assert len(small) == SMALL_VOCAB
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=SMALL_VOCAB,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        initializer_range=0.3,
        tie_word_embeddings=True,
        bos_token_id=small.bos_token_id,
        eos_token_id=small.eos_token_id,
        pad_token_id=small.pad_token_id,
    )
    out = tmp_path_factory.mktemp("small-llama")
    LlamaForCausalLM(cfg).save_pretrained(out)
    small.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def gguf_run(small_llama, tmp_path_factory):
    """A trained LoRA run on the small-vocabulary Llama, its merged model, and reference logits."""
    from transformers import AutoModelForCausalLM

    from tunesmith.export.hf import merged_model

    run = _train_lora(small_llama, tmp_path_factory.mktemp("export-gguf"))
    merged = merged_model(run)
    base = AutoModelForCausalLM.from_pretrained(small_llama, dtype=torch.float32).eval()
    return {
        "run": run,
        "merged": merged,
        "merged_logits": _logits(merged, run.tokenizer),
        "base_logits": _logits(base, run.tokenizer),
    }


@pytest.mark.parametrize("kind", ["f32", "f16", "q8_0"])
def test_gguf_round_trip(kind, gguf_run, tmp_path):
    import gguf
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run = gguf_run["run"]
    out = export(run, tmp_path / kind, gguf=kind)
    path = out / gguf_file_name(kind)
    assert {p.name for p in out.iterdir()} == {path.name, "README.md"}

    reader = gguf.GGUFReader(path)
    field = lambda k: reader.fields[k].contents()  # noqa: E731
    cfg, tok = gguf_run["merged"].config, run.tokenizer
    assert field("general.architecture") == "llama"
    assert field("general.file_type") == {"f32": 0, "f16": 1, "q8_0": 7}[kind]
    for key, want in {
        "context_length": 512,
        "embedding_length": 64,
        "block_count": 2,
        "feed_forward_length": 128,
        "rope.dimension_count": 16,
        "attention.head_count": 4,
        "attention.head_count_kv": 2,
        "vocab_size": SMALL_VOCAB,
    }.items():
        assert field(f"llama.{key}") == want, key
    assert field("llama.attention.layer_norm_rms_epsilon") == pytest.approx(cfg.rms_norm_eps)
    assert field("llama.rope.freq_base") == pytest.approx(cfg.rope_parameters["rope_theta"])
    assert field("tokenizer.ggml.model") == "gpt2" and field("tokenizer.ggml.pre") == "gpt-2"
    assert field("tokenizer.chat_template") == tok.chat_template
    assert (
        field("tokenizer.ggml.bos_token_id"),
        field("tokenizer.ggml.eos_token_id"),
        field("tokenizer.ggml.padding_token_id"),
    ) == (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id)
    assert field("tokenizer.ggml.add_bos_token") is False
    assert field("tokenizer.ggml.tokens") == tok.convert_ids_to_tokens(list(range(SMALL_VOCAB)))
    assert field("tokenizer.ggml.token_type")[tok.eos_token_id] == gguf.TokenType.CONTROL
    assert field("tokenizer.ggml.token_type")[500] == gguf.TokenType.NORMAL

    # 2 layers x 9 tensors + token_embd + output_norm; no output.weight: the embeddings are tied.
    by_name = {t.name: t.tensor_type.name for t in reader.tensors}
    assert len(by_name) == 20 and "output.weight" not in by_name
    assert all(t == "F32" for n, t in by_name.items() if "norm" in n)
    matrix = {"f32": "F32", "f16": "F16", "q8_0": "Q8_0"}[kind]  # every tiny row length is a multiple of 32
    assert all(t == matrix for n, t in by_name.items() if "norm" not in n)

    model = AutoModelForCausalLM.from_pretrained(out, gguf_file=path.name, dtype=torch.float32).eval()
    got = _logits(model, tok)
    assert _max_diff(got, _logits(rounded_copy(gguf_run["merged"], kind), tok)) <= 1e-4
    diff = _max_diff(got, gguf_run["merged_logits"])
    assert diff <= GGUF_TOL[kind], f"{kind}: max |logit diff| {diff:.3g}"
    assert _max_diff(got, gguf_run["base_logits"]) > 1.0  # and not the base model's
    agree = [(g.argmax(-1) == m.argmax(-1)).float().mean().item() for g, m in zip(got, gguf_run["merged_logits"])]
    assert min(agree) >= TOP1[kind], agree

    gtok = AutoTokenizer.from_pretrained(out, gguf_file=path.name)
    for chat in CHATS:
        assert _ids(gtok, chat) == _ids(tok, chat)


def test_gguf_tokenizer_metadata_for_the_full_smollm2_vocabulary(tokenizer, tmp_path):
    """SmolLM2's whole tokenizer as GGUF metadata (no tensors), read back by transformers: same ids."""
    import gguf
    from transformers import AutoTokenizer

    from tunesmith.export.to_gguf import add_tokenizer

    writer = gguf.GGUFWriter(tmp_path / "tok.gguf", "llama")
    add_tokenizer(writer, tokenizer, len(tokenizer))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    gtok = AutoTokenizer.from_pretrained(tmp_path, gguf_file="tok.gguf")
    assert len(gtok) == len(tokenizer) == 49152
    for chat in CHATS:
        assert _ids(gtok, chat) == _ids(tokenizer, chat)
    text = "Numbers 1234567 and  two spaces\n\nnew lines, ünïcödé, emoji 😀 and <|im_end|> markers"
    assert gtok(text)["input_ids"] == tokenizer(text)["input_ids"]
    assert gtok.eos_token == "<|im_end|>" and gtok.bos_token == "<|im_start|>"


def test_q8_0_keeps_rows_it_cannot_block_in_f16():
    w = np.random.default_rng(0).standard_normal((4, 48)).astype(np.float32)  # 48 is not a multiple of 32
    data, raw = encode_tensor(w, "q8_0")
    assert raw is None and data.dtype == np.float16
    data, raw = encode_tensor(np.ones(64, np.float32), "q8_0")  # 1-D: a norm weight stays f32
    assert raw is None and data.dtype == np.float32
    data, raw = encode_tensor(np.ones((2, 64), np.float32), "q8_0")
    assert raw.name == "Q8_0"


def test_pre_tokenizer_names_are_llama_cpps_and_unknown_ones_are_refused():
    from tunesmith.export.to_gguf import pre_tokenizer_name

    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}
    assert pre_tokenizer_name({"pre_tokenizer": byte_level}) == "gpt-2"  # not "gpt2": llama.cpp refuses that
    digits = {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True}, byte_level]}
    assert pre_tokenizer_name({"pre_tokenizer": digits}) == "smollm"
    with pytest.raises(tunesmith.TunesmithError, match="pre-tokenizer \\(Metaspace\\) is not one"):
        pre_tokenizer_name({"pre_tokenizer": {"type": "Metaspace"}})


def _cli(monkeypatch, capsys, *args):
    from tunesmith.cli import main

    monkeypatch.setattr(sys, "argv", ["tunesmith", *map(str, args)])
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr()


def test_cli_refuses_a_non_empty_folder_without_force(lora_run, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, cap = _cli(monkeypatch, capsys, "export", lora_run.path, "--out", out)
    assert code == 2
    assert cap.err.strip().splitlines()[-1] == f"error: {out}: folder is not empty (pass --force to replace it)"
    assert [p.name for p in out.iterdir()] == ["keep.txt"] and (out / "keep.txt").read_text() == "mine"

    code, cap = _cli(monkeypatch, capsys, "export", lora_run.path, "--out", out, "--force")
    assert code == 0 and cap.out.strip() == str(out)
    assert not (out / "keep.txt").exists() and (out / "adapter_model.safetensors").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary folder left beside it

    code, cap = _cli(monkeypatch, capsys, "export", lora_run.path, "--out", tmp_path / "g", "--gguf", "q4_k")
    assert code == 2 and "--gguf must be one of f32, f16, q8_0" in cap.err
    # --force never replaces the run itself.
    code, cap = _cli(monkeypatch, capsys, "export", lora_run.path, "--out", lora_run.path, "--force")
    assert code == 2 and "would replace the run folder" in cap.err
    assert (lora_run.path / "summary.json").is_file()

    unfinished = tmp_path / "unfinished"
    shutil.copytree(lora_run.path, unfinished, ignore=shutil.ignore_patterns("summary.json", "tensorboard"))
    code, cap = _cli(monkeypatch, capsys, "export", unfinished, "--out", tmp_path / "u")
    assert code == 2 and "did not finish" in cap.err and not (tmp_path / "u").exists()


def test_failure_midway_leaves_nothing_half_written(lora_run, tmp_path, monkeypatch):
    from tunesmith.export import to_gguf

    def fail_midway(model, tokenizer, path, kind, name):
        path.write_bytes(b"GGUF partial")  # the merged folder is already written beside it
        raise KeyboardInterrupt

    monkeypatch.setattr(to_gguf, "write_gguf", fail_midway)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        export(lora_run, out, merge=True, gguf="f16")
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temporary folder

    out.mkdir()
    (out / "old.txt").write_text("old export")
    with pytest.raises(KeyboardInterrupt):
        export(lora_run, out, merge=True, gguf="f16", force=True)
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and [p.name for p in out.iterdir()] == ["old.txt"]


def test_encoder_run_adapter_and_merge_but_no_gguf(tiny_bert, tmp_path):
    from peft import PeftModel
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from tunesmith.run import Run

    train = write_csv(tmp_path / "train.csv", ["text", "label"], [(r["text"], r["label"]) for r in sentiment_rows(32)])
    trained = tunesmith.train(
        dict(
            model=str(tiny_bert),
            task="classify",
            data=str(train),
            method="lora",
            output=str(tmp_path / "run"),
            max_steps=2,
            eval_every=2,
            batch_size=16,
            max_seq_len=32,
            seed=0,
            tensorboard=False,
            lora={"r": 8, "alpha": 16},
        )
    )
    # A tiny random BERT learns too slowly for a few steps to move its LoRA B matrices off zero (and the run
    # then keeps step 0's weights). What is tested is the export's fidelity, so give the adapter random B
    # matrices, as a longer training would: the run, its export and the reference all read this one file.
    weights = load_file(trained.path / "adapter_model.safetensors")
    gen = torch.Generator().manual_seed(0)
    weights = {k: torch.randn(v.shape, generator=gen) * 0.5 if "lora_B" in k else v for k, v in weights.items()}
    assert any("lora_B" in k for k in weights)
    save_file(weights, trained.path / "adapter_model.safetensors")
    run = Run(trained.path)

    names = run.meta["labels"]
    texts = ["the food was great", "awful service today", "the phone"]
    batch = run.tokenizer(texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        tuned = run.model(**batch).logits

    merged_dir = export(run, tmp_path / "merged", merge=True)
    merged = AutoModelForSequenceClassification.from_pretrained(merged_dir).eval()
    assert merged.config.id2label == dict(enumerate(names))
    with torch.no_grad():
        m = merged(**AutoTokenizer.from_pretrained(merged_dir)(texts, return_tensors="pt", padding=True)).logits
    assert (m - tuned).abs().max().item() <= 1e-4

    adapter_dir = export(run, tmp_path / "adapter")
    cfg = json.loads((adapter_dir / "adapter_config.json").read_text())
    plain = AutoModelForSequenceClassification.from_pretrained(cfg["base_model_name_or_path"], num_labels=len(names))
    peft_model = PeftModel.from_pretrained(plain, adapter_dir).eval()
    with torch.no_grad():
        assert (peft_model(**batch).logits - tuned).abs().max().item() <= 1e-5
    # Not vacuous: the merged encoder weights carry the LoRA deltas (the base's are untouched by loading).
    base = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=len(names))
    q = "bert.encoder.layer.0.attention.self.query.weight"
    assert (merged.state_dict()[q] - base.state_dict()[q]).abs().max().item() > 1e-2

    with pytest.raises(tunesmith.TunesmithError, match="Llama-architecture causal language models only"):
        export(run, tmp_path / "g", gguf="f16")
    assert not (tmp_path / "g").exists()
