//! Every configuration shipped in the repository loads through the real loader
//! (`certdns config`, which validates as `serve` does) for every process it is
//! written for: the Kubernetes manifest's TOML with each container's arguments
//! and secrets, and each compose service's environment and command. A renamed
//! or mistyped key fails here instead of in an operator's deployment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

use crate::support::*;

fn repo_file(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn strings(list: &Yaml) -> Vec<String> {
    list.as_vec().map(|v| v.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

/// A stand-in for a secret the deployment supplies, of the right shape.
fn placeholder(name: &str) -> String {
    match name {
        n if n.ends_with("DATABASE_URL") => "postgres://certdns:secret@db.invalid:5432/certdns".into(),
        n if n.ends_with("REDIS_URL") => "redis://redis.invalid:6379".into(),
        n if n.ends_with("SMTP__URL") => "smtps://user:secret@smtp.invalid:465".into(),
        _ => "a-secret-value-of-at-least-thirty-two-characters".into(),
    }
}

/// `$(NAME)` replaced by an earlier variable's value, as Kubernetes does.
fn expand(value: &str, env: &BTreeMap<String, String>) -> String {
    env.iter().fold(value.to_owned(), |v, (name, set)| v.replace(&format!("$({name})"), set))
}

/// `certdns config` in place of the process's own command (`serve`, `migrate`),
/// with its flags, and the file it reads moved to `config_file`.
fn config_args(args: &[String], config_file: &Path) -> Vec<String> {
    let mut out = vec!["config".to_owned()];
    let mut rest = args.iter().skip(1);
    while let Some(arg) = rest.next() {
        out.push(arg.clone());
        if arg == "--config" {
            rest.next();
            out.push(config_file.display().to_string());
        }
    }
    out
}

fn load(dir: &Path, args: &[String], env: &BTreeMap<String, String>) -> String {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = run_cli(dir, &args, &env, None);
    assert!(out.success, "certdns {args:?} with {env:?}:\n{}", out.stderr);
    out.stdout
}

#[test]
fn kubernetes_manifest_loads_for_every_container() {
    let text = repo_file("deploy/kubernetes/certdns.yaml");
    let docs = YamlLoader::load_from_str(&text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config_file: PathBuf = dir.path().join("certdns.toml");
    let configmap = docs.iter().find(|d| d["kind"].as_str() == Some("ConfigMap")).expect("a ConfigMap");
    std::fs::write(&config_file, configmap["data"]["certdns.toml"].as_str().expect("certdns.toml in it")).unwrap();
    let domain = configmap["data"]["certdns.toml"]
        .as_str()
        .unwrap()
        .lines()
        .find_map(|l| l.trim().strip_prefix("domain = ").map(str::to_owned));
    // The secret is created by hand, as the manifest's header says.
    let secrets: BTreeMap<String, String> = text
        .split("--from-literal=")
        .skip(1)
        .filter_map(|rest| rest.split_once('=').map(|(name, _)| (name.to_owned(), placeholder(name))))
        .collect();
    assert!(secrets.contains_key("CERTDNS_DATABASE_URL"), "{secrets:?}");

    let mut checked = Vec::new();
    for doc in docs.iter().filter(|d| matches!(d["kind"].as_str(), Some("Deployment" | "DaemonSet" | "StatefulSet"))) {
        let pod = &doc["spec"]["template"]["spec"];
        let containers = [&pod["initContainers"], &pod["containers"]];
        for container in containers.iter().filter_map(|c| c.as_vec()).flatten() {
            let args = strings(&container["args"]);
            if args.is_empty() {
                continue;
            }
            let mut env = BTreeMap::new();
            if !container["envFrom"].is_badvalue() {
                env.extend(secrets.clone());
            }
            for var in container["env"].as_vec().into_iter().flatten() {
                let name = var["name"].as_str().expect("env name").to_owned();
                if let Some(key) = var["valueFrom"]["secretKeyRef"]["key"].as_str() {
                    assert!(secrets.contains_key(key), "{key} is not in the Secret the header creates");
                }
                let value = match (var["value"].as_str(), &var["valueFrom"]["fieldRef"]) {
                    (Some(value), _) => expand(value, &env),
                    (None, field) if !field.is_badvalue() => "10.0.0.7".to_owned(),
                    (None, _) => placeholder(&name),
                };
                env.insert(name, value);
            }
            if args.iter().any(|a| a == "dns") {
                for secret in ["DATABASE_URL", "SESSION_SECRET", "SMTP"] {
                    assert!(!env.keys().any(|k| k.contains(secret)), "a responder gets {secret}: {env:?}");
                }
            }
            let printed = load(dir.path(), &config_args(&args, &config_file), &env);
            if let Some(domain) = &domain {
                assert!(printed.contains(&format!("domain = {domain}")), "{printed}");
            }
            checked.push(format!(
                "{}/{}",
                doc["metadata"]["name"].as_str().unwrap_or("?"),
                container["name"].as_str().unwrap_or("?")
            ));
        }
    }
    assert!(checked.len() >= 4, "expected the migrate, api, portal and dns containers at least: {checked:?}");
}

/// `yaml` with YAML merge keys resolved, at every level: `<<: *anchor` or
/// `<<: [*a, *b]` inserts those mappings' entries, which the mapping's own override.
fn resolve_merges(yaml: &Yaml) -> Yaml {
    match yaml {
        Yaml::Hash(hash) => {
            let mut out = yaml_rust2::yaml::Hash::new();
            if let Some(merge) = hash.get(&Yaml::String("<<".into())) {
                let bases = match merge {
                    Yaml::Array(list) => list.clone(),
                    other => vec![other.clone()],
                };
                for base in bases {
                    if let Yaml::Hash(base) = resolve_merges(&base) {
                        out.extend(base);
                    }
                }
            }
            for (k, v) in hash {
                if k.as_str() != Some("<<") {
                    out.insert(k.clone(), resolve_merges(v));
                }
            }
            Yaml::Hash(out)
        }
        Yaml::Array(list) => Yaml::Array(list.iter().map(resolve_merges).collect()),
        other => other.clone(),
    }
}

#[test]
fn compose_services_load_with_their_environment() {
    let text = repo_file("docker-compose.yml");
    let docs = YamlLoader::load_from_str(&text).unwrap();
    let compose = resolve_merges(&docs[0]);
    let services = compose["services"].as_hash().expect("services");
    let dir = tempfile::tempdir().unwrap();
    let mut checked = Vec::new();
    for (name, service) in services {
        let command = strings(&service["command"]);
        if command.first().map(String::as_str) != Some("serve") {
            continue; // postgres, redis
        }
        let env: BTreeMap<String, String> = service["environment"]
            .as_hash()
            .into_iter()
            .flatten()
            .map(|(k, v)| {
                let value = match v {
                    Yaml::String(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    other => panic!("{name:?}: unexpected environment value {other:?}"),
                };
                (k.as_str().unwrap_or_default().to_owned(), value)
            })
            .collect();
        if command.iter().any(|a| a == "dns") {
            assert!(!env.contains_key("CERTDNS_DATABASE_URL"), "{name:?}: a responder gets no database URL");
        }
        let printed = load(dir.path(), &config_args(&command, Path::new("unused")), &env);
        assert!(printed.contains("domain = \"auth.certdns.localhost\""), "{printed}");
        checked.push(name.as_str().unwrap_or_default().to_owned());
    }
    assert!(checked.len() >= 4, "expected the api, the portal and two dns services at least: {checked:?}");
}

/// The ```toml examples in the operator and customer docs.
#[test]
fn documented_toml_examples_load_for_every_role() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("example.toml");
    let mut checked = 0;
    for doc in [
        "README.md",
        "deploy/README.md",
        "deploy/anycast/README.md",
        "docs/api.md",
        "docs/dns.md",
        "docs/getting-started.md",
    ] {
        let text = repo_file(doc);
        for block in text.split("```toml\n").skip(1) {
            let toml = block.split("```").next().unwrap_or_default();
            std::fs::write(&file, toml).unwrap();
            for role in ["api", "dns", "portal"] {
                let out = run_cli(dir.path(), &["config", "--config", "example.toml", "--role", role], &[], None);
                assert!(out.success, "{doc}: example for role {role}:\n{toml}\n{}", out.stderr);
            }
            checked += 1;
        }
    }
    assert!(checked >= 1, "the minimal production file in deploy/README.md at least");
}
