#!/usr/bin/env python3
"""Checks the deployment files of deploy/ (run by .ci/run's deploy step; docs/deploy.md).

Docker and Kubernetes cannot run on CI's machine, so each file is checked statically:

* Kubernetes manifests: `kubernetes-validate --strict` against pinned Kubernetes versions.
* compose.yaml: the Compose Specification's JSON schema (shipped by a pinned registry
  package, passed as --compose-schema), with Python `jsonschema`.
* Dockerfile: `hadolint`, then this script's own checks: named stages on tagged base images,
  a non-root numeric USER in the final stage, and a `cargo build --release --locked` whose
  packages and copied binaries exist in the workspace (`cargo metadata --locked`), with every
  workspace member in the build context.
* Across the files: every command names a binary the image ships, health checks and probes
  use each binary's HTTP port as the image sets it, URLs name services and ports that exist,
  selectors, Secrets and keys resolve.

`--self-test` checks that each of these rejects a deliberately broken copy of the files.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jsonschema
import yaml

# Which environment prefix each server binary reads (its clap `env` names).
PREFIXES = {"risk-service": "RISK_", "incident-service": "INCIDENT_", "gateway": "GATEWAY_"}
# The Kubernetes versions the manifests are validated against: the oldest we support and the
# newest the pinned kubernetes-validate knows.
K8S_VERSIONS = ("1.31.0", "1.37.0")


class Failed(Exception):
    """A check found a problem; the message says which file and what."""


def problems_of(check, *args) -> list[str]:
    try:
        check(*args)
    except Failed as e:
        return [str(e)]
    return []


# ---------------------------------------------------------------- Dockerfile --------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: comments dropped, continuation lines joined."""
    out, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and not current):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        if current.strip():
            word, _, rest = current.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
        current = ""
    if current.strip():
        raise Failed("Dockerfile: ends inside a continued line")
    return out


def split_flags(args: str) -> tuple[dict[str, str], list[str]]:
    """`--flag=value` options of COPY/RUN, and the remaining words."""
    flags, words = {}, []
    for word in shlex.split(args):
        if word.startswith("--") and not words:
            key, _, value = word[2:].partition("=")
            flags.setdefault(key, value)
        else:
            words.append(word)
    return flags, words


def dockerignore_includes(patterns: list[str], path: str) -> bool:
    """Whether the build context keeps `path` (Docker's rule: the last matching pattern wins,
    and a pattern matching a directory matches what is inside it)."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern[1:] if negate else pattern
        pat = pat.strip("/")
        candidates = [pat]
        if pat.startswith("**/"):
            candidates.append(pat[3:])
        for prefix in prefixes:
            if any(fnmatch.fnmatchcase(prefix, c) for c in candidates) or any(
                c.startswith("**/") and fnmatch.fnmatchcase(prefix.split("/")[-1], c[3:])
                for c in candidates
            ):
                included = negate
                break
    return included


def workspace(root: Path) -> dict:
    """Workspace packages and their binaries, from `cargo metadata --locked`."""
    try:
        out = subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--locked"],
            cwd=root,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    except subprocess.CalledProcessError as e:
        raise Failed(f"cargo metadata --locked failed: {e.stderr.strip()}") from e
    meta = json.loads(out)
    members = set(meta["workspace_members"])
    packages = {}
    for pkg in meta["packages"]:
        if pkg["id"] in members:
            bins = {t["name"] for t in pkg["targets"] if "bin" in t["kind"]}
            rel = Path(pkg["manifest_path"]).parent.relative_to(root).as_posix()
            packages[pkg["name"]] = {"bins": bins, "dir": rel}
    return packages


def check_dockerfile(root: Path, dockerfile: Path, packages: dict) -> dict:
    """The Dockerfile's own checks; returns what the image provides (binaries, ports, uid)."""
    name = dockerfile.name
    instructions = dockerfile_instructions(dockerfile.read_text())
    ignore_file = dockerfile.with_name(dockerfile.name + ".dockerignore")
    ignore = [
        line.strip()
        for line in (ignore_file.read_text().splitlines() if ignore_file.exists() else [])
        if line.strip() and not line.strip().startswith("#")
    ]

    stages: list[dict] = []
    for word, args in instructions:
        if word == "FROM":
            parts = args.split()
            if len(parts) != 3 or parts[1].upper() != "AS":
                raise Failed(f"{name}: every stage needs a name (FROM image:tag AS name): {args}")
            image = parts[0]
            if "$" in image:
                raise Failed(f"{name}: base image {image} is not a literal tag")
            tag = image.split("@")[0].rsplit("/", 1)[-1].partition(":")[2]
            if not tag or tag == "latest":
                raise Failed(f"{name}: base image {image} is not pinned by a version tag")
            stages.append({"name": parts[2], "image": image, "body": []})
        elif not stages:
            if word != "ARG":
                raise Failed(f"{name}: {word} before the first FROM")
        else:
            stages[-1]["body"].append((word, args))
    if len(stages) < 2:
        raise Failed(f"{name}: expected a build stage and a runtime stage, found {len(stages)}")
    stage_names = {s["name"] for s in stages}

    # The build: `cargo build --release --locked -p …`, binaries copied out.
    build_cmds, copied_bins = [], set()
    for stage in stages:
        for word, args in stage["body"]:
            if word != "RUN":
                continue
            _, words = split_flags(args)
            command = " ".join(words)
            for segment in re.split(r"&&|;", command):
                seg = shlex.split(segment)
                if seg[:2] == ["cargo", "build"]:
                    build_cmds.append((stage["name"], seg))
                copied_bins |= set(re.findall(r"target/release/([A-Za-z0-9_-]+)", segment))
    if len(build_cmds) != 1:
        raise Failed(f"{name}: expected exactly one `cargo build`, found {len(build_cmds)}")
    build_stage, cargo = build_cmds[0]
    for flag in ("--release", "--locked"):
        if flag not in cargo:
            raise Failed(f"{name}: `{' '.join(cargo)}` lacks {flag}")
    selected = [cargo[i + 1] for i, w in enumerate(cargo[:-1]) if w in ("-p", "--package")]
    if not selected:
        raise Failed(f"{name}: `{' '.join(cargo)}` names no package (-p)")
    for pkg in selected:
        if pkg not in packages:
            raise Failed(f"{name}: cargo build -p {pkg}: no such workspace package")
    built = set().union(*(packages[p]["bins"] for p in selected))
    if not copied_bins:
        raise Failed(f"{name}: no binary is copied out of target/release/")
    for binary in sorted(copied_bins):
        if binary not in built:
            raise Failed(f"{name}: target/release/{binary} is not a binary of {', '.join(selected)}")
    for binary in PREFIXES:
        if binary not in copied_bins:
            raise Failed(f"{name}: the image does not ship {binary}")

    build_env = {}
    for word, args in next(s for s in stages if s["name"] == build_stage)["body"]:
        if word == "ENV":
            build_env.update(w.split("=", 1) for w in shlex.split(args) if "=" in w)
    if build_env.get("CARGO_PROFILE_RELEASE_DEBUG") not in ("false", "0", "none"):
        raise Failed(f"{name}: the release build keeps debug info (set CARGO_PROFILE_RELEASE_DEBUG=false)")

    # The build context: every COPY source exists and survives the .dockerignore, and the
    # whole workspace (root manifest, lock file, every member) is copied.
    copied_sources = set()
    for stage in stages:
        for word, args in stage["body"]:
            if word not in ("COPY", "ADD"):
                continue
            flags, words = split_flags(args)
            if word == "ADD":
                raise Failed(f"{name}: use COPY, not ADD")
            if "from" in flags:
                if flags["from"] not in stage_names:
                    raise Failed(f"{name}: COPY --from={flags['from']}: no such stage")
                continue
            for src in words[:-1]:
                if not (root / src).exists():
                    raise Failed(f"{name}: COPY {src}: not in the repository")
                if not dockerignore_includes(ignore, src):
                    raise Failed(f"{name}: COPY {src}: excluded by {ignore_file.name}")
                copied_sources.add(src.strip("/"))
    needed = {"Cargo.toml", "Cargo.lock"} | {p["dir"] for p in packages.values()}
    for path in sorted(needed):
        if not any(path == s or path.startswith(s + "/") for s in copied_sources):
            raise Failed(f"{name}: the build stage does not copy {path} (a workspace member)")

    # The final stage: non-root, and what it publishes.
    final = stages[-1]
    if final["name"] == build_stage:
        raise Failed(f"{name}: the final stage is the build stage")
    users = [args for word, args in final["body"] if word == "USER"]
    if not users:
        raise Failed(f"{name}: the final stage runs as root (no USER)")
    uid, _, gid = users[-1].partition(":")
    if not uid.isdigit() or int(uid) == 0 or (gid and (not gid.isdigit() or int(gid) == 0)):
        raise Failed(f"{name}: USER {users[-1]}: use a non-zero numeric uid:gid (runAsNonRoot checks it)")
    if not any(w == "COPY" and "--from=" + build_stage in a for w, a in final["body"]):
        raise Failed(f"{name}: the final stage copies nothing from {build_stage}")
    env, exposed = {}, set()
    for word, args in final["body"]:
        if word == "ENV":
            env.update(w.split("=", 1) for w in shlex.split(args) if "=" in w)
        elif word == "EXPOSE":
            exposed |= {int(p.split("/")[0]) for p in args.split()}
    ports = {}
    for binary, prefix in PREFIXES.items():
        ports[binary] = {}
        for kind, var in (("grpc", prefix + "LISTEN"), ("http", prefix + "HTTP_LISTEN")):
            if var not in env:
                raise Failed(f"{name}: the final stage does not set {var}")
            host, _, port = env[var].rpartition(":")
            if host not in ("0.0.0.0", "[::]"):
                raise Failed(f"{name}: {var}={env[var]} is unreachable from outside the container")
            if int(port) not in exposed:
                raise Failed(f"{name}: {var} port {port} is not EXPOSEd")
            ports[binary][kind] = int(port)
    return {"binaries": copied_bins, "ports": ports, "uid": int(uid), "env": env}


# ---------------------------------------------------------------- compose -----------------


def check_compose_schema(compose: Path, schema_path: Path) -> dict:
    doc = yaml.safe_load(compose.read_text())
    schema = json.loads(schema_path.read_text())
    # The schema names draft 2019-09 by a URI jsonschema does not know (http, `#`).
    if "2019-09" in schema.get("$schema", ""):
        validator_class = jsonschema.Draft201909Validator
    else:
        validator_class = jsonschema.validators.validator_for(schema)
    errors = sorted(validator_class(schema).iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  at /{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:10]]
        raise Failed(f"{compose.name}: not valid against the Compose Specification:\n" + "\n".join(lines))
    return doc


def command_of(spec: dict) -> list[str]:
    command = spec.get("command")
    if isinstance(command, str):
        command = shlex.split(command)
    return list(command or [])


def port_of_url(url: str) -> tuple[str, int]:
    m = re.fullmatch(r"https?://([a-z0-9.-]+):(\d+)/?", url)
    if not m:
        raise Failed(f"URL {url} is not http(s)://host:port")
    return m.group(1), int(m.group(2))


def check_compose_consistency(doc: dict, image: dict) -> None:
    services = doc.get("services", {})
    grpc_of = {}
    for svc, spec in services.items():
        command = command_of(spec)
        if command and command[0] in PREFIXES:
            grpc_of[svc] = image["ports"][command[0]]["grpc"]
    for svc, spec in services.items():
        command = command_of(spec)
        if not str(spec.get("image", "")).startswith("${ASSURANCE_IMAGE"):
            continue
        if spec.get("entrypoint"):
            continue
        if not command or command[0] not in image["binaries"]:
            raise Failed(f"compose.yaml: service {svc}: command {command} names no binary of the image")
        binary = command[0]
        env = spec.get("environment", {})
        prefix = PREFIXES[binary]
        http = image["ports"][binary]["http"]
        if prefix + "HTTP_LISTEN" in env:
            http = int(str(env[prefix + "HTTP_LISTEN"]).rpartition(":")[2])
        test = spec.get("healthcheck", {}).get("test", [])
        urls = [w for w in test if isinstance(w, str) and w.startswith("http")]
        if len(urls) != 1:
            raise Failed(f"compose.yaml: service {svc}: the health check needs one URL, has {urls}")
        host, port = port_of_url(urls[0].rsplit("/", 1)[0])
        if port != http or not urls[0].endswith("/readyz"):
            raise Failed(
                f"compose.yaml: service {svc}: the health check probes {urls[0]}, "
                f"but {binary} serves /readyz on port {http}"
            )
        for var, value in env.items():
            if var.endswith("_URL") and str(value).startswith("http"):
                host, port = port_of_url(str(value))
                if grpc_of.get(host) != port:
                    raise Failed(f"compose.yaml: service {svc}: {var}={value}: no service {host} serves gRPC on {port}")
        for dep in spec.get("depends_on", {}):
            if dep not in services:
                raise Failed(f"compose.yaml: service {svc} depends on {dep}, which does not exist")


# ---------------------------------------------------------------- Kubernetes --------------


def k8s_objects(directory: Path) -> list[tuple[str, dict]]:
    out = []
    for path in sorted(directory.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                out.append((path.name, doc))
    return out


def check_k8s_schema(directory: Path, validate: str) -> None:
    files = [str(p) for p in sorted(directory.glob("*.yaml"))]
    for version in K8S_VERSIONS:
        run = subprocess.run(
            [validate, "--strict", "--quiet", "--kubernetes-version", version, *files],
            capture_output=True,
            text=True,
        )
        output = (run.stdout + run.stderr).strip()
        # An unknown kind or API version (one removed from this Kubernetes version, say) is
        # only a warning to kubernetes-validate: every object here has a schema, so it fails.
        if run.returncode != 0 or "WARN" in output:
            raise Failed(f"kubernetes-validate --strict -k {version}:\n{output}")


def matches(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_k8s_consistency(objects: list[tuple[str, dict]], image: dict) -> None:
    by_kind: dict[str, dict[str, tuple[str, dict]]] = {}
    for file, obj in objects:
        by_kind.setdefault(obj["kind"], {})[obj["metadata"]["name"]] = (file, obj)
    secrets = {n: {**o.get("data", {}), **o.get("stringData", {})} for n, (_, o) in by_kind.get("Secret", {}).items()}
    configmaps = {n: o.get("data", {}) for n, (_, o) in by_kind.get("ConfigMap", {}).items()}
    pods = {}  # deployment name -> (pod labels, container port names -> numbers)
    for dep, (file, obj) in by_kind.get("Deployment", {}).items():
        where = f"{file}: Deployment {dep}"
        spec = obj["spec"]
        labels = spec["template"]["metadata"].get("labels", {})
        if not matches(spec["selector"].get("matchLabels", {}), labels):
            raise Failed(f"{where}: the selector does not match the pod labels")
        pod = spec["template"]["spec"]
        if pod.get("securityContext", {}).get("runAsUser") != image["uid"]:
            raise Failed(f"{where}: runAsUser is not the image's user {image['uid']}")
        for volume in pod.get("volumes", []):
            secret = volume.get("secret", {}).get("secretName")
            if secret and secret not in secrets:
                raise Failed(f"{where}: volume {volume['name']}: no Secret {secret}")
        for container in pod["containers"]:
            command = container.get("command", [])
            if not command or command[0] not in image["binaries"]:
                raise Failed(f"{where}: command {command} names no binary of the image")
            binary = command[0]
            want = image["ports"][binary]
            names = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
            for kind in ("grpc", "http"):
                if names.get(kind) != want[kind]:
                    raise Failed(f"{where}: port {kind} is {names.get(kind)}, but {binary} listens on {want[kind]}")
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                get = container.get(probe, {}).get("httpGet")
                if not get:
                    raise Failed(f"{where}: no HTTP {probe}")
                if get["port"] not in ("http", want["http"]):
                    raise Failed(f"{where}: {probe} probes port {get['port']}, not the HTTP listener")
                path = "/readyz" if probe == "readinessProbe" else "/healthz"
                if get["path"] != path:
                    raise Failed(f"{where}: {probe} probes {get['path']}, expected {path}")
            for source in container.get("envFrom", []):
                ref = source.get("configMapRef", {}).get("name")
                if ref and ref not in configmaps:
                    raise Failed(f"{where}: no ConfigMap {ref}")
            for var in container.get("env", []):
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref and ref["key"] not in secrets.get(ref["name"], {}):
                    raise Failed(f"{where}: {var['name']}: no key {ref['key']} in Secret {ref['name']}")
            pods[dep] = (labels, names)
    services = {}
    for svc, (file, obj) in by_kind.get("Service", {}).items():
        targets = [names for labels, names in pods.values() if matches(obj["spec"].get("selector", {}), labels)]
        if not targets:
            raise Failed(f"{file}: Service {svc} selects no Deployment's pods")
        for port in obj["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            if not all(target in names or target in names.values() for names in targets):
                raise Failed(f"{file}: Service {svc}: targetPort {target} is not a container port")
        services[svc] = {p["port"] for p in obj["spec"]["ports"]}
    for data in configmaps.values():
        for var, value in data.items():
            if var.endswith("_URL") and str(value).startswith("http"):
                host, port = port_of_url(str(value))
                if port not in services.get(host, set()):
                    raise Failed(f"ConfigMap: {var}={value}: no Service {host} with port {port}")
    for kind in ("PodDisruptionBudget", "NetworkPolicy"):
        for name, (file, obj) in by_kind.get(kind, {}).items():
            sel = obj["spec"]["podSelector" if kind == "NetworkPolicy" else "selector"].get("matchLabels", {})
            selected = [names for labels, names in pods.values() if matches(sel, labels)]
            if not selected:
                raise Failed(f"{file}: {kind} {name} selects no Deployment's pods")
            for rule in obj["spec"].get("ingress", []):
                for peer in rule.get("from", []):
                    peer_sel = peer.get("podSelector", {}).get("matchLabels", {})
                    if peer_sel and not any(matches(peer_sel, labels) for labels, _ in pods.values()):
                        raise Failed(f"{file}: {kind} {name}: a `from` selects no Deployment's pods")
                for port in rule.get("ports", []):
                    if not all(port["port"] in names or port["port"] in names.values() for names in selected):
                        raise Failed(f"{file}: {kind} {name}: port {port['port']} is not a container port")


# ---------------------------------------------------------------- driver ------------------


def hadolint(path: str, dockerfile: Path) -> None:
    run = subprocess.run([path, "--no-color", str(dockerfile)], capture_output=True, text=True)
    if run.returncode != 0:
        raise Failed(f"hadolint {dockerfile.name}:\n{(run.stdout + run.stderr).strip()}")


def check_all(root: Path, deploy: Path, args, packages: dict) -> list[str]:
    """Every check on the files under `deploy`; the problems found (empty when all pass)."""
    problems = []
    dockerfile = deploy / "Dockerfile"
    problems += problems_of(hadolint, args.hadolint, dockerfile)
    image = None
    try:
        image = check_dockerfile(root, dockerfile, packages)
    except Failed as e:
        problems.append(str(e))
    compose = None
    try:
        compose = check_compose_schema(deploy / "compose.yaml", Path(args.compose_schema))
    except Failed as e:
        problems.append(str(e))
    problems += problems_of(check_k8s_schema, deploy / "kubernetes", args.kubernetes_validate)
    if image is not None:
        if compose is not None:
            problems += problems_of(check_compose_consistency, compose, image)
        problems += problems_of(check_k8s_consistency, k8s_objects(deploy / "kubernetes"), image)
    return problems


# Each mutation breaks one file of a copy of deploy/; the checks must then report a problem
# mentioning the expected text. (file, old, new, expected in the report); the first
# occurrence of `old` is replaced.
MUTATIONS = [
    ("kubernetes/risk-service.yaml", "readinessProbe:", "readinesProbe:", "kubernetes-validate"),
    ("kubernetes/gateway.yaml", "replicas: 2", 'replicas: "two"', "kubernetes-validate"),
    ("kubernetes/pdb.yaml", "apiVersion: policy/v1", "apiVersion: policy/v1beta1", "kubernetes-validate"),
    ("kubernetes/incident-service.yaml", "path: /readyz", "path: /ready", "expected /readyz"),
    ("kubernetes/risk-service.yaml", "containerPort: 8081", "containerPort: 8083", "listens on 8081"),
    ("kubernetes/configmap.yaml", "http://risk-service:50061", "http://risk:50061", "no Service risk"),
    ("kubernetes/gateway.yaml", "key: GATEWAY_DATABASE_URL", "key: GATEWAY_DB_URL", "no key GATEWAY_DB_URL"),
    ("compose.yaml", "    healthcheck:\n      test: [\"CMD\", \"pg_isready\"", "    healthcheck:\n      tset: [\"CMD\", \"pg_isready\"", "Compose Specification"),
    ("compose.yaml", "condition: service_completed_successfully", "condition: service_done", "Compose Specification"),
    ("compose.yaml", "http://127.0.0.1:8082/readyz", "http://127.0.0.1:8081/readyz", "serves /readyz on port 8082"),
    ("compose.yaml", 'command: ["gateway"]', 'command: ["gateway-service"]', "names no binary"),
    ("Dockerfile", "FROM debian:trixie-slim AS runtime", "FROM debian:latest AS runtime", "DL3007"),
    ("Dockerfile", "USER 10001:10001\n", "", "runs as root"),
    ("Dockerfile", "--release --locked", "--release", "lacks --locked"),
    ("Dockerfile", "-p incident-service", "-p incident-svc", "no such workspace package"),
    ("Dockerfile", "COPY tests tests\n", "", "does not copy tests"),
    ("Dockerfile", "CARGO_PROFILE_RELEASE_DEBUG=false", "CARGO_PROFILE_RELEASE_DEBUG=true", "keeps debug info"),
    ("Dockerfile", "    && rm -rf /var/lib/apt/lists/* \\\n", "", "DL3009"),
    ("Dockerfile.dockerignore", "!gateway/\n", "", "excluded by Dockerfile.dockerignore"),
]


def self_test(root: Path, deploy: Path, args, packages: dict) -> int:
    failures = 0
    for file, old, new, expected in MUTATIONS:
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "deploy"
            shutil.copytree(deploy, copy)
            target = copy / file
            text = target.read_text()
            if old not in text:
                print(f"self-test FAILED: {file}: the text to break is not there: {old!r}")
                failures += 1
                continue
            target.write_text(text.replace(old, new, 1))
            problems = check_all(root, copy, args, packages)
            report = "\n".join(problems)
            if not problems:
                print(f"self-test FAILED: {file} with {new!r} passed every check")
                failures += 1
            elif expected not in report:
                print(f"self-test FAILED: {file} with {new!r}: expected {expected!r} in:\n{report}")
                failures += 1
            else:
                first = next(p for p in problems if expected in p).splitlines()[0]
                change = f"{old.strip()[:30]!r} -> {new.strip()[:30]!r}"
                print(f"self-test ok: {file}: {change} rejected ({first[:90]})")
    print(f"deploy self-test: {len(MUTATIONS) - failures} of {len(MUTATIONS)} broken copies rejected")
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hadolint", required=True, help="the hadolint binary")
    parser.add_argument("--kubernetes-validate", required=True, help="the kubernetes-validate script")
    parser.add_argument("--compose-schema", required=True, help="the Compose Specification JSON schema")
    parser.add_argument("--self-test", action="store_true", help="check that broken copies are rejected")
    args = parser.parse_args()
    deploy = Path(__file__).resolve().parent.parent
    root = deploy.parent
    try:
        packages = workspace(root)
    except Failed as e:
        print(f"deploy check: {e}")
        return 1
    problems = check_all(root, deploy, args, packages)
    for problem in problems:
        print(f"deploy check FAILED: {problem}")
    if problems:
        return 1
    print(
        "deploy check ok: Dockerfile (hadolint, stages, user, cargo build), compose.yaml "
        f"(Compose Specification), kubernetes/ (Kubernetes {', '.join(K8S_VERSIONS)}, strict), "
        "and the files agree with each other"
    )
    if args.self_test:
        return self_test(root, deploy, args, packages)
    return 0


if __name__ == "__main__":
    sys.exit(main())
