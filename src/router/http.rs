//! The HTTP router: HTTP/1.1 and HTTP/2 listeners, plain or TLS, that route each request by
//! host and path to a service and forward it to one of its endpoints.
//!
//! ```text
//! accept ─> [TLS: SNI cert, ALPN h2|http/1.1, deadline] ─┬─ HTTP/1.1: fast path (h1) ──┐
//!           hands over HTTP/1.0, upgrades, CONNECT, ... ─┴─> hyper (h1 or h2) ─────────┤
//!   per request: one snapshot load ─> Host + path lookup (route) ─> [redirect to https] <┘
//!   ─> service ─> pick endpoint (attempts: the next one when the connect failed and the
//!   request can be sent again) ─> pooled HTTP/1.1 connection, or hyper-util for h2c/https
//!   ─> stream the body back
//! ```
//!
//! - [`listener`]: the accept loop, TLS, and which of the two serves a connection;
//! - [`conn`]: what the requests of one client connection share;
//! - `h1`: the HTTP/1.1 fast path, on [`crate::http1`] (no hyper, no `HeaderMap`);
//! - [`proxy`]: the handler of the requests hyper serves;
//! - `prepare`: the one preparation every request takes: `route` (method, normalised target,
//!   host, allow-list, redirect, limits), its upstream client, affinity, field rewrite;
//! - `attempts`: sending a routed request to an endpoint, with retries and passive health;
//! - `clients`: the shared pooled upstream client, or one private to the connection (PROXY);
//! - [`record`]: the access-log line and the request metrics, when a response is over;
//! - `reply`: our own responses (errors, redirects); `sticky`: cookie affinity;
//! - `upgrade`: WebSocket and other HTTP/1.1 upgrades passed through as a byte tunnel;
//! - `prefixed`: how the fast path hands a connection to hyper with the bytes it read;
//! - `h2_watch`: the HTTP/2 deadlines hyper lacks (preface, header block, idle connection).
//!
//! Every request reads one snapshot, so the routes and services it sees are consistent, and a
//! keep-alive connection uses new routes from its next request on. Bodies stream both ways;
//! nothing buffers a whole body. Both paths write the same rewritten fields
//! ([`crate::forward`]) and answer the same errors.

mod attempts;
mod backends;
mod clients;
pub mod conn;
mod filters;
mod h1;
mod h2_watch;
pub mod listener;
mod mirror;
mod passthrough;
mod policy;
mod prefixed;
mod prepare;
pub mod proxy;
pub mod record;
mod reply;
mod retry;
mod route;
mod sticky;
mod upgrade;
