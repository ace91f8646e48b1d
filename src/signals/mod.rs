//! The Shared Signals transmitter's machinery below the HTTP endpoints (`ssf`): Security
//! Event Tokens (`set`), the wake-up of waiting long polls across replicas (`wake`), and
//! push delivery (`push`).

pub mod set;
