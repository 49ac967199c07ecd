"""``make lint`` for deploy/k8s: every kustomization rendered the way kustomize would for what it uses
here (resources, strategic-merge patches matched by kind and name, containers merged by name, the
namespace, image names), and every resulting manifest validated offline against the Kubernetes
schemas that ``kubernetes-validate`` ships (strict: an unknown field is an error).

Operators' resources (CloudNativePG, EMQX) have no schema there: they are checked for their kind,
name and spec, and named in the output. Exit status 1 on any error.

    .venv/bin/python -m devtools.lint_deploy [deploy/k8s] [--kubernetes-version 1.31.0]
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

DEFAULT_VERSION = "1.31.0"  # the oldest Kubernetes the manifests promise to run on (docs/deployment.md)
CUSTOM_GROUPS = ("postgresql.cnpg.io/", "apps.emqx.io/", "monitoring.coreos.com/")
Doc = dict[str, Any]


def _load(path: Path) -> list[Doc]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    for d in docs:
        if not isinstance(d, dict):
            raise ValueError(f"{path}: a document that is not a mapping")
    return docs


def _merge(base: Any, patch: Any) -> Any:
    """A strategic merge as far as these manifests need it: maps merged key by key, lists of maps
    with a ``name`` merged by name, anything else replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            out[k] = _merge(base[k], v) if k in base else copy.deepcopy(v)
        return out
    if (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(x, dict) and "name" in x for x in base + patch)
    ):
        out_list = [copy.deepcopy(x) for x in base]
        for item in patch:
            for i, existing in enumerate(out_list):
                if existing["name"] == item["name"]:
                    out_list[i] = _merge(existing, item)
                    break
            else:
                out_list.append(copy.deepcopy(item))
        return out_list
    return copy.deepcopy(patch)


def _key(doc: Doc) -> tuple[str, str]:
    return doc.get("kind", ""), doc.get("metadata", {}).get("name", "")


def render(directory: Path, errors: list[str]) -> list[tuple[str, Doc]]:
    """The resources of one kustomization, each with the file it came from."""
    kfile = directory / "kustomization.yaml"
    kust = yaml.safe_load(kfile.read_text())
    out: list[tuple[str, Doc]] = []
    for entry in kust.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            out += render(path, errors)
        elif path.exists():
            out += [(str(path), d) for d in _load(path)]
        else:
            errors.append(f"{kfile}: resource {entry} does not exist")
    for patch in kust.get("patches", []):
        path = directory / patch["path"]
        for p in _load(path):
            matches = [i for i, (_, d) in enumerate(out) if _key(d) == _key(p)]
            if not matches:
                errors.append(f"{path}: patch {_key(p)} matches no resource")
            for i in matches:
                out[i] = (f"{out[i][0]} + {path}", _merge(out[i][1], p))
    namespace = kust.get("namespace")
    images = {i["name"]: i for i in kust.get("images", [])}
    rendered = []
    for source, doc in out:
        doc = copy.deepcopy(doc)
        if namespace and doc.get("kind") != "Namespace" and "namespace" not in doc.get("metadata", {}):
            doc.setdefault("metadata", {})["namespace"] = namespace
        for container in _containers(doc):
            image = images.get(container.get("image", ""))
            if image:
                container["image"] = f"{image.get('newName', image['name'])}:{image.get('newTag', 'latest')}"
        rendered.append((source, doc))
    for gen in kust.get("secretGenerator", []):
        if gen.get("behavior") == "replace" and not any(
            _key(d) == ("Secret", gen["name"]) for _, d in rendered
        ):  # fmt: skip
            errors.append(f"{kfile}: secretGenerator replaces {gen['name']}, which no resource defines")
    return rendered


def _containers(doc: Doc) -> list[Doc]:
    spec = doc.get("spec", {})
    pod = spec.get("template", {}).get("spec", {}) if "template" in spec else spec.get("jobTemplate", {})
    return list(pod.get("containers", [])) + list(pod.get("initContainers", [])) if isinstance(pod, dict) else []


def check(root: Path, version: str) -> list[str]:
    errors: list[str] = []
    kustomizations = sorted(p.parent for p in root.rglob("kustomization.yaml"))
    if not kustomizations:
        errors.append(f"{root}: no kustomization.yaml")
    for directory in kustomizations:
        resources = render(directory, errors)
        for source, doc in resources:
            name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
            if str(doc.get("apiVersion", "")).startswith(CUSTOM_GROUPS):
                if not (doc.get("kind") and doc.get("metadata", {}).get("name") and doc.get("spec")):
                    errors.append(f"{source}: {name} lacks a kind, a name or a spec")
                print(f"  {directory.name}: {name} ({doc['apiVersion']}): an operator's resource, no schema")  # noqa: T201
                continue
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as err:
                path = ".".join(str(p) for p in err.path)
                errors.append(f"{source}: {name}: {path}: {err.message}")
            except kubernetes_validate.SchemaNotFoundError as err:
                errors.append(f"{source}: {name}: no schema ({err})")
        print(f"{directory}: {len(resources)} resources checked against Kubernetes {version}")  # noqa: T201
    return errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default="deploy/k8s", type=Path)
    parser.add_argument("--kubernetes-version", default=DEFAULT_VERSION)
    args = parser.parse_args()
    errors = check(args.root, args.kubernetes_version)
    for e in errors:
        print(f"error: {e}", file=sys.stderr)  # noqa: T201
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
