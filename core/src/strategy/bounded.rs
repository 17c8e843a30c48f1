//! Consistent hashing with bounded loads (Mirrokni, Thorup & Zadimoghaddam,
//! "Consistent Hashing with Bounded Loads", SODA 2018), as HAProxy's
//! `hash-balance-factor` and Vimeo's deployment use it.

use crate::fleet::{AddError, BackendId, LoadError, UnknownBackend};
use crate::ring::{ConfigError, Ring, RingConfig};
use crate::strategy::{FleetView, LoadAware, Membership, Outcome, Placement, Strategy};

/// A ring whose backends accept at most `ceil(c x (in_flight + 1) x w / W)`
/// requests in flight (`c` the balance factor, `w` the backend's weight, `W` the
/// total weight of backends that are up, `in_flight` the sum over all backends).
/// A key goes to the first backend clockwise from its position that is up and
/// under that capacity, so no backend carries more than `c` times its fair share.
///
/// The caller reports load with [`LoadAware::start`] when a request begins on the
/// picked backend and [`LoadAware::finish`] when it ends; [`pick`](LoadAware::pick)
/// itself does not count. With no load reported it picks exactly as the ring's
/// [`pick`](Ring::pick). [`lookup`](Self::lookup) is the ring's pure placement.
///
/// Cost: as the ring (*O*(1) expected) while the key's backend is up and under
/// capacity; otherwise a walk of the ring, one step per point passed.
/// Disruption: as the ring, plus keys spilling past overloaded backends (at most
/// a `1/c` fraction can be displaced, per the paper). Because `c >= 1`, some up
/// backend is always under capacity.
#[derive(Debug, Clone)]
pub struct BoundedLoad<const B: usize, const P: usize, const I: usize = 0> {
    ring: Ring<B, P, I>,
    /// The balance factor in thousandths (1250 for c = 1.25).
    c_milli: u64,
}

impl<const B: usize, const P: usize, const I: usize> BoundedLoad<B, P, I> {
    /// A ring with the given points per weight and balance factor `c >= 1`
    /// (1.25 is the paper's and HAProxy's usual choice), kept to 1/1000.
    ///
    /// # Errors
    /// [`ConfigError::BalanceFactor`] if `c` is below 1, above 1000 or not finite;
    /// the ring's own [`ConfigError`]s.
    pub fn new(config: RingConfig, c: f32) -> Result<Self, ConfigError> {
        if !c.is_finite() || !(1.0..=1000.0).contains(&c) {
            return Err(ConfigError::BalanceFactor);
        }
        let c_milli = libm::roundf(c * 1000.0) as u64;
        Ok(Self {
            ring: Ring::new(config)?,
            c_milli,
        })
    }

    /// The underlying ring.
    #[must_use]
    pub fn ring(&self) -> &Ring<B, P, I> {
        &self.ring
    }

    /// Pure placement: the ring's owner of `key_hash`, health and load
    /// ignored. `None` with no backend.
    #[must_use]
    #[inline]
    pub fn lookup(&self, key_hash: u64) -> Option<BackendId> {
        self.ring.lookup(key_hash)
    }

    /// The balance factor.
    #[must_use]
    pub fn balance_factor(&self) -> f32 {
        self.c_milli as f32 / 1000.0
    }

    /// The current capacity of a backend of weight `w`: at most this many
    /// requests in flight. *O*(n).
    #[must_use]
    pub fn capacity(&self, weight: u32) -> u64 {
        let fleet = self.ring.fleet();
        Capacity::new(self.c_milli, fleet.total_load(), fleet.up_weight()).of(weight)
    }
}

/// `ceil(c x (in_flight + 1) x w / W_up)`, with the fleet-wide terms computed once.
struct Capacity {
    num: u128,
    den: u128,
}

impl Capacity {
    fn new(c_milli: u64, in_flight: u64, up_weight: u64) -> Self {
        Self {
            num: u128::from(c_milli) * (u128::from(in_flight) + 1),
            den: 1000 * u128::from(up_weight),
        }
    }

    fn of(&self, weight: u32) -> u64 {
        if self.den == 0 {
            return 0;
        }
        let c = (self.num * u128::from(weight)).div_ceil(self.den);
        u64::try_from(c).unwrap_or(u64::MAX)
    }
}

impl<const B: usize, const P: usize, const I: usize> FleetView for BoundedLoad<B, P, I> {
    fn name(&self) -> &'static str {
        "bounded"
    }
    fn backends(&self) -> &[crate::Backend] {
        self.ring.backends()
    }
}

impl<const B: usize, const P: usize, const I: usize> Membership for BoundedLoad<B, P, I> {
    fn add(&mut self, id: BackendId, name: &[u8], weight: u32) -> Result<(), AddError> {
        self.ring.add(id, name, weight)
    }
    fn remove(&mut self, id: BackendId) -> Result<(), UnknownBackend> {
        self.ring.remove(id)
    }
    fn set_up(&mut self, id: BackendId, up: bool) -> Result<(), UnknownBackend> {
        self.ring.set_up(id, up)
    }
}

impl<const B: usize, const P: usize, const I: usize> LoadAware for BoundedLoad<B, P, I> {
    fn pick(&mut self, key_hash: u64) -> Option<BackendId> {
        let fleet = self.ring.fleet();
        let cap = Capacity::new(self.c_milli, fleet.total_load(), fleet.up_weight());
        // The common case: the key's own backend is up and under capacity.
        let owner = fleet.get(self.ring.owner_slot(key_hash)?)?;
        if owner.up && u64::from(owner.load) < cap.of(owner.weight) {
            return Some(owner.id);
        }
        let mut first_up = None;
        for slot in self.ring.walk(key_hash) {
            let Some(b) = fleet.get(slot) else { continue };
            if !b.up {
                continue;
            }
            first_up.get_or_insert(b.id);
            if u64::from(b.load) < cap.of(b.weight) {
                return Some(b.id);
            }
        }
        // Unreachable while c >= 1 (the capacities sum past the load); kept total.
        first_up
    }
    fn start(&mut self, id: BackendId) -> Result<(), LoadError> {
        self.ring.fleet_mut().start(id)
    }
    /// Counts the request done; the outcome is not used.
    fn finish(&mut self, id: BackendId, _outcome: Outcome) -> Result<(), LoadError> {
        self.ring.fleet_mut().finish(id)
    }
}

impl<const B: usize, const P: usize, const I: usize> Strategy for BoundedLoad<B, P, I> {
    fn is_keyed(&self) -> bool {
        false
    }
    fn placement(&self) -> Option<&dyn Placement> {
        None
    }
}
