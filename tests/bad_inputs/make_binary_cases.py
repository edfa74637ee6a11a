"""Writes the corpus files that are awkward to edit by hand (bytes that are not UTF-8, BOMs, Parquet, very deep
or very long JSON). Run from anywhere: `python tests/bad_inputs/make_binary_cases.py`; the output is committed."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
CHAT = b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}\n'


def main():
    import pyarrow as pa
    import pyarrow.parquet as pq

    # A BOM at the start is fine; here the file is otherwise bad, and line numbers must not shift.
    (HERE / "sft_bom_then_bad.jsonl").write_bytes(
        b'\xef\xbb\xbf{"prompt": "What is 2+2?", "completion": "4"}\n{"prompt": "Capital of France?", "completion": }\n'
    )
    # Two BOM files joined with cat: the second BOM sits at the start of line 2.
    (HERE / "sft_bom_middle.jsonl").write_bytes(b"\xef\xbb\xbf" + CHAT + b"\xef\xbb\xbf" + CHAT)
    (HERE / "sft_latin1.jsonl").write_bytes(
        CHAT + '{"prompt": "Un caf\u00e9?", "completion": "Oui"}\n'.encode("latin-1")
    )
    (HERE / "sft_latin1.txt").write_bytes("First paragraph.\n\nUn caf\u00e9, s'il vous pla\u00eet.\n".encode("cp1252"))
    (HERE / "clm_binary.txt").write_bytes(bytes(range(256)) * 4)
    (HERE / "mlm_utf16.txt").write_text("A document saved as UTF-16.\n", encoding="utf-16")
    (HERE / "cfg_latin1.yaml").write_bytes("system_prompt: Sie sind ein Gr\u00fc\u00dfer.\n".encode("latin-1"))
    (HERE / "sft_deep_nesting.jsonl").write_bytes(CHAT + b"[" * 20000 + b"\n")
    (HERE / "sft_huge_number.jsonl").write_bytes(b'{"prompt": "How many?", "completion": ' + b"9" * 5000 + b"}\n")

    pq.write_table(
        pa.Table.from_pylist(
            [
                {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]},
                {"messages": [{"role": "user", "content": "bye"}, {"role": "assistant", "content": None}]},
            ]
        ),
        HERE / "sft_null_content.parquet",
    )
    pq.write_table(
        pa.Table.from_pylist([{"question": "What is 2+2?", "answer": "4"}]), HERE / "sft_wrong_columns.parquet"
    )
    whole = HERE / "sft_truncated.parquet"
    pq.write_table(pa.Table.from_pylist([{"prompt": f"q{i}", "completion": f"a{i}"} for i in range(50)]), whole)
    whole.write_bytes(whole.read_bytes()[:300])  # cut mid-file, as by an interrupted download
    # A pandas-style label column: integers with a gap become float64, the gap NaN.
    pq.write_table(
        pa.table(
            {
                "text": ["a lovely film", "an awful film", "a fine film"],
                "label": pa.array([1.0, float("nan"), 0.0], pa.float64()),
            }
        ),
        HERE / "classify_nan_label.parquet",
    )


if __name__ == "__main__":
    main()
