"""Parses a /metrics body with the official Python prometheus_client parsers.

Usage: parse_metrics.py (openmetrics|prometheus) < body
Prints one JSON object: {"samples": {"name{labels}": value}, "exemplars": [trace ids]}.
Exits non-zero (with the parser's error) when the body does not parse.
"""
import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_prom


def main() -> int:
    fmt = sys.argv[1]
    body = sys.stdin.read()
    parse = parse_om if fmt == "openmetrics" else parse_prom
    samples, exemplars = {}, []
    for family in parse(body):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            samples[f"{s.name}{{{labels}}}"] = s.value
            if getattr(s, "exemplar", None) is not None:
                exemplars.append(s.exemplar.labels.get("trace_id"))
    json.dump({"samples": samples, "exemplars": exemplars}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
