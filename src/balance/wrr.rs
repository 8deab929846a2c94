//! STUB: to be replaced.
use super::{Pick, rr::RoundRobin};
use crate::service_table::Endpoint;
use std::net::IpAddr;
#[derive(Debug)]
pub(super) struct SmoothWeighted(RoundRobin);
impl SmoothWeighted {
    pub(super) fn new(endpoints: &[Endpoint]) -> Self {
        Self(RoundRobin::new(endpoints))
    }
}
impl Pick for SmoothWeighted {
    fn pick(&self, eps: &[Endpoint], c: IpAddr, usable: &dyn Fn(usize) -> bool) -> Option<usize> {
        self.0.pick(eps, c, usable)
    }
}
