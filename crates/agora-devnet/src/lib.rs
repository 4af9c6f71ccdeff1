//! Development networks, as libraries the `agora` binary calls:
//! [`devnet`] runs chain, provider, audit daemon, gateway and a data node
//! ([`data_market`]) and, with `--agent`, the [`example_agent`] in one process;
//! [`localnet`] runs N validator processes plus a provider and a gateway.
//! Both build on what every development setup needs: the development
//! [`genesis`], hex seed [`keys`] files, and the devnet's trusted [`dealer`]
//! of the validators' threshold keys.

mod data_dir;
pub mod data_market;
pub mod dealer;
pub mod devnet;
pub mod example_agent;
pub mod genesis;
pub mod keys;
pub mod localnet;

pub use data_dir::default_data_dir;
pub use devnet::DevnetConfig;
pub use localnet::LocalnetConfig;
