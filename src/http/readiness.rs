//! Whether this process wants new traffic. A graceful stop first marks it draining, so
//! `/readyz` answers 503 and load balancers take the replica out of rotation while it
//! still serves (`http.shutdown_delay`); only then does it stop accepting.

use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Default)]
pub struct Readiness {
    draining: AtomicBool,
}

impl Readiness {
    pub fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}
