"""Build the 10,000-row file docs/check.md times `tunesmith check` on (written outside the repo). 10,000 chat rows from shared/data: support_bitext (train+validation, 4,059), GPTeacher (train+validation,
5,813, turned into user/assistant chats), and the first 128 bitext rows again (exact duplicates on purpose)."""

import json
import sys
from pathlib import Path

D = str(Path(__file__).resolve().parents[2] / "shared" / "data")
OUT = sys.argv[1] if len(sys.argv) > 1 else "/tmp/check10k/chat10k.jsonl"
rows = []
for f in ("train", "validation"):
    rows += [json.loads(x) for x in open(f"{D}/support_bitext/{f}.jsonl")]
bitext = list(rows)
for f in ("train", "validation"):
    for x in open(f"{D}/instructions_gpteacher/{f}.jsonl"):
        r = json.loads(x)
        user = r["instruction"] + (f"\n\n{r['input']}" if r["input"].strip() else "")
        rows.append({"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": r["response"]}]})
rows += bitext[: 10_000 - len(rows)]
assert len(rows) == 10_000
Path(OUT).parent.mkdir(parents=True, exist_ok=True)
with open(OUT, "w") as f:
    f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
print(len(rows))
