//! The storage contract suite: every method of every store (`ClientStore`, `UserStore`,
//! `KeyStore`, `SessionStore`, `GrantStore`, `RefreshStore`, `RevocationStore`, `SignalStore`, `DpopProofStore`, `ClientRequestStore`, `DeviceStore`, `AccessTokenStore`, `HealthCheck`), through the
//! `Storage` that `storage::connect` returns, on a fresh database of each backend
//! (`backend_tests!`, as in the API suite). One story per aggregate and rule, including the
//! atomic guarantees under dozens of concurrent calls. One binary, so the crate links once.

mod helpers;

mod access_tokens;
mod client_requests;
mod clients;
mod codes;
mod consents;
mod device_codes;
mod dpop;
mod dropped_requests;
mod health;
mod keys;
mod pending;
mod purge;
mod refresh;
mod revocations;
mod sessions;
mod signals;
mod throttle;
mod users;
