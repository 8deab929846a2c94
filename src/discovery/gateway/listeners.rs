//! Gateway listeners → Switchyard HTTP listeners, opened and closed at run time.
//!
//! Each `HTTP` listener (and `HTTPS` one with `tls.mode: Terminate`, its certificates from
//! [`super::certs`]) of a Gateway whose GatewayClass is ours becomes a Switchyard listener on
//! `0.0.0.0:port` named `gateway:namespace/name/listener` (a name no file listener
//! can have), added to the merged config, so `App::apply` binds and stops it exactly as it does
//! a reloaded file's listeners (other listeners and their connections are untouched). Settings
//! other than the address are the defaults of a file `[[listeners]]` entry.
//!
//! Rules, in order, per port (one Switchyard listener per port, whichever Gateways use it):
//! - the file has a listener of the same kind (plain or TLS) on that port: it is shared;
//! - the file has one of the other kind there: skipped, reported `port_conflict`;
//! - two Gateway listeners of different kinds on one port: the later is skipped,
//!   `protocol_conflict`;
//! - a port not opened by the previous merge is first probed with a bind; one that cannot be
//!   bound is skipped and reported `port_unavailable` (so one bad Gateway never fails the
//!   whole cluster update), and probed again at the next merge.
//!
//! Each Gateway listener is also a *section* of its port's Switchyard listener, named
//! `gateway:namespace/name/listener`, with its `hostname`: a request is served by the most
//! specific section claiming its host, and only by the HTTPRoutes attached to that Gateway
//! listener ([`crate::ingress::listener_routes`]). A port only Gateways use is *isolated*
//! (hosts no section claims get 404; file and Ingress routes are never served there); on a
//! port shared with a file listener, the file's routes serve the hosts no Gateway listener
//! there claims (one without hostname claims them all). Of two sections with the same
//! hostname on a port, the older Gateway's wins (within a Gateway the later is `Conflicted`).
//!
//! `TLS` listeners with `tls.mode: Passthrough` are TLS listeners too (HTTPS and them may
//! share a port), whose SNI names come from TLSRoutes ([`super::tls_routes`]); they are no
//! section (no HTTP route attaches to them).
//!
//! Not yet: TCP and UDP listeners (reported `unsupported_protocol`).

use super::types::{Gateway, GatewayClass};
use crate::config::{Config, ListenerConfig};
use crate::discovery::report::Reporter;
use crate::discovery::state::Key;
use crate::discovery::state::Store;
use crate::ingress::HostPattern;
use crate::ingress::listener_routes::Section;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

/// A Gateway listener to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayListener {
    /// `gateway:namespace/name/listener` of the first Gateway listener on the port.
    pub name: Arc<str>,
    /// The port.
    pub port: u16,
    /// HTTPS (TLS terminated here) rather than HTTP.
    pub tls: bool,
    /// Every Gateway listener on the port, told apart by hostname.
    pub sections: Vec<Section>,
}

/// The section (route fence) name of the listener `listener` of the Gateway `gw`.
pub fn section_name(gw: &Key, listener: &str) -> Arc<str> {
    Arc::from(format!("gateway:{}/{}/{listener}", gw.0, gw.1))
}

/// The section of Gateway listener `l`, or `None` if its hostname is not one we can serve.
fn section(gw: &Key, l: &super::types::Listener) -> Option<Section> {
    let hostname = match l.hostname.as_deref().filter(|h| !h.is_empty()) {
        None => None,
        Some(h) => Some(HostPattern::parse(h).ok()?),
    };
    let name = section_name(gw, &l.name);
    Some(Section { name, hostname })
}

/// Whether `l` is served: `HTTP`, or `HTTPS` terminated here.
pub fn served_protocol(l: &super::types::Listener) -> bool {
    let terminate = l
        .tls
        .as_ref()
        .and_then(|t| t.mode.as_deref())
        .is_none_or(|m| m == "Terminate");
    l.protocol == "HTTP" || (l.protocol == "HTTPS" && terminate)
}

/// The listeners of the Gateways of our classes, one per port, oldest Gateway first.
pub(in crate::discovery) fn wanted(
    classes: &Store<GatewayClass>,
    gateways: &Store<Gateway>,
    controller: &str,
    report: &mut Reporter,
) -> Vec<GatewayListener> {
    let ours = |class: &str| {
        classes
            .get(&(String::new(), class.to_owned()))
            .is_some_and(|c| c.spec.controller_name == controller)
    };
    let mut served: Vec<_> = gateways
        .iter()
        .filter(|(_, g)| ours(&g.spec.gateway_class_name))
        .collect();
    served.sort_by(|a, b| {
        let age = |g: &Gateway| g.metadata.creation_timestamp.clone();
        age(a.1).cmp(&age(b.1)).then_with(|| a.0.cmp(b.0))
    });
    let mut out: Vec<GatewayListener> = Vec::new();
    for (key, gw) in served {
        let conflicts = super::gateway_status::conflicted(gw);
        // By generation, not resourceVersion: status writes must not report again.
        let generation = gw.metadata.generation.unwrap_or_default().to_string();
        let mut rep = report.for_object("Gateway", key, &generation);
        for l in &gw.spec.listeners {
            let passthrough = super::tls_routes::passthrough_listener(l);
            if !served_protocol(l) && !passthrough {
                let detail = format!("listener {}: protocol {}", l.name, l.protocol);
                rep.skip("unsupported_protocol", &detail);
                continue;
            }
            let Some(port) = u16::try_from(l.port).ok().filter(|p| *p != 0) else {
                rep.skip(
                    "invalid_port",
                    &format!("listener {}: port {}", l.name, l.port),
                );
                continue;
            };
            // TLS Passthrough listeners are TLS listeners whose names TLSRoutes pass through.
            let tls = l.protocol == "HTTPS" || passthrough;
            let section =
                section(key, l).filter(|_| !passthrough && !conflicts.contains(&l.name.as_str()));
            match out.iter_mut().find(|o| o.port == port) {
                None => out.push(GatewayListener {
                    name: section_name(key, &l.name),
                    port,
                    tls,
                    sections: section.into_iter().collect(),
                }),
                Some(o) if o.tls != tls => {
                    let detail = format!("listener {}: port {port} is {}", l.name, o.name);
                    rep.skip("protocol_conflict", &detail);
                }
                Some(o) => o.sections.extend(section),
            }
        }
    }
    out
}

/// Adds the wanted listeners to `config` by the rules above; `open` holds the ports opened by
/// the previous merge and is updated.
pub(in crate::discovery) fn merge(
    config: &mut Config,
    wanted: &[GatewayListener],
    open: &mut BTreeSet<u16>,
    refused: &mut BTreeMap<u16, &'static str>,
    report: &mut Reporter,
) {
    let mut now = BTreeSet::new();
    refused.clear();
    for w in wanted {
        let file = config
            .http
            .listeners
            .iter_mut()
            .find(|l| l.listen.port() == w.port);
        match file {
            Some(l) if l.tls == w.tls => {
                l.sections.extend(w.sections.iter().cloned());
                continue;
            }
            Some(l) => {
                let detail = format!("{}: port {} is the file's {}", w.name, w.port, l.name);
                report.once("Gateway", "port_conflict", &detail);
                refused.insert(w.port, "PortUnavailable");
                continue;
            }
            None => {}
        }
        let addr = std::net::SocketAddr::from(([0, 0, 0, 0], w.port));
        if !open.contains(&w.port)
            && let Err(e) = std::net::TcpListener::bind(addr)
        {
            report.once(
                "Gateway",
                "port_unavailable",
                &format!("{}: {addr}: {e}", w.name),
            );
            refused.insert(w.port, "PortUnavailable");
            continue;
        }
        let mut listener = template().clone();
        listener.name = Arc::clone(&w.name);
        listener.listen = addr;
        listener.tls = w.tls;
        listener.sections = w.sections.clone();
        listener.isolated = true;
        config.http.listeners.push(listener);
        now.insert(w.port);
    }
    *open = now;
}

/// A file `[[listeners]]` entry with every setting at its default.
fn template() -> &'static ListenerConfig {
    static TEMPLATE: OnceLock<ListenerConfig> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let text = "[[listeners]]\nname = \"gateway\"\nlisten = \"0.0.0.0:80\"\n";
        Config::parse(text, "gateway listener defaults")
            .ok()
            .and_then(|c| c.http.listeners.into_iter().next())
            .unwrap_or_else(|| unreachable!("the built-in listener text is valid"))
    })
}
