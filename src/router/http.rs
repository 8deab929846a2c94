//! The HTTP router: HTTP/1.1 and HTTP/2 listeners, plain or TLS, that route each request by
//! host and path to a service and forward it to one of its endpoints.
//!
//! ```text
//! accept ─> [TLS: SNI cert, ALPN h2|http/1.1, deadline] ─> hyper (h1 or h2, header deadline,
//!   max head size, h2 stream limits) ─> per request: one snapshot load ─> Host + path lookup
//!   ─> [redirect to https] ─> service ─> pick endpoint ─> pooled HTTP/1.1 client (retry the
//!   next endpoint when the connect failed and the body can be sent again) ─> stream back
//! ```
//!
//! - [`listener`]: the accept loop and the per-connection hyper server;
//! - `clients`: the shared pooled upstream client, or one private to the connection (PROXY);
//! - [`proxy`]: the per-request handler (route, allow-list, redirect, forward with retries);
//! - [`record`]: the response body wrapper that logs and counts a request when it is over;
//! - `reply`: our own responses (errors, redirects); `sticky`: cookie affinity;
//! - `upgrade`: WebSocket and other HTTP/1.1 upgrades passed through as a byte tunnel.
//!
//! Every request reads one snapshot, so the routes and services it sees are consistent, and a
//! keep-alive connection uses new routes from its next request on. Bodies stream both ways;
//! nothing buffers a whole body.

mod attempts;
mod clients;
mod h1;
pub mod listener;
mod prefixed;
pub mod proxy;
pub mod record;
mod reply;
mod route;
mod sticky;
mod upgrade;
