//! The desired kernel state, computed from a table snapshot.
//!
//! A service is the kernel's when its (already resolved) `dataplane` is not `userspace` and
//! its `listen` is a concrete VIP:port (IPVS cannot serve `0.0.0.0` or port 0). Schedulers
//! map one to one onto IPVS module names; `twos` exists only in newer kernels (6.4+), so
//! when the kernel refused it once, `wlc` (its closest relative) is programmed instead.

use super::reconcile::{Desired, DesiredService};
use super::types::{
    DestSpec, SVC_F_PERSISTENT, SVC_F_SCHED1, SVC_F_SCHED2, ServiceKey, ServiceSpec,
};
use crate::balance::Scheduler;
use crate::config::{Dataplane, Forwarding, ServiceConfig};
use crate::service_table::Snapshot;

/// Whether this service wants the kernel data plane and can have it.
pub fn wants_kernel(s: &ServiceConfig) -> bool {
    s.ipvs.dataplane != Dataplane::Userspace
        && s.listen
            .is_some_and(|l| l.port() != 0 && !l.ip().is_unspecified())
}

/// The kernel scheduler name for `s`.
pub fn kernel_scheduler(s: Scheduler, twos_supported: bool) -> &'static str {
    match s {
        Scheduler::Twos if !twos_supported => "wlc",
        other => other.name(),
    }
}

/// The service spec and destinations Switchyard wants for one service.
pub fn service(
    s: &ServiceConfig,
    forwarding: Forwarding,
    twos_supported: bool,
) -> Option<DesiredService> {
    if !wants_kernel(s) {
        return None;
    }
    let key = ServiceKey {
        protocol: s.protocol,
        vip: s.listen?,
    };
    let timeout = s
        .ipvs
        .persistence
        .map_or(0, |d| d.as_secs().clamp(1, u64::from(u32::MAX)) as u32);
    let mut flags = 0;
    if timeout != 0 {
        flags |= SVC_F_PERSISTENT;
    }
    if s.ipvs.sched_fallback {
        flags |= SVC_F_SCHED1;
    }
    if s.ipvs.sched_port {
        flags |= SVC_F_SCHED2;
    }
    let dests = s
        .endpoints
        .iter()
        .map(|e| {
            (
                e.address,
                DestSpec {
                    addr: e.address,
                    forwarding,
                    weight: e.weight,
                },
            )
        })
        .collect();
    Some(DesiredService {
        spec: ServiceSpec {
            key,
            scheduler: kernel_scheduler(s.scheduler, twos_supported).to_owned(),
            flags,
            timeout,
        },
        dests,
    })
}

/// The desired state of a whole snapshot.
pub fn desired(snapshot: &Snapshot, forwarding: Forwarding, twos_supported: bool) -> Desired {
    snapshot
        .services()
        .filter_map(|s| service(&s.config, forwarding, twos_supported))
        .map(|d| (d.spec.key, d))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn config(extra: &str, listen: &str) -> Config {
        let text = format!(
            "[ipvs]\ndataplane = \"auto\"\n[[services]]\nname = \"s\"\nlisten = \"{listen}\"\n{extra}\n[[services.endpoints]]\naddress = \"10.0.0.1:80\"\nweight = 4\n"
        );
        Config::parse(&text, "t").unwrap()
    }

    #[test]
    fn persistence_and_hash_flags_become_kernel_flags() {
        let c = config(
            "scheduler = \"mh\"\nscheduler_flags = [\"fallback\"]\npersistence_timeout = \"90s\"",
            "10.96.0.1:80",
        );
        let d = service(&c.services[0], Forwarding::Route, true).unwrap();
        assert_eq!(d.spec.scheduler, "mh");
        assert_eq!(d.spec.flags, SVC_F_PERSISTENT | SVC_F_SCHED1);
        assert_eq!(d.spec.timeout, 90);
        let dest = d.dests.values().next().unwrap();
        assert_eq!((dest.weight, dest.forwarding), (4, Forwarding::Route));
    }

    #[test]
    fn twos_falls_back_to_wlc_once_the_kernel_refused_it() {
        let c = config("scheduler = \"twos\"", "10.96.0.1:80");
        assert_eq!(
            service(&c.services[0], Forwarding::Masq, true)
                .unwrap()
                .spec
                .scheduler,
            "twos"
        );
        assert_eq!(
            service(&c.services[0], Forwarding::Masq, false)
                .unwrap()
                .spec
                .scheduler,
            "wlc"
        );
    }

    #[test]
    fn wildcard_or_port_zero_listeners_stay_in_user_space() {
        for listen in ["0.0.0.0:80", "10.96.0.1:0"] {
            assert!(!wants_kernel(&config("", listen).services[0]), "{listen}");
        }
        let mut user = config("", "10.96.0.1:80").services[0].clone();
        user.ipvs.dataplane = Dataplane::Userspace;
        assert!(!wants_kernel(&user));
    }
}
