use std::time::Duration;

use super::*;
use std::sync::Arc;

fn entry(token: &str, write: Option<&str>, read: &[&str], admin: bool) -> TokenEntry {
    TokenEntry {
        token: Some(token.into()),
        write: write.map(String::from),
        read: (!read.is_empty()).then(|| ClusterScope::new(read.iter().map(|s| s.to_string()).collect())),
        admin,
        ..TokenEntry::default()
    }
}

fn auth(required: bool, tokens: Vec<TokenEntry>) -> Auth {
    Auth::open(&AuthConfig {
        required,
        tokens,
        ..AuthConfig::default()
    })
    .unwrap()
}

fn sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[test]
fn bearer_and_basic_carry_the_token() {
    assert_eq!(token_from_authorization("Bearer abc").as_deref(), Some("abc"));
    assert_eq!(token_from_authorization("bearer  abc ").as_deref(), Some("abc"));
    // "prometheus:s3cret"
    assert_eq!(
        token_from_authorization("Basic cHJvbWV0aGV1czpzM2NyZXQ=").as_deref(),
        Some("s3cret")
    );
    assert_eq!(token_from_authorization("Bearer "), None);
    assert_eq!(token_from_authorization("Digest x"), None);
    assert_eq!(token_from_authorization("Basic !!!"), None);
}

#[test]
fn a_hashed_token_is_found_like_a_clear_one() {
    let hashed = TokenEntry {
        token_sha256: Some(sha256_hex("hidden").to_uppercase()),
        read: Some(ClusterScope::new(vec!["a".into()])),
        ..TokenEntry::default()
    };
    let a = auth(true, vec![entry("clear", Some("c1"), &[], false), hashed]);
    let id = a.identify(Some("Bearer hidden"), None).unwrap().unwrap();
    assert_eq!(id.read, ClusterScope::new(vec!["a".into()]));
    assert_eq!(
        a.identify(Some("Bearer clear"), None)
            .unwrap()
            .unwrap()
            .write
            .as_deref(),
        Some("c1")
    );
    assert!(matches!(
        a.identify(Some("Bearer other"), None),
        Err(Error::Unauthenticated { .. })
    ));
    // The digest itself is not a token.
    let digest = format!("Bearer {}", sha256_hex("hidden"));
    assert!(matches!(
        a.identify(Some(&digest), None),
        Err(Error::Unauthenticated { .. })
    ));
}

#[test]
fn invalid_entries_fail_with_where_and_why() {
    for (e, why) in [
        (TokenEntry::default(), "needs token or token_sha256"),
        (
            TokenEntry {
                token: Some("a".into()),
                token_sha256: Some(sha256_hex("a")),
                ..TokenEntry::default()
            },
            "not both",
        ),
        (
            TokenEntry {
                token_sha256: Some("abc".into()),
                ..TokenEntry::default()
            },
            "64 hex digits",
        ),
        (entry("a", Some(""), &[], false), "write must name"),
    ] {
        let err = Auth::open(&AuthConfig {
            tokens: vec![e],
            ..AuthConfig::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains(why) && err.contains("[auth]: token entry 1"), "{err}");
    }
    let twice = vec![entry("a", None, &[], true), entry("a", None, &[], false)];
    assert!(
        Auth::open(&AuthConfig {
            tokens: twice,
            ..AuthConfig::default()
        })
        .unwrap_err()
        .to_string()
        .contains("twice")
    );
}

/// Without a token: unrestricted unless required. With one: always held to its scopes.
#[test]
fn scopes_and_the_required_switch() {
    let tokens = vec![
        entry("writer", Some("prod-*"), &[], false),
        entry("reader", None, &["prod-*", "dev"], false),
        entry("admin", None, &[], true),
    ];
    let open = auth(false, tokens.clone());
    assert_eq!(open.read_scope(None, None).unwrap(), None);
    assert_eq!(open.write_scope(None, None).unwrap(), None);
    open.check_admin(None, None).unwrap();
    assert!(matches!(
        open.read_scope(Some("Bearer writer"), None),
        Err(Error::Forbidden { .. })
    ));
    assert!(matches!(
        open.check_admin(Some("Bearer reader"), None),
        Err(Error::Forbidden { .. })
    ));
    assert!(matches!(
        open.read_scope(Some("Bearer nope"), None),
        Err(Error::Unauthenticated { .. })
    ));

    let closed = auth(true, tokens);
    for e in [
        closed.read_scope(None, None).unwrap_err(),
        closed.write_scope(None, None).unwrap_err(),
        closed.check_admin(None, None).unwrap_err(),
        closed.read_scope(Some("Digest x"), None).unwrap_err(),
    ] {
        assert!(matches!(e, Error::Unauthenticated { .. }), "{e}");
    }
    let scope = closed.read_scope(Some("Bearer reader"), None).unwrap().unwrap();
    assert!(scope.matches("prod-eu") && scope.matches("dev") && !scope.matches("dev-2"));
    assert_eq!(
        closed.write_scope(Some("Bearer writer"), None).unwrap().as_deref(),
        Some("prod-*")
    );
    assert!(matches!(
        closed.write_scope(Some("Bearer reader"), None),
        Err(Error::Forbidden { .. })
    ));
    closed.check_admin(Some("Bearer admin"), None).unwrap();
    assert!(matches!(
        closed.check_admin(Some("Bearer writer"), None),
        Err(Error::Forbidden { .. })
    ));
    assert!(matches!(
        closed.read_scope(Some("Bearer admin"), None),
        Err(Error::Forbidden { .. })
    ));
}

/// Rotation without a restart: a changed file replaces the table; a broken one keeps the last
/// good table; the configured tokens stay throughout.
#[tokio::test]
async fn the_token_file_is_reread_on_change() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.toml");
    std::fs::write(&path, "[[tokens]]\ntoken = \"old\"\nread = [\"a\"]\n").unwrap();
    let a = Auth::open(&AuthConfig {
        required: true,
        token_file: Some(path.clone()),
        token_file_poll: Duration::from_millis(20),
        tokens: vec![entry("inline", None, &[], true)],
    })
    .unwrap();
    assert!(a.identify(Some("Bearer old"), None).unwrap().is_some());
    assert!(!a.reload_if_changed().unwrap());

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let watcher = tokio::spawn(a.clone().watch(stop_rx));
    let rotated = format!(
        "[[tokens]]\ntoken_sha256 = \"{}\"\nwrite = \"b\"\nread = [\"b\"]\n",
        sha256_hex("new")
    );
    std::fs::write(&path, rotated).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while a.identify(Some("Bearer new"), None).is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the rotated token never took effect"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(matches!(
        a.identify(Some("Bearer old"), None),
        Err(Error::Unauthenticated { .. })
    ));
    assert!(a.identify(Some("Bearer inline"), None).unwrap().unwrap().admin);

    // A half-written file keeps the last good table.
    std::fs::write(&path, "[[tokens]]\ntoken = ").unwrap();
    assert!(matches!(a.reload_if_changed(), Err(Error::InvalidAuth { .. })));
    assert!(a.identify(Some("Bearer new"), None).unwrap().is_some());
    let _ = stop_tx.send(true);
    watcher.await.unwrap();
}

#[test]
fn a_missing_or_invalid_token_file_fails_startup() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = |p: &Path| AuthConfig {
        token_file: Some(p.to_path_buf()),
        ..AuthConfig::default()
    };
    assert!(matches!(
        Auth::open(&cfg(&dir.path().join("none"))),
        Err(Error::Io { .. })
    ));
    let p = dir.path().join("bad.toml");
    std::fs::write(&p, "[[tokens]]\ntoken = \"x\"\nscope = 1\n").unwrap();
    let err = Auth::open(&cfg(&p)).unwrap_err().to_string();
    assert!(err.contains("bad.toml"), "{err}");
}

#[test]
fn debug_never_prints_a_token() {
    let shown = format!("{:?}", entry("s3cret-value", None, &[], false));
    assert!(!shown.contains("s3cret-value"), "{shown}");
}

/// A client certificate maps to the entry naming its CN or a SAN; a token in the header wins
/// over it; a certificate no entry names is refused like an unknown token, required or not.
#[test]
fn client_certificates_map_to_entries_and_tokens_win() {
    let by_cert = |name: &str, write: &str, read: &[&str]| TokenEntry {
        client_cert: Some(name.into()),
        ..entry("", Some(write), read, false)
    };
    let mut collector = by_cert("spiffe://fleet/collector", "prod-*", &[]);
    collector.token = None;
    let mut grafana = by_cert("grafana.example", "none", &["prod-*"]);
    grafana.token = Some("grafana-token".into());
    let cfg = |required| AuthConfig {
        required,
        tokens: vec![
            collector.clone(),
            grafana.clone(),
            entry("writer", Some("east"), &[], false),
        ],
        ..AuthConfig::default()
    };
    for required in [false, true] {
        let a = Auth::open(&cfg(required)).unwrap();
        let cert = |names: &[&str]| ClientCertificate::new(names.iter().map(|s| s.to_string()).collect());
        // A URI SAN, a CN or DNS SAN: each entry's own scopes.
        let c = cert(&["collector-7", "collector.svc", "spiffe://fleet/collector"]);
        assert_eq!(a.write_scope(None, Some(&c)).unwrap().as_deref(), Some("prod-*"));
        assert!(matches!(a.read_scope(None, Some(&c)), Err(Error::Forbidden { .. })));
        let g = cert(&["grafana.example"]);
        assert_eq!(
            a.read_scope(None, Some(&g)).unwrap().unwrap(),
            ClusterScope::new(vec!["prod-*".into()])
        );
        // The entry's token reaches the same identity.
        assert!(Arc::ptr_eq(
            &a.identify(Some("Bearer grafana-token"), None).unwrap().unwrap(),
            &a.identify(None, Some(&g)).unwrap().unwrap()
        ));
        // An explicit token wins over the certificate, in both directions.
        assert_eq!(
            a.write_scope(Some("Bearer writer"), Some(&c)).unwrap().as_deref(),
            Some("east")
        );
        assert!(matches!(
            a.identify(Some("Bearer nope"), Some(&c)),
            Err(Error::Unauthenticated { .. })
        ));
        // An unknown certificate is refused; a connection without one is judged as before.
        let err = a.identify(None, Some(&cert(&["stranger"]))).unwrap_err();
        assert!(err.to_string().contains("stranger"), "{err}");
        assert_eq!(a.identify(None, Some(&ClientCertificate::default())).is_ok(), !required);
    }
    // An entry needs a token or a certificate name, and a name is configured once.
    let twice = AuthConfig {
        tokens: vec![collector.clone(), collector],
        ..AuthConfig::default()
    };
    assert!(Auth::open(&twice).unwrap_err().to_string().contains("twice"));
    let none = AuthConfig {
        tokens: vec![TokenEntry {
            write: Some("x".into()),
            ..TokenEntry::default()
        }],
        ..AuthConfig::default()
    };
    assert!(Auth::open(&none).unwrap_err().to_string().contains("client_cert"));
}

#[test]
fn query_limits_are_read_per_token_and_zero_is_refused() {
    let text = r#"
        [[tokens]]
        token = "dash"
        read = ["*"]
        name = "grafana"
        max_concurrent_queries = 2
        max_samples = 1000
        max_series = 10
        query_timeout = "5s"

        [[tokens]]
        token = "plain"
        read = ["*"]
    "#;
    let file: TokenFile = toml::from_str(text).unwrap();
    let a = auth(true, file.tokens);
    let dash = a.reader(Some("Bearer dash"), None).unwrap().unwrap();
    assert_eq!(dash.name, "grafana");
    assert_eq!(dash.query.max_concurrent_queries, Some(2));
    assert_eq!(dash.query.max_samples, Some(1000));
    assert_eq!(dash.query.max_series, Some(10));
    assert_eq!(dash.query.query_timeout, Some(Duration::from_secs(5)));
    assert_eq!(dash.query.slots.as_ref().unwrap().available_permits(), 2);
    let plain = a.reader(Some("Bearer plain"), None).unwrap().unwrap();
    // Unnamed: a digest prefix, never the token.
    assert_eq!(plain.name, format!("sha256:{}", &sha256_hex("plain")[..8]));
    assert!(plain.query.slots.is_none() && plain.query.max_samples.is_none());

    for zero in [
        "max_concurrent_queries = 0",
        "max_samples = 0",
        "max_series = 0",
        "query_timeout = \"0s\"",
    ] {
        let file: TokenFile = toml::from_str(&format!("[[tokens]]\ntoken = \"t\"\n{zero}\n")).unwrap();
        let err = Auth::open(&AuthConfig {
            tokens: file.tokens,
            ..AuthConfig::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains(zero.split(' ').next().unwrap()), "{zero}: {err}");
    }
}

/// A reload keeps a token's concurrency permits while its limit is unchanged: queries already
/// running keep counting against it. A changed limit starts afresh.
#[test]
fn a_reload_keeps_the_permits_of_an_unchanged_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.toml");
    let write = |extra: &str, limit: usize| {
        let text = format!("[[tokens]]\ntoken = \"t\"\nread = [\"*\"]\nmax_concurrent_queries = {limit}\n{extra}");
        std::fs::write(&path, text).unwrap();
    };
    write("", 1);
    let a = Auth::open(&AuthConfig {
        token_file: Some(path.clone()),
        ..AuthConfig::default()
    })
    .unwrap();
    let slots = |a: &Auth| {
        a.reader(Some("Bearer t"), None)
            .unwrap()
            .unwrap()
            .query
            .slots
            .clone()
            .unwrap()
    };
    let held = slots(&a).try_acquire_owned().unwrap();
    write("admin = true", 1);
    a.reload().unwrap();
    assert!(a.identify(Some("Bearer t"), None).unwrap().unwrap().admin);
    assert_eq!(
        slots(&a).available_permits(),
        0,
        "the running query still holds its permit"
    );
    write("", 3);
    a.reload().unwrap();
    assert_eq!(slots(&a).available_permits(), 3);
    drop(held);
}
