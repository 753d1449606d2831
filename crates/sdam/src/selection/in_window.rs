//! Choosing one server inside the latency window by operation count (server-selection.md,
//! "Server Selection Algorithm", steps 6 and 7: two random candidates, fewer in-flight
//! operations wins).

use std::collections::HashMap;
use std::sync::Arc;

use crate::address::ServerAddress;
use crate::rng::Rng;
use crate::server_description::ServerDescription;

/// How many operations each server is executing (server-selection.md, "operationCount").
///
/// The caller (the `Topology` state machine or the driver) tracks the counts: it increments a
/// server's count when selection returns it and decrements it when the operation ends. Any
/// `Fn(&ServerAddress) -> u32` closure and a `HashMap<ServerAddress, u32>` (missing = 0)
/// implement this; [`NoOperations`] reports zero everywhere.
pub trait OperationCounts {
    /// The number of operations in flight on `address`.
    fn operation_count(&self, address: &ServerAddress) -> u32;
}

impl<F> OperationCounts for F
where
    F: Fn(&ServerAddress) -> u32 + ?Sized,
{
    fn operation_count(&self, address: &ServerAddress) -> u32 {
        self(address)
    }
}

impl<S: std::hash::BuildHasher> OperationCounts for HashMap<ServerAddress, u32, S> {
    fn operation_count(&self, address: &ServerAddress) -> u32 {
        self.get(address).copied().unwrap_or(0)
    }
}

/// Operation counts that are zero for every server (the choice is then uniformly random).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoOperations;

impl OperationCounts for NoOperations {
    fn operation_count(&self, _: &ServerAddress) -> u32 {
        0
    }
}

/// Picks one server from the latency window: with one server, that one; otherwise two
/// distinct servers at random, and of those the one with fewer operations in flight (on a
/// tie, the first drawn, itself a random choice). `None` for an empty window.
///
/// server-selection.md, "Server Selection Algorithm", steps 6 and 7.
pub fn choose_in_window<'a, C: OperationCounts + ?Sized>(
    window: &[&'a Arc<ServerDescription>],
    counts: &C,
    rng: &mut Rng,
) -> Option<&'a Arc<ServerDescription>> {
    let n = u32::try_from(window.len()).unwrap_or(u32::MAX);
    // Step 6: "If there is only 1 server in the latency window, just select that server".
    if n <= 1 {
        return window.first().copied();
    }
    // Step 6: two distinct random servers.
    let i = rng.below(n);
    let mut j = rng.below(n - 1);
    if j >= i {
        j += 1;
    }
    let first = *window.get(i as usize)?;
    let second = *window.get(j as usize)?;
    // Step 7: the lower operationCount wins; a tie goes to the first drawn (random).
    if counts.operation_count(&second.address) < counts.operation_count(&first.address) {
        Some(second)
    } else {
        Some(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ServerType;

    fn servers(n: usize) -> Vec<Arc<ServerDescription>> {
        (0..n)
            .map(|i| {
                let mut sd = ServerDescription::unknown(ServerAddress::tcp("h", 1000 + i as u16).unwrap());
                sd.server_type = ServerType::Mongos;
                Arc::new(sd)
            })
            .collect()
    }

    #[test]
    fn empty_and_single() {
        let mut rng = Rng::new(1);
        assert!(choose_in_window(&[], &NoOperations, &mut rng).is_none());
        let s = servers(1);
        let w: Vec<_> = s.iter().collect();
        assert_eq!(choose_in_window(&w, &NoOperations, &mut rng).unwrap().address, s[0].address);
    }

    #[test]
    fn fewer_operations_wins_and_the_busiest_never_does() {
        let s = servers(3);
        let w: Vec<_> = s.iter().collect();
        let counts: HashMap<ServerAddress, u32> =
            [(s[0].address.clone(), 3), (s[1].address.clone(), 6), (s[2].address.clone(), 20)].into();
        let mut rng = Rng::new(7);
        let mut tally = [0u32; 3];
        for _ in 0..3000 {
            let chosen = choose_in_window(&w, &counts, &mut rng).unwrap();
            tally[s.iter().position(|x| x.address == chosen.address).unwrap()] += 1;
        }
        assert_eq!(tally[2], 0);
        // Expected 2/3 and 1/3.
        assert!((1850..2150).contains(&tally[0]), "{tally:?}");
        assert!((850..1150).contains(&tally[1]), "{tally:?}");
    }

    #[test]
    fn trait_objects_count_too() {
        let s = servers(2);
        let w: Vec<_> = s.iter().collect();
        let busy_first: &dyn Fn(&ServerAddress) -> u32 = &|a| u32::from(a.port() == Some(1000));
        let mut rng = Rng::new(9);
        for _ in 0..20 {
            assert_eq!(choose_in_window(&w, busy_first, &mut rng).unwrap().address, s[1].address);
        }
    }

    #[test]
    fn ties_split_evenly() {
        let s = servers(2);
        let w: Vec<_> = s.iter().collect();
        let mut rng = Rng::new(3);
        let firsts = (0..2000)
            .filter(|_| {
                choose_in_window(&w, &|_: &ServerAddress| 4, &mut rng).unwrap().address == s[0].address
            })
            .count();
        assert!((900..1100).contains(&firsts), "{firsts}");
    }
}
