"""Runs pyshacl for the differential SHACL test (tests/shacl_differential.rs).

Usage: python pyshacl_driver.py MANIFEST.json > RESULTS.json

The manifest is {"runs": [{"name", "shapes", "data": [{"name", "file"}]}]}: each run parses its
shapes graph once and validates every data graph (N-Triples) against it. The output is
{"<run>/<data>": {"conforms": bool, "results": [[focus, path, component, severity], ...]}} with
terms in N-Triples form, so the Rust side can compare them with the engine's results.
"""

import json
import sys

import pyshacl
from rdflib import Graph
from rdflib.namespace import SH

PINNED = "0.40.1"


def term(value):
    return value.n3() if value is not None else None


def main():
    if pyshacl.__version__ != PINNED:
        sys.exit(f"pyshacl {pyshacl.__version__} found, the differential test pins {PINNED}")
    manifest = json.load(open(sys.argv[1]))
    out = {}
    for run in manifest["runs"]:
        shapes = Graph()
        shapes.parse(run["shapes"], format="nt" if run["shapes"].endswith(".nt") else "turtle")
        for data in run["data"]:
            graph = Graph()
            graph.parse(data["file"], format="nt")
            conforms, report, _ = pyshacl.validate(
                graph, shacl_graph=shapes, inference="none", abort_on_first=False, allow_warnings=False
            )
            results = []
            for result in report.objects(None, SH.result):
                results.append(
                    [
                        term(report.value(result, SH.focusNode)),
                        term(report.value(result, SH.resultPath)),
                        term(report.value(result, SH.sourceConstraintComponent)),
                        term(report.value(result, SH.resultSeverity)),
                    ]
                )
            out[f"{run['name']}/{data['name']}"] = {"conforms": bool(conforms), "results": sorted(results, key=str)}
    json.dump(out, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
