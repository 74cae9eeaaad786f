"""scripts/check-observability.py: the Python half of scripts/check-observability, run in its venv.

  check-observability.py rules REPO_ROOT OUT
      Writes the spec of deploy/k8s/base/prometheus-rules.yaml (a plain Prometheus rules file)
      to OUT, for promtool.
  check-observability.py dashboard-rules REPO_ROOT OUT
      Writes every PromQL expression of deploy/k8s/base/grafana-dashboard.json as a recording
      rule to OUT, so that `promtool check rules` parses them too (Grafana's $variables
      replaced first).
  check-observability.py static REPO_ROOT
      The tokenizer's self-test, then the rules' own conventions: every alert has a severity,
      a summary, a description and a runbook_url naming its heading in docs/operations.md,
      "Alerts" (and every heading there names an alert), and prometheus-rules.test.yaml shows
      each alert both firing and not firing.
  check-observability.py names REPO_ROOT NAME=SCRAPE_FILE...
      Every metric name in the dashboard's and the alerts' expressions against the families
      the live processes export (their /metrics, saved in SCRAPE_FILE), and the table of
      docs/operations.md, "Metrics", against the same families.

Names come from a small PromQL tokenizer (PromQL's own lexer rules: strings, label matchers,
ranges, keywords, functions and aggregations are not metric names). A family is known from
its `# TYPE` line, which our registry writes for every registered family, samples or not: a
histogram `x` exports `x_bucket`, `x_sum` and `x_count`, never `x`. Prints one line per
problem; exits 1 on any.
"""
import json
import os
import re
import sys

DASHBOARD = "deploy/k8s/base/grafana-dashboard.json"
PROMETHEUS_RULE = "deploy/k8s/base/prometheus-rules.yaml"
RULE_TESTS = "deploy/k8s/base/prometheus-rules.test.yaml"
OPERATIONS = "docs/operations.md"
SEVERITIES = {"warning", "critical"}
# Series Prometheus makes itself: not the binaries' to export.
PROMETHEUS_OWN = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling",
                  "scrape_series_added", "ALERTS", "ALERTS_FOR_STATE"}

# ---------------------------------------------------------------------------------------------
# PromQL: the metric names of an expression
# ---------------------------------------------------------------------------------------------
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
                "bottomk", "topk", "quantile", "limitk", "limit_ratio"}
# Followed by a parenthesised list of label names.
LABEL_LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = {"and", "or", "unless", "atan2", "bool", "offset", "inf", "nan"} | AGGREGATIONS | LABEL_LIST_KEYWORDS

TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
  | (?P<number>(?:0[xX][0-9a-fA-F]+|\d[\w.]*|\.\d[\w.]*))
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<var>\$\{[^}]*\}|\$\w+|\[\[\w+\]\])
  | (?P<punct>=~|!~|!=|==|<=|>=|[-+*/%^<>=,(){}\[\]@])
""", re.X)


def tokens(expr):
    pos, out = 0, []
    while pos < len(expr):
        m = TOKEN.match(expr, pos)
        if not m:
            raise ValueError("cannot read %r at %r" % (expr, expr[pos:pos + 20]))
        pos = m.end()
        if m.lastgroup not in ("space", "comment"):
            out.append((m.lastgroup, m.group()))
    return out


def metric_names(expr):
    """The metric names an expression selects, in order of appearance, each once."""
    toks, names, i = tokens(expr), [], 0
    braces = brackets = 0

    def add(name):
        if name not in names:
            names.append(name)

    def skip_parens(j):
        """j at "(": the index after its matching ")"."""
        depth = 0
        while j < len(toks):
            depth += {"(": 1, ")": -1}.get(toks[j][1], 0)
            j += 1
            if depth == 0:
                break
        return j

    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1][1] if i + 1 < len(toks) else None
        if text == "{":
            braces += 1
        elif text == "}":
            braces -= 1
        elif text == "[":
            brackets += 1
        elif text == "]":
            brackets -= 1
        elif kind == "ident" and brackets == 0:
            if braces:
                # A label name; {__name__="x"} selects the metric x.
                if text == "__name__" and nxt == "=" and i + 2 < len(toks) and toks[i + 2][0] == "string":
                    add(toks[i + 2][1][1:-1])
            elif text.lower() in LABEL_LIST_KEYWORDS:
                if nxt == "(":
                    i = skip_parens(i + 1)
                    continue
            elif text.lower() in KEYWORDS or nxt == "(":
                pass  # an operator, or a function's name
            else:
                add(text)
        i += 1
    return names


SELF_TEST = [
    ('sum by (le) (rate(foo_bucket{a="b", c=~"x|y"}[5m]))', ["foo_bucket"]),
    ('histogram_quantile(0.99, sum without (instance) (rate(a_bucket{n=~"$namespace"}[$__rate_interval])))'
     ' > bool 0.1 and on (x) group_left (y) b offset 5m', ["a_bucket", "b"]),
    ('max by (namespace, topic, partition) (lag) > 1000\nand\n'
     'max by (namespace, topic, partition) (delta(lag[10m])) > 0', ["lag"]),
    ('{__name__="x_total", job="y"}', ["x_total"]),
    ('count_values("le", foo) / ignoring(code) group_left sum(bar) unless baz @ start()', ["foo", "bar", "baz"]),
    ('label_replace(up, "dst", "$1", "src", "(.*)")', ["up"]),
    ('SUM BY (a) (rate(x[5m:1m])) AND Y # a comment naming z', ["x", "Y"]),
    ('sum(rate(c_total{topic=~".+\\\\.dlq", by="on"}[1h30m])) / 1e3 - -Inf', ["c_total"]),
    ('topk(5, max_over_time(g[$__range])) or vector(0)', ["g"]),
]


def self_test():
    failed = 0
    for expr, want in SELF_TEST:
        got = metric_names(expr)
        if got != want:
            print("  tokenizer self-test FAIL: %r: got %s, want %s" % (expr, got, want))
            failed += 1
    print("  tokenizer self-test: %d expressions%s" % (len(SELF_TEST), ", all read right" if not failed else
                                                      "; %d read wrong" % failed))
    return failed == 0


# ---------------------------------------------------------------------------------------------
# Where the expressions are
# ---------------------------------------------------------------------------------------------
def dashboard_exprs(path):
    """(where, expr) of every query of the dashboard: panels' targets (rows' nested panels too)
    and the templating variables' queries (label_values(SELECTOR, label): the selector)."""
    dash = json.load(open(path))
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append(('dashboard panel "%s" query %s' % (p.get("title"), t.get("refId")), t["expr"]))
            walk(p.get("panels", []))

    walk(dash.get("panels", []))
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        query = v.get("query")
        query = query.get("query", "") if isinstance(query, dict) else query or ""
        m = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", query)
        out.append(('dashboard variable "%s"' % v["name"], m.group(1) if m else query))
    return out


def load_yaml(path):
    import yaml  # the venv's; only the subcommands that read YAML need it
    return yaml.safe_load(open(path))


def rule_groups(repo):
    obj = load_yaml(os.path.join(repo, PROMETHEUS_RULE))
    if obj.get("kind") != "PrometheusRule" or not isinstance(obj.get("spec", {}).get("groups"), list):
        sys.exit("%s: not a PrometheusRule with spec.groups" % PROMETHEUS_RULE)
    return obj["spec"]["groups"]


def rule_exprs(repo):
    return [("alert %s" % r["alert"] if "alert" in r else "recording rule %s" % r["record"], str(r["expr"]))
            for g in rule_groups(repo) for r in g["rules"]]


def grafana_to_promql(expr):
    """Grafana's variables as promtool can parse them: intervals as 5m, the rest as text."""
    expr = re.sub(r"\$(__rate_interval|__interval|__range)\b|\$\{(__rate_interval|__interval|__range)\}", "5m", expr)
    return re.sub(r"\$\{[^}]*\}|\$\w+|\[\[\w+\]\]", "x", expr)


# ---------------------------------------------------------------------------------------------
# docs/operations.md
# ---------------------------------------------------------------------------------------------
def headings(text):
    """(level, title, GitHub's anchor) of every heading outside code fences."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        m = None if fenced else re.match(r"(#{1,6})\s+(.*?)\s*$", line)
        if m:
            title = m.group(2)
            anchor = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
            out.append((len(m.group(1)), title, anchor))
    return out


def section(text, title):
    """The lines of the section `title` (a `## ` heading), up to the next `## `."""
    lines, inside = [], False
    for line in text.splitlines():
        if line.startswith("## "):
            inside = line[3:].strip() == title
            continue
        if inside:
            lines.append(line)
    return lines


# ---------------------------------------------------------------------------------------------
# Subcommands
# ---------------------------------------------------------------------------------------------
def cmd_rules(repo, out):
    import yaml
    with open(out, "w") as f:
        f.write("# Generated by scripts/check-observability from %s: do not edit.\n" % PROMETHEUS_RULE)
        yaml.safe_dump({"groups": rule_groups(repo)}, f, sort_keys=False, width=1000)
    return True


def cmd_dashboard_rules(repo, out):
    import yaml
    rules = []
    for i, (where, expr) in enumerate(dashboard_exprs(os.path.join(repo, DASHBOARD))):
        rules.append({"record": "dashboard:query_%d" % i, "expr": grafana_to_promql(expr),
                      "labels": {"query": where}})
    with open(out, "w") as f:
        f.write("# Generated by scripts/check-observability from %s: every query as a recording rule, "
                "for promtool to parse.\n" % DASHBOARD)
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, f, sort_keys=False, width=1000)
    print("  dashboard: %d queries written as recording rules" % len(rules))
    return True


def cmd_static(repo):
    problems = []
    ok = self_test()
    ops = open(os.path.join(repo, OPERATIONS)).read()
    anchors = {a for _, _, a in headings(ops)}
    alerts_section = "\n".join(section(ops, "Alerts"))
    runbooks = {t for level, t, _ in headings(alerts_section) if level == 3}
    alerts = [r for g in rule_groups(repo) for r in g["rules"] if "alert" in r]
    for r in alerts:
        name, labels, ann = r["alert"], r.get("labels", {}), r.get("annotations", {})
        if labels.get("severity") not in SEVERITIES:
            problems.append("alert %s: severity must be one of %s" % (name, ", ".join(sorted(SEVERITIES))))
        for key in ("summary", "description", "runbook_url"):
            if not ann.get(key):
                problems.append("alert %s: no %s annotation" % (name, key))
        want = "%s#%s" % (OPERATIONS, name.lower())
        if ann.get("runbook_url") != want:
            problems.append("alert %s: runbook_url must be %s" % (name, want))
        if name not in runbooks or name.lower() not in anchors:
            problems.append("alert %s: no runbook: a heading `### %s` in %s, \"Alerts\"" % (name, name, OPERATIONS))
    for title in sorted(runbooks - {r["alert"] for r in alerts}):
        problems.append("%s, \"Alerts\": runbook %s names no alert of %s" % (OPERATIONS, title, PROMETHEUS_RULE))
    # Each alert shown firing and not firing by the unit tests.
    fires, quiet = set(), set()
    for case in load_yaml(os.path.join(repo, RULE_TESTS)).get("tests", []):
        for t in case.get("alert_rule_test", []):
            (fires if t.get("exp_alerts") else quiet).add(t["alertname"])
    for r in alerts:
        for seen, what in ((fires, "firing"), (quiet, "not firing")):
            if r["alert"] not in seen:
                problems.append("alert %s: %s has no test of it %s" % (r["alert"], RULE_TESTS, what))
    for p in problems:
        print("  FAIL " + p)
    print("  alerts: %d, each with severity, summary, description, a runbook in %s and tests firing and not "
          "firing%s" % (len(alerts), OPERATIONS, "" if not problems else ": %d problem(s)" % len(problems)))
    return ok and not problems


def parse_scrape(text):
    """family name -> type, from the # TYPE lines; and every sample's name."""
    families, samples = {}, set()
    for line in text.splitlines():
        m = re.match(r"#\s*TYPE\s+(\S+)\s+(\S+)", line)
        if m:
            families[m.group(1)] = m.group(2)
        elif line and not line.startswith("#"):
            samples.add(re.match(r"[^{\s]+", line).group())
    return families, samples


def series_names(name, kind):
    return {"histogram": [name + "_bucket", name + "_sum", name + "_count"],
            "summary": [name, name + "_sum", name + "_count"]}.get(kind, [name])


def cmd_names(repo, scrapes):
    problems = []
    families, exporters, known = {}, {}, set(PROMETHEUS_OWN)
    for arg in scrapes:
        label, path = arg.split("=", 1)
        fams, samples = parse_scrape(open(path).read())
        if not fams:
            problems.append("%s (%s): no metric families at all" % (label, path))
        for name, kind in fams.items():
            if families.setdefault(name, kind) != kind:
                problems.append("%s exports %s as a %s, another process as a %s" % (label, name, kind, families[name]))
            exporters.setdefault(name, []).append(label)
            known.update(series_names(name, kind))
        known.update(samples)
    exprs = dashboard_exprs(os.path.join(repo, DASHBOARD)) + rule_exprs(repo)
    known.update(r["record"] for g in rule_groups(repo) for r in g["rules"] if "record" in r)
    used = {}
    for where, expr in exprs:
        for name in metric_names(expr):
            used.setdefault(name, []).append(where)
    for name in sorted(used):
        if name in known:
            continue
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if families.get(name) == "histogram":
            why = "a histogram: select %s_bucket, _sum or _count" % name
        elif base != name and base in families:
            why = "%s is a %s, which has no %s" % (base, families[base], name[len(base):])
        else:
            why = "no process exports it"
        problems.append("unknown metric %s (%s), used by %s" % (name, why, "; ".join(used[name])))

    # The documentation's table against what runs.
    documented = {}
    for line in section(open(os.path.join(repo, OPERATIONS)).read(), "Metrics"):
        m = re.match(r"\|\s*`([a-zA-Z_:][\w:]*)`\s*\|\s*(\w+)\s*\|", line)
        if m:
            documented[m.group(1)] = m.group(2)
    for name, kind in sorted(families.items()):
        if name.startswith("coupon_") and documented.get(name) != kind:
            problems.append("%s (%s, exported by %s) is not in %s, \"Metrics\", as a %s"
                            % (name, kind, ", ".join(exporters[name]), OPERATIONS, kind))
    for name in sorted(set(documented) - set(families)):
        problems.append("%s, \"Metrics\", lists %s, which none of %s exports"
                        % (OPERATIONS, name, ", ".join(a.split("=")[0] for a in scrapes)))

    for p in problems:
        print("  FAIL " + p)
    print("  metric names: %d used by %d dashboard queries and %d rules, against %d families exported by %s: %s"
          % (len(used), len(exprs) - len(rule_exprs(repo)), len(rule_exprs(repo)), len(families),
             ", ".join(a.split("=")[0] for a in scrapes), "%d problem(s)" % len(problems) if problems else "all known"))
    print("  %s, \"Metrics\": %d families listed%s" % (OPERATIONS, len(documented),
                                                      ", each exported, as documented" if not problems else ""))
    return not problems


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    commands = {"rules": cmd_rules, "dashboard-rules": cmd_dashboard_rules, "static": cmd_static}
    if cmd == "names":
        ok = cmd_names(args[0], args[1:])
    elif cmd in commands:
        ok = commands[cmd](*args)
    else:
        sys.exit("usage: see the docstring of %s" % sys.argv[0])
    sys.exit(0 if ok else 1)
