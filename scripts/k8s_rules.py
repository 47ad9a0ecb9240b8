"""Our own rules for the rendered Kubernetes manifests (`just k8s-check`, scripts/k8s_check.py).

`check(docs, facts, overlay)` returns the breaches (strings, each starting with the rule's id)
of a list of rendered manifests. `facts` is read from the repository, never kept by hand here:

- the variables each service reads, and which it requires: `.env.example` (every variable) and
  the README's configuration table (its "used by" and "default" columns), which a test keeps
  equal to the code;
- the images: the Dockerfile's final targets (stages with an ENTRYPOINT), the files each one
  holds, and the distroless user's numeric id.

The rules:

- `replicas`: every Deployment is scaled by a HorizontalPodAutoscaler on CPU with at least 2
  replicas (its own `replicas`, if set, at least 2), rolls with `maxUnavailable: 0`, and has a
  PodDisruptionBudget and a Service selecting its pods.
- `probes`: every Deployment container has a startup probe, a liveness probe on `/healthz` and
  a readiness probe on `/readyz`, on a port it declares.
- `resources`: every container (Deployments and Jobs) requests and limits CPU and memory, and
  requests no more than its limits.
- `security`: every pod runs as non-root with the Dockerfile's numeric user, `RuntimeDefault`
  seccomp, no service account token; every container without privilege escalation, on a
  read-only root filesystem, with all capabilities dropped and none added.
- `image`: every image is a Dockerfile target (a Deployment's its own), tagged (or pinned by
  digest), never `latest`; a command is a file the Dockerfile puts in that image.
- `env`: no `envFrom`; a container names only variables its service reads; it sets every one
  the service requires (in production: `APP_ENV=production` and those required in production);
  secrets (`*SECRET*`, `*_KEY`, `DATABASE_URL`, `SMTP_URL`, `AUTH_PROVIDERS`,
  `OTEL_EXPORTER_OTLP_HEADERS`: a collector's credentials) only from a Secret;
  the gateway's `BACKEND_API_URL` is the backend's Service; the services start with
  `MIGRATE_ON_START=false` and set `SHUTDOWN_DRAIN_SECS` and `SHUTDOWN_TIMEOUT_SECS`.
- `shutdown`: `terminationGracePeriodSeconds` above drain + deadline (defaults 5 + 25), and no
  preStop hook (the images have no shell; the drain is the service's own).
- `secrets`: production renders no Secret (they are referenced, never committed); every
  Secret a pod needs is rendered, or is the CloudNativePG Cluster's `<cluster>-app`; rendered
  Secrets hold development values only, marked `dev-only` (or blank); both services get the
  same API_SECRET.
- `ingress`: only the gateway's Service is behind an Ingress, whose host is PUBLIC_ORIGIN's.
- `metrics`: each service's container has a port named `metrics`, METRICS_ADDR listens on all
  of the pod's interfaces on exactly that port (not the public listener's), the pod is annotated
  for Prometheus (`prometheus.io/scrape: "true"`, `prometheus.io/port` that port,
  `prometheus.io/path: /metrics`), and no Ingress routes to a Service port whose target is it.
- `network`: a default deny of both directions; DNS egress allowed; only gateway pods reach
  the backend's pods (its metrics port aside); only the gateway, the backend and the migration
  Job have egress to Postgres (port 5432); pods of the `monitoring` namespace reach each
  service's metrics port, only they do, and they reach no other port of it; a service whose
  OTEL_EXPORTER_OTLP_ENDPOINT is set may reach it (a Service `<name>.<namespace>.svc`: egress
  to that namespace on its port; anything else: an address block on its port).
- `cnpg`: a CloudNativePG `Cluster` (no schema in kubernetes-validate) is
  `postgresql.cnpg.io/v1`, has at least 2 instances in production (1 in dev), a storage size
  and an `initdb` bootstrap; a DATABASE_URL from `<cluster>-app` reads its `uri` key.
- `kinds`: no kind these rules do not know (a new custom resource needs its rule here).
"""

import base64
import ipaddress
import re
import urllib.parse

SERVICES = {"backend-api": "backend", "frontend-gateway": "gateway"}
# Each service's public listen address.
LISTEN_ADDR = {"backend-api": "BACKEND_API_ADDR", "frontend-gateway": "GATEWAY_ADDR"}
SECRET_NAME = re.compile(r"SECRET|_KEY$|^DATABASE_URL$|^SMTP_URL$|^AUTH_PROVIDERS$|^OTEL_EXPORTER_OTLP_HEADERS$")
DRAIN_DEFAULT, TIMEOUT_DEFAULT = 5, 25
# Where Prometheus runs: its pods alone reach the services' metrics port.
MONITORING_PEER = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}


# ---------------------------------------------------------------- facts from the repository

def read_settings(readme_text, env_example_text):
    """{variable: {"used_by": {"backend", "gateway"}, "required": None|"always"|"production"}}."""
    example = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", env_example_text, re.M))
    table = {}
    in_table = False
    for line in readme_text.splitlines():
        if line.startswith("| variable | used by | default |"):
            in_table = True
            continue
        if in_table:
            if not line.startswith("|"):
                break
            cells = [c.strip() for c in line.strip("|").split("|")]
            if set(cells[0]) <= {"-", " "}:
                continue
            used = {"both": {"backend", "gateway"}, "backend": {"backend"},
                    "gateway": {"gateway"}}.get(cells[1])
            if used is None:
                raise ValueError(f"README table: unknown 'used by' {cells[1]!r} in {line}")
            default = cells[2]
            required = ("production" if "required in production" in default
                        else "always" if "(required)" in default else None)
            for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", cells[0]):
                table[name] = {"used_by": used, "required": required}
    if not table:
        raise ValueError("README: the configuration table (| variable | used by | default |) is missing")
    if set(table) != example:
        raise ValueError("README's table and .env.example differ: "
                         f"only in README {sorted(set(table) - example)}, "
                         f"only in .env.example {sorted(example - set(table))}")
    return table


def read_dockerfile(text):
    """{"targets": {target: set of files it holds}, "uid": the runtime user's numeric id}."""
    stages, current, entry = {}, None, set()
    for line in text.splitlines():
        m = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.I)
        if m:
            current = m.group(2) or m.group(1)
            parent = m.group(1)
            stages[current] = set(stages.get(parent, set()))
            continue
        m = re.match(r"COPY\s+(?:--\S+\s+)*\S+\s+(/\S+)", line, re.I)
        if m and current:
            stages[current].add(m.group(1))
        if re.match(r"ENTRYPOINT\b", line) and current:
            entry.add(current)
    uid = re.search(r"runs as uid (\d+)", text)
    if not uid or "USER nonroot" not in text:
        raise ValueError("Dockerfile: expected `USER nonroot` and a comment `runs as uid N`")
    return {"targets": {t: stages[t] for t in entry}, "uid": int(uid.group(1))}


# ---------------------------------------------------------------- helpers

def matches(selector, labels):
    """Does a label selector (matchLabels / matchExpressions) select these labels?"""
    if selector is None:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        op, key, values = e["operator"], e["key"], e.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def workloads(docs):
    """(kind/name, pod template spec, pod labels, workload) of each Deployment and Job."""
    for d in docs:
        if d.get("kind") in ("Deployment", "Job"):
            t = d["spec"]["template"]
            yield (f"{d['kind']}/{d['metadata']['name']}", t["spec"],
                   t.get("metadata", {}).get("labels", {}), d)


def image_target(image):
    """(target, tag or None, digest or None) of an image reference."""
    digest = None
    if "@" in image:
        image, digest = image.split("@", 1)
    tag = None
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        last, tag = last.split(":", 1)
    return last, tag, digest


def env_map(container):
    return {e["name"]: e for e in container.get("env") or []}


def quantity(q):
    """A CPU or memory quantity as a float (cores, bytes)."""
    q = str(q)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6,
             "G": 1e9}
    for u in sorted(units, key=len, reverse=True):
        if q.endswith(u):
            return float(q[: -len(u)]) * units[u]
    return float(q)


# ---------------------------------------------------------------- the rules

def check(docs, facts, overlay):
    """The breaches of `docs` (rendered manifests) for `overlay` ("dev" or "production")."""
    out = []
    settings, docker = facts["settings"], facts["dockerfile"]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d.get("kind"), []).append(d)
    services = by_kind.get("Service", [])
    clusters = {c["metadata"]["name"]: c for c in by_kind.get("Cluster", [])}
    secrets = {s["metadata"]["name"]: s for s in by_kind.get("Secret", [])}

    # replicas
    for d in by_kind.get("Deployment", []):
        name = d["metadata"]["name"]
        labels = d["spec"]["template"]["metadata"].get("labels", {})
        if d["spec"].get("replicas") is not None and d["spec"]["replicas"] < 2:
            out.append(f"replicas: Deployment/{name} has replicas {d['spec']['replicas']} (< 2)")
        hpas = [h for h in by_kind.get("HorizontalPodAutoscaler", [])
                if h["spec"]["scaleTargetRef"].get("kind") == "Deployment"
                and h["spec"]["scaleTargetRef"].get("name") == name]
        if not hpas:
            out.append(f"replicas: Deployment/{name} has no HorizontalPodAutoscaler")
        for h in hpas:
            if h["spec"].get("minReplicas", 1) < 2:
                out.append(f"replicas: HorizontalPodAutoscaler/{h['metadata']['name']} minReplicas < 2")
            if not any(m.get("type") == "Resource" and m["resource"]["name"] == "cpu"
                       for m in h["spec"].get("metrics", [])):
                out.append(f"replicas: HorizontalPodAutoscaler/{h['metadata']['name']} does not scale on CPU")
        strategy = d["spec"].get("strategy", {})
        if strategy.get("type") != "RollingUpdate" or \
                strategy.get("rollingUpdate", {}).get("maxUnavailable") != 0:
            out.append(f"replicas: Deployment/{name} does not roll with maxUnavailable: 0")
        if not any(matches(p["spec"].get("selector"), labels)
                   for p in by_kind.get("PodDisruptionBudget", [])):
            out.append(f"replicas: Deployment/{name} has no PodDisruptionBudget")
        if not any(s["spec"].get("selector") and matches({"matchLabels": s["spec"]["selector"]}, labels)
                   for s in services):
            out.append(f"replicas: Deployment/{name} has no Service")

    for where, pod, labels, w in workloads(docs):
        deployment = w["kind"] == "Deployment"
        # security (pod)
        psc = pod.get("securityContext", {})
        if psc.get("runAsNonRoot") is not True:
            out.append(f"security: {where}: pod securityContext.runAsNonRoot is not true")
        if psc.get("runAsUser") != docker["uid"]:
            out.append(f"security: {where}: pod runAsUser is {psc.get('runAsUser')}, "
                       f"not the image's user {docker['uid']}")
        if pod.get("automountServiceAccountToken") is not False:
            out.append(f"security: {where}: automountServiceAccountToken is not false")
        if pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"):
            out.append(f"security: {where}: shares a host namespace")
        # shutdown
        if deployment:
            grace = pod.get("terminationGracePeriodSeconds", 30)
        for c in pod.get("containers", []) + pod.get("initContainers", []):
            cw = f"{where} container {c['name']}"
            csc = c.get("securityContext", {})
            seccomp = (csc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
            if seccomp != "RuntimeDefault":
                out.append(f"security: {cw}: seccompProfile is {seccomp}, not RuntimeDefault")
            if csc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
                out.append(f"security: {cw}: runAsNonRoot is not true")
            if csc.get("runAsUser", psc.get("runAsUser")) != docker["uid"]:
                out.append(f"security: {cw}: runs as user {csc.get('runAsUser', psc.get('runAsUser'))}")
            if csc.get("allowPrivilegeEscalation") is not False:
                out.append(f"security: {cw}: allowPrivilegeEscalation is not false")
            if csc.get("readOnlyRootFilesystem") is not True:
                out.append(f"security: {cw}: readOnlyRootFilesystem is not true")
            if "ALL" not in (csc.get("capabilities", {}).get("drop") or []):
                out.append(f"security: {cw}: capabilities do not drop ALL")
            if csc.get("capabilities", {}).get("add"):
                out.append(f"security: {cw}: adds capabilities")
            if csc.get("privileged"):
                out.append(f"security: {cw}: privileged")

            # resources
            res = c.get("resources", {})
            for kind in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in (res.get(kind) or {}):
                        out.append(f"resources: {cw}: no {r} in {kind}")
            for r in ("cpu", "memory"):
                try:
                    if quantity(res["requests"][r]) > quantity(res["limits"][r]):
                        out.append(f"resources: {cw}: {r} requests above limits")
                except KeyError:
                    pass

            # image
            target, tag, digest = image_target(c.get("image", ""))
            if target not in docker["targets"]:
                out.append(f"image: {cw}: {c.get('image')} is not a Dockerfile target "
                           f"({sorted(docker['targets'])})")
            if deployment and w["metadata"]["name"] in SERVICES and target != w["metadata"]["name"]:
                out.append(f"image: {cw}: {c.get('image')} is not the {w['metadata']['name']} target")
            if not digest and (tag is None or tag == "latest"):
                out.append(f"image: {cw}: {c.get('image')} has no tag or is `latest`")
            if c.get("command") and target in docker["targets"] and \
                    c["command"][0] not in docker["targets"][target]:
                out.append(f"image: {cw}: {c['command'][0]} is not in the {target} image")

            # probes
            if deployment:
                for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                    if probe not in c:
                        out.append(f"probes: {cw}: no {probe}")
                ports = {p.get("name") for p in c.get("ports", [])} | \
                        {p["containerPort"] for p in c.get("ports", [])}
                for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"),
                                    ("startupProbe", None)):
                    get = c.get(probe, {}).get("httpGet")
                    if probe in c and not get:
                        out.append(f"probes: {cw}: {probe} is not an HTTP GET")
                    elif get and path and get.get("path") != path:
                        out.append(f"probes: {cw}: {probe} asks {get.get('path')}, not {path}")
                    if get and get.get("port") not in ports:
                        out.append(f"probes: {cw}: {probe} port {get.get('port')} is not declared")
                if (c.get("lifecycle") or {}).get("preStop"):
                    out.append(f"shutdown: {cw}: has a preStop hook (the drain is the service's own)")

            # env
            service = SERVICES.get(target)
            env = env_map(c)
            if c.get("envFrom"):
                out.append(f"env: {cw}: envFrom hides which variables it sets")
            if service:
                for name, e in env.items():
                    known = settings.get(name)
                    if known is None or service not in known["used_by"]:
                        out.append(f"env: {cw}: {name} is not read by the {service}")
                    if SECRET_NAME.search(name) and "value" in e:
                        out.append(f"env: {cw}: {name} is a literal, not from a Secret")
                    ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                    if ref and ref["name"] in clusters or (ref and ref["name"].endswith("-app")
                                                            and ref["name"][:-4] in clusters):
                        if ref["key"] != "uri":
                            out.append(f"cnpg: {cw}: {name} reads key {ref['key']} of the "
                                       "Cluster's Secret, not `uri`")
                value = lambda n: env.get(n, {}).get("value")  # noqa: E731
                production = value("APP_ENV") == "production"
                if deployment and overlay == "production" and not production:
                    out.append(f"env: {cw}: APP_ENV is {value('APP_ENV')}, not production")
                if w["kind"] == "Job":
                    needed = {"DATABASE_URL"}
                else:
                    needed = {n for n, s in settings.items() if service in s["used_by"] and (
                        s["required"] == "always" or (s["required"] == "production" and production))}
                    needed |= {"APP_ENV", "MIGRATE_ON_START", "SHUTDOWN_DRAIN_SECS",
                               "SHUTDOWN_TIMEOUT_SECS"}
                    if service == "gateway":
                        needed.add("BACKEND_API_URL")
                for n in sorted(needed - set(env)):
                    out.append(f"env: {cw}: {n} is required and not set")
                if deployment and "MIGRATE_ON_START" in env and value("MIGRATE_ON_START") != "false":
                    out.append(f"env: {cw}: MIGRATE_ON_START is not false (the Job migrates)")
                if service == "gateway" and value("BACKEND_API_URL"):
                    u = urllib.parse.urlsplit(value("BACKEND_API_URL"))
                    backend = [s for s in services if s["metadata"]["name"] == u.hostname]
                    if not backend or not any(
                            p["port"] == u.port and matches({"matchLabels": backend[0]["spec"]["selector"]},
                                                            {"app.kubernetes.io/name": "backend-api"})
                            for p in backend[0]["spec"]["ports"]):
                        out.append(f"env: {cw}: BACKEND_API_URL {value('BACKEND_API_URL')} is not "
                                   "the backend's Service")
                if deployment:
                    try:
                        drain = int(value("SHUTDOWN_DRAIN_SECS") or DRAIN_DEFAULT)
                        timeout = int(value("SHUTDOWN_TIMEOUT_SECS") or TIMEOUT_DEFAULT)
                    except ValueError:
                        out.append(f"shutdown: {cw}: SHUTDOWN_* is not a number")
                    else:
                        if grace <= drain + timeout:
                            out.append(f"shutdown: {where}: terminationGracePeriodSeconds {grace} "
                                       f"is not above drain {drain} + deadline {timeout}")

            # secrets a container needs
            for name, e in env.items():
                ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if not ref or ref.get("optional"):
                    continue
                if ref["name"] in secrets:
                    if ref["key"] not in (secrets[ref["name"]].get("data") or {}):
                        out.append(f"secrets: {cw}: Secret {ref['name']} has no key {ref['key']}")
                elif overlay == "dev" and not (ref["name"].endswith("-app")
                                               and ref["name"][:-4] in clusters):
                    out.append(f"secrets: {cw}: Secret {ref['name']} is neither rendered nor a "
                               "CloudNativePG Cluster's")

    # secrets
    if overlay == "production" and secrets:
        out.append(f"secrets: production renders Secrets {sorted(secrets)}: they must be "
                   "created in the cluster, never committed")
    api_secrets = set()
    for s in secrets.values():
        for key, raw in (s.get("data") or {}).items():
            v = base64.b64decode(raw).decode()
            if v and "dev-only" not in v:
                out.append(f"secrets: Secret {s['metadata']['name']} key {key} is not marked dev-only")
            if key == "API_SECRET":
                api_secrets.add(v)
        if s.get("stringData"):
            out.append(f"secrets: Secret {s['metadata']['name']} uses stringData")
    if len(api_secrets) > 1:
        out.append("secrets: the services' API_SECRETs differ")

    # ingress
    gateway_origin = None
    for d in by_kind.get("Deployment", []):
        if d["metadata"]["name"] == "frontend-gateway":
            for c in d["spec"]["template"]["spec"]["containers"]:
                gateway_origin = env_map(c).get("PUBLIC_ORIGIN", {}).get("value")
    for ing in by_kind.get("Ingress", []):
        for rule in ing["spec"].get("rules", []):
            for p in rule.get("http", {}).get("paths", []):
                svc = p["backend"].get("service", {}).get("name")
                if svc != "frontend-gateway":
                    out.append(f"ingress: Ingress/{ing['metadata']['name']} routes to {svc}, "
                               "not only the gateway")
            if gateway_origin and rule.get("host") != urllib.parse.urlsplit(gateway_origin).hostname:
                out.append(f"ingress: Ingress/{ing['metadata']['name']} host {rule.get('host')} "
                           f"is not PUBLIC_ORIGIN's ({gateway_origin})")
    if not by_kind.get("Ingress"):
        out.append("ingress: no Ingress for the gateway")

    # network
    policies = by_kind.get("NetworkPolicy", [])
    if not any(p["spec"].get("podSelector") == {} and
               set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"} and
               not p["spec"].get("ingress") and not p["spec"].get("egress") for p in policies):
        out.append("network: no default-deny NetworkPolicy for ingress and egress")
    if not any(p["spec"].get("podSelector") == {} and any(
            port.get("port") == 53 for r in p["spec"].get("egress", []) for port in r.get("ports", []))
            for p in policies):
        out.append("network: no DNS egress for every pod")
    backend_pod = {"app.kubernetes.io/name": "backend-api"}
    ours = {"frontend-gateway", "backend-api", "migrate"}
    # The names and numbers of each service's metrics port.
    metrics_ports = {d["metadata"]["name"]: {"metrics"} | {
        p["containerPort"] for c in d["spec"]["template"]["spec"]["containers"]
        for p in c.get("ports", []) if p.get("name") == "metrics"} for d in by_kind.get("Deployment", [])}
    for p in policies:
        pname = p["metadata"]["name"]
        sel = p["spec"].get("podSelector")
        if matches(sel, backend_pod) and "Ingress" in p["spec"].get("policyTypes", []):
            for r in p["spec"].get("ingress", []):
                ports = [port.get("port") for port in r.get("ports", [])]
                if ports and all(port in metrics_ports.get("backend-api", set()) for port in ports):
                    continue  # the metrics port: the metrics rules below
                peers = r.get("from")
                if not peers or any("ipBlock" in f or "namespaceSelector" in f or
                                    f.get("podSelector") != {"matchLabels": {
                                        "app.kubernetes.io/name": "frontend-gateway"}}
                                    for f in peers):
                    out.append(f"network: NetworkPolicy/{pname} lets more than gateway pods reach the backend")
        for r in p["spec"].get("egress", []):
            ports = [port.get("port") for port in r.get("ports", [])]
            to_db = 5432 in ports or any(_cluster_pods(t.get("podSelector"), clusters)
                                         for t in r.get("to", []))
            if to_db and not (_selects_only(sel, ours) or _cluster_pods(sel, clusters)):
                out.append(f"network: NetworkPolicy/{pname} gives Postgres egress to pods "
                           "other than the gateway, the backend and the migration Job")
    for name in clusters:
        guards = [p for p in policies if "Ingress" in p["spec"].get("policyTypes", [])
                  and _cluster_pods(p["spec"].get("podSelector"), {name: None})]
        if not guards:
            out.append(f"network: no NetworkPolicy guards the pods of Cluster/{name}")
        for p in guards:
            for r in p["spec"].get("ingress", []):
                ports = [port.get("port") for port in r.get("ports", [])]
                if ports and 5432 not in ports:
                    continue
                for f in r.get("from") or [{}]:
                    sel = f.get("podSelector")
                    if set(f) != {"podSelector"} or not (
                            _selects_only(sel, ours) or _cluster_pods(sel, {name: None})):
                        out.append(f"network: NetworkPolicy/{p['metadata']['name']} lets more than "
                                   f"the services reach Postgres in Cluster/{name}")
    if not any(5432 in [port.get("port") for r in p["spec"].get("egress", [])
                        for port in r.get("ports", [])] for p in policies):
        out.append("network: no Postgres egress for the services")
    for p in policies:
        for r in p["spec"].get("egress", []):
            for t in r.get("to", []):
                if "ipBlock" in t:
                    try:
                        ipaddress.ip_network(t["ipBlock"]["cidr"])
                    except ValueError:
                        out.append(f"network: NetworkPolicy/{p['metadata']['name']} bad CIDR")

    # metrics: the port, METRICS_ADDR, the annotations, the Ingress; network: who reaches it
    for d in by_kind.get("Deployment", []):
        name = d["metadata"]["name"]
        if name not in SERVICES:
            continue
        template = d["spec"]["template"]
        labels = template.get("metadata", {}).get("labels", {})
        for c in template["spec"]["containers"]:
            if image_target(c.get("image", ""))[0] != name:
                continue
            cw = f"Deployment/{name} container {c['name']}"
            port = next((p["containerPort"] for p in c.get("ports", []) if p.get("name") == "metrics"), None)
            if port is None:
                out.append(f"metrics: {cw}: no port named `metrics`")
                continue
            ids = {"metrics", port}
            env = {k: e.get("value") for k, e in env_map(c).items()}
            addr = env.get("METRICS_ADDR")
            if not addr:
                out.append(f"metrics: {cw}: METRICS_ADDR is not set (no /metrics)")
            else:
                host, _, addr_port = addr.rpartition(":")
                if addr_port != str(port):
                    out.append(f"metrics: {cw}: METRICS_ADDR {addr} is not on the `metrics` containerPort {port}")
                if host not in ("0.0.0.0", "[::]"):
                    out.append(f"metrics: {cw}: METRICS_ADDR {addr} does not listen on every interface of the pod")
                public = env.get(LISTEN_ADDR[name]) or ""
                if public.rpartition(":")[2] == addr_port:
                    out.append(f"metrics: {cw}: METRICS_ADDR {addr} is the public listener's port")
            annotations = template.get("metadata", {}).get("annotations") or {}
            for key, want in (("prometheus.io/scrape", "true"), ("prometheus.io/port", str(port)),
                              ("prometheus.io/path", "/metrics")):
                if annotations.get(key) != want:
                    out.append(f"metrics: Deployment/{name}: pod annotation {key} is "
                               f"{annotations.get(key)!r}, not {want!r}")
            # No Ingress reaches it through a Service.
            for ing in by_kind.get("Ingress", []):
                backends = [p["backend"] for rule in ing["spec"].get("rules", [])
                            for p in rule.get("http", {}).get("paths", [])]
                if ing["spec"].get("defaultBackend"):
                    backends.append(ing["spec"]["defaultBackend"])
                for b in backends:
                    ref = b.get("service") or {}
                    svc = next((x for x in services if x["metadata"]["name"] == ref.get("name")), None)
                    if not svc or not matches({"matchLabels": svc["spec"].get("selector") or {}}, labels) \
                            or not svc["spec"].get("selector"):
                        continue
                    want = ref.get("port", {})
                    for sp in svc["spec"].get("ports", []):
                        if want.get("name", sp.get("name")) == sp.get("name") and \
                                want.get("number", sp["port"]) == sp["port"] and \
                                sp.get("targetPort", sp["port"]) in ids:
                            out.append(f"metrics: Ingress/{ing['metadata']['name']} routes to Service/"
                                       f"{svc['metadata']['name']} port {sp.get('name', sp['port'])}, "
                                       f"the metrics port of Deployment/{name}")
            # Pods of the monitoring namespace reach the metrics port, and only they; nothing more.
            allowed = False
            for p in policies:
                if "Ingress" not in p["spec"].get("policyTypes", []) or \
                        not matches(p["spec"].get("podSelector"), labels):
                    continue
                for r in p["spec"].get("ingress", []):
                    ports = [x.get("port") for x in r.get("ports", [])]
                    peers = r.get("from") or [{}]
                    if not ports or any(x in ids for x in ports):
                        if any(f != MONITORING_PEER for f in peers):
                            out.append(f"network: NetworkPolicy/{p['metadata']['name']} lets more than "
                                       f"the monitoring namespace reach Deployment/{name}'s metrics port")
                        elif ports and all(x in ids for x in ports):
                            allowed = True
                    if MONITORING_PEER in peers and (not ports or any(x not in ids for x in ports)):
                        out.append(f"network: NetworkPolicy/{p['metadata']['name']} lets the monitoring "
                                   f"namespace reach Deployment/{name}'s ports other than metrics")
            if not allowed:
                out.append(f"network: no NetworkPolicy lets the monitoring namespace reach "
                           f"Deployment/{name}'s metrics port")
            # Traces reach the collector.
            endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
            if endpoint:
                u = urllib.parse.urlsplit(endpoint)
                host = u.hostname or ""
                dest = u.port or (443 if u.scheme == "https" else 80)
                parts = host.split(".")
                in_cluster = len(parts) >= 3 and parts[2] == "svc"
                if in_cluster:
                    to = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": parts[1]}}}
                    fits = lambda t: t == to  # noqa: E731
                else:
                    fits = lambda t: "ipBlock" in t  # noqa: E731
                if not any("Egress" in p["spec"].get("policyTypes", [])
                           and matches(p["spec"].get("podSelector"), labels)
                           and any(any(fits(t) for t in r.get("to", []))
                                   and dest in [x.get("port") for x in r.get("ports", [])]
                                   for r in p["spec"].get("egress", []))
                           for p in policies):
                    where = f"namespace {parts[1]}" if in_cluster else "an address block"
                    out.append(f"network: no NetworkPolicy lets Deployment/{name} reach "
                               f"OTEL_EXPORTER_OTLP_ENDPOINT {endpoint} ({where}, port {dest})")

    # cnpg
    for name, c in clusters.items():
        if c.get("apiVersion") != "postgresql.cnpg.io/v1":
            out.append(f"cnpg: Cluster/{name} apiVersion is {c.get('apiVersion')}")
        instances = c.get("spec", {}).get("instances", 0)
        least = 2 if overlay == "production" else 1
        if not isinstance(instances, int) or instances < least:
            out.append(f"cnpg: Cluster/{name} has {instances} instances (at least {least} in {overlay})")
        if not c.get("spec", {}).get("storage", {}).get("size"):
            out.append(f"cnpg: Cluster/{name} has no storage size")
        if not c.get("spec", {}).get("bootstrap", {}).get("initdb"):
            out.append(f"cnpg: Cluster/{name} has no initdb bootstrap")
    for other in by_kind:
        if other and other not in KNOWN_KINDS:
            out.append(f"kinds: {other} is a kind no rule here checks")
    return out


KNOWN_KINDS = {"Namespace", "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
               "Ingress", "NetworkPolicy", "Job", "Secret", "ConfigMap", "Cluster"}


def _cluster_pods(selector, clusters):
    """True when `selector` (not empty) selects only the pods of one of `clusters`."""
    return bool(selector) and (selector.get("matchLabels") or {}).get("cnpg.io/cluster") in clusters


def _selects_only(selector, names):
    """True when `selector` can select only pods named (app.kubernetes.io/name) in `names`."""
    if not selector:
        return False
    name = (selector.get("matchLabels") or {}).get("app.kubernetes.io/name")
    if name is not None:
        return name in names
    for e in selector.get("matchExpressions") or []:
        if e["key"] == "app.kubernetes.io/name" and e["operator"] == "In":
            return set(e.get("values") or []) <= names
    return False
