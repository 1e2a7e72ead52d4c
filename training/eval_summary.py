"""Print one line per evaluation JSON (``chalkbox train|export evaluate --json``): what
``make models`` shows at its end.  ``python -m training.eval_summary FILE...``"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def summary_line(path: Path) -> str:
    result = json.loads(Path(path).read_text())
    line = (f"{Path(path).as_posix():60} n={result['n']:<5} accuracy {result['accuracy']:.4f}  "
            f"macro-F1 {result['macro_f1']:.4f}  ECE {result['ece']:.3f}")
    if "map" in result:
        line += f"  MAP {result['map']:.4f}  MRR {result['mrr']:.4f}"
    return line


def main(argv: list[str]) -> int:
    for name in argv:
        print(summary_line(Path(name)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
