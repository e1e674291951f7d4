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
