#!/usr/bin/env python3
"""Validates every object of a rendered Kubernetes manifest (a multi-document YAML file) against
the Kubernetes OpenAPI schemas shipped by kubernetes-validate, strictly (unknown fields are
errors), for each Kubernetes version named on the command line.

Usage: k8s_validate.py FILE VERSION...

Prints one JSON object: `objects` (every document, as JSON, for the caller's own cross-object
checks) and `results`, one per object and version: {kind, name, version, outcome, message},
outcome being `valid`, `invalid` or `no_schema` (kubernetes-validate has no schema for the kind,
as for custom resources). Deciding what a `no_schema` means is the caller's job."""

import json
import sys

import kubernetes_validate
import yaml


def main() -> int:
    path, versions = sys.argv[1], sys.argv[2:]
    with open(path) as f:
        objects = [d for d in yaml.safe_load_all(f) if d is not None]
    results = []
    for obj in objects:
        for version in versions:
            result = {
                "kind": obj.get("kind"),
                "name": obj.get("metadata", {}).get("name"),
                "version": version,
            }
            try:
                kubernetes_validate.validate(obj, version, strict=True)
                result.update(outcome="valid", message="")
            except kubernetes_validate.SchemaNotFoundError as e:
                result.update(outcome="no_schema", message=str(e))
            except kubernetes_validate.ValidationError as e:
                where = ".".join(str(p) for p in e.path)
                result.update(outcome="invalid", message=f"{where}: {e.message}")
            results.append(result)
    json.dump({"objects": objects, "results": results}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
