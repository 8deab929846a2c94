//! Which upstream client a request is sent with.
//!
//! Normally the service's pooled client, shared by all its requests and kept in the service's
//! live state (so endpoint changes never throw the pool away); it is rebuilt only when the
//! service's client settings change. A service with `proxy_protocol = "v2"` instead gets a
//! client private to the downstream connection, whose connections start with a PROXY header
//! naming that connection's client (see [`crate::upstream::http`]).

use super::conn::Conn;
use crate::config::ProxyProtocol;
use crate::service_table::Service;
use crate::upstream::http::{ClientError, ClientSettings, HttpClient};
use std::sync::{Arc, Mutex};

/// Clients private to one downstream connection, by service name.
#[derive(Debug, Default)]
pub struct Private(Mutex<Vec<(Arc<str>, Arc<HttpClient>)>>);

/// The client for a request to `service` arriving on `conn`.
pub(super) fn client_for(service: &Service, conn: &Conn) -> Result<Arc<HttpClient>, ClientError> {
    let shared = shared(service)?;
    if service.config.proxy_protocol == ProxyProtocol::None {
        return Ok(shared);
    }
    let mut private = conn.private.0.lock().unwrap_or_else(|e| e.into_inner());
    let name = &service.config.name;
    if let Some((_, client)) = private
        .iter()
        .find(|(n, c)| n == name && c.settings() == shared.settings())
    {
        return Ok(Arc::clone(client));
    }
    let header = crate::upstream::proxy_v2_header(conn.client, conn.local)
        .map_err(|e| ClientError::ProxyHeader(e.to_string()))?;
    let client = Arc::new(shared.with_proxy_header(header)?);
    private.retain(|(n, _)| n != name);
    private.push((Arc::clone(name), Arc::clone(&client)));
    Ok(client)
}

/// The service's shared pooled client.
fn shared(service: &Service) -> Result<Arc<HttpClient>, ClientError> {
    let c = &service.config;
    if let Some(client) = service
        .live
        .http_client
        .load_full()
        .filter(|x| x.settings().is_for(c))
    {
        return Ok(client);
    }
    let client = Arc::new(HttpClient::new(ClientSettings::of(c))?);
    service.live.http_client.store(Some(Arc::clone(&client)));
    Ok(client)
}
