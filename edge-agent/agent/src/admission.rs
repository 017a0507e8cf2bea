//! The agent's bounded queue: `slots` expansions run at once, up to `queue` more wait (FIFO),
//! and anything beyond is refused at once so the gateway can pick another replica.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use prometheus::IntGauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Admission control for expansions; share it as `Arc<Admission>`.
#[derive(Debug)]
pub struct Admission {
    slots: usize,
    capacity: usize,
    permits: Arc<Semaphore>,
    admitted: AtomicUsize,
    running: AtomicUsize,
    waiting_gauge: IntGauge,
    running_gauge: IntGauge,
}

/// The numbers `Load` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Occupancy {
    pub waiting: usize,
    pub running: usize,
    pub slots: usize,
}

impl Admission {
    /// `slots` run at once (at least 1), `queue` more may wait; the gauges follow the counts.
    pub fn new(slots: usize, queue: usize, waiting_gauge: IntGauge, running_gauge: IntGauge) -> Self {
        let slots = slots.max(1);
        Self {
            slots,
            capacity: slots + queue,
            permits: Arc::new(Semaphore::new(slots)),
            admitted: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            waiting_gauge,
            running_gauge,
        }
    }

    /// Takes a place in the queue, or `None` when slots and queue are all taken.
    pub fn try_admit(self: &Arc<Self>) -> Option<Queued> {
        self.admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.capacity).then_some(n + 1))
            .ok()?;
        self.publish();
        Some(Queued { admission: Arc::clone(self), started: false })
    }

    pub fn occupancy(&self) -> Occupancy {
        let running = self.running.load(Ordering::Acquire);
        let admitted = self.admitted.load(Ordering::Acquire);
        Occupancy { waiting: admitted.saturating_sub(running), running, slots: self.slots }
    }

    fn publish(&self) {
        let occupancy = self.occupancy();
        self.waiting_gauge.set(i64::try_from(occupancy.waiting).unwrap_or(i64::MAX));
        self.running_gauge.set(i64::try_from(occupancy.running).unwrap_or(i64::MAX));
    }

    fn leave(&self, was_running: bool) {
        if was_running {
            self.running.fetch_sub(1, Ordering::AcqRel);
        }
        self.admitted.fetch_sub(1, Ordering::AcqRel);
        self.publish();
    }
}

/// An admitted expansion waiting for a slot; dropping it gives its queue place back.
#[derive(Debug)]
pub struct Queued {
    admission: Arc<Admission>,
    started: bool,
}

impl Queued {
    /// Waits (FIFO) for a free slot.
    pub async fn start(mut self) -> Running {
        let admission = Arc::clone(&self.admission);
        // The semaphore is never closed, so acquiring only fails if that changes; then the
        // expansion runs without a slot rather than hanging.
        let permit = admission.permits.clone().acquire_owned().await.ok();
        admission.running.fetch_add(1, Ordering::AcqRel);
        admission.publish();
        self.started = true;
        Running { admission, _permit: permit }
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        if !self.started {
            self.admission.leave(false);
        }
    }
}

/// An expansion holding a slot; dropping it frees the slot.
#[derive(Debug)]
pub struct Running {
    admission: Arc<Admission>,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.admission.leave(true);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use super::*;

    fn admission(slots: usize, queue: usize) -> Arc<Admission> {
        let gauge = |name| IntGauge::new(name, "test").unwrap();
        Arc::new(Admission::new(slots, queue, gauge("waiting"), gauge("running")))
    }

    #[tokio::test]
    async fn slots_then_queue_fill_up_and_the_rest_is_refused() {
        let admission = admission(2, 1);
        let a = admission.try_admit().unwrap().start().await;
        let _b = admission.try_admit().unwrap().start().await;
        let c = admission.try_admit().unwrap();
        assert!(admission.try_admit().is_none());
        assert_eq!(admission.occupancy(), Occupancy { waiting: 1, running: 2, slots: 2 });
        assert_eq!((admission.waiting_gauge.get(), admission.running_gauge.get()), (1, 2));
        let c = tokio::spawn(c.start());
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!c.is_finished(), "the queued one waits for a slot");
        drop(a);
        let _c = tokio::time::timeout(Duration::from_secs(5), c).await.unwrap().unwrap();
        assert_eq!(admission.occupancy(), Occupancy { waiting: 0, running: 2, slots: 2 });
    }

    #[tokio::test]
    async fn a_queued_expansion_that_gives_up_frees_its_place() {
        let admission = admission(1, 1);
        let _running = admission.try_admit().unwrap().start().await;
        let queued = admission.try_admit().unwrap();
        assert!(admission.try_admit().is_none());
        drop(queued);
        assert_eq!(admission.occupancy().waiting, 0);
        assert!(admission.try_admit().is_some());
    }
}
