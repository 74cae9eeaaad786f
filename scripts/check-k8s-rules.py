"""scripts/check-k8s-rules.py: steps 3 and 4 of scripts/check-k8s, run by it in its venv.

  python scripts/check-k8s-rules.py REPO_ROOT RENDER_DIR K8S_VERSION...

Validates every rendered object (RENDER_DIR/<overlay>.yaml) against the Kubernetes schemas, then
checks the service's own rules, which no generic linter knows. Each rule names the problem it
guards against; docs/kubernetes.md, "CI: scripts/check-k8s", lists them. An overlay whose name
starts with "dev" is a development one; every other overlay is held to the production rules
(PROD_ONLY below). Prints one line per problem and a summary; exits 1 on any problem.
"""
import glob
import ipaddress
import os
import re
import sys

import kubernetes_validate as kv
import yaml

repo, render_dir, versions = sys.argv[1], sys.argv[2], sys.argv[3:]

# Custom resources, skipped by kind: their schemas come with their operators' CRDs, which
# are not on any registry this check may use. The rules below check the fields we depend on.
CRD_KINDS = {
    ("keda.sh", "ScaledObject"), ("keda.sh", "TriggerAuthentication"),
    ("kafka.strimzi.io", "Kafka"), ("kafka.strimzi.io", "KafkaNodePool"),
    ("kafka.strimzi.io", "KafkaTopic"),
    ("postgresql.cnpg.io", "Cluster"), ("postgresql.cnpg.io", "Pooler"),
    ("monitoring.coreos.com", "ServiceMonitor"), ("monitoring.coreos.com", "PrometheusRule"),
    ("cert-manager.io", "Certificate"),
}
# Our binaries: the image name (before any registry, tag or digest) -> the source of its
# settings table (common/service/settings.h), whose names are its flags; each flag's
# environment twin is the name in upper case.
BINARIES = {
    "coupon-gateway": "gateway/config.cc",
    "coupon-issuer-worker": "issuer-worker/config.cc",
    "coupon-outbox-scheduler": "redis-issuer/outbox/outbox_scheduler.cc",
}
OUR_IMAGES = set(BINARIES) | {"coupon-migrate"}
# Read by libpq itself, which all three binaries and psql use: not flags, still read.
LIBPQ_ENV = {"PGPASSWORD", "PGPASSFILE", "PGSSLROOTCERT", "PGAPPNAME"}
# PostgreSQL connections each process opens at most, besides the gateway's PG_POOL_SIZE.
PG_CONNECTIONS = {"coupon-issuer-worker": 1, "coupon-outbox-scheduler": 1, "coupon-migrate": 1}
# superuser_reserved_connections, PostgreSQL's default, which CloudNativePG keeps.
PG_RESERVED = 3
# The lag threshold: a worker's decisions/s (docs/benchmarks.md, the slowest one-worker
# figure) times how long a new worker takes to decide anything; below that a join only
# costs a rebalance pause.
WORKER_DECISIONS_PER_S = 3517
NEW_WORKER_SECONDS = 20
# How long a load balancer with externalTrafficPolicy Local needs to stop sending a node
# connections (10-30 s of failed health checks), plus kube-proxy's and DNS's 5 s.
LB_DEREGISTRATION_S = 35
# Annotations that make a LoadBalancer internal, per cloud.
INTERNAL_LB = {
    "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
    "networking.gke.io/load-balancer-type": "Internal",
    "service.beta.kubernetes.io/azure-load-balancer-internal": "true",
}
# Addresses that are not the internet: RFC 1918 and the shared range some CNIs use for pods.
PRIVATE_NETS = [ipaddress.ip_network(n) for n in
                ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")]
SECRETISH = re.compile(r"PASSWORD|SECRET|TOKEN|KAFKA_PROPERTIES", re.I)
PASSWORD_IN_DSN = re.compile(r"://[^/@:\s]+:[^/@\s]+@|(^|\s)password\s*=", re.I)
SECRET_KAFKA_KEYS = re.compile(r"(^|,)\s*(sasl\.password|ssl\.key\.password|sasl\.oauthbearer\.client\.secret)\s*=")
DIGEST = re.compile(r"@sha256:(?!0{64})[0-9a-f]{64}$")

problems, notices, skipped, validated = [], [], {}, 0


def flags_of(settings_source):
    text = open(os.path.join(repo, settings_source)).read()
    flags = {m.group(1).upper()
             for m in re.finditer(r'Setting<[^(]*?>\(\s*"([a-z0-9_]+)"', text, re.S)}
    if not flags:
        sys.exit("check-k8s-rules: no settings found in %s: has the table moved?" % settings_source)
    return flags


FLAGS = {image: flags_of(path) for image, path in BINARIES.items()}
def stack_default(var):
    m = re.search(r'\$\{%s:=(\d+)\}' % var, open(os.path.join(repo, "scripts/stack")).read())
    return int(m.group(1))


def seconds(duration):
    """An absl duration as used here (500ms, 10s, 5m, 1h) in seconds."""
    total = 0.0
    for value, unit in re.findall(r"([\d.]+)(ms|s|m|h)", str(duration)):
        total += float(value) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total


def mebibytes(quantity):
    """A Kubernetes memory quantity (512Mi, 1Gi, 2G) or a Redis size (200mb) in MiB."""
    m = re.fullmatch(r"([\d.]+)\s*([A-Za-z]*)", str(quantity).strip())
    if not m:
        return None
    units = {"": 1 / 2**20, "b": 1 / 2**20, "ki": 1 / 1024, "k": 1000 / 2**20, "kb": 1 / 1024,
             "mi": 1, "m": 1e6 / 2**20, "mb": 1, "gi": 1024, "g": 1e9 / 2**20, "gb": 1024}
    unit = m.group(2).lower()
    return float(m.group(1)) * units[unit] if unit in units else None


def is_private(cidr):
    net = ipaddress.ip_network(cidr, strict=False)
    return any(net.subnet_of(p) for p in PRIVATE_NETS if p.version == net.version)


def image_name(image):
    return image.split("@")[0].rsplit(":", 1)[0].rsplit("/", 1)[-1]


def libpq_params(dsn):
    """key=value DSN -> dict (URIs give {'uri': ...}: their hosts come from the Secret)."""
    if "://" in dsn:
        return {"uri": dsn}
    return dict(re.findall(r"(\w+)\s*=\s*(\S+)", dsn))


def properties(text):
    return dict(kv_.split("=", 1) for kv_ in text.split(",") if "=" in kv_)


class Overlay:
    def __init__(self, name, objs):
        self.name, self.objs = name, objs
        self.prod = not name.startswith("dev")
        self.by_kind = {}
        for o in objs:
            self.by_kind.setdefault(o["kind"], []).append(o)
        self.configmaps = {o["metadata"]["name"]: o.get("data", {}) for o in self.kinds("ConfigMap")}
        self.workloads = {}  # image name -> (object, container, env)
        # Pod templates: (object, pod spec) for Deployments, StatefulSets and Jobs.
        self.pods = [(o, o["spec"]["template"]["spec"]) for o in self.kinds("Deployment", "StatefulSet", "Job")]

    def kinds(self, *kinds):
        return [o for k in kinds for o in self.by_kind.get(k, [])]

    def bad(self, msg):
        problems.append("%s: %s" % (self.name, msg))

    def env_of(self, container):
        """name -> env entry: the container's env, then its ConfigMaps' keys (env wins)."""
        env = {e["name"]: e for e in container.get("env", [])}
        for ref in container.get("envFrom", []):
            cm = ref.get("configMapRef", {}).get("name")
            for k, v in self.configmaps.get(cm, {}).items():
                env.setdefault(k, {"name": k, "value": v})
        return env

    @staticmethod
    def literal(env, name, default=None):
        """The value of `name`, $(X) references to Secrets replaced by <secret>."""
        entry = env.get(name)
        if entry is None:
            return default
        if "valueFrom" in entry:
            return "<secret>" if "secretKeyRef" in entry["valueFrom"] else default
        return re.sub(r"\$\((\w+)\)",
                      lambda m: Overlay.literal(env, m.group(1), m.group(0)), str(entry.get("value", "")))


def check_secrets(ov):
    """No secret in the manifests: none rendered, none in a ConfigMap, secret settings from Secrets."""
    if ov.kinds("Secret"):
        ov.bad("renders a Secret; secrets are created outside the manifests (docs/kubernetes.md)")
    for cm, data in ov.configmaps.items():
        for k, v in data.items():
            if PASSWORD_IN_DSN.search(str(v)) or SECRET_KAFKA_KEYS.search(str(v)) or (
                    SECRETISH.search(k) and not k.endswith("_FILE")):
                ov.bad("ConfigMap %s holds %s, which belongs in a Secret" % (cm, k))


def check_pods(ov):
    """Hardened pods; every variable given to our binaries is read by them."""
    for o, spec in ov.pods:
        wname = "%s %s" % (o["kind"], o["metadata"]["name"])
        if spec.get("securityContext", {}).get("runAsNonRoot") is not True:
            ov.bad("%s: pod securityContext.runAsNonRoot is not true" % wname)
        if spec.get("automountServiceAccountToken") is not False:
            ov.bad("%s: automountServiceAccountToken is not false" % wname)
        if spec.get("enableServiceLinks") is not False:
            ov.bad("%s: enableServiceLinks is not false (service variables could shadow flags)" % wname)
        for c in spec["containers"]:
            where = "%s/%s" % (wname, c["name"])
            csc = c.get("securityContext", {})
            if not (csc.get("readOnlyRootFilesystem") is True and csc.get("allowPrivilegeEscalation") is False
                    and csc.get("capabilities", {}).get("drop") == ["ALL"]):
                ov.bad("%s: needs readOnlyRootFilesystem, no privilege escalation, capabilities drop ALL" % where)
            env = ov.env_of(c)
            referenced = {m for e in env.values() for m in re.findall(r"\$\((\w+)\)", str(e.get("value", "")))}
            image = image_name(c["image"])
            for k in ("REDIS_PASSWORD", "PGPASSWORD"):
                if k in env and "secretKeyRef" not in env[k].get("valueFrom", {}):
                    ov.bad("%s: %s must come from a Secret" % (where, k))
            kafka = env.get("KAFKA_PROPERTIES", {})
            if "KAFKA_PROPERTIES" in env and "secretKeyRef" not in kafka.get("valueFrom", {}):
                for k in re.findall(r"\$\((\w+)\)", kafka.get("value", "")) or ["KAFKA_PROPERTIES"]:
                    if "secretKeyRef" not in env.get(k, {}).get("valueFrom", {}):
                        ov.bad("%s: KAFKA_PROPERTIES must come from a Secret, or be composed of $(X) from "
                               "Secrets and settings without secrets (%s is not from a Secret)" % (where, k))
            if "PG_DSN" in env and "secretKeyRef" not in env["PG_DSN"].get("valueFrom", {}):
                dsn = ov.literal(env, "PG_DSN", "")
                if PASSWORD_IN_DSN.search(dsn):
                    ov.bad("%s: PG_DSN holds a password: take it from a Secret (PGPASSWORD)" % where)
                elif "secretKeyRef" not in env.get("PGPASSWORD", {}).get("valueFrom", {}) and "PGPASSFILE" not in env:
                    ov.bad("%s: PG_DSN has no password and PGPASSWORD does not come from a Secret" % where)
            if "KAFKA_PROPERTIES" in env and "secretKeyRef" not in env["KAFKA_PROPERTIES"].get("valueFrom", {}):
                if SECRET_KAFKA_KEYS.search(env["KAFKA_PROPERTIES"].get("value", "")):
                    ov.bad("%s: KAFKA_PROPERTIES spells out a secret: reference it from a Secret" % where)
            if image in FLAGS:
                for k in sorted(env.keys() - FLAGS[image] - LIBPQ_ENV - referenced):
                    if not k.startswith("GLOG_"):
                        ov.bad("%s: %s is not a flag of %s (%s), so it would be ignored"
                               % (where, k, image, BINARIES[image]))
            if image in OUR_IMAGES:
                ov.workloads[image] = (o, c, env)
                if ov.prod and not DIGEST.search(c["image"]):
                    ov.bad("%s: image %s is not pinned by digest (@sha256:...; a tag can be moved)"
                           % (where, c["image"]))


def check_probes(ov):
    """Liveness asks "is the process alive", readiness "may it take traffic": never the same."""
    for image in ("coupon-gateway", "coupon-issuer-worker", "coupon-outbox-scheduler"):
        if image not in ov.workloads:
            continue
        _, c, _ = ov.workloads[image]
        live, ready = c.get("livenessProbe", {}), c.get("readinessProbe", {})
        if live.get("httpGet", {}).get("path") != "/healthz":
            ov.bad("%s: liveness must GET /healthz (200 while the process runs); a gateway catching up "
                   "or a worker rejoining would otherwise be restarted instead of taken out of rotation" % image)
        if ready.get("httpGet", {}).get("path") != "/readyz":
            ov.bad("%s: readiness must GET /readyz (on the metrics port, which works under TLS)" % image)
        if "grpc" in live or "grpc" in c.get("startupProbe", {}):
            ov.bad("%s: no gRPC liveness or startup probe: grpc.health.v1 is NOT_SERVING while catching up, "
                   "and the kubelet cannot speak TLS" % image)


def services_selecting(ov, name):
    return [s for s in ov.kinds("Service")
            if s["spec"].get("selector", {}).get("app.kubernetes.io/name") == name]


def check_gateway(ov):
    if "coupon-gateway" not in ov.workloads:
        return
    dep, c, env = ov.workloads["coupon-gateway"]
    spec = dep["spec"]["template"]["spec"]
    hpas = [h for h in ov.kinds("HorizontalPodAutoscaler") if h["spec"]["scaleTargetRef"]["name"] == "coupon-gateway"]
    if not hpas or hpas[0]["spec"].get("minReplicas", 1) < 2:
        ov.bad("coupon-gateway needs a HorizontalPodAutoscaler with minReplicas >= 2")
    # Drain: preStop (while the endpoint is removed everywhere), then SIGTERM: --shutdown_grace
    # bounds the open calls and the producer's flush together; 5 s for the exit.
    pre = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    pre_s = float(pre[1]) if pre[:1] == ["sleep"] else 0
    need = pre_s + seconds(ov.literal(env, "SHUTDOWN_GRACE", "10s")) + 5
    if spec.get("terminationGracePeriodSeconds", 30) < need:
        ov.bad("coupon-gateway: terminationGracePeriodSeconds %s < preStop + SHUTDOWN_GRACE + 5 s = %gs"
               % (spec.get("terminationGracePeriodSeconds", 30), need))
    tls = bool(ov.literal(env, "TLS_CERT_FILE"))
    mounts = secret_mounts(spec, c)
    for svc in services_selecting(ov, "coupon-gateway"):
        sname = svc["metadata"]["name"]
        if svc["spec"].get("type") == "LoadBalancer" and svc["spec"].get("externalTrafficPolicy") == "Local" \
                and pre_s < LB_DEREGISTRATION_S:
            ov.bad("coupon-gateway: preStop sleeps %gs behind LoadBalancer %s with externalTrafficPolicy Local; "
                   "its health checks need %d s to drop the node" % (pre_s, sname, LB_DEREGISTRATION_S))
        for port in svc["spec"].get("ports", []):
            if tls and port.get("appProtocol") == "kubernetes.io/h2c":
                ov.bad("Service %s: appProtocol h2c (cleartext HTTP/2) but the gateway serves TLS" % sname)
        if svc["spec"].get("type") == "LoadBalancer" and ov.prod:
            notes = svc["metadata"].get("annotations", {})
            if not any(notes.get(k) == v for k, v in INTERNAL_LB.items()):
                ov.bad("Service %s: a LoadBalancer in production must be internal (one of: %s)"
                       % (sname, ", ".join("%s=%s" % kv_ for kv_ in INTERNAL_LB.items())))
            ranges = svc["spec"].get("loadBalancerSourceRanges", [])
            if not ranges or not all(is_private(r) for r in ranges):
                ov.bad("Service %s: loadBalancerSourceRanges must list private ranges only, got %s" % (sname, ranges))
    if ov.prod:
        # The trust boundary (docs/kubernetes.md): callers are the company's backends, each
        # identified by a client certificate of the callers' CA; the traffic is encrypted.
        for var in ("TLS_CERT_FILE", "TLS_KEY_FILE", "TLS_CLIENT_CA_FILE"):
            path = ov.literal(env, var, "")
            if not path:
                ov.bad("coupon-gateway: %s is not set: production serves mutual TLS" % var)
            elif not any(path.startswith(m + "/") for m in mounts):
                ov.bad("coupon-gateway: %s=%s is not in a mounted Secret" % (var, path))
        for p in ov.kinds("NetworkPolicy"):
            if p["spec"]["podSelector"].get("matchLabels") != {"app.kubernetes.io/name": "coupon-gateway"}:
                continue
            for rule in p["spec"].get("ingress", []):
                froms = rule.get("from")
                if not froms or any("ipBlock" in f and not is_private(f["ipBlock"]["cidr"]) for f in froms):
                    ov.bad("NetworkPolicy %s: the gateway's port must be open to private addresses only"
                           % p["metadata"]["name"])
    # Memory: the caches set in MiB stay within half the container's limit.
    limit = mebibytes(c.get("resources", {}).get("limits", {}).get("memory", ""))
    caches = [ov.literal(env, k) for k in ("RESULT_CACHE_MIB", "HOLDER_CACHE_MIB")]
    if limit and all(caches):
        total = sum(float(x) for x in caches)
        if total > limit / 2:
            ov.bad("coupon-gateway: RESULT_CACHE_MIB + HOLDER_CACHE_MIB = %g MiB, more than half the %g MiB "
                   "memory limit" % (total, limit))


def secret_mounts(spec, c):
    """Mount paths of the container's Secret volumes."""
    secret_volumes = {v["name"] for v in spec.get("volumes", []) if "secret" in v}
    return [m["mountPath"] for m in c.get("volumeMounts", []) if m["name"] in secret_volumes]


def check_spread(ov):
    """Production: the minimum replicas can never share a zone."""
    if not ov.prod:
        return
    for image in ("coupon-gateway", "coupon-issuer-worker"):
        if image not in ov.workloads:
            continue
        spec = ov.workloads[image][0]["spec"]["template"]["spec"]
        if not any(t.get("topologyKey") == "topology.kubernetes.io/zone"
                   and t.get("whenUnsatisfiable") == "DoNotSchedule"
                   and "pod-template-hash" in t.get("matchLabelKeys", [])
                   for t in spec.get("topologySpreadConstraints", [])):
            ov.bad("%s: needs a zone topologySpreadConstraint with whenUnsatisfiable DoNotSchedule and "
                   "matchLabelKeys [pod-template-hash]" % image)


def check_kafka(ov):
    uses_kafka = "coupon-issuer-worker" in ov.workloads or (
        "coupon-gateway" in ov.workloads
        and ov.literal(ov.workloads["coupon-gateway"][2], "ISSUER", "kafka") == "kafka")
    # A Kafka cluster nobody uses is cost and risk; topics alone are kept on purpose (the
    # Redis issuer keeps them, so switching back loses nothing).
    kafka_objs = ov.kinds("Kafka", "KafkaNodePool")
    if kafka_objs and not uses_kafka:
        ov.bad("renders %s, but nothing here uses Kafka" % ", ".join(sorted({o["kind"] for o in kafka_objs})))
    for k in ov.kinds("Kafka"):
        conf = k["spec"]["kafka"].get("config", {})
        if int(conf.get("min.insync.replicas", 1)) < 2 or int(conf.get("default.replication.factor", 1)) < 3 \
                or int(conf.get("offsets.topic.replication.factor", 1)) < 3 \
                or conf.get("unclean.leader.election.enable") is not False:
            ov.bad("Kafka %s: needs min.insync.replicas >= 2, default and offsets replication >= 3, "
                   "unclean.leader.election.enable false" % k["metadata"]["name"])

    # Topics: as scripts/stack creates them, replicated, and where their operator watches.
    topics = {}
    for t in ov.kinds("KafkaTopic"):
        s, tname = t["spec"], t["metadata"]["name"]
        topics[s.get("topicName", tname)] = s
        conf = s.get("config", {})
        if s.get("replicas", 0) < 3 or int(conf.get("min.insync.replicas", 0)) < 2 \
                or conf.get("unclean.leader.election.enable") is not False:
            ov.bad("KafkaTopic %s: needs replicas >= 3, min.insync.replicas >= 2 and "
                   "unclean.leader.election.enable: false" % tname)
    if uses_kafka:
        for topic, var in (("coupon-issue-request", "REQUEST_PARTITIONS"), ("coupon-issue-result", "RESULT_PARTITIONS"),
                           ("coupon-issue-request.dlq", "DLQ_PARTITIONS")):
            want, have = stack_default(var), topics.get(topic, {}).get("partitions")
            if have != want:
                ov.bad("KafkaTopic %s: %s partitions, scripts/stack makes %d (%s)" % (topic, have, want, var))
    for image, (o, c, env) in ov.workloads.items():
        brokers = ov.literal(env, "KAFKA_BROKERS")
        if not brokers or not uses_kafka:
            continue
        if image == next(i for i, w in sorted(ov.workloads.items()) if ov.literal(w[2], "KAFKA_BROKERS")):
            check_topic_namespace(ov, brokers, o["metadata"].get("namespace"))
        props_entry = env.get("KAFKA_PROPERTIES", {})
        literal = properties(ov.literal(env, "KAFKA_PROPERTIES", "") or "")
        if literal.get("acks", "all") not in ("all", "-1") or literal.get("enable.idempotence", "true") != "true":
            ov.bad("%s: KAFKA_PROPERTIES turns off acks=all or enable.idempotence" % image)
        if ov.prod:
            refs = [props_entry] + [env.get(r, {}) for r in re.findall(r"\$\((\w+)\)", props_entry.get("value", ""))]
            if not props_entry or any(r.get("valueFrom", {}).get("secretKeyRef", {}).get("optional") for r in refs):
                ov.bad("%s: KAFKA_PROPERTIES must be set from a required Secret (optional: a missing Secret "
                       "would mean plaintext)" % image)
            ca = literal.get("ssl.ca.location", "")
            mounts = secret_mounts(o["spec"]["template"]["spec"], c)
            if literal.get("security.protocol") not in ("SSL", "SASL_SSL") or \
                    not any(ca.startswith(mnt + "/") for mnt in mounts):
                ov.bad("%s: KAFKA_PROPERTIES must set security.protocol SSL or SASL_SSL and ssl.ca.location in a "
                       "mounted Secret (the broker's CA), after the Secret's part" % image)

    # Workers: scaled on the lag of partitions that have lag, never past the partitions.
    if "coupon-issuer-worker" in ov.workloads:
        _, _, env = ov.workloads["coupon-issuer-worker"]
        sos = [s for s in ov.kinds("ScaledObject") if s["spec"]["scaleTargetRef"]["name"] == "coupon-issuer-worker"]
        if len(sos) != 1:
            ov.bad("coupon-issuer-worker needs exactly one ScaledObject, found %d" % len(sos))
        for so in sos:
            check_scaled_object(ov, so, env, topics)
        session = float(ov.literal(env, "SESSION_TIMEOUT_MS", "10000")) / 1000
        for var in ("PG_IDLE_IN_TRANSACTION_TIMEOUT", "PG_KEEPALIVES_IDLE"):
            value = ov.literal(env, var)
            if value and seconds(value) > session + 15:
                ov.bad("coupon-issuer-worker: %s=%s lets a frozen worker hold its coupons past the session "
                       "timeout + 15 s (%gs)" % (var, value, session + 15))


def check_topic_namespace(ov, brokers, namespace):
    """The Topic Operator of `<cluster>-kafka-bootstrap[.<namespace>]` watches that namespace."""
    host = brokers.split(",")[0].rsplit(":", 1)[0].split(".")
    m = re.fullmatch(r"(.+)-kafka-bootstrap", host[0])
    want_ns = host[1] if len(host) > 1 else namespace
    for t in ov.kinds("KafkaTopic"):
        label = t["metadata"].get("labels", {}).get("strimzi.io/cluster")
        if not m or label != m.group(1) or t["metadata"].get("namespace") != want_ns:
            ov.bad("KafkaTopic %s (namespace %s, cluster %s) is not where the Topic Operator of %s watches "
                   "(cluster %s, namespace %s): it would never be created"
                   % (t["metadata"]["name"], t["metadata"].get("namespace"), label, brokers,
                      m.group(1) if m else "?", want_ns))


def check_scaled_object(ov, so, env, topics):
    trig = [t for t in so["spec"]["triggers"] if t["type"] == "kafka"]
    meta = trig[0]["metadata"] if trig else {}
    group = ov.literal(env, "GROUP_ID", "coupon-issuer")
    topic = ov.literal(env, "REQUEST_TOPIC", "coupon-issue-request")
    if meta.get("consumerGroup") != group or meta.get("topic") != topic:
        ov.bad("ScaledObject: kafka trigger watches %s/%s, the workers run %s/%s"
               % (meta.get("consumerGroup"), meta.get("topic"), group, topic))
    if meta.get("bootstrapServersFromEnv") and meta["bootstrapServersFromEnv"] not in env:
        ov.bad("ScaledObject: bootstrapServersFromEnv %s is not in the worker's environment"
               % meta["bootstrapServersFromEnv"])
    partitions = topics.get(topic, {}).get("partitions")
    if partitions is None or so["spec"].get("maxReplicaCount", 100) > partitions:
        ov.bad("ScaledObject: maxReplicaCount %s exceeds the %s partitions of %s"
               % (so["spec"].get("maxReplicaCount"), partitions, topic))
    # A hot coupon is one partition: summed lag would add workers that only cause rebalances.
    if str(meta.get("limitToPartitionsWithLag")).lower() != "true" or \
            str(meta.get("allowIdleConsumers", "false")).lower() != "false":
        ov.bad("ScaledObject: needs limitToPartitionsWithLag \"true\" (and allowIdleConsumers \"false\")")
    floor = WORKER_DECISIONS_PER_S * NEW_WORKER_SECONDS // 1000 * 1000
    if int(meta.get("lagThreshold", 0)) < floor:
        ov.bad("ScaledObject: lagThreshold %s is below %d decisions/s x %d s = %d, the backlog a worker clears "
               "before a new one could join" % (meta.get("lagThreshold"), WORKER_DECISIONS_PER_S,
                                                NEW_WORKER_SECONDS, floor))
    behavior = so["spec"].get("advanced", {}).get("horizontalPodAutoscalerConfig", {}).get("behavior", {})
    down, up = behavior.get("scaleDown", {}), behavior.get("scaleUp", {})
    if down.get("stabilizationWindowSeconds", 0) < 300 or up.get("stabilizationWindowSeconds", 0) < 30 or \
            any(p["type"] != "Pods" or p["value"] > 1 or p["periodSeconds"] < 60 for p in down.get("policies", [{}])
                if p):
        ov.bad("ScaledObject: needs cooldowns: scaleUp stabilization >= 30 s, scaleDown stabilization >= 300 s "
               "and at most 1 pod per 60 s")
    if ov.prod:
        ref = trig[0].get("authenticationRef", {}).get("name") if trig else None
        auths = {a["metadata"]["name"]: a for a in ov.kinds("TriggerAuthentication")}
        params = {p["parameter"] for p in auths.get(ref, {}).get("spec", {}).get("secretTargetRef", [])}
        if not {"tls", "ca"} <= params:
            ov.bad("ScaledObject: its TriggerAuthentication %s needs the parameters tls and ca (the broker's CA)"
                   % ref)


def check_postgres(ov):
    clusters = ov.kinds("Cluster")
    if not clusters:
        return
    cluster = clusters[0]
    poolers = {p["metadata"]["name"]: p for p in ov.kinds("Pooler")}
    max_conn = int(cluster["spec"].get("postgresql", {}).get("parameters", {}).get("max_connections", 100))
    used, parts = PG_RESERVED, ["%d reserved" % PG_RESERVED]
    for p in poolers.values():
        params = p["spec"].get("pgbouncer", {}).get("parameters", {})
        n = p["spec"].get("instances", 1) * int(params.get("max_db_connections", params.get("default_pool_size", 20)))
        used += n
        parts.append("pooler %s %d" % (p["metadata"]["name"], n))
    for image, (o, c, env) in sorted(ov.workloads.items()):
        dsn = ov.literal(env, "PG_DSN")
        if dsn is None:
            continue
        params = libpq_params(dsn)
        hosts = [h.split(".")[0] for h in params.get("host", "").split(",") if h]
        pooler = poolers.get(hosts[0]) if hosts else None
        if pooler:
            if image != "coupon-gateway" and pooler["spec"].get("pgbouncer", {}).get("poolMode") == "transaction":
                ov.bad("%s: connects through the transaction-mode Pooler %s, which loses its per-session "
                       "settings (lock_timeout, advisory locks): connect to the primary" % (image, hosts[0]))
            continue
        per_pod = int(ov.literal(env, "PG_POOL_SIZE", "8")) if image == "coupon-gateway" else PG_CONNECTIONS[image]
        pods = max_replicas(ov, o)
        used += pods * per_pod
        parts.append("%s %d x %d" % (image, pods, per_pod))
        if ov.prod:
            if params.get("target_session_attrs") != "read-write" or len(hosts) < 2 or \
                    params.get("sslmode") not in ("verify-ca", "verify-full"):
                ov.bad("%s: PG_DSN must name several hosts with target_session_attrs=read-write and sslmode "
                       "verify-full (a failover is then followed by libpq alone)" % image)
    if used > max_conn:
        ov.bad("PostgreSQL connections: %s = %d > max_connections %d" % (" + ".join(parts), used, max_conn))
    if ov.prod:
        pg = cluster["spec"].get("postgresql", {})
        sync = pg.get("synchronous", {})
        if cluster["spec"].get("instances", 1) < 3 or sync.get("method") not in ("any", "first") or \
                int(sync.get("number", 0)) < 1 or sync.get("dataDurability") != "required" or \
                str(pg.get("parameters", {}).get("synchronous_commit", "on")) in ("off", "local") or \
                "minSyncReplicas" in cluster["spec"]:
            ov.bad("Cluster %s: needs 3 instances and postgresql.synchronous {method any|first, number >= 1, "
                   "dataDurability required}, synchronous_commit not off/local, no minSyncReplicas"
                   % cluster["metadata"]["name"])


def max_replicas(ov, obj):
    name = obj["metadata"]["name"]
    for h in ov.kinds("HorizontalPodAutoscaler"):
        if h["spec"]["scaleTargetRef"]["name"] == name:
            return h["spec"]["maxReplicas"]
    for s in ov.kinds("ScaledObject"):
        if s["spec"]["scaleTargetRef"]["name"] == name:
            return s["spec"].get("maxReplicaCount", 100)
    return obj["spec"].get("replicas", obj["spec"].get("parallelism", 1))


def check_network(ov):
    """Only the gateway takes traffic from outside."""
    deny = [p for p in ov.kinds("NetworkPolicy") if p["spec"].get("podSelector") == {}
            and "Ingress" in p["spec"].get("policyTypes", []) and not p["spec"].get("ingress")]
    if not deny:
        ov.bad("no default-deny ingress NetworkPolicy")
    for p in ov.kinds("NetworkPolicy"):
        for rule in p["spec"].get("ingress", []):
            if not rule.get("from") and (
                    p["spec"]["podSelector"].get("matchLabels") != {"app.kubernetes.io/name": "coupon-gateway"}
                    or [x.get("port") for x in rule.get("ports", [])] != [50051]):
                ov.bad("NetworkPolicy %s opens a port to everyone; only the gateway's 50051 may be" % p["metadata"]["name"])
    for s in ov.kinds("Service"):
        if s["spec"].get("type") in ("LoadBalancer", "NodePort") and s["metadata"]["name"] != "coupon-gateway":
            ov.bad("Service %s is exposed outside the cluster; only coupon-gateway may be" % s["metadata"]["name"])


def check_redis(ov):
    """A Redis that reaches its memory limit refuses writes; it is never OOM-killed or evicts."""
    for o, spec in ov.pods:
        for c in spec["containers"]:
            if not image_name(c["image"]).startswith("redis"):
                continue
            args = c.get("command", []) + c.get("args", [])
            opts = {args[i]: args[i + 1] for i in range(len(args) - 1) if str(args[i]).startswith("--")}
            limit = mebibytes(c.get("resources", {}).get("limits", {}).get("memory", ""))
            maxmem = mebibytes(opts.get("--maxmemory", ""))
            if not limit or not maxmem or maxmem > 0.4 * limit or opts.get("--maxmemory-policy") != "noeviction":
                ov.bad("%s %s: Redis needs --maxmemory <= 40%% of its memory limit (%s; the append-only file's "
                       "rewrite forks) and --maxmemory-policy noeviction" % (o["kind"], o["metadata"]["name"],
                                                                             c.get("resources", {}).get(
                                                                                 "limits", {}).get("memory")))


def check_dockerfile():
    """The images' base is pinned by digest: DEBIAN_IMAGE has no tag-only default."""
    text = open(os.path.join(repo, "deploy/docker/Dockerfile")).read()
    stages = set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", text, re.M | re.I))
    for ref in re.findall(r"^FROM\s+(\S+)", text, re.M | re.I):
        if ref not in stages and ref not in ("${DEBIAN_IMAGE}", "${BINARIES}"):
            problems.append("deploy/docker/Dockerfile: FROM %s: name the base as ${DEBIAN_IMAGE}, pinned by digest" % ref)
    m = re.search(r"^ARG\s+DEBIAN_IMAGE(=(\S*))?\s*$", text, re.M)
    if not m or (m.group(2) and not DIGEST.search(m.group(2))):
        problems.append("deploy/docker/Dockerfile: ARG DEBIAN_IMAGE must have no default, or one pinned by digest")


CHECKS = (check_secrets, check_pods, check_probes, check_gateway, check_spread, check_kafka,
          check_postgres, check_network, check_redis)


def check_overlay(name, objs):
    overlay = Overlay(name, objs)
    for check in CHECKS:
        check(overlay)


def load(path):
    return [o for o in yaml.safe_load_all(open(path)) if o]


def validate(name, objs):
    global validated
    for o in objs:
        api = o["apiVersion"]
        key = (api.split("/")[0] if "/" in api else "", o["kind"])
        ident = "%s %s/%s" % (name, o["kind"], o["metadata"]["name"])
        if key in CRD_KINDS:
            skipped[o["kind"]] = skipped.get(o["kind"], 0) + 1
            if not isinstance(o.get("spec"), dict):
                problems.append("%s: custom resource without a spec" % ident)
            continue
        for version in versions:
            try:
                kv.validate(o, version, strict=True)
            except kv.ValidationError as e:
                problems.append("%s: Kubernetes %s schema: %s: %s"
                                % (ident, version, ".".join(str(p) for p in e.path), e.message))
            except kv.SchemaNotFoundError:
                problems.append("%s: Kubernetes %s has no %s in %s (custom resources must be listed in CRD_KINDS)"
                                % (ident, version, o["kind"], api))
        validated += 1


def self_test():
    """Each rule, shown to fail: the rendered overlays broken one way at a time (the way each
    item of issue 15 and 11 described the old manifests), and the rule expected to say so."""
    import copy

    def obj(objs, kind, name):
        found = [o for o in objs if o["kind"] == kind and (o["metadata"]["name"] == name
                 or (kind == "ConfigMap" and o["metadata"]["name"].startswith(name + "-")))]
        assert found, "self-test: no %s %s" % (kind, name)
        return found[0]

    def container(objs, kind, name):
        return obj(objs, kind, name)["spec"]["template"]["spec"]["containers"][0]

    def env(objs, kind, name, var):
        return [e for e in container(objs, kind, name)["env"] if e["name"] == var][0]

    def cm(objs, name):
        return obj(objs, "ConfigMap", name).setdefault("data", {})

    def set_(d, key, value):
        d[key] = value

    gw, wk = ("Deployment", "coupon-gateway"), ("Deployment", "coupon-issuer-worker")
    trigger = lambda o: obj(o, "ScaledObject", "coupon-issuer-worker")["spec"]["triggers"][0]["metadata"]
    cluster = lambda o: obj(o, "Cluster", "coupon-pg")["spec"]
    cases = [
        # Issue 15, deployment item 1: plaintext gRPC on a public load balancer.
        ("prod", "gateway without TLS", lambda o: cm(o, "coupon-gateway-config").pop("TLS_CERT_FILE"),
         "TLS_CERT_FILE is not set"),
        ("prod", "gateway without client CA", lambda o: cm(o, "coupon-gateway-config").pop("TLS_CLIENT_CA_FILE"),
         "TLS_CLIENT_CA_FILE is not set"),
        ("prod", "public load balancer", lambda o: obj(o, "Service", "coupon-gateway")["metadata"].pop("annotations"),
         "must be internal"),
        ("prod", "load balancer open to the internet",
         lambda o: set_(obj(o, "Service", "coupon-gateway")["spec"], "loadBalancerSourceRanges", ["0.0.0.0/0"]),
         "private ranges only"),
        ("prod", "h2c on a TLS port",
         lambda o: set_(obj(o, "Service", "coupon-gateway")["spec"]["ports"][0], "appProtocol", "kubernetes.io/h2c"),
         "appProtocol h2c"),
        ("prod", "gateway port open to every address",
         lambda o: obj(o, "NetworkPolicy", "coupon-gateway-grpc")["spec"]["ingress"][0].pop("from"),
         "private addresses only"),
        # Item 2: KEDA on summed lag.
        ("prod", "summed lag", lambda o: trigger(o).pop("limitToPartitionsWithLag"), "limitToPartitionsWithLag"),
        ("prod", "lagThreshold 1000", lambda o: set_(trigger(o), "lagThreshold", "1000"), "lagThreshold 1000 is below"),
        ("prod", "no cooldown", lambda o: obj(o, "ScaledObject", "coupon-issuer-worker")["spec"].pop("advanced"),
         "needs cooldowns"),
        # Item 3: Kafka TLS without a CA, optional credentials.
        ("prod", "optional Kafka credentials",
         lambda o: set_(env(o, *gw, "KAFKA_AUTH_PROPERTIES")["valueFrom"]["secretKeyRef"], "optional", True),
         "required Secret"),
        ("prod", "no ssl.ca.location", lambda o: set_(env(o, *wk, "KAFKA_PROPERTIES"), "value",
                                                      "$(KAFKA_AUTH_PROPERTIES),security.protocol=SASL_SSL"),
         "ssl.ca.location"),
        ("prod", "KEDA without the CA",
         lambda o: obj(o, "TriggerAuthentication", "coupon-kafka-keda")["spec"]["secretTargetRef"].pop(),
         "parameters tls and ca"),
        # Item 4: topics where no Topic Operator watches.
        ("prod", "topics in the service's namespace",
         lambda o: [set_(t["metadata"], "namespace", "coupon") for t in o if t["kind"] == "KafkaTopic"],
         "never be created"),
        # Item 5: connections.
        ("prod", "max_connections below the sum",
         lambda o: set_(cluster(o)["postgresql"]["parameters"], "max_connections", "50"), "PostgreSQL connections"),
        ("prod", "gateways straight to PostgreSQL without a pooler",
         lambda o: set_(cm(o, "coupon-gateway-config"), "PG_DSN", cm(o, "coupon-issuer-worker-config")["PG_DSN"])
         or set_(cluster(o)["postgresql"]["parameters"], "max_connections", "100"), "PostgreSQL connections"),
        ("prod", "workers through the transaction pooler",
         lambda o: set_(cm(o, "coupon-issuer-worker-config"), "PG_DSN", cm(o, "coupon-gateway-config")["PG_DSN"]),
         "transaction-mode Pooler"),
        # Item 6: a drain shorter than the load balancer's.
        ("prod", "preStop 5 s", lambda o: set_(container(o, *gw)["lifecycle"]["preStop"]["exec"], "command",
                                               ["sleep", "5"]), "preStop sleeps 5s"),
        ("prod", "grace 30 s", lambda o: set_(obj(o, *gw)["spec"]["template"]["spec"],
                                              "terminationGracePeriodSeconds", 30), "terminationGracePeriodSeconds 30"),
        # Item 7: spread only preferred.
        ("prod", "zone spread preferred", lambda o: set_(obj(o, *wk)["spec"]["template"]["spec"][
            "topologySpreadConstraints"][0], "whenUnsatisfiable", "ScheduleAnyway"), "zone topologySpreadConstraint"),
        ("prod", "no matchLabelKeys", lambda o: obj(o, *gw)["spec"]["template"]["spec"][
            "topologySpreadConstraints"][0].pop("matchLabelKeys"), "zone topologySpreadConstraint"),
        # Item 8: dev-redis with a Kafka, Redis without maxmemory.
        ("dev-redis", "a Kafka nobody uses", lambda o: o.append(
            {"apiVersion": "kafka.strimzi.io/v1beta2", "kind": "Kafka", "metadata": {"name": "k"},
             "spec": {"kafka": {"config": {}}}}), "nothing here uses Kafka"),
        ("dev-redis", "Redis without maxmemory",
         lambda o: set_(container(o, "StatefulSet", "coupon-redis"), "args", ["--appendonly", "yes"]),
         "Redis needs --maxmemory"),
        ("dev-redis", "Redis evicting",
         lambda o: container(o, "StatefulSet", "coupon-redis")["args"].__setitem__(-1, "allkeys-lru"),
         "Redis needs --maxmemory"),
        # Item 9: mutable tags.
        ("prod", "image by tag", lambda o: set_(container(o, *gw), "image", "registry.example.com/coupon-gateway:0.1.0"),
         "not pinned by digest"),
        # Item 10: liveness = readiness.
        ("prod", "liveness on /readyz",
         lambda o: set_(container(o, *gw)["livenessProbe"]["httpGet"], "path", "/readyz"), "liveness must GET /healthz"),
        ("dev", "gRPC liveness", lambda o: set_(container(o, *gw), "livenessProbe", {"grpc": {"port": 50051}}),
         "liveness must GET /healthz"),
        # Issue 11: replication and HA settings.
        ("prod", "unclean leader election", lambda o: [t["spec"]["config"].pop("unclean.leader.election.enable")
                                                       for t in o if t["kind"] == "KafkaTopic"], "unclean"),
        ("prod", "min.insync.replicas 1", lambda o: [set_(t["spec"]["config"], "min.insync.replicas", 1)
                                                     for t in o if t["kind"] == "KafkaTopic"], "min.insync"),
        ("prod", "asynchronous standby allowed",
         lambda o: set_(cluster(o)["postgresql"]["synchronous"], "dataDurability", "preferred"), "synchronous"),
        ("prod", "one PostgreSQL", lambda o: set_(cluster(o), "instances", 1), "synchronous"),
        ("prod", "single-host DSN", lambda o: set_(cm(o, "coupon-issuer-worker-config"), "PG_DSN",
                                                   "host=coupon-pg-rw.coupon.svc dbname=coupon sslmode=verify-full"),
         "several hosts"),
        ("prod", "acks overridden", lambda o: set_(env(o, *gw, "KAFKA_PROPERTIES"), "value",
                                                   env(o, *gw, "KAFKA_PROPERTIES")["value"] + ",acks=1"), "acks"),
        # Secrets and flags.
        ("prod", "password in a ConfigMap",
         lambda o: set_(cm(o, "coupon-gateway-config"), "PG_DSN", "postgresql://coupon:hunter2@db/coupon"),
         "belongs in a Secret"),
        ("dev", "misspelt flag", lambda o: set_(cm(o, "coupon-gateway-config"), "SHUTDOWN_GRACE_S", "10"),
         "not a flag of coupon-gateway"),
        ("dev", "frozen worker holds its coupons",
         lambda o: set_(cm(o, "coupon-issuer-worker-config"), "PG_IDLE_IN_TRANSACTION_TIMEOUT", "60s"),
         "frozen worker"),
        ("dev", "caches above half the limit",
         lambda o: set_(cm(o, "coupon-gateway-config"), "RESULT_CACHE_MIB", "1024"), "more than half"),
        ("dev", "too many workers", lambda o: set_(obj(o, "ScaledObject", "coupon-issuer-worker")["spec"],
                                                    "maxReplicaCount", 12), "maxReplicaCount 12 exceeds"),
    ]
    rendered = {os.path.basename(p)[:-5]: load(p) for p in glob.glob(os.path.join(render_dir, "*.yaml"))}
    failed = 0
    for name in sorted(rendered):
        del problems[:]
        check_overlay(name, copy.deepcopy(rendered[name]))
        if problems:
            print("  self-test FAIL: %s as rendered already fails: %s" % (name, problems[0]))
            failed += 1
    for name, what, mutate, expect in cases:
        objs = copy.deepcopy(rendered[name])
        mutate(objs)
        del problems[:]
        check_overlay(name, objs)
        if not any(expect in p for p in problems):
            print("  self-test FAIL: %s with %s: expected a problem saying %r, got %s"
                  % (name, what, expect, problems or "none"))
            failed += 1
    del problems[:]
    print("  self-test: %d broken manifests, each caught by its rule%s"
          % (len(cases), "" if not failed else "; %d NOT caught" % failed))
    return failed == 0


if __name__ == "__main__":
    if versions[:1] == ["--self-test"]:
        sys.exit(0 if self_test() else 1)
    for path in sorted(glob.glob(os.path.join(render_dir, "*.yaml"))):
        name = os.path.basename(path)[:-5]
        objs = load(path)
        validate(name, objs)
        check_overlay(name, objs)
    check_dockerfile()
    for n in notices:
        print("  note: " + n)
    for p in problems:
        print("  FAIL " + p)
    print("  schemas: %d objects valid against Kubernetes %s (strict); custom resources skipped by kind: %s"
          % (validated, " and ".join(versions), ", ".join("%s x%d" % item for item in sorted(skipped.items())) or "none"))
    print("  service rules: %s" % ("%d problem(s)" % len(problems) if problems else "all hold"))
    sys.exit(1 if problems else 0)
