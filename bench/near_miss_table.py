"""Print the near-miss corpus's precision and recall in `guide` mode, per language and
for the held-out part apart, and the rules that fire most (README, "Near misses").

    .venv/bin/python -m bench.near_miss_table [--wrong]
"""

from __future__ import annotations

import sys

from tests.support.near_miss_corpus import load_corpus, measure, table


def main(argv: list[str]) -> int:
    report = measure(load_corpus())
    print(table(report))
    print()
    print("| rule | mails |")
    print("| --- | --- |")
    for rule, count in report.rules.most_common():
        print(f"| {rule} | {count} |")
    if "--wrong" in argv:
        print()
        for mail_id, rule, expected in report.wrong:
            print(f"{mail_id}: {rule} (expected near_miss={expected})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
