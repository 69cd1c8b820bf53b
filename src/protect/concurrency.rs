//! A cap on concurrent requests per client address: a slot is taken when the request is
//! admitted and given back when its context is dropped, whatever path the request took.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// In-flight requests by client.
#[derive(Debug)]
pub struct PerClient {
    max: u32,
    counts: Mutex<HashMap<IpAddr, u32>>,
}

/// A held slot; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot {
    owner: Arc<PerClient>,
    ip: IpAddr,
}

impl PerClient {
    /// At most `max` concurrent requests per client (≥ 1).
    pub fn new(max: u32) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            counts: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a slot for `ip`, or `None` when the client is at its cap.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let mut counts = self.counts.lock().ok()?;
        let n = counts.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Slot {
            owner: self.clone(),
            ip,
        })
    }

    /// Clients with requests in flight (memory is bounded by concurrent requests).
    pub fn clients(&self) -> usize {
        self.counts.lock().map_or(0, |c| c.len())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut counts) = self.owner.counts.lock()
            && let Some(n) = counts.get_mut(&self.ip)
        {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_and_release() {
        let p = PerClient::new(2);
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let s1 = p.acquire(a).expect("first");
        let s2 = p.acquire(a).expect("second");
        assert!(p.acquire(a).is_none());
        assert!(p.acquire(b).is_some());
        drop(s1);
        assert!(p.acquire(a).is_some());
        drop(s2);
        assert_eq!(p.clients(), 0, "entries go away with their last slot");
    }
}
