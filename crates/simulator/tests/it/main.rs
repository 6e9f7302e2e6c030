//! The simulator's one integration-test binary: a simulator on a free loopback port, driven
//! over real HTTP and through its public handle, as the daemon and its tests drive it.

mod helpers;

mod activity;
mod audit_logs;
mod compliance;
mod inventory;
mod receiver;
mod receiver_protocols;
mod seed;
mod server;
