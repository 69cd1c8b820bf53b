//! Integration tests against real Redis processes (standalone and a three-master Cluster),
//! grouped by behaviour. Every server is started by the test on free loopback ports and stopped
//! by PID; nothing else is contacted.

mod harness;

mod failures;
mod lock;
mod purge;
mod ratelimit;
