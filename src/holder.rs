//! Who holds a lease or a claim: a name for this process that another
//! process on the same machine can check for life, so leases and claims of a
//! killed process are taken over at once rather than after they run out.

/// This process's name in leases: host, process id and a random part.
pub fn holder_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    format!("{host}:{}:{:08x}", std::process::id(), h.finish() as u32)
}

/// True when `holder` (see [`holder_id`]) names a process on this machine
/// that no longer runs.
pub fn holder_is_dead(holder: &str) -> bool {
    let mut parts = holder.rsplitn(3, ':');
    let (_, pid, host) = (parts.next(), parts.next(), parts.next());
    let ours = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    match (host, pid.and_then(|p| p.parse::<u32>().ok())) {
        (Some(host), Some(pid)) if host == ours => {
            pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_holders_on_this_machine_only() {
        let me = holder_id();
        assert!(!holder_is_dead(&me), "{me}");
        let host = me.rsplitn(3, ':').nth(2).unwrap_or("host").to_string();
        // Linux pids stay below 2^22.
        assert!(holder_is_dead(&format!("{host}:4999999:0badcafe")));
        assert!(!holder_is_dead("other-machine:4999999:0badcafe"));
        assert!(!holder_is_dead("garbage"));
    }
}
