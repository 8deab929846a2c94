#!/usr/bin/env python3
"""Renders the chart like `helm template` where no helm binary is installed.

    python3 deploy/helm/render.py [VALUES_JSON]  > rendered.yaml
    python3 deploy/helm/render.py --lint         # like `helm lint --strict`: exit 1 on findings

Uses the `helm-python-sdk` package from PyPI (Helm's own engine, as a library), offline:
`lookup` finds nothing. Release `switchyard` in namespace `switchyard`. Exit 3 when the
package is missing, so callers can tell "cannot render" from "the chart is broken".
"""
import json
import pathlib
import sys

try:
    from helm_python import Chart
except ImportError:
    print("helm-python-sdk is not installed (pip install helm-python-sdk)", file=sys.stderr)
    sys.exit(3)

path = pathlib.Path(__file__).parent / "switchyard"
if sys.argv[1:] == ["--lint"]:
    from helm_python.chart import lint

    report = lint(path, strict=True, namespace="switchyard", kube_version="v1.33.0")
    # Severity 1 is "info" (such as "icon is recommended"); 2 warning, 3 error.
    findings = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
    for finding in findings:
        print(finding, file=sys.stderr)
    sys.exit(1 if findings else 0)

chart = Chart.load(path)
values = json.loads(sys.argv[1]) if len(sys.argv) > 1 else None
manifests = chart.render(values, name="switchyard", namespace="switchyard", is_install=True)
for path in sorted(manifests):
    if not path.endswith(".yaml") or not manifests[path].strip():
        continue
    print(f"---\n# Source: {path}\n{manifests[path].strip()}")
