"""Print the near-miss corpus's precision and recall in `guide` mode, per language and
for the held-out part apart, the rules that fire most (README, "Near misses"), and what
classifying one ordinary mail costs (parse included: the pipeline parses every mail that
is not a request once).

    .venv/bin/python -m bench.near_miss_table [--wrong]
"""

from __future__ import annotations

import sys
import time

from credmail.core.near_miss import classify_near_miss
from credmail.core.parse import parse_message
from credmail.near_miss_rules import load_near_miss_rules
from tests.support.near_miss_corpus import Mail, load_corpus, measure, raw_bytes, table

ROUNDS = 5


def main(argv: list[str]) -> int:
    report = measure(load_corpus())
    print(table(report))
    print()
    print("| rule | mails |")
    print("| --- | --- |")
    for rule, count in report.rules.most_common():
        print(f"| {rule} | {count} |")
    print()
    print(f"classifying one mail (parse + rules): {_cost(load_corpus()) * 1000:.2f} ms")
    if "--wrong" in argv:
        print()
        for mail_id, rule, expected in report.wrong:
            print(f"{mail_id}: {rule} (expected near_miss={expected})")
    return 0


def _cost(mails: list[Mail]) -> float:
    """Seconds per mail, best of ROUNDS passes over the corpus."""
    rules = load_near_miss_rules(None)
    raws = [raw_bytes(mail, "genitore@famiglie.example") for mail in mails]
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for raw in raws:
            mail = parse_message(raw)
            classify_near_miss(mail.subject, mail.text, rules)
        best = min(best, time.perf_counter() - start)
    return best / len(raws)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
