//! Who counts as one peer for the per-peer bounds.
//!
//! An IPv4 address is one peer. An IPv6 address is not: a single subscriber, host or cloud
//! instance is usually handed a whole /64 (or more) and can send from any of its 2^64
//! addresses, so counting per address would give one attacker an unbounded number of shares.
//! porter counts IPv6 peers per /64 prefix, and an IPv4-mapped IPv6 address
//! (`::ffff:192.0.2.1`, as a dual-stack socket reports IPv4 clients) as the IPv4 address it
//! carries.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

/// One peer: an IPv4 address, or an IPv6 /64 prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer(IpAddr);

impl Peer {
    /// The peer an address belongs to.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => Self(ip),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    Self(IpAddr::V6(Ipv6Addr::from(prefix)))
                }
            },
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(text: &str) -> Peer {
        Peer::of(text.parse().expect("an address"))
    }

    #[test]
    fn ipv6_addresses_of_one_64_are_one_peer() {
        assert_eq!(
            peer("2001:db8:1:2::1"),
            peer("2001:db8:1:2:ffff:ffff:ffff:ffff")
        );
        assert_ne!(peer("2001:db8:1:2::1"), peer("2001:db8:1:3::1"));
        assert_eq!(peer("2001:db8:1:2::7").to_string(), "2001:db8:1:2::/64");
    }

    #[test]
    fn ipv4_addresses_are_peers_of_their_own_even_when_mapped() {
        assert_ne!(peer("192.0.2.1"), peer("192.0.2.2"));
        assert_eq!(peer("::ffff:192.0.2.1"), peer("192.0.2.1"));
        assert_eq!(peer("::ffff:192.0.2.1").to_string(), "192.0.2.1");
    }
}
