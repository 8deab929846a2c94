#!/usr/bin/env python3
"""Renders the chart like `helm template` where no helm binary is installed.

    python3 deploy/helm/render.py [VALUES_JSON] [--kube-version V] [--api-versions A,B] > rendered.yaml
    python3 deploy/helm/render.py --lint [VALUES_JSON]   # like `helm lint --strict`: exit 1 on findings

Uses the `helm-python-sdk` package from PyPI (Helm's own engine, as a library), offline:
`lookup` finds nothing. Release `switchyard` in namespace `switchyard`. Exit 3 when the
package is missing, so callers can tell "cannot render" from "the chart is broken".

`--kube-version` and `--api-versions` (repeatable, comma-separated) are `helm template`'s:
what `.Capabilities` reports, e.g. `--api-versions gateway.networking.k8s.io/v1/GatewayClass`
for a cluster with the Gateway API CRDs (`gatewayAPI.enabled: auto`). The package's
`Chart.render` does not pass them on, so its native `helm_render` (which takes them) is
called directly.
"""
import argparse
import json
import pathlib
import sys

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("values", nargs="?", help="values as JSON")
parser.add_argument("--lint", action="store_true")
parser.add_argument("--kube-version", default="v1.33.0")
parser.add_argument("--api-versions", "-a", action="append", default=[])
args = parser.parse_args()

try:
    from helm_python import Chart, _native
except ImportError:
    print("helm-python-sdk is not installed (pip install helm-python-sdk)", file=sys.stderr)
    sys.exit(3)

path = pathlib.Path(__file__).parent / "switchyard"
values = json.loads(args.values) if args.values else None
kube_version = "v" + args.kube_version.removeprefix("v")
if args.lint:
    from helm_python.chart import lint

    report = lint(path, values, strict=True, namespace="switchyard", kube_version=kube_version)
    # Severity 1 is "info" (such as "icon is recommended"); 2 warning, 3 error.
    findings = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
    for finding in findings:
        print(finding, file=sys.stderr)
    sys.exit(1 if findings else 0)

chart = Chart.load(path)
options = {
    "name": "switchyard",
    "namespace": "switchyard",
    "is_install": True,
    "kube_version": kube_version,
    "api_versions": [v for a in args.api_versions for v in a.split(",") if v],
}
rendered = _native.call_string(
    "helm_render", chart._raw(), json.dumps(values) if values else None, json.dumps(options)
)
manifests = json.loads(rendered)
for path in sorted(manifests):
    if not path.endswith(".yaml") or not manifests[path].strip():
        continue
    print(f"---\n# Source: {path}\n{manifests[path].strip()}")
