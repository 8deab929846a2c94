//! STUB: to be replaced.
use super::{Pick, rr::RoundRobin};
use crate::service_table::Endpoint;
use std::net::IpAddr;
#[derive(Debug)]
pub(super) struct Maglev(RoundRobin);
impl Maglev {
    pub(super) fn new(endpoints: &[Endpoint], _m: u32) -> Self {
        Self(RoundRobin::new(endpoints))
    }
}
impl Pick for Maglev {
    fn pick(&self, eps: &[Endpoint], c: IpAddr, usable: &dyn Fn(usize) -> bool) -> Option<usize> {
        self.0.pick(eps, c, usable)
    }
}
