#!/usr/bin/env python3
"""The rules of `just k8s-check` must be able to fail: each case below breaks one rule in a copy
of a real rendering (target/k8s-check/rendered/, written by scripts/k8s_check.py) or of the
documents the rules are derived from, and expects exactly that rule's breach; the renderings
themselves must keep every rule. A broken manifest must also fail `kubernetes-validate --strict`.
"""

import copy
import os
import sys
import tempfile
import unittest

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import k8s_check  # noqa: E402
import k8s_rules  # noqa: E402


def load(name):
    with open(os.path.join(k8s_check.RENDERED, f"{name}.yaml")) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def read(*path):
    with open(os.path.join(k8s_check.ROOT, *path)) as f:
        return f.read()


FACTS = k8s_check.facts()
GOOD = {name: load(name) for name in k8s_check.RENDERINGS}


def obj(docs, kind, name):
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def container(docs, kind, name):
    return obj(docs, kind, name)["spec"]["template"]["spec"]["containers"][0]


def env(docs, kind, name):
    return container(docs, kind, name)["env"]


def set_env(docs, kind, name, var, value):
    e = env(docs, kind, name)
    e[:] = [x for x in e if x["name"] != var]
    e.append({"name": var, "value": value})


def drop_env(docs, kind, name, var):
    e = env(docs, kind, name)
    e[:] = [x for x in e if x["name"] != var]


GW, BE = ("Deployment", "frontend-gateway"), ("Deployment", "backend-api")
JOB = ("Job", "migrate")

# (case, rendering, mutation, expected breach: its rule and a part of its text)
CASES = [
    ("no readiness probe", "production",
     lambda d: container(d, *GW).pop("readinessProbe"), "probes:", "no readinessProbe"),
    ("liveness on /readyz", "production",
     lambda d: container(d, *BE)["livenessProbe"]["httpGet"].update(path="/readyz"),
     "probes:", "livenessProbe asks /readyz"),
    ("no startup probe", "dev", lambda d: container(d, *BE).pop("startupProbe"),
     "probes:", "no startupProbe"),
    ("probe on an undeclared port", "production",
     lambda d: container(d, *GW)["startupProbe"]["httpGet"].update(port="admin"),
     "probes:", "port admin is not declared"),
    ("no memory limit", "production",
     lambda d: container(d, *BE)["resources"]["limits"].pop("memory"),
     "resources:", "no memory in limits"),
    ("no resources on the Job", "production", lambda d: container(d, *JOB).pop("resources"),
     "resources:", "Job/migrate container migrate: no cpu in requests"),
    ("requests above limits", "production",
     lambda d: container(d, *GW)["resources"]["requests"].update(memory="1Gi"),
     "resources:", "memory requests above limits"),
    ("runs as root", "production",
     lambda d: obj(d, *GW)["spec"]["template"]["spec"]["securityContext"].update(runAsUser=0),
     "security:", "not the image's user 65532"),
    ("writable root filesystem", "production",
     lambda d: container(d, *BE)["securityContext"].update(readOnlyRootFilesystem=False),
     "security:", "readOnlyRootFilesystem"),
    ("capabilities kept", "production",
     lambda d: container(d, *GW)["securityContext"]["capabilities"].update(drop=[]),
     "security:", "do not drop ALL"),
    ("privilege escalation", "dev",
     lambda d: container(d, *JOB)["securityContext"].update(allowPrivilegeEscalation=True),
     "security:", "allowPrivilegeEscalation"),
    ("no seccomp profile", "production",
     lambda d: obj(d, *BE)["spec"]["template"]["spec"]["securityContext"].pop("seccompProfile"),
     "security:", "not RuntimeDefault"),
    ("service account token mounted", "production",
     lambda d: obj(d, *GW)["spec"]["template"]["spec"].pop("automountServiceAccountToken"),
     "security:", "automountServiceAccountToken"),
    ("latest tag", "production",
     lambda d: container(d, *GW).update(image="registry.example.com/gateway-stack/frontend-gateway:latest"),
     "image:", "`latest`"),
    ("untagged image", "dev", lambda d: container(d, *BE).update(image="gateway-stack/backend-api"),
     "image:", "no tag"),
    ("another service's image", "production",
     lambda d: container(d, *GW).update(image="gateway-stack/backend-api:1.0.0"),
     "image:", "not the frontend-gateway target"),
    ("not a Dockerfile target", "production",
     lambda d: container(d, *BE).update(image="nginx:1.27"), "image:", "not a Dockerfile target"),
    ("a command the image lacks", "production",
     lambda d: container(d, *JOB).update(command=["/usr/local/bin/migrations"]),
     "image:", "/usr/local/bin/migrations is not in the backend-api image"),
    ("a gateway variable on the backend", "production",
     lambda d: set_env(d, *BE, "GATEWAY_ADDR", "0.0.0.0:3000"),
     "env:", "GATEWAY_ADDR is not read by the backend"),
    ("a variable nobody reads", "dev", lambda d: set_env(d, *GW, "NEST_API_URL", "http://x"),
     "env:", "NEST_API_URL is not read by the gateway"),
    ("SESSION_KEY missing", "production", lambda d: drop_env(d, *GW, "SESSION_KEY"),
     "env:", "SESSION_KEY is required and not set"),
    ("SMTP_URL missing in production", "production", lambda d: drop_env(d, *GW, "SMTP_URL"),
     "env:", "SMTP_URL is required and not set"),
    ("DATABASE_URL missing on the Job", "production", lambda d: drop_env(d, *JOB, "DATABASE_URL"),
     "env:", "DATABASE_URL is required and not set"),
    ("PUBLIC_ORIGIN missing in production", "production", lambda d: drop_env(d, *GW, "PUBLIC_ORIGIN"),
     "env:", "PUBLIC_ORIGIN is required and not set"),
    ("a secret as a literal", "production",
     lambda d: set_env(d, *BE, "API_SECRET", "x" * 48), "env:", "API_SECRET is a literal"),
    ("development mode in production", "production",
     lambda d: set_env(d, *BE, "APP_ENV", "development"), "env:", "APP_ENV is development"),
    ("migrating on start", "production",
     lambda d: set_env(d, *GW, "MIGRATE_ON_START", "true"), "env:", "MIGRATE_ON_START is not false"),
    ("drain settings missing", "production", lambda d: drop_env(d, *BE, "SHUTDOWN_DRAIN_SECS"),
     "env:", "SHUTDOWN_DRAIN_SECS is required and not set"),
    ("backend URL elsewhere", "production",
     lambda d: set_env(d, *GW, "BACKEND_API_URL", "http://127.0.0.1:8080"),
     "env:", "is not the backend's Service"),
    ("envFrom", "production",
     lambda d: container(d, *GW).update(envFrom=[{"secretRef": {"name": "everything"}}]),
     "env:", "envFrom"),
    ("grace period too short", "production",
     lambda d: obj(d, *GW)["spec"]["template"]["spec"].update(terminationGracePeriodSeconds=30),
     "shutdown:", "terminationGracePeriodSeconds 30 is not above drain 5 + deadline 25"),
    ("a longer deadline than the grace period", "production",
     lambda d: set_env(d, *BE, "SHUTDOWN_TIMEOUT_SECS", "60"),
     "shutdown:", "is not above drain 5 + deadline 60"),
    ("a preStop sleep as well", "production",
     lambda d: container(d, *GW).update(lifecycle={"preStop": {"sleep": {"seconds": 5}}}),
     "shutdown:", "preStop"),
    ("one replica", "production",
     lambda d: obj(d, "HorizontalPodAutoscaler", "backend-api")["spec"].update(minReplicas=1),
     "replicas:", "minReplicas < 2"),
    ("replicas 1 on the Deployment", "production",
     lambda d: obj(d, *GW)["spec"].update(replicas=1), "replicas:", "replicas 1 (< 2)"),
    ("a rollout that stops pods first", "production",
     lambda d: obj(d, *BE)["spec"]["strategy"]["rollingUpdate"].update(maxUnavailable=1),
     "replicas:", "maxUnavailable: 0"),
    ("no disruption budget", "production",
     lambda d: d.remove(obj(d, "PodDisruptionBudget", "frontend-gateway")),
     "replicas:", "Deployment/frontend-gateway has no PodDisruptionBudget"),
    ("no autoscaler", "production",
     lambda d: d.remove(obj(d, "HorizontalPodAutoscaler", "frontend-gateway")),
     "replicas:", "Deployment/frontend-gateway has no HorizontalPodAutoscaler"),
    ("a committed Secret in production", "production",
     lambda d: d.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "database"},
                         "data": {"DATABASE_URL": "cG9zdGdyZXM6Ly8="}}),
     "secrets:", "production renders Secrets ['database']"),
    ("a dev Secret not marked", "dev",
     lambda d: next(s for s in d if s["kind"] == "Secret")["data"].update(API_SECRET="aHVudGVyMg=="),
     "secrets:", "is not marked dev-only"),
    ("different API_SECRETs", "dev",
     lambda d: next(s for s in d if s["kind"] == "Secret")["data"].update(
         API_SECRET="ZGV2LW9ubHktb3RoZXI="), "secrets:", "API_SECRETs differ"),
    ("a Secret nobody renders in dev", "dev",
     lambda d: next(e for e in env(d, *BE) if e["name"] == "API_SECRET")["valueFrom"][
         "secretKeyRef"].update(name="missing"), "secrets:", "Secret missing is neither rendered"),
    ("the backend behind the Ingress", "production",
     lambda d: obj(d, "Ingress", "frontend-gateway")["spec"]["rules"][0]["http"]["paths"][0][
         "backend"]["service"].update(name="backend-api"), "ingress:", "routes to backend-api"),
    ("an Ingress host unlike PUBLIC_ORIGIN", "production",
     lambda d: set_env(d, *GW, "PUBLIC_ORIGIN", "https://other.example.com"),
     "ingress:", "is not PUBLIC_ORIGIN's"),
    ("no default deny", "production", lambda d: d.remove(obj(d, "NetworkPolicy", "default-deny")),
     "network:", "no default-deny"),
    ("no DNS", "production", lambda d: d.remove(obj(d, "NetworkPolicy", "dns-egress")),
     "network:", "no DNS egress"),
    ("the backend open to a namespace", "production",
     lambda d: obj(d, "NetworkPolicy", "backend-api-ingress")["spec"]["ingress"][0]["from"].append(
         {"namespaceSelector": {}}), "network:", "more than gateway pods reach the backend"),
    ("Postgres egress for every pod", "production",
     lambda d: obj(d, "NetworkPolicy", "database-egress")["spec"].update(podSelector={}),
     "network:", "gives Postgres egress to pods other than"),
    ("the Cluster open to everyone", "production-cnpg",
     lambda d: obj(d, "NetworkPolicy", "gateway-stack-db")["spec"]["ingress"][0]["from"].append(
         {"podSelector": {}}), "network:", "lets more than the services reach Postgres"),
    ("the Cluster unguarded", "production-cnpg",
     lambda d: d.remove(obj(d, "NetworkPolicy", "gateway-stack-db")),
     "network:", "no NetworkPolicy guards the pods of Cluster/gateway-stack-db"),
    ("one instance in production", "production-cnpg",
     lambda d: obj(d, "Cluster", "gateway-stack-db")["spec"].update(instances=1),
     "cnpg:", "1 instances (at least 2 in production)"),
    ("no storage size", "dev",
     lambda d: obj(d, "Cluster", "gateway-stack-db")["spec"]["storage"].pop("size"),
     "cnpg:", "no storage size"),
    ("another CNPG API version", "production-cnpg",
     lambda d: obj(d, "Cluster", "gateway-stack-db").update(apiVersion="postgresql.cnpg.io/v1beta1"),
     "cnpg:", "apiVersion is postgresql.cnpg.io/v1beta1"),
    ("the Cluster's Secret by another key", "production-cnpg",
     lambda d: next(e for e in env(d, *GW) if e["name"] == "DATABASE_URL")["valueFrom"][
         "secretKeyRef"].update(key="password"), "cnpg:", "reads key password"),
    ("no metrics port", "production",
     lambda d: container(d, *GW).update(ports=[p for p in container(d, *GW)["ports"] if p["name"] != "metrics"]),
     "metrics:", "no port named `metrics`"),
    ("METRICS_ADDR unset", "production", lambda d: drop_env(d, *BE, "METRICS_ADDR"),
     "metrics:", "METRICS_ADDR is not set"),
    ("METRICS_ADDR on another port", "production",
     lambda d: set_env(d, *BE, "METRICS_ADDR", "0.0.0.0:9465"),
     "metrics:", "METRICS_ADDR 0.0.0.0:9465 is not on the `metrics` containerPort 9464"),
    ("METRICS_ADDR on loopback", "dev", lambda d: set_env(d, *GW, "METRICS_ADDR", "127.0.0.1:9464"),
     "metrics:", "does not listen on every interface"),
    ("METRICS_ADDR on the public port", "production",
     lambda d: set_env(d, *GW, "METRICS_ADDR", "0.0.0.0:3000"),
     "metrics:", "METRICS_ADDR 0.0.0.0:3000 is the public listener's port"),
    ("not annotated for scraping", "production",
     lambda d: obj(d, *BE)["spec"]["template"]["metadata"]["annotations"].pop("prometheus.io/scrape"),
     "metrics:", "Deployment/backend-api: pod annotation prometheus.io/scrape is None"),
    ("scraped on the wrong port", "production",
     lambda d: obj(d, *GW)["spec"]["template"]["metadata"]["annotations"].update({"prometheus.io/port": "3000"}),
     "metrics:", "prometheus.io/port is '3000', not '9464'"),
    ("the metrics port behind the Ingress", "production",
     lambda d: (obj(d, "Service", "frontend-gateway")["spec"]["ports"].append(
         {"name": "metrics", "port": 9464, "targetPort": "metrics"}),
         obj(d, "Ingress", "frontend-gateway")["spec"]["rules"][0]["http"]["paths"][0]["backend"][
             "service"].update(port={"name": "metrics"})),
     "metrics:", "routes to Service/frontend-gateway port metrics, the metrics port"),
    ("the Ingress's Service port targeting the metrics port", "production",
     lambda d: obj(d, "Service", "frontend-gateway")["spec"]["ports"][0].update(targetPort=9464),
     "metrics:", "routes to Service/frontend-gateway port http, the metrics port of Deployment/frontend-gateway"),
    ("no monitoring policy", "production", lambda d: d.remove(obj(d, "NetworkPolicy", "metrics-ingress")),
     "network:", "no NetworkPolicy lets the monitoring namespace reach Deployment/frontend-gateway's metrics port"),
    ("metrics open to every namespace", "production",
     lambda d: obj(d, "NetworkPolicy", "metrics-ingress")["spec"]["ingress"][0]["from"].append(
         {"namespaceSelector": {}}), "network:", "lets more than the monitoring namespace reach"),
    ("metrics open to everyone", "dev",
     lambda d: obj(d, "NetworkPolicy", "metrics-ingress")["spec"]["ingress"][0].pop("from"),
     "network:", "lets more than the monitoring namespace reach Deployment/backend-api's metrics port"),
    ("the backend's metrics port open to another namespace", "production",
     lambda d: obj(d, "NetworkPolicy", "backend-api-ingress")["spec"]["ingress"].append(
         {"from": [{"namespaceSelector": {}}], "ports": [{"protocol": "TCP", "port": "metrics"}]}),
     "network:", "lets more than the monitoring namespace reach Deployment/backend-api's metrics port"),
    ("monitoring reaching the API port", "production",
     lambda d: obj(d, "NetworkPolicy", "metrics-ingress")["spec"]["ingress"][0]["ports"].append(
         {"protocol": "TCP", "port": "http"}),
     "network:", "lets the monitoring namespace reach Deployment/frontend-gateway's ports other than metrics"),
    ("no egress to the trace collector", "production",
     lambda d: d.remove(obj(d, "NetworkPolicy", "otlp-egress")),
     "network:", "no NetworkPolicy lets Deployment/frontend-gateway reach OTEL_EXPORTER_OTLP_ENDPOINT"),
    ("a trace collector in another namespace", "production",
     lambda d: set_env(d, *BE, "OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel-collector.tracing.svc:4318"),
     "network:", "(namespace tracing, port 4318)"),
    # (The gateway may: its egress to 443 outside the cluster is open for identity providers.)
    ("a trace collector outside the cluster", "production",
     lambda d: set_env(d, *BE, "OTEL_EXPORTER_OTLP_ENDPOINT", "https://otlp.example.com"),
     "network:", "(an address block, port 443)"),
    ("a collector's credentials as a literal", "production",
     lambda d: set_env(d, *GW, "OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer x"),
     "env:", "OTEL_EXPORTER_OTLP_HEADERS is a literal"),
    ("an unchecked custom resource", "production",
     lambda d: d.append({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}),
     "kinds:", "Widget is a kind no rule here checks"),
]


class Rules(unittest.TestCase):
    def test_the_renderings_keep_every_rule(self):
        for name, (overlay, _) in k8s_check.RENDERINGS.items():
            with self.subTest(name):
                self.assertEqual(k8s_rules.check(GOOD[name], FACTS, overlay), [])

    def test_the_variables_come_from_the_readme_table(self):
        # Say the README's table listed HTTP_WORKERS for the gateway only: the backend's then breaks.
        readme = read("README.md").replace(
            "| `HTTP_WORKERS` | both |", "| `HTTP_WORKERS` | gateway |")
        self.assertNotEqual(readme, read("README.md"))
        facts = dict(FACTS, settings=k8s_rules.read_settings(readme, read(".env.example")))
        breaches = k8s_rules.check(GOOD["production"], facts, "production")
        self.assertEqual(breaches, ["env: Deployment/backend-api container backend-api: "
                                    "HTTP_WORKERS is not read by the backend"])

    def test_required_variables_come_from_the_readme_table(self):
        readme = read("README.md").replace(
            "| `INVITATION_TTL_SECS` | backend | `604800` (7 days)",
            "| `INVITATION_TTL_SECS` | backend | (required)")
        self.assertNotEqual(readme, read("README.md"))
        facts = dict(FACTS, settings=k8s_rules.read_settings(readme, read(".env.example")))
        breaches = k8s_rules.check(GOOD["production"], facts, "production")
        self.assertEqual(breaches, ["env: Deployment/backend-api container backend-api: "
                                    "INVITATION_TTL_SECS is required and not set"])

    def test_a_readme_table_unlike_env_example_is_refused(self):
        with self.assertRaisesRegex(ValueError, "only in .env.example \\['RUST_LOG'\\]"):
            k8s_rules.read_settings(
                "\n".join(l for l in read("README.md").splitlines() if not l.startswith("| `RUST_LOG`")),
                read(".env.example"))

    def test_the_images_come_from_the_dockerfile(self):
        dockerfile = read("Dockerfile").replace("COPY --from=builder /out/migrate /usr/local/bin/migrate\n", "")
        self.assertNotEqual(dockerfile, read("Dockerfile"))
        facts = dict(FACTS, dockerfile=k8s_rules.read_dockerfile(dockerfile))
        self.assertEqual(k8s_rules.check(GOOD["production"], facts, "production"),
                         ["image: Job/migrate container migrate: /usr/local/bin/migrate is not in "
                          "the backend-api image"])

    def test_kubernetes_validate_strict_refuses_a_broken_manifest(self):
        docs = copy.deepcopy(GOOD["production"])
        deployment = obj(docs, *GW)
        deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", dir=k8s_check.WORK) as f:
            yaml.safe_dump_all(docs, f)
            f.flush()
            for version in k8s_check.VERSIONS:
                status, output = k8s_check.validate([f.name], version)
                self.assertNotEqual(status, 0, output)
                self.assertIn("livenessProbes", output)


def breaking(case):
    name, rendering, mutate, rule, text = case

    def test(self):
        docs = copy.deepcopy(GOOD[rendering])
        mutate(docs)
        breaches = k8s_rules.check(docs, FACTS, k8s_check.RENDERINGS[rendering][0])
        self.assertTrue(breaches, f"{name}: no breach")
        self.assertTrue(any(b.startswith(rule) and text in b for b in breaches),
                        f"{name}: expected {rule} ... {text}, got {breaches}")
    return test


for case in CASES:
    setattr(Rules, "test_breaks_" + case[0].replace(" ", "_").replace("'", ""), breaking(case))


if __name__ == "__main__":
    result = unittest.TextTestRunner(verbosity=1).run(
        unittest.defaultTestLoader.loadTestsFromTestCase(Rules))
    failed = len(result.failures) + len(result.errors)
    print(f"k8s_rules: {result.testsRun - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
