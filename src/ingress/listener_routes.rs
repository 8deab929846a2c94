//! Which routes a listener serves: route *fences* and isolated listener *sections*.
//!
//! A route may be fenced to named listeners (`RouteConfig::listeners`): only requests that
//! arrived on one of them can match it. A socket may carry *sections* (Gateway listeners
//! sharing a port, each with an optional hostname): a request is served by the most specific
//! section whose hostname claims its host (exact, then the longest `*.` suffix, then one
//! without hostname), and then only by the routes fenced to that section. Hosts no section
//! claims go to the socket's own routes (the file's and Ingresses', plus those fenced to the
//! socket's name), or get 404 when the socket is *isolated* (a port only Gateways use). So a
//! file listener sharing its port with a Gateway keeps its routes for every host no Gateway
//! listener there names; a Gateway listener without hostname on it claims every host.
//!
//! Why a table per listener rather than a fence checked beside the conditions in
//! `RouteList::pick`: a fence inside one shared table would still let the table's host-group
//! precedence cross sources (a file route's exact host group shadowing a Gateway route's
//! wildcard, a file host default or the global default answering on a Gateway listener), and
//! every pick would pay the check. Built once per snapshot, separate tables keep each
//! listener's precedence to its own routes (a section's table also gives `*.x` the Gateway
//! API's meaning, any depth of labels under `x`, and matches a request against the rules of
//! every route whose hostnames cover its host: [`super::host_merge`]); when nothing is fenced and no socket has sections
//! (every config without Gateways) there is none of this, and a request costs one branch.

use super::host_merge::covering_copies;
use super::{Conflict, HostPattern, Hostname, RouteTable, Rule};
use crate::config::ListenerConfig;
use std::collections::HashMap;
use std::sync::Arc;

/// A named listener on a shared socket, told apart by the request's host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The name routes are fenced to (`gateway:namespace/name/listener`).
    pub name: Arc<str>,
    /// The hosts it claims (`*.x`: any host ending in `.x`); `None`: every host.
    pub hostname: Option<HostPattern>,
}

impl Section {
    /// Whether this section serves requests for `host`.
    pub fn claims(&self, host: &Hostname) -> bool {
        match &self.hostname {
            None => true,
            Some(HostPattern::Exact(name)) => name == host,
            Some(HostPattern::Wildcard(suffix)) => host
                .as_str()
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        }
    }

    /// Sort key, most specific first: exact names, then wildcards by length, then none.
    fn rank(&self) -> (u8, std::cmp::Reverse<usize>) {
        match &self.hostname {
            Some(HostPattern::Exact(_)) => (0, std::cmp::Reverse(0)),
            Some(HostPattern::Wildcard(s)) => (1, std::cmp::Reverse(s.as_str().len())),
            None => (2, std::cmp::Reverse(0)),
        }
    }
}

/// What a socket serves for hosts no section claims.
#[derive(Debug, Clone, Copy)]
enum Rest {
    /// The shared table (file and Ingress routes).
    Shared,
    /// A table of its own: the shared routes plus those fenced to the socket.
    Own(usize),
    /// Nothing: 404 (isolated).
    Nothing,
}

/// One socket's sections (table index each, most specific first) and its other hosts.
#[derive(Debug)]
struct Socket {
    sections: Vec<(Section, usize)>,
    rest: Rest,
}

/// The tables of the listeners that do not simply serve the shared table.
#[derive(Debug)]
pub(super) struct Scoped<T> {
    tables: Vec<RouteTable<T>>,
    sockets: HashMap<Arc<str>, Socket>,
}

impl<T> Scoped<T> {
    /// The table for a request for `host` on `listener` (`None`: 404). On a TLS connection
    /// with a server name `sni`, the section is the one claiming that name (an HTTPS Gateway
    /// listener's hostname matches the SNI, and then its routes the Host: conformance
    /// HTTPRouteHTTPSListener), else the one claiming `host`.
    pub(super) fn table<'a>(
        &'a self,
        shared: &'a RouteTable<T>,
        listener: &str,
        sni: Option<&str>,
        host: &Hostname,
    ) -> Option<&'a RouteTable<T>> {
        let Some(socket) = self.sockets.get(listener) else {
            return Some(shared);
        };
        let by_sni = sni
            .filter(|_| !socket.sections.is_empty())
            .and_then(Hostname::from_authority);
        let claim = by_sni.as_ref().unwrap_or(host);
        if let Some((_, i)) = socket.sections.iter().find(|(s, _)| s.claims(claim)) {
            return self.tables.get(*i);
        }
        match socket.rest {
            Rest::Shared => Some(shared),
            Rest::Own(i) => self.tables.get(i),
            Rest::Nothing => None,
        }
    }
}

impl<T> Scoped<T> {
    /// Whether a request for `host` on `listener` is served by the shared routes (and so by
    /// the file's `[[hosts]]` settings, such as `redirect_https`).
    pub(super) fn serves_shared(&self, listener: &str, host: &Hostname) -> bool {
        let Some(socket) = self.sockets.get(listener) else {
            return true;
        };
        !socket.sections.iter().any(|(s, _)| s.claims(host))
            && !matches!(socket.rest, Rest::Nothing)
    }
}

/// The fence of each rule (`None`: unfenced), parallel to the rules.
pub(super) type Fences<'c> = Vec<Option<&'c [Arc<str>]>>;

/// Which fences a table takes.
type Keep<'k> = &'k dyn Fn(Option<&[Arc<str>]>) -> bool;

/// The shared table, the per-listener ones, and the conflicts.
pub(super) type Built<T> = (RouteTable<T>, Option<Box<Scoped<T>>>, Vec<Conflict>);

/// Builds the shared table (unfenced rules, host defaults, default) and, when some rule is
/// fenced or some listener has sections, the per-listener tables. Conflict indices are
/// positions in `rules`, each reported once.
pub(super) fn build<T: Clone>(
    listeners: &[ListenerConfig],
    rules: Vec<Rule<T>>,
    fences: &Fences<'_>,
    host_defaults: Vec<(HostPattern, T)>,
    default: Option<T>,
) -> Built<T> {
    let scoped = fences.iter().any(Option::is_some)
        || listeners
            .iter()
            .any(|l| l.isolated || !l.sections.is_empty());
    if !scoped {
        let (table, conflicts) = RouteTable::build(rules, host_defaults, default);
        return (table, None, conflicts);
    }
    let mut conflicts = Vec::new();
    let mut subset = |keep: Keep<'_>, shared: bool| {
        let mut picked: Vec<usize> = (0..rules.len()).filter(|&i| keep(fences[i])).collect();
        let mut chosen: Vec<Rule<T>> = picked.iter().map(|&i| rules[i].clone()).collect();
        let own = chosen.len();
        let (hd, d) = match shared {
            true => (host_defaults.clone(), default.clone()),
            false => {
                // A Gateway listener's table: rules matched across routes (`host_merge`).
                for (at, copy) in covering_copies(&chosen) {
                    picked.push(picked[at]);
                    chosen.push(copy);
                }
                (Vec::new(), None)
            }
        };
        let (table, found) = RouteTable::build(chosen, hd, d);
        let found = found.into_iter().filter(|c| !of_copy(c, own));
        for c in found.map(|c| renumber(c, &picked)) {
            if !conflicts.contains(&c) {
                conflicts.push(c);
            }
        }
        table
    };
    let shared = subset(&|f| f.is_none(), true);
    let mut tables = Vec::new();
    let mut sockets = HashMap::new();
    for l in listeners {
        let fenced_here = |f: Option<&[Arc<str>]>| f.is_some_and(|f| f.contains(&l.name));
        let rest = if l.isolated {
            Rest::Nothing
        } else if fences.iter().any(|f| fenced_here(*f)) {
            tables.push(subset(&|f| f.is_none() || fenced_here(f), true));
            Rest::Own(tables.len() - 1)
        } else {
            Rest::Shared
        };
        let mut sections = Vec::new();
        for s in &l.sections {
            let name = &s.name;
            let table = subset(&|f| f.is_some_and(|f| f.contains(name)), false);
            tables.push(table.with_suffix_wildcards());
            sections.push((s.clone(), tables.len() - 1));
        }
        sections.sort_by_key(|(s, _)| s.rank());
        if !sections.is_empty() || !matches!(rest, Rest::Shared) {
            sockets.insert(Arc::clone(&l.name), Socket { sections, rest });
        }
    }
    let scoped = Scoped { tables, sockets };
    (shared, Some(Box::new(scoped)), conflicts)
}

/// Whether `c` is about a copy made for matching across routes (positions from `own` on):
/// its source rule is reported, or served, on its own.
fn of_copy(c: &Conflict, own: usize) -> bool {
    match c {
        Conflict::Invalid { rule, .. } | Conflict::Duplicate { rule, .. } => *rule >= own,
        _ => false,
    }
}

/// `c` with its rule indices (positions in a subset) made positions in the whole input.
fn renumber(c: Conflict, picked: &[usize]) -> Conflict {
    let at = |i: usize| picked.get(i).copied().unwrap_or(i);
    match c {
        Conflict::Invalid { rule, reason } => Conflict::Invalid {
            rule: at(rule),
            reason,
        },
        Conflict::Duplicate {
            rule,
            first,
            host,
            path,
            path_type,
        } => Conflict::Duplicate {
            rule: at(rule),
            first: at(first),
            host,
            path,
            path_type,
        },
        other => other,
    }
}

#[cfg(test)]
#[path = "listener_routes_tests.rs"]
mod tests;
