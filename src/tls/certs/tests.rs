use super::*;
use crate::tls::testutil::{Pki, RSA_PKCS8_PEM, pem_encode, pkcs8_inner};
use rcgen::KeyPair;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

fn leaf_of(store: &CertStore, sni: Option<&str>) -> Option<CertificateDer<'static>> {
    Some(store.for_sni(sni).cert[0].clone())
}

fn with_hosts(spec: &CertSpec, hosts: &[&str]) -> CertSpec {
    CertSpec {
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        ..spec.clone()
    }
}

#[test]
fn exact_names_win_over_wildcards() {
    let pki = Pki::new();
    let wild = pki.issue("wild", &["*.example.com"]);
    let api = pki.issue("api", &["api.example.com"]);
    let store = CertStore::load(&[wild.spec, api.spec], None).unwrap();
    assert_eq!(leaf_of(&store, Some("api.example.com")), Some(api.leaf));
    assert_eq!(leaf_of(&store, Some("www.example.com")), Some(wild.leaf));
}

#[test]
fn wildcard_matches_exactly_one_label() {
    let pki = Pki::new();
    let wild = pki.issue("wild", &["*.example.com"]);
    let store = CertStore::load(&[wild.spec], None).unwrap();
    assert!(store.for_host("foo.example.com").is_some());
    assert!(store.for_host("example.com").is_none());
    assert!(store.for_host("a.b.example.com").is_none());
    assert!(store.for_host(".example.com").is_none());
    assert!(store.for_host("fooexample.com").is_none());
}

#[test]
fn host_lookup_ignores_case_and_a_trailing_dot() {
    let pki = Pki::new();
    let a = pki.issue("a", &["Api.Example.com", "*.Apps.Example.com"]);
    let store = CertStore::load(&[a.spec], None).unwrap();
    assert!(store.for_host("api.example.com").is_some());
    assert!(store.for_host("API.EXAMPLE.COM.").is_some());
    assert!(store.for_host("Web.APPS.example.com").is_some());
}

#[test]
fn unknown_and_missing_sni_get_the_generated_certificate_not_another_hosts() {
    let pki = Pki::new();
    let a = pki.issue("a", &["a.test"]);
    let b = pki.issue("b", &["b.test"]);
    let store = CertStore::load(&[a.spec, b.spec], None).unwrap();
    let generated = crate::tls::default_cert::generated().unwrap();
    assert!(store.for_host("unknown.test").is_none());
    for sni in [Some("unknown.test"), None] {
        let picked = store.pick(sni);
        assert!(picked.fallback, "{sni:?}");
        assert!(Arc::ptr_eq(&picked.key, &generated), "{sni:?}");
    }
    let named = store.pick(Some("b.test"));
    assert!(!named.fallback);
    assert_eq!(named.key.cert[0], b.leaf);
    assert_eq!(leaf_of(&store, Some("a.test")), Some(a.leaf));
}

#[test]
fn default_index_picks_the_fallback_certificate() {
    let pki = Pki::new();
    let a = pki.issue("a", &["a.test"]);
    let b = pki.issue("b", &["b.test"]);
    let store = CertStore::load(&[a.spec, b.spec], Some(1)).unwrap();
    assert_eq!(leaf_of(&store, None), Some(b.leaf));
    assert_eq!(leaf_of(&store, Some("a.test")), Some(a.leaf));
}

#[test]
fn default_index_out_of_range_is_an_error() {
    let pki = Pki::new();
    let a = pki.issue("a", &["a.test"]);
    let err = CertStore::load(&[a.spec], Some(1)).unwrap_err();
    assert!(
        matches!(err, TlsError::DefaultOutOfRange { index: 1, count: 1 }),
        "{err}"
    );
}

#[test]
fn an_empty_store_serves_only_the_generated_certificate() {
    let store = CertStore::load(&[], None).unwrap();
    assert!(store.is_empty());
    let generated = crate::tls::default_cert::generated().unwrap();
    assert!(Arc::ptr_eq(&store.for_sni(None), &generated));
    assert!(store.pick(Some("a.test")).fallback);
    assert!(!store.changed_on_disk());
}

#[test]
fn listed_hosts_replace_the_certificate_names() {
    let pki = Pki::new();
    let a = pki.issue("a", &["a.test"]);
    let b = pki.issue("b", &["b.test"]);
    let b = with_hosts(&b.spec, &["other.test", "*.Wild.test."]);
    let store = CertStore::load(&[a.spec, b], None).unwrap();
    assert!(store.for_host("b.test").is_none());
    assert!(store.for_host("other.test").is_some());
    assert!(store.for_host("x.wild.test").is_some());
}

#[test]
fn the_first_certificate_listed_keeps_a_shared_name() {
    let pki = Pki::new();
    let a = pki.issue("a", &["shared.test"]);
    let b = pki.issue("b", &["shared.test", "b.test"]);
    let store = CertStore::load(&[a.spec, b.spec], None).unwrap();
    assert_eq!(leaf_of(&store, Some("shared.test")), Some(a.leaf));
    assert_eq!(leaf_of(&store, Some("b.test")), Some(b.leaf));
}

#[test]
fn invalid_hosts_are_rejected_with_the_host_and_file_named() {
    let pki = Pki::new();
    let a = pki.issue("a", &["a.test"]);
    for bad in [
        "",
        "*",
        "*.",
        "**.a.test",
        "a.*.test",
        "foo*.a.test",
        "*.*.a.test",
        "bad host.test",
        "-lead.test",
        "10.0.0.1",
        "a..test",
    ] {
        let err = CertStore::load(&[with_hosts(&a.spec, &["ok.test", bad])], None).unwrap_err();
        match &err {
            TlsError::InvalidHost { cert, host, .. } => {
                assert_eq!(host, bad);
                assert_eq!(cert, &a.spec.cert);
            }
            other => panic!("{bad:?}: expected InvalidHost, got {other}"),
        }
        let text = err.to_string();
        assert!(text.contains(&format!("{bad:?}")), "{text}");
        assert!(text.contains("a.crt"), "{text}");
    }
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let pki = Pki::new();
    let a = pki.issue("a", &["a.test"]);
    let spec = CertSpec {
        cert: pki.path("nope.crt"),
        ..a.spec.clone()
    };
    let err = CertStore::load(&[spec], None).unwrap_err();
    assert!(matches!(&err, TlsError::Read { path, .. } if path.ends_with("nope.crt")));
    assert!(err.to_string().contains("nope.crt"), "{err}");

    let spec = CertSpec {
        key: pki.path("nope.key"),
        ..a.spec
    };
    let err = CertStore::load(&[spec], None).unwrap_err();
    assert!(matches!(&err, TlsError::Read { path, .. } if path.ends_with("nope.key")));
}

#[test]
fn garbage_instead_of_pem_is_no_certificate() {
    let pki = Pki::new();
    let a = pki.issue("a", &["a.test"]);
    let spec = CertSpec {
        cert: pki.write("garbage.crt", "this is not a certificate\n\0\u{1}\u{2}"),
        ..a.spec
    };
    let err = CertStore::load(&[spec], None).unwrap_err();
    assert!(matches!(&err, TlsError::NoCertificate { path } if path.ends_with("garbage.crt")));
    assert!(err.to_string().contains("garbage.crt"), "{err}");
}

#[test]
fn a_broken_pem_section_is_an_unreadable_pem_error() {
    let pki = Pki::new();
    let a = pki.issue("a", &["a.test"]);
    let spec = CertSpec {
        cert: pki.write(
            "broken.crt",
            "-----BEGIN CERTIFICATE-----\n!!!! not base64 !!!!\n-----END CERTIFICATE-----\n",
        ),
        ..a.spec.clone()
    };
    let err = CertStore::load(&[spec], None).unwrap_err();
    assert!(
        matches!(&err, TlsError::Pem { path, .. } if path.ends_with("broken.crt")),
        "{err}"
    );

    let spec = CertSpec {
        cert: pki.write("truncated.crt", "-----BEGIN CERTIFICATE-----\nMIIB\n"),
        ..a.spec
    };
    let err = CertStore::load(&[spec], None).unwrap_err();
    assert!(matches!(&err, TlsError::Pem { .. }), "{err}");
}

#[test]
fn a_certificate_that_does_not_parse_is_rejected() {
    let pki = Pki::new();
    let a = pki.issue("a", &["a.test"]);
    let spec = CertSpec {
        cert: pki.write(
            "junk.crt",
            &pem_encode("CERTIFICATE", b"\x30\x03\x02\x01\x00"),
        ),
        ..a.spec
    };
    let err = CertStore::load(&[spec], None).unwrap_err();
    assert!(matches!(&err, TlsError::BadCertificate { path, .. } if path.ends_with("junk.crt")));
}

#[test]
fn a_key_file_without_a_key_is_an_error() {
    let pki = Pki::new();
    let a = pki.issue("a", &["a.test"]);
    // The classic mistake: the certificate file given as the key too.
    let spec = CertSpec {
        key: a.spec.cert.clone(),
        ..a.spec
    };
    let err = CertStore::load(&[spec], None).unwrap_err();
    assert!(
        matches!(&err, TlsError::NoKey { path } if path.ends_with("a.crt")),
        "{err}"
    );
    assert!(err.to_string().contains("no private key"), "{err}");
}

#[test]
fn a_key_that_does_not_match_the_certificate_is_rejected() {
    let pki = Pki::new();
    let a = pki.issue("a", &["a.test"]);
    let b = pki.issue("b", &["b.test"]);
    let spec = CertSpec {
        key: b.spec.key.clone(),
        ..a.spec
    };
    let err = CertStore::load(&[spec], None).unwrap_err();
    match &err {
        TlsError::KeyMismatch { cert, key } => {
            assert!(cert.ends_with("a.crt"));
            assert!(key.ends_with("b.key"));
        }
        other => panic!("expected KeyMismatch, got {other}"),
    }
    let text = err.to_string();
    assert!(text.contains("b.key") && text.contains("a.crt"), "{text}");
}

#[test]
fn a_certificate_without_dns_names_must_be_the_default() {
    let pki = Pki::new();
    let a = pki.issue("a", &["a.test"]);
    let ip = pki.issue("ip", &["127.0.0.1"]);
    let err = CertStore::load(&[a.spec.clone(), ip.spec.clone()], None).unwrap_err();
    assert!(
        matches!(&err, TlsError::NoHosts { path } if path.ends_with("ip.crt")),
        "{err}"
    );
    let store = CertStore::load(&[ip.spec, a.spec], Some(0)).unwrap();
    assert_eq!(leaf_of(&store, Some("other.test")), Some(ip.leaf));
}

#[test]
fn pkcs8_pkcs1_and_sec1_keys_all_load() {
    let pki = Pki::new();
    let ec = KeyPair::generate().unwrap();
    let sec1 = pem_encode("EC PRIVATE KEY", &pkcs8_inner(ec.serialized_der()));
    let sec1 = pki.issue_for_key("sec1", &["sec1.test"], &ec, &sec1);

    let rsa = KeyPair::from_pem(RSA_PKCS8_PEM).unwrap();
    let pkcs8 = pki.issue_for_key("pkcs8", &["pkcs8.test"], &rsa, RSA_PKCS8_PEM);
    let pkcs1 = pem_encode("RSA PRIVATE KEY", &pkcs8_inner(rsa.serialized_der()));
    let pkcs1 = pki.issue_for_key("pkcs1", &["pkcs1.test"], &rsa, &pkcs1);

    let store = CertStore::load(&[sec1.spec, pkcs8.spec, pkcs1.spec], None).unwrap();
    assert_eq!(store.len(), 3);
    assert_eq!(leaf_of(&store, Some("pkcs1.test")), Some(pkcs1.leaf));
    assert_eq!(leaf_of(&store, Some("sec1.test")), Some(sec1.leaf));
}

#[test]
fn one_file_may_hold_both_certificate_and_key() {
    let pki = Pki::new();
    let a = pki.issue("a", &["a.test"]);
    let combined = format!(
        "{}{}",
        std::fs::read_to_string(&a.spec.key).unwrap(),
        std::fs::read_to_string(&a.spec.cert).unwrap()
    );
    let path = pki.write("combined.pem", &combined);
    let spec = CertSpec {
        cert: path.clone(),
        key: path,
        hosts: Vec::new(),
        pem: None,
    };
    let store = CertStore::load(&[spec], None).unwrap();
    assert_eq!(leaf_of(&store, Some("a.test")), Some(a.leaf));
    assert_eq!(store.for_sni(Some("a.test")).cert.len(), 2);
}

#[test]
fn an_untouched_store_has_not_changed_on_disk() {
    let pki = Pki::new();
    let a = pki.issue("a", &["a.test"]);
    let store = CertStore::load(&[a.spec], None).unwrap();
    assert!(!store.changed_on_disk());
    assert!(!store.changed_on_disk());
}

#[test]
fn changed_on_disk_sees_a_rewrite_even_with_the_same_size_and_mtime() {
    let pki = Pki::new();
    let a = pki.issue("a", &["a.test"]);
    let store = CertStore::load(std::slice::from_ref(&a.spec), None).unwrap();
    let file = std::fs::File::options()
        .write(true)
        .open(&a.spec.key)
        .unwrap();
    let mtime = file.metadata().unwrap().modified().unwrap();
    let mut key = std::fs::read(&a.spec.key).unwrap();
    let last = key.len() - 2;
    key[last] ^= 1;
    std::fs::write(&a.spec.key, &key).unwrap();
    file.set_modified(mtime).unwrap();
    assert!(store.changed_on_disk());
}

#[test]
fn changed_on_disk_sees_a_new_certificate_and_a_deleted_key() {
    let pki = Pki::new();
    let a = pki.issue("a", &["a.test"]);
    let store = CertStore::load(std::slice::from_ref(&a.spec), None).unwrap();
    pki.issue("a", &["a.test"]);
    assert!(store.changed_on_disk());

    let store = CertStore::load(std::slice::from_ref(&a.spec), None).unwrap();
    assert!(!store.changed_on_disk());
    std::fs::remove_file(&a.spec.key).unwrap();
    assert!(store.changed_on_disk());
}

#[test]
fn old_files_settle_and_are_checked_by_metadata_only() {
    let pki = Pki::new();
    let a = pki.issue("a", &["a.test"]);
    let old = SystemTime::now() - Duration::from_secs(60);
    for path in [&a.spec.cert, &a.spec.key] {
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_modified(old).unwrap();
    }
    let store = CertStore::load(std::slice::from_ref(&a.spec), None).unwrap();
    assert!(
        store
            .files
            .iter()
            .all(|f| f.settled.load(Ordering::Relaxed))
    );
    assert!(!store.changed_on_disk());
    pki.issue("a", &["a.test"]);
    assert!(store.changed_on_disk());
}
