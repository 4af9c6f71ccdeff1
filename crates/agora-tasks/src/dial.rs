//! Outbound HTTP to addresses strangers registered (provider endpoints):
//! never follow a redirect, and outside development chains never connect to
//! a loopback, private or link-local address, whatever a public-looking name
//! resolves to at connect time (DNS rebinding included). The ledger already
//! refuses such IP literals at registration; this closes the name path.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use agora_types::network::{is_development_chain, is_public_ip};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// A client builder for dialling registered endpoints on `chain_id`: no
/// redirects, and on a non-development chain only public addresses.
pub fn endpoint_client(builder: reqwest::ClientBuilder, chain_id: &str) -> reqwest::ClientBuilder {
    let builder = builder.redirect(reqwest::redirect::Policy::none());
    if is_development_chain(chain_id) {
        builder
    } else {
        builder.dns_resolver(Arc::new(PublicOnly))
    }
}

/// Resolves with the system resolver and keeps public addresses only.
#[derive(Clone, Copy, Debug, Default)]
pub struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public = keep_public(&host, found)?;
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// The public addresses among `found`, or an error naming `host` if none is.
fn keep_public(host: &str, found: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, io::Error> {
    let public: Vec<SocketAddr> = found.into_iter().filter(|a| is_public_ip(a.ip())).collect();
    if public.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{host} resolves to no public address (loopback, private and link-local addresses are never dialled)"),
        ));
    }
    Ok(public)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_public_addresses_are_kept() {
        let mixed = vec![
            addr("127.0.0.1:0"),
            addr("10.1.2.3:0"),
            addr("169.254.169.254:0"),
            addr("[::1]:0"),
            addr("93.184.216.34:0"),
        ];
        assert_eq!(
            keep_public("mixed.example", mixed).unwrap(),
            vec![addr("93.184.216.34:0")]
        );
        let private = vec![addr("192.168.0.1:0"), addr("[fe80::1]:0")];
        let err = keep_public("rebound.example", private).unwrap_err();
        assert!(err.to_string().contains("rebound.example"), "{err}");
    }

    /// Attack: a provider registers `http://metadata.attacker.example/` whose
    /// name resolves to loopback (here `localhost`, to a server that would
    /// answer). On a real chain the dial is refused; on a development chain
    /// the same request goes through.
    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_never_dialled_outside_development_chains() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = [0u8; 1024];
                    let _ = socket.read(&mut buf).await;
                    let _ = socket
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\nconnection: close\r\n\r\nsecret")
                        .await;
                });
            }
        });
        let url = format!("http://localhost:{port}/latest/meta-data");
        let real = endpoint_client(reqwest::Client::builder(), "agora-mainnet")
            .build()
            .unwrap();
        let err = real.get(&url).send().await.unwrap_err();
        assert!(err.is_connect(), "{err:?}");
        let dev = endpoint_client(reqwest::Client::builder(), "agora-devnet")
            .build()
            .unwrap();
        let body = dev.get(&url).send().await.unwrap().text().await.unwrap();
        assert_eq!(body, "secret");
    }
}
