//! SNI names whose TLS connections are passed through undecrypted to a service (`[[passthrough]]`
//! in the file, `ssl-passthrough` on an Ingress), looked up once per connection on a TLS
//! listener, after the ClientHello is read and before any TLS state is made.
//!
//! The table is built with each snapshot (it names services of that snapshot) and read through
//! it, so a reload swaps it with the routes. Lookup is the certificates': the exact name, then a
//! wildcard covering exactly one label; then, for entries whose wildcards reach deeper (Gateway
//! API TLSRoutes, `deep_wildcards`), the longest wildcard suffix above that; case and a
//! trailing dot are ignored. A passthrough name
//! wins over any certificate for it: the ClientHello never reaches our TLS stack. An entry may
//! be limited to some listeners; the first entry (in config order) that matches the name and
//! the listener wins.

use crate::config::PassthroughConfig;
use crate::ingress::HostPattern;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

/// SNI name → service, for the TLS listeners.
#[derive(Debug, Default)]
pub struct PassthroughTable {
    entries: Vec<Entry>,
    /// Lowercase exact name → indices into `entries`, in config order.
    exact: HashMap<Box<str>, Vec<usize>>,
    /// Lowercase parent of a wildcard → indices into `entries`, in config order.
    wildcard: HashMap<Box<str>, Vec<usize>>,
    /// The same, for wildcards of entries with `deep_wildcards` only (also in `wildcard`).
    deep: HashMap<Box<str>, Vec<usize>>,
}

#[derive(Debug)]
struct Entry {
    service: Arc<str>,
    /// Listener names it applies to; empty: all.
    listeners: Vec<Arc<str>>,
}

impl PassthroughTable {
    /// Indexes `config` (already validated: hosts parsed, services named).
    pub fn build(config: &[PassthroughConfig]) -> PassthroughTable {
        let mut table = PassthroughTable::default();
        for (index, p) in config.iter().enumerate() {
            table.entries.push(Entry {
                service: Arc::clone(&p.service),
                listeners: p.listeners.clone(),
            });
            for host in &p.hosts {
                let (map, name) = match host {
                    HostPattern::Exact(name) => (&mut table.exact, name.as_str()),
                    HostPattern::Wildcard(parent) => (&mut table.wildcard, parent.as_str()),
                };
                add(map, name, index);
                if let (HostPattern::Wildcard(parent), true) = (host, p.deep_wildcards) {
                    add(&mut table.deep, parent.as_str(), index);
                }
            }
        }
        table
    }

    /// True when nothing is passed through (the common case: one branch per connection).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The service a ClientHello for `sni` on `listener` is passed through to, if any.
    pub fn lookup(&self, listener: &str, sni: &str) -> Option<&Arc<str>> {
        if self.is_empty() {
            return None;
        }
        let sni = sni.strip_suffix('.').unwrap_or(sni);
        let sni: Cow<'_, str> = if sni.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(sni.to_ascii_lowercase())
        } else {
            Cow::Borrowed(sni)
        };
        let on_listener = |list: &Vec<usize>| {
            list.iter()
                .map(|&i| &self.entries[i])
                .find(|e| e.listeners.is_empty() || e.listeners.iter().any(|l| &**l == listener))
        };
        let exact = self.exact.get(&*sni).and_then(on_listener);
        let entry = exact.or_else(|| {
            let (label, mut parent) = sni.split_once('.')?;
            if label.is_empty() {
                return None;
            }
            if let Some(entry) = self.wildcard.get(parent).and_then(on_listener) {
                return Some(entry);
            }
            while let Some((_, up)) = parent.split_once('.') {
                if let Some(entry) = self.deep.get(up).and_then(on_listener) {
                    return Some(entry);
                }
                parent = up;
            }
            None
        })?;
        Some(&entry.service)
    }
}

/// Adds `index` to the list of `name`, once.
fn add(map: &mut HashMap<Box<str>, Vec<usize>>, name: &str, index: usize) {
    let list = map.entry(name.into()).or_default();
    if !list.contains(&index) {
        list.push(index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(hosts: &[&str], service: &str, listeners: &[&str]) -> PassthroughConfig {
        PassthroughConfig {
            hosts: hosts
                .iter()
                .map(|h| HostPattern::parse(h).unwrap())
                .collect(),
            service: service.into(),
            listeners: listeners.iter().map(|&l| l.into()).collect(),
            deep_wildcards: false,
        }
    }

    #[test]
    fn deep_wildcards_cover_any_depth_the_longest_suffix_first() {
        let deep = |hosts: &[&str], service: &str| PassthroughConfig {
            deep_wildcards: true,
            ..entry(hosts, service, &[])
        };
        let table = PassthroughTable::build(&[
            entry(&["*.one.test"], "one-label", &[]),
            deep(&["*.test"], "test"),
            deep(&["*.b.test"], "b"),
        ]);
        let at = |sni| table.lookup("tls", sni).map(|s| &**s);
        assert_eq!(at("x.one.test"), Some("one-label"));
        assert_eq!(
            at("y.x.one.test"),
            Some("test"),
            "one-label stays one label"
        );
        assert_eq!(at("a.b.test"), Some("b"));
        assert_eq!(at("z.a.b.test"), Some("b"));
        assert_eq!(at("z.a.c.test"), Some("test"));
        assert_eq!(at("c.test"), Some("test"));
        assert_eq!(at("test"), None);
    }

    #[test]
    fn exact_names_win_over_wildcards_and_case_and_dot_are_ignored() {
        let table = PassthroughTable::build(&[
            entry(&["*.raw.test"], "wild", &[]),
            entry(&["db.raw.test"], "db", &[]),
        ]);
        assert_eq!(table.lookup("tls", "db.raw.test").map(|s| &**s), Some("db"));
        assert_eq!(
            table.lookup("tls", "DB.Raw.Test.").map(|s| &**s),
            Some("db")
        );
        assert_eq!(
            table.lookup("tls", "x.raw.test").map(|s| &**s),
            Some("wild")
        );
        assert_eq!(table.lookup("tls", "raw.test"), None);
        assert_eq!(table.lookup("tls", "a.b.raw.test"), None);
        assert_eq!(table.lookup("tls", ".raw.test"), None);
    }

    #[test]
    fn an_entry_limited_to_listeners_applies_only_there() {
        let table = PassthroughTable::build(&[
            entry(&["db.test"], "internal", &["inner"]),
            entry(&["db.test"], "public", &[]),
        ]);
        assert_eq!(
            table.lookup("inner", "db.test").map(|s| &**s),
            Some("internal")
        );
        assert_eq!(
            table.lookup("outer", "db.test").map(|s| &**s),
            Some("public")
        );
        let only = PassthroughTable::build(&[entry(&["db.test"], "internal", &["inner"])]);
        assert_eq!(only.lookup("outer", "db.test"), None);
    }

    #[test]
    fn an_empty_table_passes_nothing_through() {
        let table = PassthroughTable::build(&[]);
        assert!(table.is_empty());
        assert_eq!(table.lookup("tls", "db.test"), None);
    }
}
