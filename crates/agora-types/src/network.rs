//! Which chains are development chains, and which endpoint hosts are public.
//! A registered provider endpoint is dialled by every gateway and validator,
//! so on a real network it must not name loopback, private or link-local
//! addresses (server-side request forgery into the dialler's own network);
//! development chains run everything on one machine and may.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The chain id of `agora devnet`.
pub const DEV_CHAIN_ID: &str = "agora-devnet";

/// Whether `chain_id` names a development chain: [`DEV_CHAIN_ID`] or an id
/// ending in `-devnet`, `-localnet` or `-test`.
pub fn is_development_chain(chain_id: &str) -> bool {
    chain_id == DEV_CHAIN_ID
        || ["-devnet", "-localnet", "-test"]
            .iter()
            .any(|suffix| chain_id.ends_with(suffix))
}

/// Whether `ip` is reachable on the public internet (not loopback, private,
/// link-local, shared, documentation, multicast or unspecified).
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // Benchmarking, 198.18.0.0/15.
        || (a == 198 && (b == 18 || b == 19)))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // Unique local fc00::/7 and link-local fe80::/10.
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        // Documentation 2001:db8::/32.
        || (first == 0x2001 && ip.segments()[1] == 0x0db8))
}

/// Why an endpoint host is not public.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// The URL's host part is missing or malformed.
    #[error("no valid host in the URL")]
    Malformed,
    /// The host is a name that only resolves inside a machine or a site.
    #[error("host {0} is a local name")]
    LocalName(String),
    /// The host is an address that is not public.
    #[error("host {0} is not a public address")]
    NotPublic(IpAddr),
}

/// The host of an `http(s)://host[:port][/path]` URL, checked to be public:
/// no user info, no local names, no non-public IP literals. (A public name
/// may still resolve to a private address; diallers check at connect time.)
pub fn check_public_host(url: &str) -> Result<(), HostError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or(HostError::Malformed)?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') {
        return Err(HostError::Malformed);
    }
    let host = if let Some(bracketed) = authority.strip_prefix('[') {
        bracketed.split(']').next().ok_or(HostError::Malformed)?
    } else {
        authority.split(':').next().unwrap_or("")
    };
    if host.is_empty() {
        return Err(HostError::Malformed);
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return if is_public_ip(ip) {
            Ok(())
        } else {
            Err(HostError::NotPublic(ip))
        };
    }
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    let local = name == "localhost"
        || !name.contains('.')
        || [".localhost", ".local", ".internal", ".home.arpa", ".lan"]
            .iter()
            .any(|suffix| name.ends_with(suffix));
    if local {
        return Err(HostError::LocalName(host.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn development_chains_are_named_as_such() {
        assert!(is_development_chain("agora-devnet"));
        assert!(is_development_chain("agora-localnet"));
        assert!(is_development_chain("x-test"));
        assert!(!is_development_chain("agora-mainnet"));
        assert!(!is_development_chain("devnet-agora"));
    }

    #[test]
    fn private_loopback_and_local_hosts_are_refused() {
        for bad in [
            "http://127.0.0.1:8080",
            "http://10.1.2.3",
            "http://172.16.0.1/x",
            "http://192.168.1.1:1",
            "http://169.254.169.254/latest/meta-data",
            "http://0.0.0.0:80",
            "http://100.64.0.1",
            "http://[::1]:80",
            "http://[fe80::1]",
            "http://[fd00::1]",
            "http://[::ffff:127.0.0.1]",
            "http://localhost:8080",
            "http://metadata.google.internal",
            "http://printer.local",
            "http://intranet",
            "http://user@example.com",
            "http://",
            "ftp://example.com",
        ] {
            assert!(check_public_host(bad).is_err(), "{bad} accepted");
        }
        for good in [
            "http://8.8.8.8:8080",
            "https://provider.example.com/v1",
            "http://[2606:4700::1111]:443",
            "https://p.agora.network.",
        ] {
            assert_eq!(check_public_host(good), Ok(()), "{good} refused");
        }
    }
}
