//! The rustls hook that picks a certificate for each handshake.
//!
//! rustls asks a [`ResolvesServerCert`] once per full handshake. [`SniResolver`] answers from
//! whatever [`CertStore`] is published in its `ArcSwap` at that moment: one atomic load, one or
//! two hash lookups, one `Arc` clone, no lock. Publishing a new store (`ArcSwap::store`) thus
//! changes the certificate of the next handshake without rebuilding the `ServerConfig` (which
//! would throw away the session cache) and without touching connections already open, which
//! hold their own keys.

use super::CertStore;
use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::sync::Arc;

/// Chooses the certificate by SNI from the currently published [`CertStore`]; unknown or
/// missing SNI gets the store's default (configured, or generated).
#[derive(Debug, Clone)]
pub struct SniResolver {
    store: Arc<ArcSwap<CertStore>>,
}

impl SniResolver {
    /// A resolver reading `store` on every handshake.
    pub fn new(store: Arc<ArcSwap<CertStore>>) -> Self {
        Self { store }
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.store.load().for_sni(client_hello.server_name()))
    }
}
