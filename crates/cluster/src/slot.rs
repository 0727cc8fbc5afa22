//! The hash slot of a tenant: CRC-32 (IEEE 802.3, as zlib and HAProxy's `crc32` converter
//! compute it) of the tenant id's bytes, modulo 16,384. HAProxy computes the same slot from the
//! request (`path,field(3,/),crc32,mod(16384)`), so the load balancer and every node agree on
//! a tenant's slot without a per-tenant table.

use store::TenantId;

/// Number of hash slots (Redis Cluster's count: small enough for a table, large enough to move
/// load in small steps).
pub const SLOTS: u16 = 16_384;

/// The slot of a tenant id's bytes.
pub fn slot_of_bytes(id: &[u8]) -> u16 {
    (crc32fast::hash(id) % u32::from(SLOTS)) as u16
}

/// The slot of a tenant.
pub fn slot_of(tenant: &TenantId) -> u16 {
    slot_of_bytes(tenant.as_str().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_what_haproxy_2_6_computed() {
        // Read off Debian's HAProxy 2.6.12 with `path,field(3,/),crc32,mod(16384)`.
        assert_eq!(slot_of_bytes(b"acme"), 14_910);
        assert_eq!(slot_of_bytes(b"globex"), 6_906);
    }

    #[test]
    fn every_slot_is_in_range() {
        for i in 0..10_000u32 {
            assert!(slot_of_bytes(format!("tenant{i:05}").as_bytes()) < SLOTS);
        }
    }
}
