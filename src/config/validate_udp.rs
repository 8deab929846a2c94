//! Validation of the UDP-only service settings: the kernel socket buffer sizes.
//!
//! The kernel takes any `int` for `SO_RCVBUF`/`SO_SNDBUF` and quietly raises tiny values to
//! its minimum (about 2 KiB) or caps large ones at `net.core.rmem_max`/`wmem_max`, so a typo
//! would not fail anywhere. We refuse what cannot be meant: 0 (leave the key out for the
//! kernel's default), less than 1 KiB (not even one ordinary datagram), more than 256 MiB per
//! socket (the largest buffers tuning guides give for high-rate UDP are tens of MiB, and a
//! service has one socket per flow besides its own).

use super::file::RawService;
use super::validate::Issues;
use super::{Protocol, SocketBuffers};
use std::num::NonZeroU32;

/// Smallest buffer accepted, bytes.
const MIN_BUFFER: u64 = 1024;
/// Largest buffer accepted, bytes (256 MiB).
const MAX_BUFFER: u64 = 256 * 1024 * 1024;

/// `udp_recv_buffer` and `udp_send_buffer` of one service; `None` if either is refused.
pub(super) fn buffers(raw: &RawService, path: &str, issues: &mut Issues) -> Option<SocketBuffers> {
    let before = issues.len();
    let mut one = |value: Option<u64>, key: &str| {
        let value = value?;
        let at = format!("{path}.{key}");
        if raw.protocol != Protocol::Udp {
            issues.push(at, "only for udp services");
            return None;
        }
        let size = NonZeroU32::new(u32::try_from(value).unwrap_or(0))
            .filter(|_| (MIN_BUFFER..=MAX_BUFFER).contains(&value));
        if size.is_none() {
            issues.push(
                at,
                format!(
                    "{value} bytes is out of range {MIN_BUFFER}..={MAX_BUFFER} \
                     (leave it out for the kernel's default)"
                ),
            );
        }
        size
    };
    let recv = one(raw.udp_recv_buffer, "udp_recv_buffer");
    let send = one(raw.udp_send_buffer, "udp_send_buffer");
    (issues.len() == before).then_some(SocketBuffers { recv, send })
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError, Issue};

    fn service(protocol: &str, extra: &str) -> String {
        format!(
            "[[services]]\nname = \"s\"\nlisten = \"127.0.0.1:5353\"\nprotocol = \"{protocol}\"\n\
             {extra}\n[[services.endpoints]]\naddress = \"127.0.0.1:53\"\n"
        )
    }

    fn issues(text: &str) -> Vec<String> {
        match Config::parse(text, "test.toml") {
            Err(ConfigError::Invalid { issues, .. }) => {
                issues.iter().map(Issue::to_string).collect()
            }
            other => panic!("expected validation issues, got {other:?}"),
        }
    }

    #[test]
    fn udp_buffers_default_to_the_kernels_and_take_bytes() {
        let c = Config::parse(&service("udp", ""), "t").unwrap();
        assert_eq!(c.services[0].udp_buffers.recv, None);
        assert_eq!(c.services[0].udp_buffers.send, None);
        let text = service("udp", "udp_recv_buffer = 8388608\nudp_send_buffer = 1024");
        let c = Config::parse(&text, "t").unwrap();
        assert_eq!(
            c.services[0].udp_buffers.recv.map(|n| n.get()),
            Some(8 << 20)
        );
        assert_eq!(c.services[0].udp_buffers.send.map(|n| n.get()), Some(1024));
    }

    #[test]
    fn udp_buffers_are_refused_on_tcp_services_with_their_path() {
        let text = format!(
            "{}{}",
            service("udp", ""),
            service("tcp", "udp_recv_buffer = 65536\nudp_send_buffer = 65536")
                .replace("\"s\"", "\"t\"")
                .replace("5353", "5354")
        );
        assert_eq!(
            issues(&text),
            vec![
                "services[1].udp_recv_buffer: only for udp services",
                "services[1].udp_send_buffer: only for udp services",
            ]
        );
    }

    #[test]
    fn zero_tiny_and_absurd_udp_buffers_are_refused_with_their_path() {
        for (value, key) in [
            ("0", "udp_recv_buffer"),
            ("1023", "udp_recv_buffer"),
            ("268435457", "udp_send_buffer"),
            ("99999999999", "udp_send_buffer"),
        ] {
            let text = format!(
                "{}{}{}",
                service("udp", "").replace("\"s\"", "\"a\""),
                service("udp", "")
                    .replace("\"s\"", "\"b\"")
                    .replace("5353", "5354"),
                service("udp", &format!("{key} = {value}")).replace("5353", "5355"),
            );
            assert_eq!(
                issues(&text),
                vec![format!(
                    "services[2].{key}: {value} bytes is out of range 1024..=268435456 \
                     (leave it out for the kernel's default)"
                )],
                "{key} = {value}"
            );
        }
        let negative = service("udp", "udp_recv_buffer = -1");
        assert!(
            matches!(
                Config::parse(&negative, "t"),
                Err(ConfigError::Syntax { ref path, .. }) if path == "services[0].udp_recv_buffer"
            ),
            "a negative size is a type error at its key"
        );
        let edges = service("udp", "udp_recv_buffer = 1024\nudp_send_buffer = 268435456");
        assert!(Config::parse(&edges, "t").is_ok(), "both ends are included");
    }
}
