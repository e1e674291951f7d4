//! The dependency direction is a rule: `proto → ingest → storage ← query`, wired by the binary.
//! `query` may read `proto`'s wire types (Prometheus remote-read answers its API serves): `proto`
//! is a leaf of message definitions depending on none of ours, so that edge carries no data
//! back towards ingest; what `query` must never reach is `ingest`.

use cargo_metadata::MetadataCommand;

#[test]
fn crates_depend_only_in_the_allowed_direction() {
    let meta = MetadataCommand::new()
        .manifest_path(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .exec()
        .unwrap();
    let forbidden: &[(&str, &[&str])] = &[
        (
            "tributary-proto",
            &["tributary-ingest", "tributary-storage", "tributary-query"],
        ),
        (
            "tributary-storage",
            &[
                "tributary-proto",
                "tributary-ingest",
                "tributary-query",
                "axum",
                "prost",
                "tonic",
                "opentelemetry-proto",
            ],
        ),
        ("tributary-query", &["tributary-ingest", "tonic", "opentelemetry-proto"]),
        ("tributary-ingest", &["tributary-query"]),
    ];
    // proto is a leaf: it depends on none of the workspace's crates.
    let proto = meta
        .packages
        .iter()
        .find(|p| p.name.as_str() == "tributary-proto")
        .expect("proto");
    assert!(
        proto.dependencies.iter().all(|d| !d.name.starts_with("tributary")),
        "tributary-proto must depend on no workspace crate"
    );
    for (krate, banned) in forbidden {
        let pkg = meta
            .packages
            .iter()
            .find(|p| p.name.as_str() == *krate)
            .unwrap_or_else(|| panic!("{krate} missing"));
        for dep in &pkg.dependencies {
            assert!(
                !banned.contains(&dep.name.as_str()),
                "{krate} must not depend on {} (data flows proto → ingest → storage ← query)",
                dep.name
            );
        }
    }
}

#[test]
fn every_crate_documents_its_job() {
    for lib in ["proto", "ingest", "storage", "query"] {
        let path = format!("{}/{lib}/src/lib.rs", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("//!"),
            "{path} must start with //! docs saying what it owns"
        );
        assert!(
            text.contains("Must not") || text.contains("must not"),
            "{path} must say what it must not do"
        );
    }
}

/// Every source file of a crate is compiled: a module file its parent never declares (a test
/// file left out by a refactor, say) would otherwise sit there unnoticed, its tests never run.
#[test]
fn every_source_file_is_a_declared_module() {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut undeclared = Vec::new();
    for krate in ["proto", "ingest", "storage", "query", "."] {
        let src = root.join(krate).join("src");
        let mut files = Vec::new();
        walk(&src, &mut files);
        for file in files {
            let name = file.file_stem().unwrap().to_str().unwrap().to_string();
            let dir = file.parent().unwrap();
            if dir == src && ["lib", "main"].contains(&name.as_str()) || dir.ends_with("src/bin") {
                continue;
            }
            // The parent module: `dir.rs` beside `dir/`, or `dir/mod.rs`, or the crate root.
            let parents = [
                dir.with_extension("rs"),
                dir.join("mod.rs"),
                dir.join("lib.rs"),
                dir.join("main.rs"),
            ];
            let declared = parents.iter().filter(|p| p.is_file()).any(|p| {
                let text = std::fs::read_to_string(p).unwrap();
                text.lines().any(|l| {
                    let l = l.trim_start();
                    let l = l
                        .strip_prefix("pub ")
                        .or_else(|| l.strip_prefix("pub(crate) "))
                        .unwrap_or(l);
                    l.strip_prefix("mod ")
                        .is_some_and(|rest| rest.trim_end_matches([';', ' ', '{']) == name)
                })
            });
            if !declared {
                undeclared.push(file.display().to_string());
            }
        }
    }
    assert!(
        undeclared.is_empty(),
        "files no module declares (never compiled): {undeclared:?}"
    );
}
