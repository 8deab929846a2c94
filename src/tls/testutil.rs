//! Test helpers: a throwaway CA issuing certificates into a temp dir, and key-format tricks.

use super::CertSpec;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use std::path::PathBuf;

/// A test-only RSA-2048 key in PKCS#8 (rcgen with ring cannot generate RSA keys).
pub(super) const RSA_PKCS8_PEM: &str = include_str!("testdata/rsa-2048-test-only.pem");

/// A CA and a temp dir to write certificates and keys into.
pub(super) struct Pki {
    /// Where files go; removed on drop.
    pub(super) dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate written to disk.
pub(super) struct Issued {
    /// Cert and key paths, no hosts.
    pub(super) spec: CertSpec,
    /// The leaf, to compare with what a client received.
    pub(super) leaf: CertificateDer<'static>,
}

impl Pki {
    pub(super) fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "switchyard test ca");
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Pki {
            dir: tempfile::tempdir().unwrap(),
            ca,
        }
    }

    /// Trust anchors holding this CA.
    pub(super) fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        roots
    }

    pub(super) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(super) fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// Issues an ECDSA P-256 leaf for `names`, written as `<stem>.crt` (leaf, then CA) and
    /// `<stem>.key` (PKCS#8).
    pub(super) fn issue(&self, stem: &str, names: &[&str]) -> Issued {
        let key = KeyPair::generate().unwrap();
        self.issue_for_key(stem, names, &key, &key.serialize_pem())
    }

    /// Issues a leaf for `names` certifying `key`, and writes `key_pem` as the key file.
    pub(super) fn issue_for_key(
        &self,
        stem: &str,
        names: &[&str],
        key: &KeyPair,
        key_pem: &str,
    ) -> Issued {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let leaf = CertificateParams::new(names)
            .unwrap()
            .signed_by(key, &self.ca)
            .unwrap();
        let chain = format!("{}{}", leaf.pem(), self.ca.pem());
        Issued {
            spec: CertSpec {
                cert: self.write(&format!("{stem}.crt"), &chain),
                key: self.write(&format!("{stem}.key"), key_pem),
                hosts: Vec::new(),
                pem: None,
            },
            leaf: leaf.der().clone(),
        }
    }
}

/// The key inside a PKCS#8 `PrivateKeyInfo`: PKCS#1 for RSA, SEC1 for EC.
pub(super) fn pkcs8_inner(pkcs8: &[u8]) -> Vec<u8> {
    let (tag, info, _) = der_tlv(pkcs8);
    assert_eq!(tag, 0x30, "PrivateKeyInfo is a SEQUENCE");
    let (_version, _, rest) = der_tlv(info);
    let (_algorithm, _, rest) = der_tlv(rest);
    let (tag, key, _) = der_tlv(rest);
    assert_eq!(tag, 0x04, "privateKey is an OCTET STRING");
    key.to_vec()
}

/// Splits one DER tag-length-value off `input`: (tag, value, rest).
fn der_tlv(input: &[u8]) -> (u8, &[u8], &[u8]) {
    let tag = input[0];
    let (len, header) = match input[1] {
        short @ 0..=0x7f => (usize::from(short), 2),
        long => {
            let n = usize::from(long & 0x7f);
            let len = input[2..2 + n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, 2 + n)
        }
    };
    (tag, &input[header..header + len], &input[header + len..])
}

/// PEM-encodes DER under `label` (base64, 64 columns).
pub(super) fn pem_encode(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
