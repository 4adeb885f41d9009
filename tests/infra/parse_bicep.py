"""Parse every .bicep file with pycep, the parser checkov uses, and fail on any error.

checkov skips a file it cannot parse with only a debug log line, so its "no failed check" would
say nothing about such a file: this script makes a parse error fatal.

Usage: python parse_bicep.py DIR_OR_FILE...
"""

from __future__ import annotations

import sys
from pathlib import Path

from pycep import BicepParser


def bicep_files(args: list[str]) -> list[Path]:
    files: list[Path] = []
    for arg in args:
        p = Path(arg)
        files.extend(sorted(p.rglob("*.bicep")) if p.is_dir() else [p])
    return files


def main(argv: list[str]) -> int:
    files = bicep_files(argv or ["infra"])
    if not files:
        print("parse_bicep: no .bicep files found", file=sys.stderr)
        return 1
    parser = BicepParser(add_line_numbers=True)
    failed = 0
    for f in files:
        try:
            parsed = parser.parse(text=f.read_text())
        except Exception as err:  # lark raises several exception types
            failed += 1
            first = str(err).strip().splitlines()[:6]
            print(f"FAIL {f}: {type(err).__name__}: " + "\n    ".join(first))
            continue
        kinds = {k: len(v) for k, v in parsed.items() if isinstance(v, dict) and v}
        print(f"ok   {f} " + " ".join(f"{k}={n}" for k, n in sorted(kinds.items())))
    print(f"parse_bicep: {len(files) - failed}/{len(files)} files parsed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
