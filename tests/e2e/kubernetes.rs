//! `deploy/kubernetes/`: every overlay is rendered with `kubectl kustomize` (Debian's
//! `kubernetes-client` is installed when kubectl is missing), every rendered object is validated
//! strictly (unknown fields are errors) against the Kubernetes schemas of kubernetes-validate
//! (pinned in `python/requirements.txt`), and the facts no schema can hold are checked here:
//! Services, PodDisruptionBudgets and the ServiceMonitor select real pods and name real ports,
//! probes name real ports, and each pod's configuration — the ConfigMap file and the Secret's
//! environment, exactly as the pod gets them — is accepted by the real binary
//! (`--print-config`, which refuses unknown keys) and puts the data dir, the token file and the
//! listeners where the manifests mount and expose them.
//!
//! kubernetes-validate has no schema for custom resources: the ServiceMonitor
//! (monitoring.coreos.com/v1) comes back `no_schema`, and its essential fields are checked here
//! instead. Any other object without a schema fails the test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Map, Value};
use tributary::config::{Config, Role};

use crate::harness::{TestServer, require_program, run_python, write_file};

/// The oldest and the newest Kubernetes versions kubernetes-validate 1.37.0 has schemas of.
const SCHEMA_VERSIONS: [&str; 2] = ["1.25.0", "1.37.0"];

/// Every object of one rendered overlay.
struct Rendered {
    overlay: &'static str,
    objects: Vec<Value>,
}

fn overlay_dir(overlay: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/kubernetes/overlays")
        .join(overlay)
}

/// `kubectl kustomize` of an overlay, as YAML.
fn kustomize(overlay: &str) -> String {
    let kubectl = require_program("kubectl", "kubernetes-client");
    let out = Command::new(kubectl)
        .arg("kustomize")
        .arg(overlay_dir(overlay))
        .output()
        .expect("run kubectl kustomize");
    assert!(
        out.status.success(),
        "kubectl kustomize {overlay} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("kustomize output is UTF-8")
}

/// Runs `python/k8s_validate.py` on a manifest (YAML or JSON documents): the objects and one
/// result per object and schema version.
fn validate(manifest: &Path) -> (Vec<Value>, Vec<Value>) {
    let mut args = vec![manifest.to_str().expect("UTF-8 path")];
    args.extend(SCHEMA_VERSIONS);
    let run = run_python("k8s_validate.py", &args);
    assert!(run.success, "k8s_validate.py failed:\n{}", run.stderr);
    let v = run.json();
    let list = |k: &str| v[k].as_array().unwrap_or_else(|| panic!("no {k} in {v}")).clone();
    (list("objects"), list("results"))
}

/// Renders an overlay and asserts every object is valid for every schema version, except the
/// ServiceMonitor, which has no schema there (checked by [`check_service_monitor`]).
fn render_and_validate(overlay: &'static str) -> Rendered {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = write_file(tmp.path(), "rendered.yaml", &kustomize(overlay));
    let (objects, results) = validate(&path);
    assert!(!objects.is_empty(), "{overlay} rendered nothing");
    assert_eq!(results.len(), objects.len() * SCHEMA_VERSIONS.len(), "{results:?}");
    for r in &results {
        match (r["outcome"].as_str(), r["kind"].as_str()) {
            (Some("valid"), _) | (Some("no_schema"), Some("ServiceMonitor")) => {}
            _ => panic!("{overlay}: {r}"),
        }
    }
    Rendered { overlay, objects }
}

impl Rendered {
    fn of_kind(&self, kind: &str) -> Vec<&Value> {
        self.objects.iter().filter(|o| o["kind"] == kind).collect()
    }

    fn get(&self, kind: &str, name: &str) -> &Value {
        self.of_kind(kind)
            .into_iter()
            .find(|o| o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{}: no {kind} {name}", self.overlay))
    }

    /// Deployments and StatefulSets.
    fn workloads(&self) -> Vec<&Value> {
        self.objects
            .iter()
            .filter(|o| o["kind"] == "Deployment" || o["kind"] == "StatefulSet")
            .collect()
    }

    /// The workloads whose pods `selector` (a label map) picks.
    fn selected_workloads(&self, selector: &Value) -> Vec<&Value> {
        self.workloads()
            .into_iter()
            .filter(|w| selects(selector, &w["spec"]["template"]["metadata"]["labels"]))
            .collect()
    }

    /// The string data of a ConfigMap (`data`) or Secret (`stringData`; the examples hold no
    /// base64 `data`).
    fn string_data(&self, kind: &str, name: &str) -> &Map<String, Value> {
        let field = if kind == "Secret" { "stringData" } else { "data" };
        let o = self.get(kind, name);
        assert!(
            kind != "Secret" || o.get("data").is_none(),
            "Secret {name}: only stringData is read here"
        );
        o[field]
            .as_object()
            .unwrap_or_else(|| panic!("{kind} {name} has no {field}"))
    }
}

fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().expect("metadata.name")
}

/// Does a label map `selector` (non-empty) pick an object labelled `labels`?
fn selects(selector: &Value, labels: &Value) -> bool {
    let sel = selector.as_object().expect("a selector is a label map");
    !sel.is_empty() && sel.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// A LabelSelector's `matchLabels` (these manifests use no `matchExpressions`, which this test
/// would otherwise ignore).
fn match_labels(selector: &Value) -> &Value {
    assert!(selector.get("matchExpressions").is_none(), "{selector}");
    &selector["matchLabels"]
}

fn pod_spec(w: &Value) -> &Value {
    &w["spec"]["template"]["spec"]
}

fn the_container(w: &Value) -> &Value {
    let containers = pod_spec(w)["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1, "{}: one container", name(w));
    &containers[0]
}

/// The container port called `port_name`.
fn container_port(w: &Value, port_name: &str) -> Option<u64> {
    the_container(w)["ports"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == port_name)
        .and_then(|p| p["containerPort"].as_u64())
}

/// The volume mount of a container holding `path`, and `path` relative to it.
fn mount_of<'a>(container: &'a Value, path: &Path) -> (&'a Value, PathBuf) {
    container["volumeMounts"]
        .as_array()
        .expect("volumeMounts")
        .iter()
        .find_map(|m| {
            let rest = path.strip_prefix(m["mountPath"].as_str()?).ok()?;
            Some((m, rest.to_path_buf()))
        })
        .unwrap_or_else(|| panic!("nothing is mounted at {}", path.display()))
}

/// The pod volume called `volume` (`None` for a StatefulSet's claim template).
fn pod_volume<'a>(w: &'a Value, volume: &str) -> Option<&'a Value> {
    pod_spec(w)["volumes"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["name"] == volume))
}

fn claim_templates(w: &Value) -> Vec<&str> {
    w["spec"]["volumeClaimTemplates"]
        .as_array()
        .map(|ts| ts.iter().map(name).collect())
        .unwrap_or_default()
}

/// Facts every overlay holds: selectors pick real pods, named ports exist, probes and the
/// ServiceMonitor are wired, the pods are locked down and have resources.
fn check_wiring(r: &Rendered) {
    let overlay = r.overlay;
    for svc in r.of_kind("Service") {
        let picked = r.selected_workloads(&svc["spec"]["selector"]);
        assert_eq!(picked.len(), 1, "{overlay}: Service {} selects one workload", name(svc));
        for p in svc["spec"]["ports"].as_array().expect("ports") {
            let target = p["targetPort"].as_str().expect("targetPort by name");
            assert!(
                container_port(picked[0], target).is_some(),
                "{overlay}: Service {} targets port {target}, which {} does not expose",
                name(svc),
                name(picked[0])
            );
        }
    }
    for pdb in r.of_kind("PodDisruptionBudget") {
        let picked = r.selected_workloads(match_labels(&pdb["spec"]["selector"]));
        assert_eq!(picked.len(), 1, "{overlay}: PDB {} selects one workload", name(pdb));
    }
    for w in r.workloads() {
        let labels = &w["spec"]["template"]["metadata"]["labels"];
        assert!(selects(match_labels(&w["spec"]["selector"]), labels), "{}", name(w));
        let c = the_container(w);
        for (probe, path) in [
            ("startupProbe", "/-/healthy"),
            ("readinessProbe", "/-/ready"),
            ("livenessProbe", "/-/healthy"),
        ] {
            let Some(get) = c.get(probe).map(|p| &p["httpGet"]) else {
                assert_eq!(probe, "startupProbe", "{}: no {probe}", name(w));
                continue;
            };
            assert_eq!(get["path"], path, "{}: {probe}", name(w));
            let port = get["port"].as_str().expect("probe port by name");
            assert!(container_port(w, port).is_some(), "{}: {probe} port {port}", name(w));
        }
        let sc = &c["securityContext"];
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{}", name(w));
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{}", name(w));
        assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]), "{}", name(w));
        assert_eq!(pod_spec(w)["securityContext"]["runAsNonRoot"], true, "{}", name(w));
        let res = &c["resources"];
        for need in [
            &res["requests"]["cpu"],
            &res["requests"]["memory"],
            &res["limits"]["memory"],
        ] {
            assert!(need.is_string(), "{}: resources {res}", name(w));
        }
        // Every mount is a pod volume or a claim template; every ConfigMap and Secret a pod
        // reads is in the overlay.
        for m in c["volumeMounts"].as_array().expect("volumeMounts") {
            let v = m["name"].as_str().expect("mount name");
            assert!(
                pod_volume(w, v).is_some() || claim_templates(w).contains(&v),
                "{}: volume {v}",
                name(w)
            );
        }
        for v in pod_spec(w)["volumes"].as_array().into_iter().flatten() {
            if let Some(cm) = v["configMap"]["name"].as_str() {
                r.get("ConfigMap", cm);
            }
            if let Some(s) = v["secret"]["secretName"].as_str() {
                r.get("Secret", s);
            }
        }
        for from in c["envFrom"].as_array().into_iter().flatten() {
            r.get("Secret", from["secretRef"]["name"].as_str().expect("envFrom secretRef"));
        }
    }
    check_service_monitor(r);
}

/// The ServiceMonitor, which no schema checks: it selects Services that exist, scrapes a port
/// they have at `/metrics`, reaches every workload, and no pod twice.
fn check_service_monitor(r: &Rendered) {
    let sms = r.of_kind("ServiceMonitor");
    assert_eq!(sms.len(), 1, "{}: one ServiceMonitor", r.overlay);
    let sm = sms[0];
    assert_eq!(sm["apiVersion"], "monitoring.coreos.com/v1");
    let selector = match_labels(&sm["spec"]["selector"]);
    let services: Vec<_> = r
        .of_kind("Service")
        .into_iter()
        .filter(|s| selects(selector, &s["metadata"]["labels"]))
        .collect();
    assert!(
        !services.is_empty(),
        "{}: the ServiceMonitor selects no Service",
        r.overlay
    );
    let endpoints = sm["spec"]["endpoints"].as_array().expect("endpoints");
    assert_eq!(endpoints.len(), 1);
    assert_eq!(endpoints[0]["path"], "/metrics");
    let port = endpoints[0]["port"].as_str().expect("endpoint port by name");
    let mut scraped = Vec::new();
    for svc in &services {
        let ports = svc["spec"]["ports"].as_array().expect("ports");
        assert!(
            ports.iter().any(|p| p["name"] == port),
            "{}: Service {} has no port {port} for the ServiceMonitor",
            r.overlay,
            name(svc)
        );
        scraped.extend(r.selected_workloads(&svc["spec"]["selector"]).into_iter().map(name));
    }
    scraped.sort_unstable();
    let mut all: Vec<_> = r.workloads().into_iter().map(name).collect();
    all.sort_unstable();
    assert_eq!(scraped, all, "{}: every workload scraped exactly once", r.overlay);
}

/// One pod's configuration, as the binary reads it.
struct PodConfig {
    /// `--print-config` of the pod's config file, environment and flags, parsed.
    effective: Config,
    /// The config file as written in the ConfigMap.
    file: toml::Table,
}

/// Runs the real binary with the pod's config file (from its ConfigMap), environment (from its
/// Secrets) and arguments, plus `--print-config`: the binary refuses unknown keys and invalid
/// values, so this fails when the pod would not start for its configuration.
fn pod_config(r: &Rendered, w: &Value, scratch: &Path) -> PodConfig {
    let c = the_container(w);
    let mut args: Vec<String> = c["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("string arg").to_string())
        .collect();
    let at = args.iter().position(|a| a == "--config").expect("--config") + 1;
    let (mount, key) = mount_of(c, Path::new(&args[at]));
    let volume = pod_volume(w, mount["name"].as_str().expect("name")).expect("config volume");
    let cm = volume["configMap"]["name"].as_str().expect("config from a ConfigMap");
    let text = r.string_data("ConfigMap", cm)[key.to_str().expect("key")]
        .as_str()
        .expect("config text");
    let file = write_file(scratch, &format!("{}.toml", name(w)), text);
    args[at] = file.to_str().expect("UTF-8").to_string();
    let mut env = BTreeMap::new();
    for from in c["envFrom"].as_array().into_iter().flatten() {
        let secret = from["secretRef"]["name"].as_str().expect("secretRef");
        for (k, v) in r.string_data("Secret", secret) {
            env.insert(k.clone(), v.as_str().expect("string").to_string());
        }
    }
    for e in c["env"].as_array().into_iter().flatten() {
        let v = e["value"].as_str().expect("env values are literals here");
        env.insert(e["name"].as_str().expect("env name").to_string(), v.to_string());
    }
    let out = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .env_clear()
        .envs(&env)
        .args(&args)
        .arg("--print-config")
        .output()
        .expect("run tributary --print-config");
    assert!(
        out.status.success(),
        "{}/{}: the binary refuses the pod's configuration: {}",
        r.overlay,
        name(w),
        String::from_utf8_lossy(&out.stderr)
    );
    PodConfig {
        effective: toml::from_str(&String::from_utf8_lossy(&out.stdout)).expect("printed config parses"),
        file: toml::from_str(text).expect("the ConfigMap's file is TOML"),
    }
}

/// What every pod's configuration must agree with in its manifest: the role, the listeners on
/// the container's named ports, the data dir on a volume (the claim template where the role
/// keeps a WAL), the token file in a mounted Secret, and a grace period beyond the shutdown
/// timeout.
fn check_pod_config(r: &Rendered, w: &Value, cfg: &PodConfig, role: Role) {
    let who = format!("{}/{}", r.overlay, name(w));
    let eff = &cfg.effective;
    assert_eq!(eff.server.role, role, "{who}");
    assert_eq!(
        Some(u64::from(eff.server.http_listen.port())),
        container_port(w, "http"),
        "{who}: server.http_listen"
    );
    for (listen, port) in [
        (&eff.server.grpc_listen, "otlp-grpc"),
        (&eff.server.otlp_http_listen, "otlp-http"),
    ] {
        if let Some(p) = container_port(w, port) {
            assert!(listen.ends_with(&format!(":{p}")), "{who}: {listen} vs port {port} {p}");
        }
    }
    let c = the_container(w);
    let (data, rest) = mount_of(c, &eff.server.data_dir);
    assert_eq!(rest, PathBuf::new(), "{who}: data_dir is a mount point");
    let data = data["name"].as_str().expect("name");
    if matches!(role, Role::Ingest | Role::AllInOne) {
        assert_eq!(w["kind"], "StatefulSet", "{who}");
        assert!(
            claim_templates(w).contains(&data),
            "{who}: the WAL is on the claim template"
        );
    }
    let token_file = eff.auth.token_file.as_ref().expect("auth.token_file");
    let (mount, key) = mount_of(c, token_file);
    let secret = pod_volume(w, mount["name"].as_str().expect("name")).expect("tokens volume");
    let secret = secret["secret"]["secretName"].as_str().expect("tokens from a Secret");
    let tokens = r.string_data("Secret", secret)[key.to_str().expect("key")]
        .as_str()
        .expect("token file");
    let tokens: toml::Table = toml::from_str(tokens).expect("the token file is TOML");
    assert!(tokens["tokens"].as_array().is_some_and(|t| !t.is_empty()), "{who}");
    assert!(eff.auth.required, "{who}: the examples require tokens");
    // Past the grace period the kubelet kills the pod: running requests get
    // server.shutdown_timeout, and a role with a head then flushes it (minutes, when full).
    let grace = pod_spec(w)["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("grace period");
    let flush = match role {
        Role::Ingest | Role::AllInOne => Duration::from_secs(300),
        Role::Query | Role::Compactor | Role::Ruler => Duration::ZERO,
    };
    assert!(
        Duration::from_secs(grace) > eff.server.shutdown_timeout + flush,
        "{who}: a grace period of {grace}s is shorter than server.shutdown_timeout plus {flush:?} for the flush"
    );
}

#[test]
fn the_split_overlay_runs_ingesters_queriers_one_compactor_and_one_ruler_on_s3() {
    let r = render_and_validate("split");
    check_wiring(&r);
    let scratch = tempfile::tempdir().expect("tempdir");

    let ingester = r.get("StatefulSet", "tributary-ingester");
    let headless = r.get(
        "Service",
        ingester["spec"]["serviceName"].as_str().expect("serviceName"),
    );
    assert_eq!(headless["spec"]["clusterIP"], "None");
    assert_eq!(headless["spec"]["publishNotReadyAddresses"], false);
    assert_eq!(r.selected_workloads(&headless["spec"]["selector"])[0], ingester);
    let writes = r.get("Service", "tributary-ingester");
    assert_eq!(r.selected_workloads(&writes["spec"]["selector"])[0], ingester);
    let write_ports: Vec<_> = writes["spec"]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| p["port"].as_u64().expect("port"))
        .collect();
    assert_eq!(
        write_ports,
        [9201, 4317, 4318],
        "remote-write/Loki/OTLP HTTP, OTLP gRPC, OTLP HTTP"
    );
    let querier = r.get("Deployment", "tributary-querier");
    assert_eq!(querier["spec"]["replicas"], 2);
    let compactor = r.get("Deployment", "tributary-compactor");
    assert_eq!(compactor["spec"]["replicas"], 1, "one compactor");
    assert_eq!(compactor["spec"]["strategy"]["type"], "Recreate");
    let ruler = r.get("Deployment", "tributary-ruler");
    assert_eq!(
        ruler["spec"]["replicas"], 1,
        "one ruler: two would write every rule output twice"
    );
    assert_eq!(
        ruler["spec"]["strategy"]["type"], "Recreate",
        "never two rulers at once"
    );
    let pdb = |w: &Value| {
        r.of_kind("PodDisruptionBudget")
            .into_iter()
            .find(|p| r.selected_workloads(match_labels(&p["spec"]["selector"]))[0] == w)
            .unwrap_or_else(|| panic!("no PDB for {}", name(w)))
    };
    assert_eq!(pdb(ingester)["spec"]["maxUnavailable"], 1);
    assert_eq!(pdb(querier)["spec"]["minAvailable"], 1);

    for (w, role) in [
        (ingester, Role::Ingest),
        (querier, Role::Query),
        (compactor, Role::Compactor),
        (ruler, Role::Ruler),
    ] {
        let cfg = pod_config(&r, w, scratch.path());
        check_pod_config(&r, w, &cfg, role);
        let url = cfg.effective.storage.url.as_deref().unwrap_or_default();
        assert!(url.starts_with("s3://"), "{}: storage.url {url:?}", name(w));
        if role == Role::Query {
            // Each entry names the headless Service in its namespace, on one of its ports.
            let ingesters = cfg.file["query"]["ingesters"].as_array().expect("query.ingesters");
            assert!(!ingesters.is_empty());
            let ns = headless["metadata"]["namespace"].as_str().expect("namespace");
            let port = headless["spec"]["ports"][0]["port"].as_u64().expect("port");
            for i in ingesters {
                assert_eq!(
                    i.as_str(),
                    Some(format!("dns+{}.{ns}.svc.cluster.local:{port}", name(headless)).as_str()),
                    "query.ingesters"
                );
            }
            // The querier's token for the ingesters comes from a mounted Secret, and a token
            // entry with read = ["*"] (what the internal read API asks) exists beside it.
            let file = cfg.file["query"]["ingester_token_file"]
                .as_str()
                .expect("query.ingester_token_file");
            let (mount, key) = mount_of(the_container(w), std::path::Path::new(file));
            let secret = pod_volume(w, mount["name"].as_str().expect("name")).expect("token volume");
            let secret = secret["secret"]["secretName"]
                .as_str()
                .expect("the querier token from a Secret");
            let data = r.string_data("Secret", secret);
            assert!(data[key.to_str().expect("key")].is_string(), "{secret} holds {key:?}");
            let tokens: toml::Table = toml::from_str(data["tokens.toml"].as_str().expect("tokens.toml")).expect("TOML");
            assert!(
                tokens["tokens"].as_array().into_iter().flatten().any(|t| t.get("read")
                    == Some(&toml::Value::Array(vec![toml::Value::String("*".into())]))
                    && t.get("name").and_then(|n| n.as_str()) == Some("querier")),
                "a querier token reading every cluster"
            );
        }
        if role == Role::Ruler {
            let eff = &cfg.effective;
            // It reads the heads as a querier does and writes to the ingesters' write Service.
            assert_eq!(eff.query.ingesters, cfg_ingesters(&r), "{}: query.ingesters", name(w));
            let ns = writes["metadata"]["namespace"].as_str().expect("namespace");
            assert_eq!(
                eff.ruler.remote_write_url,
                format!("http://{}.{ns}.svc.cluster.local:9201/api/v1/write", name(writes)),
                "ruler.remote_write_url"
            );
            // Its rule files are in a mounted ConfigMap that holds at least one.
            let pattern = eff.ruler.rule_files.first().expect("ruler.rule_files");
            let (mount, _) = mount_of(the_container(w), std::path::Path::new(pattern));
            let rules = pod_volume(w, mount["name"].as_str().expect("name")).expect("rules volume");
            let rules = rules["configMap"]["name"].as_str().expect("rules from a ConfigMap");
            assert!(r.string_data("ConfigMap", rules).keys().any(|k| k.ends_with(".yml")));
            // One token file for both directions, from a Secret whose token entry "ruler" writes
            // and reads every cluster.
            assert_eq!(eff.ruler.remote_write_token_file, eff.query.ingester_token_file);
            let (mount, key) = mount_of(the_container(w), &eff.ruler.remote_write_token_file);
            let secret = pod_volume(w, mount["name"].as_str().expect("name")).expect("token volume");
            let data = r.string_data("Secret", secret["secret"]["secretName"].as_str().expect("a Secret"));
            assert!(data[key.to_str().expect("key")].is_string(), "the ruler token {key:?}");
            let tokens: toml::Table = toml::from_str(data["tokens.toml"].as_str().expect("tokens.toml")).expect("TOML");
            assert!(
                tokens["tokens"].as_array().into_iter().flatten().any(|t| {
                    t.get("name").and_then(|n| n.as_str()) == Some("ruler")
                        && t.get("write").and_then(|n| n.as_str()) == Some("*")
                        && t.get("read") == Some(&toml::Value::Array(vec![toml::Value::String("*".into())]))
                }),
                "a ruler token writing and reading every cluster"
            );
        }
    }
}

/// `query.ingesters` as the querier's configuration file names them.
fn cfg_ingesters(r: &Rendered) -> Vec<String> {
    let text = r.string_data("ConfigMap", config_map_of(r, "tributary-querier"))["tributary.toml"]
        .as_str()
        .expect("tributary.toml");
    let file: toml::Table = toml::from_str(text).expect("TOML");
    file["query"]["ingesters"]
        .as_array()
        .expect("query.ingesters")
        .iter()
        .map(|i| i.as_str().expect("string").to_string())
        .collect()
}

/// The (generated) name of the ConfigMap a Deployment's `config` volume reads.
fn config_map_of<'a>(r: &'a Rendered, deployment: &str) -> &'a str {
    pod_volume(r.get("Deployment", deployment), "config").expect("config volume")["configMap"]["name"]
        .as_str()
        .expect("a ConfigMap")
}

#[test]
fn the_all_in_one_overlay_runs_one_statefulset_on_its_volume() {
    let r = render_and_validate("all-in-one");
    check_wiring(&r);
    let workloads = r.workloads();
    assert_eq!(workloads.len(), 1);
    let w = workloads[0];
    assert_eq!(w["kind"], "StatefulSet");
    assert_eq!(w["spec"]["replicas"], 1);
    let headless = r.get("Service", w["spec"]["serviceName"].as_str().expect("serviceName"));
    assert_eq!(headless["spec"]["clusterIP"], "None");
    let scratch = tempfile::tempdir().expect("tempdir");
    let cfg = pod_config(&r, w, scratch.path());
    check_pod_config(&r, w, &cfg, Role::AllInOne);
    assert_eq!(cfg.effective.storage.url, None, "the Parquet files stay on the volume");
}

/// The configuration check above means something only if the binary refuses what it does not
/// know: a misspelt key in a ConfigMap must fail, not be ignored.
#[test]
fn the_binary_refuses_an_unknown_config_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(overlay_dir("all-in-one").join("tributary.toml")).expect("read");
    let mut table: toml::Table = toml::from_str(&text).expect("TOML");
    table["server"]
        .as_table_mut()
        .expect("[server]")
        .insert("data_directory".into(), "/data".into());
    let file = write_file(dir.path(), "bad.toml", &toml::to_string(&table).expect("TOML"));
    let out = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .env_clear()
        .arg("--config")
        .arg(&file)
        .arg("--print-config")
        .output()
        .expect("run tributary");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "an unknown key was accepted");
    assert!(stderr.contains("unknown field `data_directory`"), "{stderr}");
}

/// The schema check above means something only if a wrong field fails it: the rendered
/// objects with one misspelt field are reported invalid.
#[test]
fn the_schema_check_reports_a_misspelt_field() {
    let r = render_and_validate("all-in-one");
    let mut objects = r.objects.clone();
    let w = objects
        .iter_mut()
        .find(|o| o["kind"] == "StatefulSet")
        .expect("a StatefulSet");
    w["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFileSystem"] = Value::Bool(true);
    let dir = tempfile::tempdir().expect("tempdir");
    let docs: Vec<String> = objects.iter().map(Value::to_string).collect();
    let path = write_file(dir.path(), "broken.yaml", &docs.join("\n---\n"));
    let (_, results) = validate(&path);
    let invalid: Vec<_> = results.iter().filter(|r| r["outcome"] == "invalid").collect();
    assert_eq!(invalid.len(), SCHEMA_VERSIONS.len(), "{results:?}");
    for i in invalid {
        assert_eq!(i["kind"], "StatefulSet");
        let why = i["message"].as_str().expect("message");
        assert!(why.contains("readOnlyRootFileSystem"), "{why}");
    }
}

/// The all-in-one pod's configuration started for real (data dir and listeners moved to the
/// test's, the token file to a copy of the Secret's): the probe paths and the ServiceMonitor's
/// path answer without a token although the example requires tokens (the kubelet and
/// Prometheus send none), and a write without one is refused. Starting also reads the token
/// file, which fails the start when it does not parse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_all_in_one_pod_answers_its_probes_and_refuses_anonymous_writes() {
    let r = render_and_validate("all-in-one");
    let w = r.workloads()[0];
    let dir = tempfile::tempdir().expect("tempdir");
    let cm = pod_volume(w, "config").expect("config volume")["configMap"]["name"]
        .as_str()
        .expect("ConfigMap name")
        .to_string();
    let mut config: toml::Table = toml::from_str(
        r.string_data("ConfigMap", &cm)["tributary.toml"]
            .as_str()
            .expect("text"),
    )
    .expect("TOML");
    let tokens = r.string_data("Secret", "tributary-tokens")["tokens.toml"]
        .as_str()
        .expect("tokens");
    let tokens = write_file(dir.path(), "tokens.toml", tokens);
    config["auth"]
        .as_table_mut()
        .expect("[auth]")
        .insert("token_file".into(), tokens.to_str().expect("UTF-8").into());
    let file = write_file(dir.path(), "tributary.toml", &toml::to_string(&config).expect("TOML"));
    let c = the_container(w);
    let args: Vec<&str> = c["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let role = args[args.iter().position(|a| *a == "--role").expect("--role") + 1];
    let server = TestServer::start_with(&["--config", file.to_str().expect("UTF-8"), "--role", role]).await;
    let mut paths: Vec<&str> = ["startupProbe", "readinessProbe", "livenessProbe"]
        .iter()
        .filter_map(|p| c[p]["httpGet"]["path"].as_str())
        .collect();
    let sm = r.of_kind("ServiceMonitor")[0];
    paths.push(sm["spec"]["endpoints"][0]["path"].as_str().expect("path"));
    assert_eq!(paths.len(), 4);
    for path in paths {
        let status = reqwest::get(server.url(path)).await.expect("GET").status();
        assert_eq!(status, 200, "{path}");
    }
    let status = reqwest::Client::new()
        .post(server.url("/api/v1/write"))
        .body(Vec::new())
        .send()
        .await
        .expect("POST")
        .status();
    assert_eq!(status, 401, "anonymous write");
}
